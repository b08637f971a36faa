//! The proposer: client proposals queue here and leave in batches, each
//! batch one Raft entry, a few entries in flight at a time (see
//! [`RaftTiming::max_inflight`](super::RaftTiming::max_inflight)).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;

use super::{ClientError, RaftNode};
use crate::raft::network::framing::BATCH_SOFT_MAX;
use crate::raft::{KiwiRequest, Op, WireReply};

/// Per proposal, its replies (see [`KiwiResponse`](crate::raft::KiwiResponse)).
pub(super) type OpReplies = Vec<Vec<WireReply>>;
pub(super) type ReplyTx = oneshot::Sender<Result<OpReplies, ClientError>>;

/// Proposals waiting to be put in an entry.
pub(super) struct Pending {
    pub(super) ops: Vec<Op>,
    /// Came from a follower: propose only as leader, never forward again.
    pub(super) leader_only: bool,
    /// When the client's bound runs out: counted from the moment it asked,
    /// so time spent queued behind other batches counts too.
    pub(super) deadline: Instant,
    pub(super) reply: ReplyTx,
}

/// The proposer: pack pending requests into entries (up to `max_batch`
/// commands, and [`BATCH_SOFT_MAX`] bytes unless one request is larger)
/// and propose them, `max_inflight` at a time. While
/// batches are in flight, newcomers queue up and form the next, larger one.
pub(super) async fn proposer(node: Arc<RaftNode>, mut rx: mpsc::Receiver<Pending>) {
    let inflight = Arc::new(Semaphore::new(node.timing.max_inflight.max(1)));
    let max_batch = node.timing.max_batch.max(1);
    let mut carry: Option<Pending> = None;
    loop {
        let first = match carry.take() {
            Some(p) => p,
            None => tokio::select! {
                _ = node.shutdown.cancelled() => break,
                p = rx.recv() => match p {
                    Some(p) => p,
                    None => break,
                },
            },
        };
        let permit = tokio::select! {
            _ = node.shutdown.cancelled() => break,
            permit = inflight.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let leader_only = first.leader_only;
        let mut count = pending_commands(&first);
        let mut bytes = pending_bytes(&first);
        let mut batch = vec![first];
        while count < max_batch {
            match rx.try_recv() {
                Ok(p)
                    if p.leader_only == leader_only
                        && bytes + pending_bytes(&p) <= BATCH_SOFT_MAX =>
                {
                    count += pending_commands(&p);
                    bytes += pending_bytes(&p);
                    batch.push(p);
                }
                Ok(p) => {
                    carry = Some(p);
                    break;
                }
                Err(_) => break,
            }
        }
        let node = node.clone();
        tokio::spawn(async move {
            submit(&node, leader_only, batch).await;
            drop(permit);
        });
    }
    // Whoever still waits learns the node stopped (their senders drop).
    rx.close();
}

fn pending_commands(p: &Pending) -> usize {
    p.ops.iter().map(Op::command_count).sum()
}

fn pending_bytes(p: &Pending) -> usize {
    p.ops.iter().map(Op::size_hint).sum()
}

async fn submit(node: &RaftNode, leader_only: bool, batch: Vec<Pending>) {
    // A request whose bound ran out while it queued was never proposed.
    let now = Instant::now();
    let (expired, mut batch): (Vec<_>, Vec<_>) = batch.into_iter().partition(|p| p.deadline <= now);
    for p in expired {
        let _ = p.reply.send(Err(ClientError::NoQuorum));
    }
    let Some(deadline) = batch.iter().map(|p| p.deadline).min() else {
        return;
    };
    let mut request = KiwiRequest {
        now_ms: 0,
        ops: Vec::new(),
    };
    let mut counts = Vec::with_capacity(batch.len());
    for p in &mut batch {
        counts.push(p.ops.len());
        request.ops.append(&mut p.ops);
    }
    match node.write(request, leader_only, deadline).await {
        Ok(response) => {
            let mut replies = response.replies.into_iter();
            for (p, n) in batch.into_iter().zip(counts) {
                let mut mine: OpReplies = replies.by_ref().take(n).collect();
                while mine.len() < n {
                    mine.push(vec![WireReply::Error("ERR missing reply".into())]);
                }
                let _ = p.reply.send(Ok(mine));
            }
        }
        Err(e) => {
            for p in batch {
                let _ = p.reply.send(Err(e.clone()));
            }
        }
    }
}
