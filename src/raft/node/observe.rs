//! Figures about this node's Raft for monitoring (the `metrics-port`
//! endpoint): term, role, indexes, how often the leader changed, and on a
//! leader how far each peer's log lags behind its own.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use openraft::ServerState;
use tokio::time::Instant;

use super::{NodeId, RaftNode};

/// One look at the node's Raft state.
#[derive(Debug, Clone, Default)]
pub struct RaftFigures {
    pub node_id: NodeId,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: &'static str,
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub last_log_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    /// Times a new leader was seen since the node started.
    pub leader_changes: u64,
    /// On a leader: each peer's entries not yet replicated to it.
    pub replication_lag: Vec<(NodeId, u64)>,
}

/// Count each change of known leader until the node stops, and note when
/// this node became the leader.
pub(super) async fn count_leader_changes(node: Arc<RaftNode>) {
    let mut metrics = node.raft.metrics();
    let mut known = metrics.borrow().current_leader;
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        let leader = metrics.borrow().current_leader;
        if leader != known {
            known = leader;
            if leader.is_some() {
                node.leader_changes.fetch_add(1, Ordering::Relaxed);
            }
            *node.leader_since.lock() = (leader == Some(node.id)).then(Instant::now);
        }
    }
}

impl RaftNode {
    /// The node's Raft state now.
    pub fn figures(&self) -> RaftFigures {
        let m = self.raft.metrics().borrow().clone();
        let last_log_index = m.last_log_index;
        let replication_lag = m
            .replication
            .iter()
            .flatten()
            .filter(|(id, _)| **id != self.id)
            .map(|(id, matched)| {
                let matched = matched.map_or(0, |l| l.index);
                (*id, last_log_index.unwrap_or(0).saturating_sub(matched))
            })
            .collect();
        RaftFigures {
            node_id: self.id,
            role: match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            },
            term: m.current_term,
            leader: m.current_leader,
            commit_index: self.committed_index(),
            applied_index: m.last_applied.map(|l| l.index),
            last_log_index,
            snapshot_index: m.snapshot.map(|l| l.index),
            leader_changes: self.leader_changes.load(Ordering::Relaxed),
            replication_lag,
        }
    }
}
