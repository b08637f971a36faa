//! The Raft port admits only peers that prove they know the cluster's
//! secret, before it reads anything else: forged RPCs from anyone else
//! change nothing, a node with another secret (or none) never joins and is
//! logged, frame headers cannot make the node allocate, snapshot chunks
//! cannot leave gaps, idle and surplus connections are closed, and
//! `RAFT.FAULT` answers only when fault injection is switched on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiwi::config::FaultInjection;
use kiwi::raft::network::{self, Frame, MembershipChange, Rpc, RpcReply, Stamp};
use kiwi::raft::{KiwiRequest, NetConfig, RaftOptions, RaftSecret};
use kiwi::{RuntimeConfig, Server};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{SnapshotMeta, Vote};

use crate::common::{resp_cmd as cmd, start_cluster, wait_until};

const KIWI_SERVER: &str = env!("CARGO_BIN_EXE_kiwi-server");

/// A `RAFT.INFO` field of the node on `port`.
fn info_field(port: u16, name: &str) -> String {
    let info = cmd(port, &["RAFT.INFO"]);
    info.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(str::to_string)
        .unwrap_or_default()
}

fn number(port: u16, name: &str) -> u64 {
    info_field(port, name).parse().unwrap_or(0)
}

/// What a forged RPC could change on a node: term, log, members.
fn state(port: u16) -> (u64, String, String) {
    (
        number(port, "term"),
        info_field(port, "last_log_index"),
        info_field(port, "members"),
    )
}

/// A frame as a stranger would forge it, encoded.
fn forged(to: u64, rpc: Rpc) -> Vec<u8> {
    postcard::to_allocvec(&Frame {
        from: 99,
        to,
        stamp: Stamp {
            cluster: None,
            incarnation: 7,
            target_incarnation: None,
        },
        rpc,
    })
    .expect("encode")
}

/// Wait (bounded by `within`) for the peer to close `stream`: true when it
/// did, false when it answered something or stayed open.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).expect("timeout");
    let mut buf = [0u8; 256];
    let mut got = 0;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                // The handshake refusal ("requires a raft-secret") may come
                // first; a closed connection must follow it.
                got += n;
                if got > 200 {
                    return false;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn forged_rpcs_from_an_unauthenticated_peer_are_refused_before_they_are_read() {
    let (_dirs, cluster, leader) = start_cluster(3);
    let ports: Vec<u16> = (0..3).map(|i| cluster.port(i).expect("port")).collect();
    // Every node knows the three members before the attacks.
    wait_until(
        "every node knows the members",
        Duration::from_secs(10),
        || {
            ports
                .iter()
                .all(|p| info_field(*p, "members").split(',').count() == 3)
        },
    );
    let before: Vec<_> = ports.iter().map(|p| state(*p)).collect();
    let term = before[leader].0;
    let victim = (leader + 1) % 3;
    let refusals = number(ports[leader], "peer_refusals");
    for target in [leader, victim] {
        for (n, rpc) in attacks(term, victim as u64 + 1).into_iter().enumerate() {
            let raft_port = cluster.raft_port(target).expect("raft port");
            let body = forged(target as u64 + 1, rpc);
            let mut stream = TcpStream::connect(("127.0.0.1", raft_port)).expect("connect");
            let mut out = (body.len() as u32).to_be_bytes().to_vec();
            out.extend_from_slice(&body);
            stream.write_all(&out).expect("send");
            assert!(
                closed_within(&mut stream, Duration::from_secs(10)),
                "attack {n} on node {target}: the connection stayed open or was answered"
            );
        }
    }
    // Nothing changed: no term from the future, the log and the members
    // as they were (a real election meanwhile could only add a few terms).
    for (i, port) in ports.iter().enumerate() {
        let (t, _, members) = state(*port);
        assert!(t < term + 1000, "node {i} took the forged term: {t}");
        assert_eq!(members, before[i].2, "node {i}'s members changed");
    }
    assert_eq!(
        cluster.status(victim).expect("status").map(|s| s.id),
        Some(victim as u64 + 1)
    );
    assert_eq!(cmd(ports[leader], &["SET", "after", "1"]), "+OK");
    assert_eq!(cmd(ports[leader], &["EXISTS", "forged"]), ":0");
    assert!(
        number(ports[leader], "peer_refusals") >= refusals + 4,
        "the leader counted its refusals"
    );
    assert_eq!(info_field(ports[leader], "peer_auth"), "secret");
    // A follower forwards only what its authenticated clients send.
    assert_eq!(
        cmd(ports[victim], &["CONFIG", "SET", "requirepass", "pw"]),
        "+OK"
    );
    assert_eq!(
        cmd(ports[victim], &["SET", "unauthenticated", "1"]),
        "-NOAUTH Authentication required."
    );
    assert_eq!(cmd(ports[leader], &["EXISTS", "unauthenticated"]), ":0");
}

/// Forged RPCs: a vote for a stranger far in the future (a node would
/// adopt its term and step down), a "leader" of a later term (a follower
/// would follow it), the removal of `victim` (through the leader), a write
/// "forwarded" past the password.
fn attacks(term: u64, victim: u64) -> Vec<Rpc> {
    vec![
        Rpc::Vote(VoteRequest::new(Vote::new(term + 1000, 99), None)),
        Rpc::AppendEntries(AppendEntriesRequest {
            vote: Vote::new_committed(term + 1000, 99),
            prev_log_id: None,
            entries: Vec::new(),
            leader_commit: None,
        }),
        Rpc::Membership(MembershipChange::Remove(victim)),
        Rpc::Forward(KiwiRequest::new(0, 0).command(&["SET", "forged", "1"])),
    ]
}

#[test]
fn a_frame_header_claiming_512_mib_is_refused_at_once_before_and_after_authentication() {
    let (_dirs, cluster, leader) = start_cluster(1);
    let raft_port = cluster.raft_port(leader).expect("raft port");
    let port = cluster.port(leader).expect("port");
    // Just under the old 512 MiB cap: the old listener reserved the buffer
    // and waited for the body. The header is refused before anything is
    // reserved (tokio-util checks the cap before reserving), so the
    // connection closes at once.
    let claim = (512u32 * 1024 * 1024 - 1).to_be_bytes();
    let mut stream = TcpStream::connect(("127.0.0.1", raft_port)).expect("connect");
    stream.write_all(&claim).expect("send");
    stream.write_all(&[0; 64]).expect("send");
    let started = Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(10)));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closed by the header, not the handshake timeout"
    );
    // An authenticated peer may not claim it either.
    let secret = cluster.secret().expect("secret").clone();
    let addr = format!("127.0.0.1:{raft_port}");
    let rt = runtime();
    let mut conn = rt
        .block_on(network::connect(
            1,
            &addr,
            Some(&secret),
            None,
            &NetConfig::default(),
        ))
        .expect("authenticated");
    let started = Instant::now();
    let closed = rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let stream = conn.get_mut();
        stream.write_all(&claim).await.expect("send");
        stream.write_all(&[0; 64]).await.expect("send");
        let mut buf = [0u8; 16];
        tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await
    });
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "an authenticated 512 MiB claim: {closed:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(cmd(port, &["PING"]), "+PONG");
}

#[test]
fn a_value_larger_than_a_frame_replicates_and_is_forwarded() {
    let (_dirs, cluster, leader) = start_cluster(3);
    let follower = (leader + 1) % 3;
    let value = "x".repeat(3 * 1024 * 1024 + 17);
    // Through a follower: forwarded to the leader in one message of many
    // frames, then replicated in AppendEntries of many frames.
    let port = cluster.port(follower).expect("port");
    // (Retried while the follower has not heard of the leader yet.)
    wait_until(
        "a write through a follower",
        Duration::from_secs(20),
        || cmd(port, &["SET", "big", &value]) == "+OK",
    );
    // Reads are linearizable: every node has it.
    for i in 0..3 {
        let port = cluster.port(i).expect("port");
        assert_eq!(
            cmd(port, &["STRLEN", "big"]),
            format!(":{}", value.len()),
            "node {i}"
        );
    }
}

#[test]
fn idle_and_surplus_connections_are_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = RuntimeConfig::new(dir.path());
    config.port = 0;
    let mut options = RaftOptions::new(1, "127.0.0.1:0");
    options.init = true;
    options.secret = Some(RaftSecret::random());
    options.net.handshake_timeout = Duration::from_secs(4);
    options.net.max_inbound = 4;
    let mut server = Server::start_raft(config, options).expect("node");
    let port = server.addr().port();
    let raft_addr = server.raft().expect("raft").addr().to_string();
    let started = Instant::now();
    let mut idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&raft_addr).expect("connect"))
        .collect();
    // The listener holds four: the fifth is closed at once.
    let mut fifth = TcpStream::connect(&raft_addr).expect("connect");
    assert!(closed_within(&mut fifth, Duration::from_secs(10)));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the fifth connection waited {:?}",
        started.elapsed()
    );
    // The idle ones, after the handshake timeout.
    for stream in &mut idle {
        assert!(closed_within(stream, Duration::from_secs(15)));
    }
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "closed after {:?}, before the handshake timeout",
        started.elapsed()
    );
    drop(idle);
    assert!(number(port, "peer_refusals") >= 5);
    // Slots free again: a peer with the secret gets in.
    let secret = server
        .raft()
        .expect("raft")
        .secret()
        .cloned()
        .expect("secret");
    let rt = runtime();
    wait_until(
        "an authenticated connection",
        Duration::from_secs(10),
        || {
            rt.block_on(network::connect(
                1,
                &raft_addr,
                Some(&secret),
                None,
                &NetConfig::default(),
            ))
            .is_ok()
        },
    );
    // One with another secret does not.
    let wrong = rt.block_on(network::connect(
        1,
        &raft_addr,
        Some(&RaftSecret::random()),
        None,
        &NetConfig::default(),
    ));
    assert!(
        matches!(&wrong, Err(network::CallError::Handshake(..))),
        "{:?}",
        wrong.err()
    );
    server.stop();
}

/// A `kiwi-server` process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Start `kiwi-server` as node `id` on `dir` with `extra` flags; returns
/// it with its RESP port and raft address once it answers PING.
fn node_process(id: u64, dir: &Path, extra: &[String]) -> (Process, u16, String) {
    let port = free_port();
    let raft = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "--dir".to_string(),
        dir.join("data").display().to_string(),
        "--port".into(),
        port.to_string(),
        "--node-id".into(),
        id.to_string(),
        "--raft-addr".into(),
        raft.clone(),
        "--logfile".into(),
        dir.join("server.log").display().to_string(),
    ];
    args.extend(extra.iter().cloned());
    let child = Command::new(KIWI_SERVER)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kiwi-server");
    let mut process = Process(child);
    wait_until("the node answers", Duration::from_secs(30), || {
        assert!(process.alive(), "kiwi-server {args:?} exited");
        TcpStream::connect(("127.0.0.1", port)).is_ok() && cmd(port, &["PING"]) == "+PONG"
    });
    (process, port, raft)
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|w| w.to_string()).collect()
}

#[test]
fn nodes_with_another_secret_or_none_never_join_and_are_logged() {
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let (_a, a_port, a_raft) = node_process(
        1,
        dirs[0].path(),
        &words(&["--raft-init", "--raft-secret", "alpha-secret"]),
    );
    wait_until("node 1 leads", Duration::from_secs(20), || {
        info_field(a_port, "role") == "leader"
    });
    let term = number(a_port, "term");
    let members = info_field(a_port, "members");
    // Node 2 (another secret) and node 3 (none) each start a cluster with
    // node 1 in it and ask it for votes.
    let peer = format!("1={a_raft}");
    let (mut b, b_port, _) = node_process(
        2,
        dirs[1].path(),
        &words(&[
            "--raft-init",
            "--raft-peer",
            &peer,
            "--raft-secret",
            "beta-secret",
        ]),
    );
    let (mut c, c_port, _) = node_process(
        3,
        dirs[2].path(),
        &words(&["--raft-init", "--raft-peer", &peer]),
    );
    wait_until("node 1 logs both refusals", Duration::from_secs(30), || {
        let log = log_of(dirs[0].path());
        log.contains(
            "raft connection refused: the peer proved no knowledge of this node's raft-secret",
        ) && log.contains(
            "raft connection refused: the peer has no raft-secret and this node requires one",
        )
    });
    let log = log_of(dirs[0].path());
    assert!(
        log.contains("peer=127.0.0.1:"),
        "the peer's address is logged:\n{log}"
    );
    wait_until(
        "nodes 2 and 3 log that node 1 refused them",
        Duration::from_secs(30),
        || {
            log_of(dirs[1].path()).contains("raft peer refused")
                && log_of(dirs[2].path()).contains("raft peer refused")
        },
    );
    assert!(
        log_of(dirs[2].path()).contains("raft runs without a raft-secret"),
        "a node without a secret warns"
    );
    // Neither got a vote from node 1, nor did node 1 change.
    assert_eq!(number(a_port, "term"), term);
    assert_eq!(info_field(a_port, "members"), members);
    assert_eq!(info_field(a_port, "role"), "leader");
    for p in [b_port, c_port] {
        assert_ne!(info_field(p, "role"), "leader");
        assert_eq!(info_field(p, "leader"), "-");
    }
    assert!(number(a_port, "peer_refusals") >= 2);
    assert!(b.alive() && c.alive());
}

#[test]
fn without_a_secret_the_raft_port_stays_on_loopback() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = RuntimeConfig::new(dir.path());
    config.port = 0;
    // Refused before anything binds: the test listens on nothing but
    // loopback.
    let err = Server::start_raft(config.clone(), RaftOptions::new(1, "0.0.0.0:0"))
        .expect_err("a raft port beyond loopback without a secret");
    assert!(err.to_string().contains("without a raft-secret"), "{err}");
    let mut options = RaftOptions::new(1, "127.0.0.1:0");
    options.init = true;
    let mut server = Server::start_raft(config, options).expect("loopback without a secret");
    let port = server.addr().port();
    assert_eq!(info_field(port, "peer_auth"), "none");
    wait_until("a leader", Duration::from_secs(10), || {
        cmd(port, &["SET", "k", "v"]) == "+OK"
    });
    server.stop();
}

#[test]
fn a_snapshot_chunk_past_what_arrived_is_refused_and_the_node_keeps_serving() {
    // A process of its own: before the check, this chunk aborted the
    // whole process (a 1 TiB allocation).
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = "chunk-test-secret";
    let (mut node, port, raft) = node_process(
        1,
        dir.path(),
        &words(&["--raft-init", "--raft-secret", secret]),
    );
    wait_until("a leader", Duration::from_secs(20), || {
        cmd(port, &["SET", "k", "v"]) == "+OK"
    });
    let secret = RaftSecret::new(secret).expect("secret");
    let rt = runtime();
    let replies = rt.block_on(async {
        let mut conn = network::connect(1, &raft, Some(&secret), None, &NetConfig::default())
            .await
            .expect("authenticated");
        let chunk = |offset: u64, data: Vec<u8>| {
            forged(
                1,
                Rpc::InstallSnapshot(InstallSnapshotRequest {
                    vote: Vote::new_committed(1000, 99),
                    meta: SnapshotMeta {
                        last_log_id: None,
                        last_membership: Default::default(),
                        snapshot_id: "forged".into(),
                    },
                    offset,
                    data,
                    done: false,
                }),
            )
        };
        let mut replies = Vec::new();
        for (offset, data) in [
            (0, vec![1; 100]),
            (1 << 40, vec![2; 100]),
            (101, vec![3; 10]),
        ] {
            let reply = network::exchange(&mut conn, 1, &chunk(offset, data))
                .await
                .map(|raw| postcard::from_bytes::<RpcReply>(&raw).expect("reply"));
            replies.push(reply);
        }
        replies
    });
    let described: Vec<String> = replies.iter().map(|r| format!("{r:?}")).collect();
    assert!(
        matches!(replies[0], Ok(RpcReply::InstallSnapshot(Ok(_)))),
        "{described:?}"
    );
    assert!(
        described[1].contains("expect: SnapshotSegmentId { id: \"forged\", offset: 100 }"),
        "the gap is refused, naming the offset expected: {described:?}"
    );
    // Past what arrived by one byte: a gap too.
    assert!(described[2].contains("SnapshotMismatch"), "{described:?}");
    assert!(node.alive(), "the node survived");
    assert_eq!(cmd(port, &["GET", "k"]), "v");
    assert_eq!(cmd(port, &["SET", "k", "w"]), "+OK");
    assert!(log_of(dir.path()).contains("snapshot chunk refused"));
}

#[test]
fn raft_fault_is_refused_unless_fault_injection_is_on() {
    const OFF: &str = "-ERR RAFT.FAULT command not allowed. If the enable-fault-injection \
        option is set to \"local\", you can run it from a local connection, otherwise you need \
        to set this option in the configuration file, and then restart the server.";
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = RuntimeConfig::new(dir.path());
    config.port = 0;
    config.requirepass = Some("pw".into());
    let mut options = RaftOptions::new(1, "127.0.0.1:0");
    options.init = true;
    let mut server = Server::start_raft(config, options).expect("node");
    let port = server.addr().port();
    // As Redis's DEBUG: refused before AUTH is asked for, arity first.
    assert_eq!(cmd(port, &["RAFT.FAULT", "CLEAR"]), OFF);
    assert_eq!(
        cmd(port, &["RAFT.FAULT"]),
        "-ERR wrong number of arguments for 'raft.fault' command"
    );
    let session = |commands: &[&[&str]]| -> Vec<String> {
        use std::io::{BufRead, BufReader};
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        commands
            .iter()
            .map(|args| {
                let mut out = format!("*{}\r\n", args.len());
                for a in *args {
                    out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
                }
                stream.write_all(out.as_bytes()).expect("send");
                let mut line = String::new();
                reader.read_line(&mut line).expect("read");
                line.trim_end().to_string()
            })
            .collect()
    };
    assert_eq!(
        session(&[
            &["AUTH", "pw"],
            &["RAFT.FAULT", "DELAY", "5"],
            &["CONFIG", "SET", "enable-fault-injection", "yes"],
            &["MULTI"],
            &["RAFT.FAULT", "CLEAR"],
            &["EXEC"],
        ]),
        [
            "+OK",
            OFF,
            "-ERR CONFIG SET failed (possibly related to argument 'enable-fault-injection') - can't set immutable config",
            "+OK",
            OFF,
            "-EXECABORT Transaction discarded because of previous errors.",
        ]
    );
    assert_eq!(
        session(&[&["AUTH", "pw"], &["RAFT.INFO"]])
            .first()
            .map(String::as_str),
        Some("+OK")
    );
    server.stop();
    // Switched on (loopback clients count as local too).
    for setting in [FaultInjection::Yes, FaultInjection::Local] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = RuntimeConfig::new(dir.path());
        config.port = 0;
        config.fault_injection = setting;
        let mut options = RaftOptions::new(1, "127.0.0.1:0");
        options.init = true;
        let mut server = Server::start_raft(config, options).expect("node");
        let port = server.addr().port();
        assert_eq!(cmd(port, &["RAFT.FAULT", "DELAY", "5"]), "+OK");
        assert_eq!(info_field(port, "fault_delay_ms"), "5");
        assert_eq!(cmd(port, &["RAFT.FAULT", "CLEAR"]), "+OK");
        assert_eq!(
            cmd(port, &["CONFIG", "GET", "enable-fault-injection"]),
            "*2"
        );
        server.stop();
    }
    // Local: only loopback and unix-socket clients.
    assert!(FaultInjection::Local.allows("127.0.0.1:5000"));
    assert!(FaultInjection::Local.allows("[::1]:5000"));
    assert!(FaultInjection::Local.allows("/tmp/kiwi.sock:0"));
    assert!(!FaultInjection::Local.allows("10.1.2.3:5000"));
    assert!(!FaultInjection::No.allows("127.0.0.1:5000"));
}
