//! Leader leases: linearizable reads on the leader without a round of
//! heartbeats.
//!
//! openraft's followers refuse every vote request for `election_timeout_max`
//! (openraft's leader lease) after they last heard from their leader, and do
//! not campaign before that either. So once a quorum acknowledged an
//! AppendEntries the leader sent at `t`, no other leader can be elected
//! before `t + lease`: until then this node is the only leader, and its
//! committed index is a read index, with no messages at all. [`AckClock`]
//! records, per peer, when the newest AppendEntries of the current vote that
//! the peer accepted was sent (heartbeats and replication alike); the check
//! ([`lease_read_index`]) runs inside openraft's core, in turn with vote
//! requests, so a leader that has just granted another node its vote (and
//! stepped down) never answers from its lease.
//!
//! Assumed of the clocks: the nodes' monotonic clocks advance at rates within
//! 10% of each other over a lease ([`LEASE_DRIFT_DIVISOR`]); nothing is
//! assumed of their offsets. Reads fall back to a round of heartbeats
//! (openraft's `ensure_linearizable`) whenever the lease does not hold: a
//! leader cut off from its quorum, one that has not committed an entry of its
//! own term yet, one handing leadership over.
//!
//! A node that restarts has forgotten when it last heard from the leader, so
//! openraft would let it vote, and campaign, at once, while the leader's lease
//! may still count its acknowledgement from before the restart. A node that
//! had voted before it started therefore holds back for one full lease
//! ([`RestartHold`]): it answers no vote request and does not campaign.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use openraft::{RaftState, ServerState, Vote};

use super::NodeId;

/// The leader trusts its lease for this fraction less than the followers
/// keep it (1/10): room for clocks that run at slightly different rates.
pub const LEASE_DRIFT_DIVISOR: u32 = 10;

/// When each peer last acknowledged an AppendEntries of a vote, by the time
/// the request was sent (never later than the peer received it).
#[derive(Debug, Default)]
pub struct AckClock {
    acks: parking_lot::Mutex<HashMap<NodeId, (Vote<NodeId>, Instant)>>,
}

impl AckClock {
    /// `peer` accepted (Success, PartialSuccess or Conflict: it took `vote`
    /// as its leader's) an AppendEntries sent at `sent`.
    pub fn acknowledged(&self, peer: NodeId, vote: Vote<NodeId>, sent: Instant) {
        if !vote.is_committed() {
            return;
        }
        let mut acks = self.acks.lock();
        match acks.get_mut(&peer) {
            Some((seen, at)) if *seen == vote => *at = (*at).max(sent),
            _ => {
                acks.insert(peer, (vote, sent));
            }
        }
    }

    /// The latest time a majority of every configuration in `configs`
    /// acknowledged `vote` (this node, `me`, counting as `now`); `None` when
    /// some configuration has no such majority.
    pub fn quorum_acked(
        &self,
        me: NodeId,
        vote: &Vote<NodeId>,
        configs: &[Vec<NodeId>],
        now: Instant,
    ) -> Option<Instant> {
        let acks = self.acks.lock();
        let mut acked = now;
        for config in configs {
            let mut times: Vec<Instant> = config
                .iter()
                .filter_map(|id| match *id == me {
                    true => Some(now),
                    false => acks.get(id).filter(|(v, _)| v == vote).map(|(_, t)| *t),
                })
                .collect();
            // Newest first: the majority-th newest is when a majority had.
            times.sort_unstable_by(|a, b| b.cmp(a));
            let majority = config.len() / 2 + 1;
            acked = acked.min(*times.get(majority - 1)?);
        }
        Some(acked)
    }
}

/// How long the leader trusts a quorum's acknowledgement, for openraft's
/// lease of `election_max_ms` on the followers.
pub fn leader_lease(election_max_ms: u64) -> Duration {
    let full = Duration::from_millis(election_max_ms);
    full - full / LEASE_DRIFT_DIVISOR
}

/// The read index a lease gives `me` now, from inside openraft's core:
/// `Some(committed index)` when this node leads under a committed vote, has
/// committed an entry of its own term (so its committed index covers every
/// earlier leader's), and a quorum acknowledged it within `lease`.
pub fn lease_read_index<I: openraft::Instant>(
    state: &RaftState<NodeId, openraft::BasicNode, I>,
    me: NodeId,
    acks: &AckClock,
    lease: Duration,
) -> Option<u64> {
    let vote = state.vote_ref();
    if state.server_state != ServerState::Leader
        || !vote.is_committed()
        || vote.leader_id().voted_for() != Some(me)
    {
        return None;
    }
    let committed = state.committed?;
    if committed.leader_id != *vote.leader_id() {
        return None;
    }
    let now = Instant::now();
    let configs = state.membership_state.effective().get_joint_config();
    let acked = acks.quorum_acked(me, vote, configs, now)?;
    (now < acked + lease).then_some(committed.index)
}

/// A restarted node's pause before it votes or campaigns (see the module
/// documentation).
#[derive(Debug, Clone, Copy)]
pub struct RestartHold {
    started: Instant,
    length: Duration,
}

impl RestartHold {
    /// For a node starting now: `voted_before` is whether its directory
    /// holds a vote (a brand-new node has acknowledged no leader).
    pub fn starting(voted_before: bool, election_max_ms: u64) -> RestartHold {
        let length = match voted_before {
            true => Duration::from_millis(election_max_ms),
            false => Duration::ZERO,
        };
        RestartHold {
            started: Instant::now(),
            length,
        }
    }

    /// How long the node held back after it started (zero: not at all).
    pub fn length(&self) -> Duration {
        self.length
    }

    /// Whether the node may campaign from the start.
    pub fn may_elect_now(&self) -> bool {
        self.length.is_zero()
    }

    /// How long until the hold ends (zero once it has).
    pub fn remaining(&self) -> Duration {
        self.length.saturating_sub(self.started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn a_quorum_acknowledges_when_its_majority_th_newest_member_did() {
        let clock = AckClock::default();
        let vote = Vote::new_committed(3, 1);
        let base = Instant::now();
        let now = at(base, 1_000);
        let three = vec![vec![1, 2, 3]];
        // Nobody else acknowledged yet: no quorum.
        assert_eq!(clock.quorum_acked(1, &vote, &three, now), None);
        clock.acknowledged(2, vote, at(base, 100));
        assert_eq!(
            clock.quorum_acked(1, &vote, &three, now),
            Some(at(base, 100))
        );
        clock.acknowledged(3, vote, at(base, 300));
        assert_eq!(
            clock.quorum_acked(1, &vote, &three, now),
            Some(at(base, 300))
        );
        // An older answer arriving late does not move the time back.
        clock.acknowledged(3, vote, at(base, 200));
        assert_eq!(
            clock.quorum_acked(1, &vote, &three, now),
            Some(at(base, 300))
        );
        // Five voters need two others.
        let five = vec![vec![1, 2, 3, 4, 5]];
        assert_eq!(
            clock.quorum_acked(1, &vote, &five, now),
            Some(at(base, 100))
        );
        // A joint configuration needs a majority of each.
        let joint = vec![vec![1, 2, 3], vec![1, 4, 5]];
        assert_eq!(clock.quorum_acked(1, &vote, &joint, now), None);
        clock.acknowledged(5, vote, at(base, 50));
        assert_eq!(
            clock.quorum_acked(1, &vote, &joint, now),
            Some(at(base, 50))
        );
    }

    #[test]
    fn only_acknowledgements_of_the_same_committed_vote_count() {
        let clock = AckClock::default();
        let base = Instant::now();
        let three = vec![vec![1, 2, 3]];
        let old = Vote::new_committed(3, 1);
        let new = Vote::new_committed(5, 1);
        clock.acknowledged(2, old, at(base, 100));
        assert_eq!(clock.quorum_acked(1, &new, &three, at(base, 200)), None);
        clock.acknowledged(2, new, at(base, 150));
        assert_eq!(
            clock.quorum_acked(1, &new, &three, at(base, 200)),
            Some(at(base, 150))
        );
        // A candidate's vote (not committed) is never a lease.
        let candidate = Vote::new(7, 1);
        clock.acknowledged(3, candidate, at(base, 180));
        assert_eq!(
            clock.quorum_acked(1, &candidate, &three, at(base, 200)),
            None
        );
    }

    #[test]
    fn the_leader_trusts_less_than_the_followers_keep() {
        assert_eq!(leader_lease(600), Duration::from_millis(540));
        let new = RestartHold::starting(false, 600);
        assert!(new.may_elect_now());
        assert_eq!(
            (new.length(), new.remaining()),
            (Duration::ZERO, Duration::ZERO)
        );
        let hold = RestartHold::starting(true, 600);
        assert!(!hold.may_elect_now());
        assert_eq!(hold.length(), Duration::from_millis(600));
        assert!(hold.remaining() > Duration::from_millis(500));
    }
}
