//! AppendEntries that outlive openraft's bound on them.
//!
//! openraft 0.9 gives each AppendEntries one heartbeat interval (50 ms) and
//! drops the call when it passes. A batch that takes longer to send and
//! store, or a link with `RAFT.FAULT DELAY` above the interval, would then
//! be cut off on every retry, before or while it is sent: replication
//! stops and the followers elect, as if the link were cut.
//!
//! So each AppendEntries is sent by a task of its own, with a bound that
//! fits its size ([`budget`]). A retry of the same entries (same vote, same
//! previous and last log id) does not send again: it waits for that task
//! and takes its answer. A request for other entries replaces the task.

use std::time::{Duration, Instant};

use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::{LogId, RaftLogId, Vote};
use tokio::task::JoinHandle;

use super::{CallError, Link, PeerClient, RpcReply};
use crate::raft::{NodeId, TypeConfig};

/// What makes two AppendEntries the same request for the follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AppendKey {
    vote: Vote<NodeId>,
    prev: Option<LogId<NodeId>>,
    last: Option<LogId<NodeId>>,
}

impl AppendKey {
    pub(super) fn of(rpc: &AppendEntriesRequest<TypeConfig>) -> AppendKey {
        AppendKey {
            vote: rpc.vote,
            prev: rpc.prev_log_id,
            last: rpc.entries.last().map(|e| *e.get_log_id()),
        }
    }
}

/// The AppendEntries on its way to a peer.
pub(super) struct InFlight {
    key: AppendKey,
    /// When it left: the peer received it later (a leader lease counts
    /// from here, never from a retry that joined it).
    sent: Instant,
    task: JoinHandle<Result<RpcReply, CallError>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Replaced by other entries, or the replication stream ended.
        self.task.abort();
    }
}

/// The longest one AppendEntries of `bytes` may take: a floor for a slow
/// link or a busy follower, plus its bytes at 10 MB/s.
fn budget(bound: Duration, bytes: usize) -> Duration {
    bound.max(Duration::from_secs(1)) + Duration::from_millis((bytes / 10_000) as u64)
}

impl PeerClient {
    /// Send `frame` (the AppendEntries `key` names), or wait for the same
    /// one already on its way; `bound` is openraft's.
    pub(super) async fn send_append(
        &mut self,
        key: AppendKey,
        frame: Vec<u8>,
        bound: Duration,
    ) -> Result<RpcReply, CallError> {
        if self.append.as_ref().is_some_and(|f| f.key != key) {
            self.append = None;
        }
        if self.append.is_none() {
            let mut courier =
                PeerClient::new(self.outbound.clone(), self.target, self.addr.clone());
            // The courier carries this client's connection; dropped, it
            // leaves it in the pool for the next one.
            courier.link = std::mem::replace(&mut self.link, Link::Idle);
            let budget = budget(bound, frame.len());
            // Before the task can send it.
            let sent = Instant::now();
            let task = tokio::spawn(async move { courier.call_encoded(frame, budget, true).await });
            self.append = Some(InFlight { key, sent, task });
        }
        let Some(in_flight) = self.append.as_mut() else {
            return Err(CallError::Closed(self.target));
        };
        // Awaited through `&mut`: if openraft drops this call, the task
        // goes on and a retry finds it.
        let joined = (&mut in_flight.task).await;
        let (vote, sent) = (in_flight.key.vote, in_flight.sent);
        self.append = None;
        let reply = joined.unwrap_or(Err(CallError::Closed(self.target)));
        if let Ok(RpcReply::AppendEntries(Ok(answer))) = &reply {
            // Anything but a higher vote: the peer took this leader's.
            if !matches!(answer, AppendEntriesResponse::HigherVote(_)) {
                self.outbound.acks.acknowledged(self.target, vote, sent);
            }
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_grows_with_the_payload_and_has_a_floor() {
        let heartbeat = Duration::from_millis(50);
        assert_eq!(budget(heartbeat, 0), Duration::from_secs(1));
        assert_eq!(
            budget(heartbeat, 10_000_000),
            Duration::from_secs(1) + Duration::from_secs(1)
        );
        assert_eq!(budget(Duration::from_secs(3), 0), Duration::from_secs(3));
    }
}
