//! Checks on `InstallSnapshot` chunks before openraft writes them.
//!
//! openraft writes a chunk into the snapshot being received at the offset
//! the chunk names: an offset past what arrived so far would grow the
//! in-memory snapshot to that size (one chunk with a huge offset aborted
//! the process). The guard mirrors how much of which snapshot this node
//! holds and answers an error (openraft's `SnapshotMismatch`, naming the
//! offset it expects) for a chunk that would leave a gap, that is larger
//! than [`CHUNK_MAX`], or whose end overflows. Chunks are handled one at a
//! time (openraft serializes them too), so the mirror stays exact.

use openraft::error::{InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{InstallSnapshotRequest, InstallSnapshotResponse};
use openraft::SnapshotSegmentId;

use crate::raft::{NodeId, TypeConfig};

/// Largest chunk accepted: openraft sends `snapshot_max_chunk_size`
/// (3 MiB by default) at a time.
pub const CHUNK_MAX: usize = 64 * 1024 * 1024;

type Reply = Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>;

/// The snapshot being received: its id and how many bytes of it openraft
/// holds.
#[derive(Debug)]
struct Receiving {
    id: String,
    received: u64,
}

#[derive(Debug, Default)]
pub struct SnapshotGuard {
    receiving: tokio::sync::Mutex<Option<Receiving>>,
}

impl SnapshotGuard {
    /// Hand `req` to `install` (openraft) if it is sound, else answer the
    /// mismatch; then record what openraft holds.
    pub async fn install<F, Fut>(
        &self,
        req: InstallSnapshotRequest<TypeConfig>,
        install: F,
    ) -> Reply
    where
        F: FnOnce(InstallSnapshotRequest<TypeConfig>) -> Fut,
        Fut: std::future::Future<Output = Reply>,
    {
        let mut receiving = self.receiving.lock().await;
        let id = req.meta.snapshot_id.clone();
        let offset = req.offset;
        let done = req.done;
        let same = receiving.as_ref().filter(|r| r.id == id);
        let expected = same.map_or(0, |r| r.received);
        let end = u64::try_from(req.data.len())
            .ok()
            .filter(|_| req.data.len() <= CHUNK_MAX)
            .and_then(|len| offset.checked_add(len));
        let Some(end) = end.filter(|_| offset <= expected) else {
            tracing::warn!(
                snapshot = %id,
                offset,
                len = req.data.len(),
                expected,
                "snapshot chunk refused: it would leave a gap or is too large"
            );
            return Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(
                SnapshotMismatch {
                    expect: SnapshotSegmentId {
                        id: id.clone(),
                        offset: expected,
                    },
                    got: SnapshotSegmentId { id, offset },
                },
            )));
        };
        let reply = install(req).await;
        if reply.is_ok() {
            *receiving = match (done, receiving.take()) {
                (true, _) => None,
                (false, Some(r)) if r.id == id => Some(Receiving {
                    received: r.received.max(end),
                    ..r
                }),
                (false, _) => Some(Receiving { id, received: end }),
            };
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{SnapshotMeta, Vote};

    fn chunk(id: &str, offset: u64, len: usize, done: bool) -> InstallSnapshotRequest<TypeConfig> {
        InstallSnapshotRequest {
            vote: Vote::new_committed(1, 1),
            meta: SnapshotMeta {
                last_log_id: None,
                last_membership: Default::default(),
                snapshot_id: id.into(),
            },
            offset,
            data: vec![0; len],
            done,
        }
    }

    async fn ok(_: InstallSnapshotRequest<TypeConfig>) -> Reply {
        Ok(InstallSnapshotResponse {
            vote: Vote::new_committed(1, 1),
        })
    }

    #[tokio::test]
    async fn chunks_follow_what_arrived() {
        let guard = SnapshotGuard::default();
        assert!(guard.install(chunk("a", 0, 10, false), ok).await.is_ok());
        // A resent chunk, the next one.
        assert!(guard.install(chunk("a", 0, 10, false), ok).await.is_ok());
        assert!(guard.install(chunk("a", 10, 10, false), ok).await.is_ok());
        // Gaps, overflow, another snapshot's middle: refused.
        for bad in [
            chunk("a", 21, 1, false),
            chunk("a", 1 << 40, 1, false),
            chunk("b", 5, 1, false),
        ] {
            assert!(guard.install(bad, ok).await.is_err());
        }
        assert!(guard.install(chunk("a", 20, 5, true), ok).await.is_ok());
        // Done: a new snapshot starts at 0 only.
        assert!(guard.install(chunk("a", 25, 1, false), ok).await.is_err());
        assert!(guard.install(chunk("b", 0, 1, false), ok).await.is_ok());
        // A refused chunk never reaches openraft.
        let reached = std::sync::atomic::AtomicBool::new(false);
        let _ = guard
            .install(chunk("b", 2, 1, false), |_| async {
                reached.store(true, std::sync::atomic::Ordering::Relaxed);
                ok(chunk("b", 0, 0, false)).await
            })
            .await;
        assert!(!reached.load(std::sync::atomic::Ordering::Relaxed));
        let mut overflow = chunk("b", u64::MAX, 0, false);
        overflow.data = vec![1];
        assert!(guard.install(overflow, ok).await.is_err());
    }
}
