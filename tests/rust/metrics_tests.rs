//! The metrics endpoint's Raft figures on a three-node cluster: every node
//! reports its role, term and indexes; the leader reports each peer's lag,
//! which grows while a peer is cut off and closes once it is back; a new
//! leader counts as a leader change.

use std::time::Duration;

use crate::common::{resp_cmd, start_cluster, wait_until};

/// The value of the sample `line_start` (metric name and labels) in a
/// node's exposition.
fn sample(cluster: &kiwi::raft::LocalCluster, i: usize, line_start: &str) -> Option<f64> {
    let server = cluster.server(i)?;
    let engine = server.engine()?;
    let text = kiwi::server::metrics::render(engine, server.raft().map(|r| r.as_ref()));
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn raft_figures_follow_the_cluster() {
    let (_dirs, cluster, leader) = start_cluster(3);
    let port = cluster.port(leader).expect("port");
    for i in 0..3 {
        wait_until("a known leader", Duration::from_secs(10), || {
            sample(&cluster, i, "kiwi_raft_leader_id").is_some()
        });
        let role = if i == leader { "leader" } else { "follower" };
        assert_eq!(
            sample(&cluster, i, &format!("kiwi_raft_role{{role=\"{role}\"}}")),
            Some(1.0),
            "node {i}"
        );
        assert!(sample(&cluster, i, "kiwi_raft_term").is_some_and(|t| t >= 1.0));
        assert!(sample(&cluster, i, "kiwi_raft_leader_changes").is_some_and(|n| n >= 1.0));
        // INFO's figures are there too.
        assert!(sample(&cluster, i, "kiwi_uptime_in_seconds").is_some());
    }
    let peer = (leader + 1) % 3;
    let peer_id = cluster.node(peer).expect("node").id();
    let lag = |c: &kiwi::raft::LocalCluster| {
        sample(
            c,
            leader,
            &format!("kiwi_raft_replication_lag_entries{{peer=\"{peer_id}\"}}"),
        )
    };
    cluster.isolate(peer).expect("isolate");
    for n in 0..20 {
        assert_eq!(resp_cmd(port, &["SET", &format!("k{n}"), "v"]), "+OK");
    }
    assert!(
        lag(&cluster).is_some_and(|l| l >= 20.0),
        "lag {:?}",
        lag(&cluster)
    );
    cluster.heal();
    wait_until("the peer to catch up", Duration::from_secs(10), || {
        lag(&cluster) == Some(0.0)
    });
    let applied = |i: usize| sample(&cluster, i, "kiwi_raft_applied_index");
    wait_until("applied indexes to agree", Duration::from_secs(10), || {
        applied(peer).is_some() && applied(peer) == applied(leader)
    });
}
