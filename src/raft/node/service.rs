//! What a node answers on its raft port, once the peer authenticated:
//! openraft's RPCs (snapshot chunks through the [`SnapshotGuard`]), writes
//! and read-index requests forwarded by followers, membership changes.
//!
//! A forwarded write carries the commands its client sent: the follower
//! proposes them only after its client passed `AUTH`, and only an
//! authenticated peer gets this far, so the raft port is no way around
//! `requirepass`.
//!
//! [`SnapshotGuard`]: crate::raft::network::snapshot_guard::SnapshotGuard

use super::reads::ReadIndexError;
use super::{ClientError, RaftNode};
use crate::raft::network::{ForwardError, Rpc, RpcReply, RpcService};
use crate::raft::{KiwiResponse, NodeId};

impl RpcService for RaftNode {
    async fn handle(&self, _from: NodeId, rpc: Rpc) -> RpcReply {
        match rpc {
            Rpc::AppendEntries(req) => RpcReply::AppendEntries(self.raft.append_entries(req).await),
            Rpc::Vote(req) => {
                // Restarted: no vote until a lease it may have given is over.
                tokio::time::sleep(self.hold.remaining()).await;
                RpcReply::Vote(self.raft.vote(req).await)
            }
            Rpc::InstallSnapshot(req) => RpcReply::InstallSnapshot(
                self.snapshots
                    .install(req, |req| self.raft.install_snapshot(req))
                    .await,
            ),
            Rpc::Campaign => RpcReply::Campaign(if self.is_leader() {
                Err(format!("node {} is the leader", self.id))
            } else {
                self.raft.trigger().elect().await.map_err(|e| e.to_string())
            }),
            Rpc::Forward(request) => {
                // A draining leader proposes nothing: the follower retries
                // with the next leader.
                if !self.is_leader() || self.is_draining() {
                    return RpcReply::Forward(Err(ForwardError::NotLeader {
                        leader: self.leader(),
                    }));
                }
                let result = self
                    .enqueue(request.ops, true)
                    .await
                    .map(|replies| KiwiResponse { replies })
                    .map_err(|e| match e {
                        ClientError::NoQuorum => ForwardError::NotLeader {
                            leader: self.leader(),
                        },
                        ClientError::Refused(e) => ForwardError::Refused(e),
                        e => ForwardError::Unknown(e.to_string()),
                    });
                RpcReply::Forward(result)
            }
            Rpc::Membership(change) => RpcReply::Membership(match self.is_leader() {
                true => self.apply_membership(change).await,
                false => Err(format!(
                    "node {} is not the leader (leader: {:?})",
                    self.id,
                    self.leader()
                )),
            }),
            Rpc::ReadIndex => {
                if !self.is_leader() {
                    return RpcReply::ReadIndex(Err(ForwardError::NotLeader {
                        leader: self.leader(),
                    }));
                }
                RpcReply::ReadIndex(self.read_index(self.timing.client_timeout).await.map_err(
                    |e| match e {
                        ReadIndexError::NotLeader(leader) => ForwardError::NotLeader { leader },
                        ReadIndexError::Failed(e) => ForwardError::Unknown(e),
                    },
                ))
            }
        }
    }
}
