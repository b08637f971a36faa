//! Membership changes at run time (RAFT.NODE ADD / REMOVE): passed to the
//! leader from a follower, carried out by the leader as learner, catch-up,
//! then voter (or removal).

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers};
use tokio::time::Instant;

use super::RaftNode;
use crate::raft::network::{MembershipChange, Rpc, RpcReply};
use crate::raft::NodeId;

/// Longest a follower waits for the leader to carry out a membership
/// change it passed on (adding a node waits for it to catch up).
const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a node being added may take to receive the log before the
/// addition is called off.
const LEARNER_CATCH_UP: Duration = Duration::from_secs(10);

impl RaftNode {
    /// Add `id` as a learner, wait until it caught up, then make it a voter.
    /// On a follower the change is passed to the leader.
    pub async fn add_node(&self, id: NodeId, addr: &str) -> Result<(), String> {
        self.change_membership(MembershipChange::Add(id, addr.to_string()))
            .await
    }

    /// Remove `id` from the cluster (voter and node). On a follower the
    /// change is passed to the leader.
    pub async fn remove_node(&self, id: NodeId) -> Result<(), String> {
        self.change_membership(MembershipChange::Remove(id)).await
    }

    async fn change_membership(&self, change: MembershipChange) -> Result<(), String> {
        let deadline = Instant::now() + self.timing.client_timeout;
        let leader = self
            .wait_for_leader(deadline)
            .await
            .map_err(|e| e.to_string())?;
        if leader == self.id {
            return self.apply_membership(change).await;
        }
        match self
            .call_peer(leader, Rpc::Membership(change), MEMBERSHIP_TIMEOUT)
            .await
        {
            Ok(RpcReply::Membership(result)) => result,
            Ok(other) => Err(format!("unexpected answer from the leader: {other:?}")),
            Err(e) => Err(format!("the leader (node {leader}) did not answer: {e}")),
        }
    }

    /// Carry out a membership change as the leader.
    pub(super) async fn apply_membership(&self, change: MembershipChange) -> Result<(), String> {
        // A leader fresh from its election may not have committed the
        // membership it inherited yet, and openraft refuses any change
        // until it has ("already undergoing a configuration change"):
        // wait for that first (bounded; a real conflict is still reported).
        let _ = self
            .raft
            .wait(Some(self.timing.client_timeout))
            .metrics(
                |m| {
                    m.membership_config.log_id().as_ref().is_none_or(|at| {
                        m.last_applied
                            .as_ref()
                            .is_some_and(|applied| applied.index >= at.index)
                    })
                },
                "the current membership is committed",
            )
            .await;
        match change {
            MembershipChange::Add(id, addr) => {
                let added = self
                    .raft
                    .add_learner(id, BasicNode::new(addr.clone()), true)
                    .await
                    .map_err(|e| e.to_string())?;
                // openraft's blocking add returns at once for a node it never
                // reached; a voter nobody can reach only brings the cluster
                // closer to losing its quorum.
                let target = added.log_id.index;
                let caught_up = self
                    .raft
                    .wait(Some(LEARNER_CATCH_UP))
                    .metrics(
                        |m| {
                            m.replication
                                .as_ref()
                                .and_then(|r| r.get(&id).copied().flatten())
                                .is_some_and(|matched| matched.index >= target)
                        },
                        "the new node caught up",
                    )
                    .await;
                if caught_up.is_err() {
                    let gone: BTreeSet<NodeId> = [id].into_iter().collect();
                    if let Err(e) = self
                        .raft
                        .change_membership(ChangeMembers::RemoveNodes(gone), false)
                        .await
                    {
                        tracing::warn!(node = self.id, learner = id, error = %e, "cannot take back an unreachable learner");
                    }
                    return Err(format!(
                        "node {id} at {addr} did not catch up within {}s (is it running, \
                         reachable, with this cluster's raft-secret?): not added",
                        LEARNER_CATCH_UP.as_secs()
                    ));
                }
                let voters: BTreeSet<NodeId> = [id].into_iter().collect();
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds(voters), false)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            MembershipChange::Remove(id) => {
                let gone: BTreeSet<NodeId> = [id].into_iter().collect();
                self.raft
                    .change_membership(ChangeMembers::RemoveVoters(gone), false)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}
