//! Safety of Raft nodes beyond the happy path: what RAFT.INFO reports and
//! a node that is shutting down.
//!
//! Every cluster runs on loopback in this process and is stopped at the
//! end (`LocalCluster`'s Drop); waits poll with deadlines.

use std::collections::HashMap;
use std::time::Duration;

use kiwi::raft::{LocalCluster, RaftTiming};
use tempfile::TempDir;

use crate::common::{resp_cmd as cmd, wait_until};

fn timing() -> RaftTiming {
    RaftTiming {
        heartbeat_ms: 50,
        election_min_ms: 300,
        election_max_ms: 600,
        client_timeout: Duration::from_secs(2),
        ..RaftTiming::default()
    }
}

/// `n` nodes on fresh directories, initialised, with a leader elected.
fn cluster(n: usize) -> (Vec<TempDir>, LocalCluster, usize) {
    let dirs: Vec<TempDir> = (0..n)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let cluster = LocalCluster::start(
        dirs.iter().map(|d| d.path().to_path_buf()).collect(),
        "127.0.0.1",
        timing(),
    )
    .expect("start cluster");
    let mut leader = None;
    wait_until("a leader", Duration::from_secs(10), || {
        leader = cluster.leader();
        leader.is_some()
    });
    let leader = leader.expect("leader");
    (dirs, cluster, leader)
}

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
