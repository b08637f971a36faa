//! Safety of Raft nodes beyond the happy path: what RAFT.INFO reports,
//! a node that is shutting down, and replicated applies that must not
//! depend on one node's configuration.
//!
//! Every cluster runs on loopback in this process and is stopped at the
//! end (`LocalCluster`'s Drop); waits poll with deadlines.

use std::collections::HashMap;
use std::time::Duration;

use kiwi::raft::LocalCluster;

use crate::common::{resp_cmd as cmd, start_cluster as cluster, wait_until};

/// RAFT.INFO's `field:value` lines of node `port`.
fn raft_info(port: u16) -> HashMap<String, String> {
    cmd(port, &["RAFT.INFO"])
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn index(info: &HashMap<String, String>, field: &str) -> u64 {
    info.get(field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} in {info:?}"))
}

#[test]
fn raft_info_commit_index_covers_what_was_applied() {
    let (_dirs, cluster, leader) = cluster(3);
    let port = cluster.port(leader).expect("port");
    for i in 0..20 {
        assert_eq!(cmd(port, &["SET", &format!("k{i}"), "v"]), "+OK");
    }
    let info = raft_info(port);
    let (commit, applied, last) = (
        index(&info, "commit_index"),
        index(&info, "applied_index"),
        index(&info, "last_log_index"),
    );
    // Init's membership, the leader's blank entry, 20 writes (batched at most).
    assert!(applied >= 3, "{info:?}");
    assert!(
        applied <= commit && commit <= last,
        "applied {applied} <= commit {commit} <= last log {last}: {info:?}"
    );
}

#[test]
fn a_node_shutting_down_refuses_writes_instead_of_applying_them_locally() {
    let (_dirs, cluster, leader) = cluster(1);
    let port = cluster.port(leader).expect("port");
    assert_eq!(cmd(port, &["SET", "before", "1"]), "+OK");
    let server = cluster.server(leader).expect("running");
    let raft = server.raft().expect("raft node").clone();
    let engine = server.engine().expect("engine").clone();
    server.block_on(raft.shutdown()).expect("runtime");

    // The RESP server still runs: its clients are refused.
    assert_eq!(
        cmd(port, &["SET", "after", "1"]),
        "-ERR raft node is shutting down"
    );
    assert_eq!(
        cmd(port, &["RPUSH", "list", "a"]),
        "-ERR raft node is shutting down"
    );
    // So is the embedded API.
    let mut session = engine.local_session();
    let reply = engine.execute_args(&mut session, &["SET", "embedded", "1"]);
    assert!(
        matches!(&reply, kiwi::resp::Reply::Error(_)),
        "embedded write after shutdown: {reply:?}"
    );
    // Nothing reached the keyspace outside the log.
    for key in ["after", "list", "embedded"] {
        assert_eq!(
            engine.execute_local(&mut session, &[bytes::Bytes::from("EXISTS"), key.into()]),
            kiwi::resp::Reply::Int(0),
            "{key} was written after shutdown"
        );
    }
}

#[test]
fn a_lowered_proto_max_bulk_len_is_judged_where_the_client_is_and_applies_alike() {
    let (_dirs, cluster, leader) = cluster(3);
    let port = cluster.port(leader).expect("port");
    let lowered = (leader + 1) % 3;
    let low_port = cluster.port(lowered).expect("port");
    assert_eq!(
        cmd(low_port, &["CONFIG", "SET", "proto-max-bulk-len", "1mb"]),
        "+OK"
    );
    // Through a node with the default limit: past 1 MB, well under 512 MB.
    let part = "a".repeat(600_000);
    assert_eq!(cmd(port, &["SET", "s", &part]), "+OK");
    assert_eq!(cmd(port, &["APPEND", "s", &part]), ":1200000");
    assert_eq!(cmd(port, &["SETRANGE", "r", "1100000", "x"]), ":1100001");
    assert_eq!(cmd(port, &["SETBIT", "b", "9000000", "1"]), ":0");
    // Every node applied them, the lowered one included.
    let lengths = |p: u16| ["s", "r", "b"].map(|k| cmd(p, &["STRLEN", k]));
    for i in 0..3 {
        let p = cluster.port(i).expect("port");
        assert_eq!(
            lengths(p),
            [":1200000", ":1100001", ":1125001"],
            "node {i} (lowered: node {lowered})"
        );
    }
    // Through the lowered node: refused with Redis's texts, nothing proposed.
    assert_eq!(
        cmd(low_port, &["APPEND", "s", "x"]),
        "-ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );
    assert_eq!(
        cmd(low_port, &["SETRANGE", "r2", "1100000", "x"]),
        "-ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );
    assert_eq!(
        cmd(low_port, &["SETBIT", "b2", "9000000", "1"]),
        "-ERR bit offset is not an integer or out of range"
    );
    // Within the limit the lowered node proposes as usual.
    assert_eq!(cmd(low_port, &["APPEND", "small", "x"]), ":1");
    // It judges on data holding the client's own last write: a hash, not a
    // missing key (which would be over the limit).
    assert_eq!(cmd(low_port, &["HSET", "h", "f", "v"]), ":1");
    assert_eq!(
        cmd(low_port, &["SETRANGE", "h", "1100000", "x"]),
        "-WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    for i in 0..3 {
        let p = cluster.port(i).expect("port");
        assert_eq!(lengths(p), [":1200000", ":1100001", ":1125001"], "node {i}");
        assert_eq!(cmd(p, &["EXISTS", "r2", "b2"]), ":0", "node {i}");
        assert_eq!(cmd(p, &["GET", "small"]), "x", "node {i}");
    }
}

/// Node `i`'s RAFT.INFO.
fn info_of(cluster: &LocalCluster, i: usize) -> HashMap<String, String> {
    raft_info(cluster.port(i).expect("port"))
}

#[test]
fn a_wiped_directory_rejoining_under_its_old_id_neither_votes_nor_serves() {
    let (_dirs, mut cluster, a) = cluster(3);
    let (b, f) = ((a + 1) % 3, (a + 2) % 3);
    let a_port = cluster.port(a).expect("port");
    assert_eq!(cmd(a_port, &["SET", "before", "1"]), "+OK");
    // Every node recorded every member's incarnation.
    wait_until(
        "all incarnations registered",
        Duration::from_secs(10),
        || (0..3).all(|i| info_of(&cluster, i)["registered"] == "1,2,3"),
    );
    let cluster_id = info_of(&cluster, a)["cluster_id"].clone();
    assert_ne!(cluster_id, "-");
    for i in 0..3 {
        assert_eq!(info_of(&cluster, i)["cluster_id"], cluster_id, "node {i}");
    }

    // Committed by A and F only: B is cut off.
    cluster.isolate(b).expect("isolate");
    assert_eq!(cmd(a_port, &["SET", "committed", "by a and f"]), "+OK");
    // F loses its directory and comes back empty under the same id.
    cluster.stop(f).expect("stop");
    let f_dir = cluster.dir(f).expect("dir");
    std::fs::remove_dir_all(&f_dir).expect("wipe");
    cluster.restart(f).expect("restart on an empty directory");
    // A goes away; B comes back. Had F voted, B (without "committed")
    // could lead with it and lose the write.
    cluster.stop(a).expect("stop");
    cluster.heal();
    // Several election timeouts: B stands for election again and again.
    let window = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < window {
        assert_eq!(
            cluster.leader(),
            None,
            "B must not lead with the wiped node's vote"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let f_port = cluster.port(f).expect("port");
    let refused = format!("-ERR raft node {} refused:", f + 1);
    wait_until(
        "the wiped node refuses clients",
        Duration::from_secs(10),
        || cmd(f_port, &["SET", "x", "1"]).starts_with(&refused),
    );
    assert!(cmd(f_port, &["GET", "before"]).starts_with(&refused));

    // A is back: the write survived, and F stays refused.
    cluster.restart(a).expect("restart");
    let mut leader = None;
    wait_until("a leader among A and B", Duration::from_secs(10), || {
        leader = cluster.leader();
        leader.is_some()
    });
    assert_ne!(leader, Some(f));
    let b_port = cluster.port(b).expect("port");
    wait_until("the write read through B", Duration::from_secs(10), || {
        let got = cmd(b_port, &["GET", "committed"]);
        assert!(!got.starts_with('$') && got != "(nil)", "lost: {got}");
        got == "by a and f"
    });
    assert!(cmd(f_port, &["SET", "x", "1"]).starts_with(&refused));
    assert_eq!(info_of(&cluster, f)["registered"], "");

    // Removed and added again, the fresh directory joins as a new member.
    let f_addr = format!("127.0.0.1:{}", cluster.raft_port(f).expect("raft port"));
    let f_id = (f + 1).to_string();
    assert_eq!(cmd(b_port, &["RAFT.NODE", "REMOVE", &f_id]), "+OK");
    assert_eq!(cmd(b_port, &["RAFT.NODE", "ADD", &f_id, &f_addr]), "+OK");
    wait_until("the new directory serves", Duration::from_secs(10), || {
        cmd(f_port, &["GET", "committed"]) == "by a and f"
    });
    wait_until(
        "its new incarnation registered",
        Duration::from_secs(10),
        || {
            info_of(&cluster, b)["registered"] == "1,2,3"
                && info_of(&cluster, f)["cluster_id"] == cluster_id
        },
    );
}
