//! The Raft transport: TCP between nodes, one listener per node on its
//! raft address, length-prefixed postcard frames (tokio-util's
//! [`LengthDelimitedCodec`]), and a fault table consulted on every send and
//! receive.
//!
//! A connection carries one request at a time: the client writes a
//! [`Frame`] and reads one [`RpcReply`]. openraft keeps one
//! [`PeerClient`] per target for replication (and opens short-lived ones
//! for votes); each reuses its TCP connection and reconnects after any
//! failure. Every call is bounded by a timeout. A node is never routed to
//! itself.
//!
//! Faults are per node and one-sided: node A's table can block A → B
//! (checked when A sends), block B → A (checked when A receives: the
//! connection is closed without an answer), drop a fraction of A's
//! messages, or delay them. `BOTH` sets both directions on A's table, so
//! one node's table is enough to cut it off from a peer completely.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::identity::Credentials;
use super::{KiwiRequest, KiwiResponse, NodeId, TypeConfig};

/// Largest frame accepted (a whole snapshot chunk, a large batch).
const MAX_FRAME: usize = 512 * 1024 * 1024;

// ------------------------------------------------------------------ faults

/// Injected faults of one node's links. Cheap to consult; changed at run
/// time by `RAFT.FAULT` and the tests.
#[derive(Debug, Default)]
pub struct FaultTable {
    state: Mutex<FaultState>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct FaultState {
    /// Messages from this node to these peers are lost.
    pub blocked_out: HashSet<NodeId>,
    /// Messages from these peers to this node are lost.
    pub blocked_in: HashSet<NodeId>,
    /// Fraction (0..=1) of this node's outgoing messages that are lost.
    pub drop_rate: f64,
    /// Added to every outgoing message.
    pub delay: Duration,
}

/// Why a message did not leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("link to node {0} is blocked")]
    Blocked(NodeId),
    #[error("message to node {0} dropped")]
    Dropped(NodeId),
}

impl FaultTable {
    pub fn new() -> FaultTable {
        FaultTable::default()
    }

    /// Block messages to `to`; `both`: from `to` as well.
    pub fn block(&self, to: NodeId, both: bool) {
        let mut s = self.state.lock();
        s.blocked_out.insert(to);
        if both {
            s.blocked_in.insert(to);
        }
    }

    /// Block messages from `from` only.
    pub fn block_in(&self, from: NodeId) {
        self.state.lock().blocked_in.insert(from);
    }

    /// Restore both directions of the link with `peer`.
    pub fn unblock(&self, peer: NodeId) {
        let mut s = self.state.lock();
        s.blocked_out.remove(&peer);
        s.blocked_in.remove(&peer);
    }

    /// Lose this fraction of outgoing messages (clamped to 0..=1).
    pub fn set_drop_rate(&self, rate: f64) {
        self.state.lock().drop_rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
    }

    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().delay = delay;
    }

    /// No faults at all.
    pub fn clear(&self) {
        *self.state.lock() = FaultState::default();
    }

    pub fn snapshot(&self) -> FaultState {
        self.state.lock().clone()
    }

    /// Before sending to `to`: the delay to add, or the fault that loses it.
    pub fn check_send(&self, to: NodeId) -> Result<Duration, Fault> {
        let s = self.state.lock();
        if s.blocked_out.contains(&to) {
            return Err(Fault::Blocked(to));
        }
        if s.drop_rate > 0.0 && rand::random::<f64>() < s.drop_rate {
            return Err(Fault::Dropped(to));
        }
        Ok(s.delay)
    }

    /// Whether messages to `to` are blocked (replies included).
    pub fn blocks_out(&self, to: NodeId) -> bool {
        self.state.lock().blocked_out.contains(&to)
    }

    /// On receiving from `from`: whether the message gets through.
    pub fn check_receive(&self, from: NodeId) -> bool {
        !self.state.lock().blocked_in.contains(&from)
    }
}

// -------------------------------------------------------------------- wire

/// One request on the wire: who sends it, and what.
#[derive(Debug, Serialize, Deserialize)]
pub struct Frame {
    pub from: NodeId,
    /// The node the sender means to reach: a listener that is someone else
    /// (a reused port) refuses the request.
    pub to: NodeId,
    pub stamp: Stamp,
    pub rpc: Rpc,
}

/// Who sends a frame, and which directory it means to reach (see
/// [`super::identity`]): a node refuses frames of another cluster, from
/// a sender whose incarnation the cluster recorded otherwise, or addressed
/// to an incarnation other than its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub cluster: Option<u128>,
    pub incarnation: u128,
    /// The target's incarnation as the sender's replicated state records it.
    pub target_incarnation: Option<u128>,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Rpc {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A client write a follower passes to the leader.
    Forward(KiwiRequest),
    /// A follower asks the leader for a linearizable read index.
    ReadIndex,
    /// A membership change (`RAFT.NODE ADD/REMOVE`) sent to a follower,
    /// passed to the leader.
    Membership(MembershipChange),
}

/// A change of the cluster's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add a node as a learner, let it catch up, then make it a voter.
    Add(NodeId, String),
    /// Remove a voter.
    Remove(NodeId),
}

/// Why the leader (or who the sender took for it) did not serve a
/// forwarded request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardError {
    /// Not the leader: nothing was proposed; try `leader`.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// Proposed, but the outcome is unknown (no quorum in time).
    #[error("{0}")]
    Unknown(String),
    /// Refused before proposing (shutting down, bad request).
    #[error("{0}")]
    Refused(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcReply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Forward(Result<KiwiResponse, ForwardError>),
    /// The index the reader must have applied, `None` when nothing is.
    ReadIndex(Result<Option<u64>, ForwardError>),
    /// The outcome of a forwarded membership change.
    Membership(Result<(), String>),
    /// The listener is another node than the frame names.
    WrongNode(NodeId),
    /// The frame's identity was refused (see [`Stamp`]); nothing was done.
    Refused(String),
}

/// A frame as a listener reads it off the wire: any bytes give a frame or
/// an error, nesting bounded (see `nesting`; the fuzz targets drive this).
pub fn decode_frame(raw: &[u8]) -> Result<Frame, postcard::Error> {
    super::nesting::from_bytes(raw)
}

/// A peer's answer as the caller reads it (replies and openraft's errors
/// nest: the bound matters most here).
pub fn decode_reply(raw: &[u8]) -> Result<RpcReply, postcard::Error> {
    super::nesting::from_bytes(raw)
}

/// What a node's listener serves.
pub trait RpcService: Send + Sync + 'static {
    fn handle(&self, from: NodeId, rpc: Rpc) -> impl Future<Output = RpcReply> + Send;
}

// ------------------------------------------------------------------ client

/// Why a call failed, and whether the request may have arrived.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Fault(#[from] Fault),
    #[error("cannot connect to node {0} at {1}: {2}")]
    Connect(NodeId, String, std::io::Error),
    #[error("node {0} does not answer at {1}")]
    ConnectTimeout(NodeId, String),
    #[error("a node must not send to itself (node {0})")]
    SelfRoute(NodeId),
    #[error("bad raft address '{0}'")]
    BadAddr(String),
    /// Every connection to the node stayed busy for the whole timeout.
    #[error("every connection to node {0} at {1} is busy")]
    Busy(NodeId, String),
    /// Sent (maybe delivered), but no answer in time.
    #[error("node {target} did not answer in {timeout:?}")]
    Timeout { target: NodeId, timeout: Duration },
    /// Sent (maybe delivered), then the connection broke.
    #[error("connection to node {0} lost: {1}")]
    Io(NodeId, std::io::Error),
    #[error("connection to node {0} closed")]
    Closed(NodeId),
    #[error("cannot encode or decode a raft message: {0}")]
    Codec(#[from] postcard::Error),
    #[error("node {0} answered for node {1}")]
    WrongNode(NodeId, NodeId),
    #[error("node {0} refused the message: {1}")]
    Refused(NodeId, String),
    #[error("node {0} answered with an unexpected message")]
    Unexpected(NodeId),
}

impl CallError {
    /// The request certainly did not reach the target.
    pub fn not_sent(&self) -> bool {
        matches!(
            self,
            CallError::Fault(_)
                | CallError::Connect(..)
                | CallError::ConnectTimeout(..)
                | CallError::SelfRoute(_)
                | CallError::BadAddr(_)
                | CallError::Busy(..)
                | CallError::WrongNode(..)
                | CallError::Refused(..)
        )
    }
}

/// Timeouts of the transport.
#[derive(Debug, Clone, Copy)]
pub struct NetConfig {
    pub connect_timeout: Duration,
    /// Forward and read-index calls (openraft's own RPCs use its TTLs).
    pub rpc_timeout: Duration,
    /// How long openraft waits before retrying an unreachable peer.
    pub backoff: Duration,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            connect_timeout: Duration::from_millis(500),
            rpc_timeout: Duration::from_secs(2),
            backoff: Duration::from_millis(100),
        }
    }
}

type Conn = Framed<TcpStream, LengthDelimitedCodec>;

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// A connection to one peer, reused across calls and reopened after a
/// failure.
pub struct PeerClient {
    id: NodeId,
    target: NodeId,
    addr: String,
    faults: Arc<FaultTable>,
    credentials: Arc<Credentials>,
    config: NetConfig,
    conn: Option<Conn>,
}

impl PeerClient {
    pub fn new(
        id: NodeId,
        target: NodeId,
        addr: String,
        faults: Arc<FaultTable>,
        credentials: Arc<Credentials>,
        config: NetConfig,
    ) -> PeerClient {
        PeerClient {
            id,
            target,
            addr,
            faults,
            credentials,
            config,
            conn: None,
        }
    }

    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Send `rpc` and wait up to `timeout` for its answer.
    pub async fn call(&mut self, rpc: Rpc, timeout: Duration) -> Result<RpcReply, CallError> {
        if self.target == self.id {
            return Err(CallError::SelfRoute(self.id));
        }
        let delay = self.faults.check_send(self.target)?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
            // The link may have been cut meanwhile.
            self.faults.check_send(self.target)?;
        }
        let frame = postcard::to_allocvec(&Frame {
            from: self.id,
            to: self.target,
            stamp: self.credentials.stamp(self.target),
            rpc,
        })?;
        let result = self.exchange(frame, timeout).await;
        if result.is_err() {
            self.conn = None;
        }
        let reply = decode_reply(&result?)?;
        match reply {
            RpcReply::WrongNode(other) => {
                self.conn = None;
                Err(CallError::WrongNode(self.target, other))
            }
            RpcReply::Refused(why) => Err(CallError::Refused(self.target, why)),
            reply => Ok(reply),
        }
    }

    async fn exchange(&mut self, frame: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, CallError> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let target = self.target;
        let io = async {
            conn.send(bytes::Bytes::from(frame))
                .await
                .map_err(|e| CallError::Io(target, e))?;
            match conn.next().await {
                Some(Ok(reply)) => Ok(reply.to_vec()),
                Some(Err(e)) => Err(CallError::Io(target, e)),
                None => Err(CallError::Closed(target)),
            }
        };
        let reply = tokio::time::timeout(timeout, io)
            .await
            .map_err(|_| CallError::Timeout { target, timeout })??;
        self.conn = Some(conn);
        Ok(reply)
    }

    async fn connect(&self) -> Result<Conn, CallError> {
        let addr: SocketAddr = tokio::net::lookup_host(&self.addr)
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| CallError::BadAddr(self.addr.clone()))?;
        let stream = tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| CallError::ConnectTimeout(self.target, self.addr.clone()))?
            .map_err(|e| CallError::Connect(self.target, self.addr.clone(), e))?;
        let _ = stream.set_nodelay(true);
        Ok(Framed::new(stream, codec()))
    }
}

// ---------------------------------------------------------------- openraft

/// openraft's network factory: one [`PeerClient`] per target.
#[derive(Clone)]
pub struct Network {
    id: NodeId,
    faults: Arc<FaultTable>,
    credentials: Arc<Credentials>,
    config: NetConfig,
}

impl Network {
    pub fn new(
        id: NodeId,
        faults: Arc<FaultTable>,
        credentials: Arc<Credentials>,
        config: NetConfig,
    ) -> Network {
        Network {
            id,
            faults,
            credentials,
            config,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient::new(
            self.id,
            target,
            node.addr.clone(),
            self.faults.clone(),
            self.credentials.clone(),
            self.config,
        )
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl PeerClient {
    fn rpc_error<E: std::error::Error>(
        &self,
        e: CallError,
        action: RPCTypes,
    ) -> RPCError<NodeId, BasicNode, E> {
        match e {
            CallError::Timeout { timeout, .. } => RPCError::Timeout(Timeout {
                action,
                id: self.id,
                target: self.target,
                timeout,
            }),
            e if e.not_sent() => RPCError::Unreachable(Unreachable::new(&e)),
            e => RPCError::Network(NetworkError::new(&e)),
        }
    }

    // openraft's own error type, returned as openraft's trait requires.
    #[allow(clippy::result_large_err)]
    fn remote<T, E: std::error::Error>(
        &self,
        result: Result<T, RaftError<NodeId, E>>,
    ) -> Result<T, RpcErr<E>> {
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    fn unexpected<E: std::error::Error>(&self) -> RPCError<NodeId, BasicNode, E> {
        RPCError::Network(NetworkError::new(&CallError::Unexpected(self.target)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        match self.call(Rpc::AppendEntries(rpc), option.hard_ttl()).await {
            Ok(RpcReply::AppendEntries(result)) => self.remote(result),
            Ok(_) => Err(self.unexpected()),
            Err(e) => Err(self.rpc_error(e, RPCTypes::AppendEntries)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        match self
            .call(Rpc::InstallSnapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(RpcReply::InstallSnapshot(result)) => self.remote(result),
            Ok(_) => Err(self.unexpected()),
            Err(e) => Err(self.rpc_error(e, RPCTypes::InstallSnapshot)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr> {
        match self.call(Rpc::Vote(rpc), option.hard_ttl()).await {
            Ok(RpcReply::Vote(result)) => self.remote(result),
            Ok(_) => Err(self.unexpected()),
            Err(e) => Err(self.rpc_error(e, RPCTypes::Vote)),
        }
    }

    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(self.config.backoff))
    }
}

// ------------------------------------------------------------------ server

/// Bind a node's raft listener. Port 0 picks a free port.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let resolved: SocketAddr = tokio::net::lookup_host(addr).await?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad address {addr}"),
        )
    })?;
    let socket = if resolved.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // A restarted node takes its old port back at once.
    socket.set_reuseaddr(true)?;
    socket.bind(resolved)?;
    socket.listen(1024)
}

/// Serve raft RPCs for node `id` until `shutdown`.
pub async fn serve<S: RpcService>(
    id: NodeId,
    listener: TcpListener,
    service: Arc<S>,
    faults: Arc<FaultTable>,
    credentials: Arc<Credentials>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_conn(
                    id,
                    Framed::new(stream, codec()),
                    service.clone(),
                    faults.clone(),
                    credentials.clone(),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!(node = id, error = %e, "raft accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_conn<S: RpcService>(
    id: NodeId,
    mut conn: Conn,
    service: Arc<S>,
    faults: Arc<FaultTable>,
    credentials: Arc<Credentials>,
    shutdown: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = conn.next() => next,
        };
        let raw = match next {
            Some(Ok(raw)) => raw,
            Some(Err(e)) => {
                tracing::debug!(node = id, error = %e, "raft connection failed");
                return;
            }
            None => return,
        };
        let frame = match decode_frame(&raw) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!(node = id, error = %e, "undecodable raft frame; closing");
                return;
            }
        };
        if !faults.check_receive(frame.from) {
            // The link is cut: the sender sees its connection close.
            tracing::trace!(node = id, from = frame.from, "inbound link blocked");
            return;
        }
        let reply = if frame.to != id {
            RpcReply::WrongNode(id)
        } else if let Err(why) = credentials.admit(frame.from, &frame.stamp) {
            tracing::debug!(node = id, from = frame.from, %why, "raft message refused");
            RpcReply::Refused(why)
        } else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                reply = service.handle(frame.from, frame.rpc) => reply,
            }
        };
        // The answer travels back from this node to the sender: a cut
        // outbound link loses it (the request was processed all the same).
        if faults.blocks_out(frame.from) {
            return;
        }
        let bytes = match postcard::to_allocvec(&reply) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(node = id, error = %e, "cannot encode a raft reply");
                return;
            }
        };
        if let Err(e) = conn.send(bytes::Bytes::from(bytes)).await {
            tracing::debug!(node = id, error = %e, "cannot answer a raft request");
            return;
        }
    }
}
