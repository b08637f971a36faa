//! Linearizable reads, batched. A read needs the leader to know it still
//! leads: from its lease when that holds (`raft/lease.rs`: no messages),
//! else by confirming with a quorum (openraft's `ensure_linearizable`: a
//! round of heartbeats); then the state machine catches up with the read
//! index. On a follower, it asks the leader for that index over the raft
//! port. One such
//! round serves every read that arrived before it started; reads arriving
//! during a round wait for the next one, which starts as soon as this one
//! ends. So concurrent reads share rounds at most two round trips apart
//! instead of each paying for its own (and, on the leader, for openraft's
//! connections to every peer). A round started after a read arrived is what
//! makes the read linearizable, so no read uses a round already under way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, RaftError};
use tokio::sync::oneshot;

use super::{NodeId, RaftNode};
use crate::raft::lease;
use crate::raft::network::{ForwardError, Rpc, RpcReply};

/// What a round tells its reads: the index a reader must have applied
/// (`None`: nothing is), or why there is none.
pub(super) type ReadIndex = Result<Option<u64>, ReadIndexError>;

#[derive(Debug, Clone)]
pub(super) enum ReadIndexError {
    /// Not led from here (or the leader could not be reached before the
    /// request was sent): try again with the leader, `leader` if known.
    NotLeader(Option<NodeId>),
    /// No quorum confirmed in time, or openraft failed.
    Failed(String),
}

/// Which round a batcher runs.
#[derive(Debug, Clone, Copy)]
enum Round {
    /// This node leads: check with a quorum.
    Leader,
    /// Ask the leader for its read index.
    Remote,
}

/// The reads waiting for the next round, and whether a round runs.
#[derive(Default)]
pub(super) struct ReadBatcher {
    state: parking_lot::Mutex<Batch>,
    /// Rounds that went to the network (heartbeats, or the leader).
    rounds: AtomicU64,
    /// Rounds the leader's lease answered.
    leased: AtomicU64,
}

impl ReadBatcher {
    pub(super) fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    pub(super) fn leased(&self) -> u64 {
        self.leased.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct Batch {
    running: bool,
    waiting: Vec<oneshot::Sender<ReadIndex>>,
}

impl RaftNode {
    /// As leader, the read index of a read arriving now.
    pub(super) async fn read_index(&self, timeout: Duration) -> ReadIndex {
        self.batched(Round::Leader, timeout).await
    }

    /// As follower, the leader's read index of a read arriving now.
    pub(super) async fn remote_read_index(&self, timeout: Duration) -> ReadIndex {
        self.batched(Round::Remote, timeout).await
    }

    fn batcher(&self, round: Round) -> &ReadBatcher {
        match round {
            Round::Leader => &self.reads,
            Round::Remote => &self.remote_reads,
        }
    }

    /// Join the next round of `round` (starting the rounds if none runs)
    /// and wait up to `timeout` for its answer.
    async fn batched(&self, round: Round, timeout: Duration) -> ReadIndex {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut batch = self.batcher(round).state.lock();
            batch.waiting.push(tx);
            !std::mem::replace(&mut batch.running, true)
        };
        if start {
            match self.me.upgrade() {
                Some(node) => {
                    tokio::spawn(async move { node.run_rounds(round).await });
                }
                // Shutting down: nothing will answer.
                None => self.batcher(round).state.lock().running = false,
            }
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            _ => Err(ReadIndexError::Failed("no quorum".into())),
        }
    }

    /// Run rounds until no read waits.
    async fn run_rounds(&self, round: Round) {
        let timeout = self.timing.client_timeout;
        loop {
            let reads = {
                let mut batch = self.batcher(round).state.lock();
                if batch.waiting.is_empty() {
                    batch.running = false;
                    return;
                }
                std::mem::take(&mut batch.waiting)
            };
            let result = match round {
                Round::Leader => self.check_leadership(timeout).await,
                Round::Remote => {
                    self.remote_reads.rounds.fetch_add(1, Ordering::Relaxed);
                    self.ask_leader(timeout).await
                }
            };
            for read in reads {
                let _ = read.send(result.clone());
            }
        }
    }

    async fn check_leadership(&self, timeout: Duration) -> ReadIndex {
        if let Some(index) = self.lease_read_index().await {
            self.reads.leased.fetch_add(1, Ordering::Relaxed);
            let caught_up = self
                .raft
                .wait(Some(timeout))
                .applied_index_at_least(Some(index), "lease read")
                .await;
            return match caught_up {
                Ok(_) => Ok(Some(index)),
                Err(e) => Err(ReadIndexError::Failed(e.to_string())),
            };
        }
        self.reads.rounds.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(timeout, self.raft.ensure_linearizable()).await {
            Ok(Ok(log_id)) => Ok(log_id.map(|l| l.index)),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                Err(ReadIndexError::NotLeader(f.leader_id))
            }
            Ok(Err(e)) => Err(ReadIndexError::Failed(e.to_string())),
            Err(_) => Err(ReadIndexError::Failed("no quorum".into())),
        }
    }

    /// The read index this leader's lease gives now, if it holds
    /// (lease.rs); never while handing leadership over.
    async fn lease_read_index(&self) -> Option<u64> {
        if self.is_draining() {
            return None;
        }
        let (me, outbound) = (self.id, self.outbound.clone());
        let lease = lease::leader_lease(self.timing.election_max_ms);
        self.raft
            .with_raft_state(move |state| lease::lease_read_index(state, me, &outbound.acks, lease))
            .await
            .ok()
            .flatten()
    }

    async fn ask_leader(&self, timeout: Duration) -> ReadIndex {
        let leader = match self.leader() {
            Some(leader) if leader != self.id => leader,
            other => return Err(ReadIndexError::NotLeader(other)),
        };
        match self.call_peer(leader, Rpc::ReadIndex, timeout).await {
            Ok(RpcReply::ReadIndex(Ok(index))) => Ok(index),
            Ok(RpcReply::ReadIndex(Err(ForwardError::NotLeader { leader }))) => {
                Err(ReadIndexError::NotLeader(leader))
            }
            Ok(_) => Err(ReadIndexError::Failed("unexpected answer".into())),
            Err(e) if e.not_sent() => Err(ReadIndexError::NotLeader(None)),
            Err(e) => Err(ReadIndexError::Failed(e.to_string())),
        }
    }
}
