//! Membership changes at run time: `RAFT.NODE ADD` makes a fresh node a
//! learner, lets it catch up and then a voter; `RAFT.NODE REMOVE` takes a
//! voter out. Both work when sent to a follower (passed to the leader).
//! Data is checked on the new node, and the cluster keeps its quorum rules.

use std::time::Duration;

use kiwi::raft::RaftOptions;
use kiwi::{RuntimeConfig, Server};

use crate::common::{raft_timing as timing, resp_cmd_within, start_cluster, wait_until};

/// A request that may wait for a node to catch up (`RAFT.NODE ADD`).
fn cmd(port: u16, args: &[&str]) -> String {
    resp_cmd_within(port, args, Duration::from_secs(70))
}

fn voters(server: &Server) -> Vec<u64> {
    let raft = server.raft().expect("raft node");
    let metrics = raft.raft().metrics().borrow().clone();
    let mut ids: Vec<u64> = metrics.membership_config.membership().voter_ids().collect();
    ids.sort_unstable();
    ids
}

#[test]
fn nodes_join_as_voters_and_leave_at_run_time() {
    let (_dirs, cluster, leader) = start_cluster(3);
    let follower = (0..3).find(|&i| i != leader).expect("a follower");
    let port = |i: usize| cluster.port(i).expect("port");
    for j in 0..50 {
        assert_eq!(
            cmd(
                port(follower),
                &["SET", &format!("before{j}"), &j.to_string()]
            ),
            "+OK"
        );
    }
    assert_eq!(cmd(port(leader), &["RPUSH", "list", "a", "b", "c"]), ":3");

    // A fresh node, not initialised: it knows nothing until it is added.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = RuntimeConfig::new(dir.path());
    config.bind = "127.0.0.1".into();
    config.port = 0;
    let mut options = RaftOptions::new(4, "127.0.0.1:0");
    options.timing = timing();
    // A node that is to join knows the cluster's raft secret.
    options.secret = cluster.secret().cloned();
    let mut fresh = Server::start_raft(config, options).expect("start node 4");
    let fresh_port = fresh.addr().port();
    let fresh_addr = fresh.raft().expect("raft").addr().to_string();

    // Sent to a follower: passed to the leader, answered once node 4 votes.
    assert_eq!(
        cmd(port(follower), &["RAFT.NODE", "ADD", "4", &fresh_addr]),
        "+OK"
    );
    let leader_server = cluster.server(leader).expect("leader runs");
    assert_eq!(voters(leader_server), vec![1, 2, 3, 4]);
    wait_until(
        "node 4 sees itself a voter",
        Duration::from_secs(10),
        || voters(&fresh) == vec![1, 2, 3, 4],
    );
    // It holds everything written before it joined, and takes writes.
    assert_eq!(cmd(fresh_port, &["GET", "before49"]), "49");
    assert_eq!(cmd(fresh_port, &["LLEN", "list"]), ":3");
    assert_eq!(cmd(fresh_port, &["LINDEX", "list", "2"]), "c");
    assert_eq!(cmd(fresh_port, &["SET", "from4", "x"]), "+OK");
    for i in 0..3 {
        assert_eq!(cmd(port(i), &["GET", "from4"]), "x");
    }
    let info = cmd(fresh_port, &["RAFT.INFO"]);
    assert!(info.contains("role:follower"), "{info}");

    // Removing it (again through a follower) leaves a three-voter cluster
    // that still commits.
    assert_eq!(cmd(port(follower), &["RAFT.NODE", "REMOVE", "4"]), "+OK");
    assert_eq!(voters(leader_server), vec![1, 2, 3]);
    fresh.stop();
    assert_eq!(cmd(port(follower), &["SET", "after", "y"]), "+OK");
    for i in 0..3 {
        assert_eq!(cmd(port(i), &["GET", "after"]), "y");
    }
    // Bad requests answer errors, not hangs.
    let reply = cmd(port(leader), &["RAFT.NODE", "ADD", "x", "nowhere"]);
    assert!(reply.starts_with("-ERR"), "{reply}");
}

#[test]
fn a_node_that_cannot_be_reached_is_not_added() {
    let (_dirs, cluster, leader) = start_cluster(3);
    let port = |i: usize| cluster.port(i).expect("port");
    let leader_server = cluster.server(leader).expect("leader runs");
    // A port nothing listens on: bound, then closed.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let reply = cmd(port(leader), &["RAFT.NODE", "ADD", "7", &nowhere]);
    assert!(
        reply.starts_with("-ERR node 7 at ") && reply.contains("did not catch up"),
        "{reply}"
    );
    // Neither a voter nor a learner: the quorum is still two of three.
    assert_eq!(voters(leader_server), vec![1, 2, 3]);
    let raft = leader_server.raft().expect("raft node");
    let members = raft.raft().metrics().borrow().membership_config.clone();
    assert!(
        members.membership().get_node(&7).is_none(),
        "node 7 is still known: {members:?}"
    );
    assert_eq!(cmd(port(leader), &["SET", "after", "z"]), "+OK");
}
