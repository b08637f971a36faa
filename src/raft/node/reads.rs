//! Linearizable reads on the leader, batched. Each read needs the leader
//! to confirm with a quorum that it still leads (openraft's
//! `ensure_linearizable`: a round of heartbeats, then the state machine
//! caught up with the read index). One round serves every read that arrived
//! before it started; reads arriving during a round wait for the next one,
//! which starts as soon as this one ends. So concurrent reads cost a round
//! each at most two round trips apart, not a round (and its connections to
//! every peer) apiece.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, RaftError};
use openraft::Raft;
use tokio::sync::oneshot;

use super::{NodeId, RaftNode};
use crate::raft::TypeConfig;

/// What a round tells its reads: the index a reader must have applied
/// (`None`: nothing is), or why there is none.
pub(super) type ReadIndex = Result<Option<u64>, ReadIndexError>;

#[derive(Debug, Clone)]
pub(super) enum ReadIndexError {
    /// This node does not lead; `leader` may.
    NotLeader(Option<NodeId>),
    /// No quorum confirmed in time, or openraft failed.
    Failed(String),
}

/// The reads waiting for the next round, and whether a round runs.
#[derive(Default)]
pub(super) struct ReadBatcher {
    state: parking_lot::Mutex<Batch>,
}

#[derive(Default)]
struct Batch {
    running: bool,
    waiting: Vec<oneshot::Sender<ReadIndex>>,
}

impl ReadBatcher {
    /// Run rounds until no read waits.
    async fn run(&self, raft: Raft<TypeConfig>, timeout: Duration) {
        loop {
            let reads = {
                let mut batch = self.state.lock();
                if batch.waiting.is_empty() {
                    batch.running = false;
                    return;
                }
                std::mem::take(&mut batch.waiting)
            };
            let result = match tokio::time::timeout(timeout, raft.ensure_linearizable()).await {
                Ok(Ok(log_id)) => Ok(log_id.map(|l| l.index)),
                Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                    Err(ReadIndexError::NotLeader(f.leader_id))
                }
                Ok(Err(e)) => Err(ReadIndexError::Failed(e.to_string())),
                Err(_) => Err(ReadIndexError::Failed("no quorum".into())),
            };
            for read in reads {
                let _ = read.send(result.clone());
            }
        }
    }
}

impl RaftNode {
    /// As leader, the read index of a read arriving now, confirmed by a
    /// round that started after it arrived (shared with other reads).
    pub(super) async fn read_index(&self, timeout: Duration) -> ReadIndex {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut batch = self.reads.state.lock();
            batch.waiting.push(tx);
            !std::mem::replace(&mut batch.running, true)
        };
        if start {
            let (reads, raft) = (Arc::clone(&self.reads), self.raft.clone());
            tokio::spawn(async move { reads.run(raft, timeout).await });
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            _ => Err(ReadIndexError::Failed("no quorum".into())),
        }
    }
}
