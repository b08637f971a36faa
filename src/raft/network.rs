//! The Raft transport: TCP between nodes, one listener per node on its
//! raft address, postcard messages in length-prefixed frames (see
//! [`framing`]), peers authenticated before anything else (see [`auth`]),
//! and a fault table consulted on every send and receive.
//!
//! A listener serves at most [`NetConfig::max_inbound`] connections at
//! once (more are closed at once); a connection that has not completed
//! the handshake within [`NetConfig::handshake_timeout`] is closed; until
//! then its frames may hold [`framing::HANDSHAKE_FRAME_MAX`] bytes.
//! Refusals are logged (a warning per peer address every few seconds) and
//! counted (`RAFT.INFO`'s `peer_refusals`).
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

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
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
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;

use crate::tls::TlsState;
use tokio_util::sync::CancellationToken;

use super::identity::Credentials;
use super::{KiwiRequest, KiwiResponse, NodeId, TypeConfig};

mod append;
pub mod auth;
pub mod framing;
pub mod snapshot_guard;

pub use auth::{HandshakeError, RaftSecret, RefusalLog};
use framing::{Conn, APPEND_SOFT_MAX, MESSAGE_MAX};

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
    /// A stopping leader asks an up-to-date follower to campaign now (see
    /// `node/handover.rs`).
    Campaign,
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
    /// Whether the asked follower started an election.
    Campaign(Result<(), String>),
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
    /// The handshake failed: nothing was sent.
    #[error("node {0} at {1}: {2}")]
    Handshake(NodeId, String, HandshakeError),
    #[error("a raft message of {0} bytes is over the limit of {MESSAGE_MAX}")]
    TooLarge(usize),
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
                | CallError::Handshake(..)
                | CallError::TooLarge(_)
                | CallError::ConnectTimeout(..)
                | CallError::SelfRoute(_)
                | CallError::BadAddr(_)
                | CallError::Busy(..)
                | CallError::WrongNode(..)
                | CallError::Refused(..)
        )
    }
}

/// Timeouts and limits of the transport.
#[derive(Debug, Clone, Copy)]
pub struct NetConfig {
    pub connect_timeout: Duration,
    /// Forward and read-index calls (openraft's own RPCs use its TTLs).
    pub rpc_timeout: Duration,
    /// How long openraft waits before retrying an unreachable peer.
    pub backoff: Duration,
    /// Longest a new connection may take to authenticate, either way.
    pub handshake_timeout: Duration,
    /// Most inbound raft connections served at once.
    pub max_inbound: usize,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            connect_timeout: Duration::from_millis(500),
            rpc_timeout: Duration::from_secs(2),
            backoff: Duration::from_millis(100),
            handshake_timeout: Duration::from_secs(3),
            // A peer keeps a few (replication, votes, a pool of four for
            // client traffic): enough for clusters of dozens of nodes.
            max_inbound: 256,
        }
    }
}

/// What every outbound connection of a node shares.
pub struct Outbound {
    pub id: NodeId,
    pub faults: Arc<FaultTable>,
    pub credentials: Arc<Credentials>,
    pub secret: Option<RaftSecret>,
    /// Dial peers over mutual TLS when it holds peer material
    /// (`tls-cluster yes`).
    pub tls: Option<Arc<TlsState>>,
    pub config: NetConfig,
    /// Handshake refusals by peers, logged once in a while per peer.
    pub refusals: RefusalLog,
    /// Open connections no [`PeerClient`] holds, by peer and address.
    /// openraft makes a new client for every round of a linearizable
    /// read's leadership check; this keeps each round from opening (and
    /// authenticating) connections of its own.
    pub idle: IdleConns,
    /// When each peer last accepted this node's AppendEntries (leases).
    pub acks: crate::raft::lease::AckClock,
}

/// The idle connections kept per peer at most.
const IDLE_PER_PEER: usize = 8;

/// Connections to peers not in use, for the next [`PeerClient`].
#[derive(Default)]
pub struct IdleConns(parking_lot::Mutex<std::collections::HashMap<(NodeId, String), Vec<Conn>>>);

impl IdleConns {
    fn take(&self, target: NodeId, addr: &str) -> Option<Conn> {
        self.0.lock().get_mut(&(target, addr.to_string()))?.pop()
    }

    fn put(&self, target: NodeId, addr: String, conn: Conn) {
        let mut idle = self.0.lock();
        let conns = idle.entry((target, addr)).or_default();
        if conns.len() < IDLE_PER_PEER {
            conns.push(conn);
        }
    }
}

/// Open a connection to `addr` (over TLS when `tls` is given) and
/// authenticate with `secret`, each step bounded by `config`'s timeouts.
/// Errors name `target`.
pub async fn connect(
    target: NodeId,
    addr: &str,
    secret: Option<&RaftSecret>,
    tls: Option<&TlsConnector>,
    config: &NetConfig,
) -> Result<Conn, CallError> {
    let resolved: SocketAddr = tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| CallError::BadAddr(addr.to_string()))?;
    let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(resolved))
        .await
        .map_err(|_| CallError::ConnectTimeout(target, addr.to_string()))?
        .map_err(|e| CallError::Connect(target, addr.to_string(), e))?;
    let _ = stream.set_nodelay(true);
    let mut conn = match tls {
        None => framing::handshake_conn(stream),
        Some(tls) => {
            let name = crate::tls::PeerTls::server_name(addr);
            match tokio::time::timeout(config.handshake_timeout, tls.connect(name, stream)).await {
                Ok(Ok(stream)) => framing::handshake_conn(stream),
                Ok(Err(e)) => {
                    return Err(CallError::Handshake(
                        target,
                        addr.to_string(),
                        HandshakeError::Tls(e.to_string()),
                    ))
                }
                Err(_) => {
                    return Err(CallError::Handshake(
                        target,
                        addr.to_string(),
                        HandshakeError::Timeout(config.handshake_timeout),
                    ))
                }
            }
        }
    };
    match tokio::time::timeout(config.handshake_timeout, auth::connect(&mut conn, secret)).await {
        Ok(Ok(())) => Ok(conn),
        Ok(Err(e)) => Err(CallError::Handshake(target, addr.to_string(), e)),
        Err(_) => Err(CallError::Handshake(
            target,
            addr.to_string(),
            HandshakeError::Timeout(config.handshake_timeout),
        )),
    }
}

/// Send one encoded [`Frame`] on `conn` and read the encoded answer.
pub async fn exchange(
    conn: &mut Conn,
    target: NodeId,
    frame: &[u8],
) -> Result<bytes::Bytes, CallError> {
    framing::send(conn, frame)
        .await
        .map_err(|e| CallError::Io(target, e))?;
    match framing::recv(conn, MESSAGE_MAX).await {
        Ok(Some(reply)) => Ok(reply),
        Ok(None) => Err(CallError::Closed(target)),
        Err(e) => Err(CallError::Io(target, e)),
    }
}

/// A [`PeerClient`]'s connection: none, being opened, or open. It is
/// opened (connect and handshake) in a task of its own, so that a call
/// that gives up meanwhile — openraft bounds a heartbeat by its interval —
/// leaves the work done for the next call instead of starting over.
enum Link {
    Idle,
    Opening(tokio::task::JoinHandle<Result<Conn, CallError>>),
    Open(Conn),
}

/// A connection to one peer, reused across calls and reopened after a
/// failure.
pub struct PeerClient {
    outbound: Arc<Outbound>,
    target: NodeId,
    addr: String,
    link: Link,
    /// The AppendEntries on its way, if any (see [`append`]).
    append: Option<append::InFlight>,
}

impl Drop for PeerClient {
    fn drop(&mut self) {
        if let Link::Open(conn) = std::mem::replace(&mut self.link, Link::Idle) {
            self.outbound
                .idle
                .put(self.target, std::mem::take(&mut self.addr), conn);
        }
    }
}

impl PeerClient {
    pub fn new(outbound: Arc<Outbound>, target: NodeId, addr: String) -> PeerClient {
        PeerClient {
            outbound,
            target,
            addr,
            link: Link::Idle,
            append: None,
        }
    }

    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Send `rpc` and wait up to `timeout` for its answer.
    pub async fn call(&mut self, rpc: Rpc, timeout: Duration) -> Result<RpcReply, CallError> {
        // Raft's own requests may arrive twice; a forwarded write may not.
        let resendable = matches!(rpc, Rpc::AppendEntries(_) | Rpc::Vote(_) | Rpc::ReadIndex);
        let frame = self.encode(rpc)?;
        self.call_encoded(frame, timeout, resendable).await
    }

    fn encode(&self, rpc: Rpc) -> Result<Vec<u8>, CallError> {
        let out = &self.outbound;
        Ok(postcard::to_allocvec(&Frame {
            from: out.id,
            to: self.target,
            stamp: out.credentials.stamp(self.target),
            rpc,
        })?)
    }

    async fn call_encoded(
        &mut self,
        frame: Vec<u8>,
        timeout: Duration,
        resendable: bool,
    ) -> Result<RpcReply, CallError> {
        let id = self.outbound.id;
        if self.target == id {
            return Err(CallError::SelfRoute(id));
        }
        if frame.len() > MESSAGE_MAX {
            return Err(CallError::TooLarge(frame.len()));
        }
        let faults = &self.outbound.faults;
        let delay = faults.check_send(self.target)?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
            // The link may have been cut meanwhile.
            faults.check_send(self.target)?;
        }
        let reply = decode_reply(&self.exchange(&frame, timeout, resendable).await?)?;
        match reply {
            RpcReply::WrongNode(other) => {
                self.link = Link::Idle;
                Err(CallError::WrongNode(self.target, other))
            }
            RpcReply::Refused(why) => Err(CallError::Refused(self.target, why)),
            reply => Ok(reply),
        }
    }

    /// Send `frame` and read the answer, all within `timeout`. The
    /// connection is kept only after a complete exchange.
    async fn exchange(
        &mut self,
        frame: &[u8],
        timeout: Duration,
        resendable: bool,
    ) -> Result<bytes::Bytes, CallError> {
        let target = self.target;
        let deadline = tokio::time::Instant::now() + timeout;
        if let Link::Idle = self.link {
            if let Some(mut conn) = self.outbound.idle.take(target, &self.addr) {
                if !resendable {
                    self.link = Link::Open(conn);
                } else {
                    // A connection another client left idle may have been
                    // closed by the peer since (it restarted): the request
                    // then goes once more on a new one.
                    let sent =
                        tokio::time::timeout_at(deadline, exchange(&mut conn, target, frame)).await;
                    if let Ok(Ok(reply)) = sent {
                        self.link = Link::Open(conn);
                        return Ok(reply);
                    }
                }
            }
        }
        // Not connected in time: nothing was sent.
        let mut conn = tokio::time::timeout_at(deadline, self.open())
            .await
            .map_err(|_| CallError::ConnectTimeout(target, self.addr.clone()))??;
        let reply = tokio::time::timeout_at(deadline, exchange(&mut conn, target, frame))
            .await
            .map_err(|_| CallError::Timeout { target, timeout })??;
        self.link = Link::Open(conn);
        Ok(reply)
    }

    /// The open connection, taken out of the link (opened if need be).
    async fn open(&mut self) -> Result<Conn, CallError> {
        if let Link::Idle = self.link {
            let (out, target, addr) = (self.outbound.clone(), self.target, self.addr.clone());
            self.link = Link::Opening(tokio::spawn(async move {
                let result = connect(
                    target,
                    &addr,
                    out.secret.as_ref(),
                    out.tls
                        .as_ref()
                        .and_then(|tls| tls.peers())
                        .map(|peers| peers.connector)
                        .as_ref(),
                    &out.config,
                )
                .await;
                if let Err(CallError::Handshake(_, _, e)) = &result {
                    if !e.is_network() && out.refusals.should_warn(&addr) {
                        tracing::warn!(
                            node = out.id,
                            peer = target,
                            %addr,
                            error = %e,
                            "raft peer refused: check that every node has the same raft-secret"
                        );
                    }
                }
                result
            }));
        }
        // Awaiting the task through `&mut` leaves it in place if this call
        // is dropped meanwhile.
        let joined = match &mut self.link {
            Link::Opening(task) => Some(task.await),
            _ => None,
        };
        match (std::mem::replace(&mut self.link, Link::Idle), joined) {
            (_, Some(Ok(result))) => result,
            (_, Some(Err(_))) => Err(CallError::Closed(self.target)),
            (Link::Open(conn), None) => Ok(conn),
            (_, None) => Err(CallError::Closed(self.target)),
        }
    }
}

// ---------------------------------------------------------------- openraft

/// openraft's network factory: one [`PeerClient`] per target.
#[derive(Clone)]
pub struct Network {
    outbound: Arc<Outbound>,
}

impl Network {
    pub fn new(outbound: Arc<Outbound>) -> Network {
        Network { outbound }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient::new(self.outbound.clone(), target, node.addr.clone())
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
                id: self.outbound.id,
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
        let entries = rpc.entries.len();
        let key = append::AppendKey::of(&rpc);
        let frame = match self.encode(Rpc::AppendEntries(rpc)) {
            Ok(frame) => frame,
            Err(e) => return Err(self.rpc_error(e, RPCTypes::AppendEntries)),
        };
        if frame.len() > APPEND_SOFT_MAX && entries > 1 {
            // Fewer entries at a time: about as many as fit.
            let fit = entries.saturating_mul(APPEND_SOFT_MAX) / frame.len();
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(fit.clamp(1, entries - 1) as u64),
            ));
        }
        match self.send_append(key, frame, option.hard_ttl()).await {
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
        openraft::network::Backoff::new(std::iter::repeat(self.outbound.config.backoff))
    }
}

// ------------------------------------------------------------------ server

/// The address a raft listener on `addr` binds.
pub async fn resolve(addr: &str) -> std::io::Result<SocketAddr> {
    tokio::net::lookup_host(addr).await?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad address {addr}"),
        )
    })
}

/// Bind a node's raft listener. Port 0 picks a free port.
pub fn bind(resolved: SocketAddr) -> std::io::Result<TcpListener> {
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

/// What admits peers to a node's raft listener: its secret, its limits,
/// and what it refused.
pub struct Inbound {
    pub id: NodeId,
    pub faults: Arc<FaultTable>,
    pub credentials: Arc<Credentials>,
    pub secret: Option<RaftSecret>,
    /// Peers must connect over mutual TLS when it holds peer material
    /// (`tls-cluster yes`).
    pub tls: Option<Arc<TlsState>>,
    pub config: NetConfig,
    slots: Arc<Semaphore>,
    refusals: RefusalLog,
    refused: AtomicU64,
}

impl Inbound {
    pub fn new(
        id: NodeId,
        faults: Arc<FaultTable>,
        credentials: Arc<Credentials>,
        secret: Option<RaftSecret>,
        tls: Option<Arc<TlsState>>,
        config: NetConfig,
    ) -> Inbound {
        Inbound {
            id,
            faults,
            credentials,
            secret,
            tls,
            slots: Arc::new(Semaphore::new(config.max_inbound.max(1))),
            config,
            refusals: RefusalLog::default(),
            refused: AtomicU64::new(0),
        }
    }

    /// Connections refused so far (handshake failed, or too many).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn refuse(&self, peer: SocketAddr, why: &dyn std::fmt::Display, quiet: bool) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let why = why.to_string();
        // Once in a while per address and reason: a misconfigured peer
        // retries many times a second.
        if !quiet && self.refusals.should_warn(&format!("{} {why}", peer.ip())) {
            tracing::warn!(node = self.id, %peer, "raft connection refused: {why}");
        } else {
            tracing::debug!(node = self.id, %peer, "raft connection refused: {why}");
        }
    }
}

/// Serve raft RPCs until `shutdown`.
pub async fn serve<S: RpcService>(
    listener: TcpListener,
    service: Arc<S>,
    inbound: Arc<Inbound>,
    shutdown: CancellationToken,
) {
    let id = inbound.id;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Ok(permit) = inbound.slots.clone().try_acquire_owned() else {
                    inbound.refuse(
                        peer,
                        &format_args!(
                            "{} raft connections already (max_inbound)",
                            inbound.config.max_inbound
                        ),
                        false,
                    );
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (service, inbound, shutdown) =
                    (service.clone(), inbound.clone(), shutdown.clone());
                tokio::spawn(async move {
                    serve_conn(stream, peer, service, &inbound, shutdown).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(node = id, error = %e, "raft accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_conn<S: RpcService>(
    stream: TcpStream,
    peer: SocketAddr,
    service: Arc<S>,
    inbound: &Inbound,
    shutdown: CancellationToken,
) {
    let id = inbound.id;
    let faults = &inbound.faults;
    let limit = inbound.config.handshake_timeout;
    let peer_tls = inbound.tls.as_ref().and_then(|tls| tls.peers());
    let mut conn = match peer_tls.map(|peers| peers.acceptor) {
        None => framing::handshake_conn(stream),
        Some(tls) => {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                done = tokio::time::timeout(limit, tls.accept(stream)) => done,
            };
            match accepted {
                Ok(Ok(stream)) => framing::handshake_conn(stream),
                Ok(Err(e)) => {
                    return inbound.refuse(peer, &HandshakeError::Tls(e.to_string()), false)
                }
                Err(_) => return inbound.refuse(peer, &HandshakeError::Timeout(limit), false),
            }
        }
    };
    let handshake = tokio::select! {
        _ = shutdown.cancelled() => return,
        done = tokio::time::timeout(limit, auth::accept(&mut conn, inbound.secret.as_ref())) => done,
    };
    match handshake {
        Ok(Ok(())) => {}
        // Closed before a word: a port probe, or a peer that gave up.
        Ok(Err(e @ HandshakeError::Closed)) => return inbound.refuse(peer, &e, true),
        Ok(Err(e)) => return inbound.refuse(peer, &e, false),
        Err(_) => return inbound.refuse(peer, &HandshakeError::Timeout(limit), false),
    }
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = framing::recv(&mut conn, MESSAGE_MAX) => next,
        };
        let raw = match next {
            Ok(Some(raw)) => raw,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(node = id, %peer, error = %e, "raft connection failed");
                return;
            }
        };
        let frame = match decode_frame(&raw) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!(node = id, %peer, error = %e, "undecodable raft frame; closing");
                return;
            }
        };
        drop(raw);
        if !faults.check_receive(frame.from) {
            // The link is cut: the sender sees its connection close.
            tracing::trace!(node = id, from = frame.from, "inbound link blocked");
            return;
        }
        let reply = if frame.to != id {
            RpcReply::WrongNode(id)
        } else if let Err(why) = inbound.credentials.admit(frame.from, &frame.stamp) {
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
        if let Err(e) = framing::send(&mut conn, &bytes).await {
            tracing::debug!(node = id, error = %e, "cannot answer a raft request");
            return;
        }
    }
}
