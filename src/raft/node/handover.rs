//! Handing leadership over before a leader stops (SIGTERM, SHUTDOWN), so a
//! rolling restart costs a round trip of unavailability, not an election
//! timeout and a leader lease.
//!
//! openraft 0.9 has no leadership transfer, so Kiwi does what Raft's
//! TimeoutNow does. The stopping leader proposes nothing more (writes that
//! arrive wait for the next leader and go there), waits until a voter holds
//! its whole log, and asks that voter to campaign at once. The other
//! followers refuse the vote while their lease on the old leader lasts,
//! but the old leader grants it: openraft sets a leader's lease on its own
//! vote when it wins and does not renew it, so once it has led for an
//! election timeout it votes for a candidate whose log is as long as its
//! own. Its vote and the candidate's own make a majority of three; with
//! five voters one more must agree, and the handover falls back to an
//! ordinary election when it does not.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::{NodeId, RaftNode};
use crate::raft::network::{Rpc, RpcReply};

impl RaftNode {
    /// Whether this node is handing leadership over before it stops.
    pub(super) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// If this node leads, hand leadership to an up-to-date voter within
    /// `within`; the new leader when that worked. From the call on, this
    /// node proposes nothing: call it only when the node is about to stop.
    pub async fn hand_over(&self, within: Duration) -> Option<NodeId> {
        if !self.is_leader() || !self.has_other_voters() {
            return None;
        }
        self.draining.store(true, Ordering::Release);
        let deadline = Instant::now() + within;
        // Once this node has led for a lease (an election timeout), it
        // grants a vote; before that it would refuse it.
        let lease = Duration::from_millis(self.timing.election_max_ms + 50);
        while Instant::now() < deadline {
            if !self.is_leader() {
                return self.leader().filter(|&l| l != self.id);
            }
            let led_a_lease = self
                .leader_since
                .lock()
                .is_some_and(|since| since.elapsed() >= lease);
            if let (true, Some(target)) = (led_a_lease, self.up_to_date_voter()) {
                let remaining = deadline.saturating_duration_since(Instant::now());
                let asked = self.call_peer(target, Rpc::Campaign, remaining).await;
                if matches!(asked, Ok(RpcReply::Campaign(Ok(())))) {
                    let wait = Duration::from_millis(self.timing.election_max_ms);
                    if let Some(leader) = self
                        .wait_for_new_leader(deadline.min(Instant::now() + wait))
                        .await
                    {
                        tracing::info!(node = self.id, to = leader, "leadership handed over");
                        return Some(leader);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!(
            node = self.id,
            "leadership not handed over in time; stopping anyway"
        );
        None
    }

    /// Whether any voter but this node exists (a one-node cluster has no
    /// one to hand over to).
    fn has_other_voters(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let has_others = m
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id != self.id);
        has_others
    }

    /// A voter other than this node that holds every entry of this node's
    /// log, once every entry is applied here (no write is in flight).
    fn up_to_date_voter(&self) -> Option<NodeId> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let last = m.last_log_index?;
        if m.last_applied.map(|l| l.index) != Some(last) {
            return None;
        }
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        m.replication
            .as_ref()?
            .iter()
            .filter(|(id, _)| **id != self.id && voters.contains(id))
            .find(|(_, matched)| matched.map(|l| l.index) == Some(last))
            .map(|(id, _)| *id)
    }

    /// Wait until `deadline` for a leader other than this node.
    async fn wait_for_new_leader(&self, deadline: Instant) -> Option<NodeId> {
        while Instant::now() < deadline {
            if let Some(leader) = self.leader().filter(|&l| l != self.id) {
                return Some(leader);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }
}
