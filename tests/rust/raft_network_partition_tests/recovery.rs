//! A follower that fell behind a log purge, and a write cut off mid-way.

use super::*;

/// Send `cmd` through `client`; it must answer `expected`.
fn expect_reply(client: &mut Client, cmd: &[&str], expected: Resp) {
    let reply = client.cmd(cmd);
    assert_eq!(reply, expected, "{cmd:?}");
}

#[test]
fn follower_restarted_after_log_purge_catches_up_by_snapshot() {
    let _serial = serial();
    let mut c = Cluster::start_with(
        3,
        RaftTiming {
            snapshot_every: 50,
            logs_to_keep: 10,
            ..timing()
        },
    );
    let all = [0, 1, 2];
    let leader = c.wait_for_leader(&all, Duration::from_secs(5));
    let follower = others(leader, 3)[0];
    let mut client = c.client(leader);
    let ok = || Resp::Status("OK".into());

    // What the follower holds before it goes down: a collection that is
    // deleted while it is away and one that changes.
    expect_reply(&mut client, &["SET", "s-pre", "old"], ok());
    expect_reply(
        &mut client,
        &["HSET", "gone", "f1", "a", "f2", "b"],
        Resp::Int(2),
    );
    expect_reply(&mut client, &["RPUSH", "list", "pre"], Resp::Int(1));
    for j in 0..30 {
        let (k, v) = (format!("pre{j}"), format!("v{j}"));
        expect_reply(&mut client, &["SET", &k, &v], ok());
    }
    let before_kill = c.wait_identical(Duration::from_secs(10));
    assert!(before_kill.contains_key("gone"));
    let follower_last = c
        .metrics(follower)
        .last_log_index
        .expect("the follower has a log");
    assert_eq!(
        c.metrics(follower).snapshot,
        None,
        "too few entries yet for a snapshot"
    );
    c.kill(follower);

    // Strings and collections, one entry each (one client, in turn).
    expect_reply(&mut client, &["SET", "s-pre", "new"], ok());
    for j in 0..20 {
        let (f, v) = (format!("f{j}"), format!("v{j}"));
        expect_reply(&mut client, &["HSET", "hash", &f, &v], Resp::Int(1));
        expect_reply(&mut client, &["RPUSH", "list", &v], Resp::Int(j + 2));
        expect_reply(&mut client, &["SADD", "set", &f], Resp::Int(1));
        let score = (j * 3).to_string();
        expect_reply(&mut client, &["ZADD", "zset", &score, &f], Resp::Int(1));
    }
    expect_reply(&mut client, &["SREM", "set", "f0", "f1"], Resp::Int(2));
    expect_reply(&mut client, &["SET", "ttl", "x", "EX", "3600"], ok());
    expect_reply(&mut client, &["DEL", "gone"], Resp::Int(1));
    // Strings (at least 30) until the leader snapshotted and purged its log
    // past the follower's last entry (a bounded number of writes).
    let mut strings = 0;
    let purged = loop {
        let m = c.metrics(leader);
        if let (Some(snap), Some(purged)) = (m.snapshot, m.purged) {
            if strings >= 30 && purged.index > follower_last && snap.index >= purged.index {
                break purged;
            }
        }
        assert!(
            strings < 2_000,
            "no purge past index {follower_last} after {strings} writes: snapshot {:?}, purged {:?}",
            m.snapshot,
            m.purged
        );
        let (k, v) = (format!("s{strings}"), format!("v{strings}"));
        expect_reply(&mut client, &["SET", &k, &v], ok());
        strings += 1;
    };
    eprintln!(
        "follower's last index {follower_last}; leader purged up to {} after {strings} strings",
        purged.index
    );

    c.inner.restart(follower).expect("restart the follower");
    let keyspace = c.wait_identical(Duration::from_secs(20));
    // It got there through a snapshot: it holds one at least as recent as
    // the leader's purge point, and its own log starts after it.
    let m = c.metrics(follower);
    let installed = m.snapshot.expect("the follower holds a snapshot");
    assert!(
        installed.index >= purged.index,
        "follower's snapshot {installed} is older than the leader's purge point {purged}"
    );
    assert!(
        m.purged.is_some_and(|p| p.index > follower_last),
        "follower's log was not replaced by the snapshot: purged {:?}",
        m.purged
    );

    // The follower's own data, read locally.
    let f = follower;
    assert_eq!(c.local_get(f, "s-pre").as_deref(), Some(&b"new"[..]));
    assert_eq!(c.local_get(f, "pre29").as_deref(), Some(&b"v29"[..]));
    for j in 0..strings {
        let v = format!("v{j}");
        assert_eq!(
            c.local_get(f, &format!("s{j}")).as_deref(),
            Some(v.as_bytes())
        );
    }
    assert_eq!(c.local(f, &["EXISTS", "gone"]), Reply::Int(0));
    assert_eq!(c.local(f, &["HLEN", "hash"]), Reply::Int(20));
    assert_eq!(
        c.local(f, &["HGET", "hash", "f7"]),
        Reply::Bulk(Bytes::from_static(b"v7"))
    );
    assert_eq!(c.local(f, &["LLEN", "list"]), Reply::Int(21));
    assert_eq!(
        c.local(f, &["LINDEX", "list", "0"]),
        Reply::Bulk(Bytes::from_static(b"pre"))
    );
    assert_eq!(
        c.local(f, &["LINDEX", "list", "-1"]),
        Reply::Bulk(Bytes::from_static(b"v19"))
    );
    assert_eq!(c.local(f, &["SCARD", "set"]), Reply::Int(18));
    assert_eq!(c.local(f, &["SISMEMBER", "set", "f0"]), Reply::Int(0));
    assert_eq!(c.local(f, &["ZCARD", "zset"]), Reply::Int(20));
    assert_eq!(
        c.local(f, &["ZSCORE", "zset", "f5"]),
        c.local(leader, &["ZSCORE", "zset", "f5"])
    );
    match c.local(f, &["PTTL", "ttl"]) {
        Reply::Int(ms) => assert!(
            ms > 3_000_000 && ms <= 3_600_000,
            "the TTL'd key's expiry on the follower: {ms} ms"
        ),
        other => panic!("PTTL answered {other:?}"),
    }
    assert!(
        keyspace["ttl"].starts_with("string "),
        "{}",
        keyspace["ttl"]
    );
    assert!(
        !keyspace["ttl"].starts_with("string -1 "),
        "{}",
        keyspace["ttl"]
    );

    // Later writes replicate to it through the log, directly and forwarded
    // by it.
    let mut acked = write_all(&c, leader, "later-", 20);
    acked.extend(write_all(&c, follower, "later-fwd-", 20));
    expect_reply(
        &mut c.client(follower),
        &["HSET", "hash", "late", "1"],
        Resp::Int(1),
    );
    c.wait_converged(&acked, &[]);
    let after = c.wait_identical(Duration::from_secs(10));
    assert_eq!(after.len(), keyspace.len() + 40);
    assert_eq!(c.local(f, &["HLEN", "hash"]), Reply::Int(21));
}

/// A write the old leader appended but a new leader truncated is answered
/// "outcome unknown", never retried nor refused: with five voters such an
/// entry may also sit on another node that later commits it, so neither
/// "try again" nor "it did not happen" would be safe to say.
#[test]
fn a_truncated_write_answers_outcome_unknown() {
    let _serial = serial();
    let c = Cluster::start_with(
        5,
        RaftTiming {
            client_timeout: Duration::from_secs(15),
            ..timing()
        },
    );
    let all: Vec<usize> = (0..5).collect();
    let old = c.wait_for_leader(&all, Duration::from_secs(10));
    c.isolate(old);
    let port = c.server(old).addr().port();
    let pending = std::thread::spawn(move || Client::connect(port).cmd(&["INCR", "n"]));
    let majority = others(old, 5);
    let new = c.wait_for_leader(&majority, Duration::from_secs(10));
    // The new leader's entries take the index the old leader used.
    let acked = write_all(&c, new, "new-term-", 5);
    c.heal();
    let reply = pending.join().expect("client thread");
    match &reply {
        Resp::Error(e) => assert!(e.starts_with("TRYAGAIN"), "{e}"),
        other => panic!("a truncated INCR must answer TRYAGAIN, got {other:?}"),
    }
    c.wait_converged(&acked, &["n".to_string()]);
    for i in all {
        assert_eq!(
            c.local_get(i, "n"),
            None,
            "node {i} applied the truncated INCR"
        );
    }
}
