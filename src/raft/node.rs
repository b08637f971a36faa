//! A Raft node: openraft's [`Raft`] over Kiwi's stores and TCP transport,
//! plus what clients need from it — batched proposals, forwarding to the
//! leader, linearizable reads, admin operations and the fault table.
//!
//! Writes: every client write (and every EXEC) goes to the proposer task,
//! which packs what many clients sent meanwhile into one entry (up to
//! [`RaftTiming::max_batch`] commands of one database) and proposes it
//! with the leader's clock; several batches may be in flight. On a
//! follower the batch travels to the leader in one `Forward` RPC. A
//! request is only retried when it certainly was not proposed (no leader,
//! leader unreachable before sending, "not the leader" answer); anything
//! else that fails answers an error, never a success.
//!
//! Every client-facing wait is bounded by [`RaftTiming::client_timeout`]:
//! a node cut off from the quorum answers `CLUSTERDOWN` in that time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, ServerState, SnapshotPolicy};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::identity::{self, Credentials, IdentityError};
use super::lease::RestartHold;
use super::network::framing::PROPOSAL_MAX;
use super::network::snapshot_guard::SnapshotGuard;
use super::network::{
    self, CallError, FaultTable, ForwardError, Inbound, NetConfig, Network, Outbound, PeerClient,
    RaftSecret, RefusalLog, Rpc, RpcReply,
};
use super::{
    open_stores, read_state, state_key, KiwiRequest, KiwiResponse, NodeId, Op, TypeConfig,
    WireReply,
};
use crate::cmd::raft::RaftAdmin;
use crate::engine::Engine;
use crate::resp::Reply;

mod handover;
mod membership;
mod observe;
mod proposer;
mod reads;
mod service;

pub use observe::RaftFigures;
use proposer::{proposer, OpReplies, Pending};

/// Timing and sizing of a node.
#[derive(Debug, Clone, Copy)]
pub struct RaftTiming {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Longest a client waits for a write or a read barrier before it gets
    /// `CLUSTERDOWN`.
    pub client_timeout: Duration,
    /// Most commands in one proposed entry.
    pub max_batch: usize,
    /// Batches proposed at once. Few: while they are in flight the next
    /// requests queue and leave as one bigger entry (measured with
    /// bench/cluster.py: 2 in flight gave 1.3-1.6x the write throughput of
    /// 8 at 10-200 clients).
    pub max_inflight: usize,
    /// Build a snapshot (and purge the log) every this many entries.
    pub snapshot_every: u64,
    /// Entries kept in the log below the last snapshot when it is purged
    /// (openraft's `max_in_snapshot_log_to_keep`): a follower at most this
    /// far behind catches up from the log, one further behind gets the
    /// snapshot.
    pub logs_to_keep: u64,
}

impl Default for RaftTiming {
    fn default() -> RaftTiming {
        RaftTiming {
            heartbeat_ms: 50,
            election_min_ms: 300,
            election_max_ms: 600,
            client_timeout: Duration::from_secs(2),
            max_batch: 1024,
            max_inflight: 2,
            snapshot_every: 10_000,
            logs_to_keep: 1_000,
        }
    }
}

/// How to start a node.
#[derive(Debug, Clone)]
pub struct RaftOptions {
    pub id: NodeId,
    /// Address the raft listener binds (`127.0.0.1:0` picks a port).
    pub addr: String,
    /// Address peers use to reach this node; default: the bound address.
    pub advertise: Option<String>,
    /// Other members, for `init`.
    pub peers: Vec<(NodeId, String)>,
    /// Initialise a new cluster of this node and `peers` at start (once:
    /// an initialised node ignores it).
    pub init: bool,
    pub timing: RaftTiming,
    pub net: NetConfig,
    /// The secret every member shares (`raft-secret`). Without one the
    /// raft port takes anyone, so it may only listen on loopback.
    pub secret: Option<RaftSecret>,
    /// Mutual TLS on peer links when it holds peer material
    /// (`tls-cluster yes`); looked up at each connection, so a reload
    /// applies to the next one.
    pub tls: Option<Arc<crate::tls::TlsState>>,
}

impl RaftOptions {
    pub fn new(id: NodeId, addr: impl Into<String>) -> RaftOptions {
        RaftOptions {
            id,
            addr: addr.into(),
            advertise: None,
            peers: Vec::new(),
            init: false,
            timing: RaftTiming::default(),
            net: NetConfig::default(),
            secret: None,
            tls: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RaftNodeError {
    #[error("cannot listen for raft on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error(
        "the raft port would listen on {0}, beyond loopback, without a raft-secret: anyone \
         who reaches it could join the cluster, vote and rewrite its log; set raft-secret \
         (the same on every node) or listen on a loopback address"
    )]
    Unprotected(std::net::SocketAddr),
    #[error("invalid raft configuration: {0}")]
    Config(#[from] openraft::ConfigError),
    #[error("raft stopped: {0}")]
    Fatal(#[from] openraft::error::Fatal<NodeId>),
    #[error("cannot initialise the cluster: {0}")]
    Init(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// What a client sees when the cluster cannot serve it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No leader reachable in time; nothing was proposed.
    #[error("CLUSTERDOWN no quorum")]
    NoQuorum,
    /// Proposed, but not confirmed committed in time: it may or may not
    /// take effect.
    #[error("CLUSTERDOWN no quorum (write not confirmed: {0})")]
    Unconfirmed(String),
    /// Sent to the leader, then the answer was lost.
    #[error("TRYAGAIN outcome unknown: {0}")]
    Unknown(String),
    #[error("ERR {0}")]
    Refused(String),
}

/// One Kiwi node's Raft.
pub struct RaftNode {
    id: NodeId,
    addr: String,
    raft: Raft<TypeConfig>,
    engine: Arc<Engine>,
    faults: Arc<FaultTable>,
    credentials: Arc<Credentials>,
    timing: RaftTiming,
    outbound: Arc<Outbound>,
    inbound: Arc<Inbound>,
    snapshots: SnapshotGuard,
    proposals: mpsc::Sender<Pending>,
    /// Connections for Forward/ReadIndex, a few per peer.
    peers: parking_lot::Mutex<HashMap<NodeId, Arc<PeerPool>>>,
    shutdown: CancellationToken,
    /// Times this node saw a new leader (see `observe.rs`).
    leader_changes: std::sync::atomic::AtomicU64,
    /// When this node last became the leader (see `observe.rs`).
    leader_since: parking_lot::Mutex<Option<Instant>>,
    /// Stopping: proposes nothing more, hands leadership over (`handover.rs`).
    draining: std::sync::atomic::AtomicBool,
    /// Linearizable reads waiting for a leadership check (`reads.rs`):
    /// as leader, and as a follower asking the leader.
    reads: reads::ReadBatcher,
    remote_reads: reads::ReadBatcher,
    /// A restarted node votes and campaigns only after it (lease.rs).
    hold: RestartHold,
    /// This node, for tasks it starts that outlive a call.
    me: std::sync::Weak<RaftNode>,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .finish()
    }
}

/// A handful of connections to one peer, for concurrent client traffic.
struct PeerPool {
    target: NodeId,
    addr: String,
    slots: Vec<tokio::sync::Mutex<PeerClient>>,
}

const POOL_SIZE: usize = 4;

impl PeerPool {
    async fn call(&self, rpc: Rpc, timeout: Duration) -> Result<RpcReply, CallError> {
        for slot in &self.slots {
            if let Ok(mut client) = slot.try_lock() {
                return client.call(rpc, timeout).await;
            }
        }
        // Every connection is busy: the wait for one counts against
        // `timeout` (the caller's bound), and if it takes all of it the
        // request was never sent.
        let started = Instant::now();
        let pick = rand::random_range(0..self.slots.len().max(1));
        let Some(slot) = self.slots.get(pick) else {
            return Err(CallError::BadAddr(self.addr.clone()));
        };
        match tokio::time::timeout(timeout, slot.lock()).await {
            Ok(mut client) => match timeout.checked_sub(started.elapsed()) {
                Some(left) if !left.is_zero() => client.call(rpc, left).await,
                _ => Err(CallError::Busy(self.target, self.addr.clone())),
            },
            Err(_) => Err(CallError::Busy(self.target, self.addr.clone())),
        }
    }
}

impl RaftNode {
    /// Bind the raft listener, start openraft on `engine`'s storage and the
    /// proposer, and (with `options.init`) initialise the cluster. Must run
    /// inside the tokio runtime that will drive the node.
    pub async fn start(
        engine: Arc<Engine>,
        options: RaftOptions,
    ) -> Result<Arc<RaftNode>, RaftNodeError> {
        let id = options.id;
        let resolved = network::resolve(&options.addr)
            .await
            .map_err(|e| RaftNodeError::Bind(options.addr.clone(), e))?;
        // Mutual TLS admits only members too.
        let peer_tls = options
            .tls
            .as_ref()
            .is_some_and(|tls| tls.peers().is_some());
        if options.secret.is_none() && !peer_tls && !resolved.ip().is_loopback() {
            return Err(RaftNodeError::Unprotected(resolved));
        }
        let listener =
            network::bind(resolved).map_err(|e| RaftNodeError::Bind(options.addr.clone(), e))?;
        let bound = listener
            .local_addr()
            .map_err(|e| RaftNodeError::Bind(options.addr.clone(), e))?;
        if options.secret.is_none() {
            tracing::warn!(
                node = id,
                %bound,
                "raft runs without a raft-secret: any local process can take part in the \
                 cluster; set raft-secret (the same on every node)"
            );
        }
        let addr = options
            .advertise
            .clone()
            .unwrap_or_else(|| bound.to_string());
        let t = options.timing;
        // A node that voted in an earlier life may have acknowledged a
        // leader whose lease still counts on it (lease.rs).
        let voted_before = crate::raft::read_state::<openraft::Vote<NodeId>>(
            engine.storage(),
            crate::raft::state_key::VOTE,
        )
        .map_or(true, |vote| vote.is_some());
        let hold = RestartHold::starting(voted_before, t.election_max_ms);
        let config = Config {
            cluster_name: "kiwi".into(),
            heartbeat_interval: t.heartbeat_ms,
            election_timeout_min: t.election_min_ms,
            election_timeout_max: t.election_max_ms,
            install_snapshot_timeout: 2_000,
            max_payload_entries: 512,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(t.snapshot_every),
            max_in_snapshot_log_to_keep: t.logs_to_keep,
            enable_elect: hold.may_elect_now(),
            ..Config::default()
        }
        .validate()?;
        if t.heartbeat_ms * 2 >= t.election_min_ms {
            tracing::warn!(
                heartbeat = t.heartbeat_ms,
                election = t.election_min_ms,
                "heartbeat is not well under half the election timeout"
            );
        }
        let own = identity::claim(engine.storage(), id)?;
        let credentials = Arc::new(Credentials::new(engine.clone(), own));
        if let Some(why) = identity::conflict(engine.storage(), &own) {
            return Err(RaftNodeError::Init(why));
        }
        let faults = Arc::new(FaultTable::new());
        let (log, sm) = open_stores(engine.clone());
        let outbound = Arc::new(Outbound {
            id,
            faults: faults.clone(),
            credentials: credentials.clone(),
            secret: options.secret.clone(),
            tls: options.tls.clone(),
            config: options.net,
            refusals: RefusalLog::default(),
            idle: Default::default(),
            acks: Default::default(),
        });
        let inbound = Arc::new(Inbound::new(
            id,
            faults.clone(),
            credentials.clone(),
            options.secret.clone(),
            options.tls.clone(),
            options.net,
        ));
        let network = Network::new(outbound.clone());
        let raft = Raft::new(id, Arc::new(config), network, log, sm).await?;
        engine.set_replicated(true);
        let (tx, rx) = mpsc::channel(16 * 1024);
        let shutdown = CancellationToken::new();
        let node = Arc::new_cyclic(|me| RaftNode {
            id,
            addr: addr.clone(),
            raft,
            engine,
            faults,
            credentials,
            timing: t,
            outbound,
            inbound: inbound.clone(),
            snapshots: SnapshotGuard::default(),
            proposals: tx,
            peers: parking_lot::Mutex::new(HashMap::new()),
            shutdown: shutdown.clone(),
            leader_changes: std::sync::atomic::AtomicU64::new(0),
            leader_since: parking_lot::Mutex::new(None),
            draining: std::sync::atomic::AtomicBool::new(false),
            reads: Default::default(),
            remote_reads: Default::default(),
            hold,
            me: me.clone(),
        });
        if !hold.may_elect_now() {
            let node = Arc::downgrade(&node);
            tokio::spawn(async move {
                tokio::time::sleep(hold.remaining()).await;
                if let Some(node) = node.upgrade() {
                    node.raft.runtime_config().elect(true);
                }
            });
        }
        tokio::spawn(observe::count_leader_changes(node.clone()));
        tokio::spawn(network::serve(
            listener,
            node.clone(),
            inbound,
            shutdown.clone(),
        ));
        tokio::spawn(proposer(node.clone(), rx));
        tokio::spawn(register_identity(node.clone()));
        tracing::info!(node = id, %addr, "raft node started");
        if options.init {
            let mut members = vec![(id, addr)];
            members.extend(options.peers.iter().cloned());
            match node.raft.is_initialized().await? {
                true => tracing::info!(node = id, "already initialised; --raft-init ignored"),
                false => node.init(&members).await.map_err(RaftNodeError::Init)?,
            }
        }
        Ok(node)
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The address peers reach this node's raft listener at.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    pub fn faults(&self) -> &Arc<FaultTable> {
        &self.faults
    }

    /// The secret peers must prove they know (`raft-secret`).
    pub fn secret(&self) -> Option<&RaftSecret> {
        self.outbound.secret.as_ref()
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The index of the last entry this node applied (0: none).
    pub fn applied_index(&self) -> u64 {
        self.raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |l| l.index)
    }

    /// WAIT: how many other voters hold every entry up to `index` (the
    /// node's applied index when WAIT arrived: every write acknowledged
    /// here before it); 0 unless this node leads. Entries appended since
    /// (other clients' writes, clock ticks) do not count against it.
    pub fn replicas_holding(&self, index: u64) -> u64 {
        let m = self.raft.metrics().borrow().clone();
        if m.state != ServerState::Leader {
            return 0;
        }
        let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
        m.replication.as_ref().map_or(0, |replication| {
            voters
                .iter()
                .filter(|id| **id != self.id)
                .filter(|id| {
                    replication
                        .get(id)
                        .copied()
                        .flatten()
                        .is_some_and(|matched| matched.index >= index)
                })
                .count() as u64
        })
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// This node leads and a quorum acknowledged it within an election
    /// timeout. A leader cut off from the others (or just back from being
    /// cut off, before it heard of the new term) fails this, so it does not
    /// append entries that a new leader would truncate: a truncated entry's
    /// outcome is unknown to its client, one never appended is a clean
    /// refusal.
    fn leads_with_quorum(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.state == ServerState::Leader
            && m.millis_since_quorum_ack
                .is_some_and(|ms| ms < self.timing.election_min_ms)
    }

    /// Stop serving and stop openraft; from then on every client request is
    /// refused. Idempotent.
    pub async fn shutdown(&self) {
        if self.shutdown.is_cancelled() {
            return;
        }
        self.shutdown.cancel();
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(node = self.id, error = %e, "raft shutdown failed");
        }
        // The engine stays replicated: a write arriving now is refused
        // (see `enqueue`), never run on this node's keyspace outside the log.
    }

    /// The error every client request gets once the node is stopping, or
    /// when the cluster knows its id with another data directory.
    fn check_serving(&self) -> Result<(), ClientError> {
        if self.shutdown.is_cancelled() {
            return Err(ClientError::Refused("raft node is shutting down".into()));
        }
        match self.credentials.refused() {
            Some(why) => Err(ClientError::Refused(why)),
            None => Ok(()),
        }
    }

    /// This node's identity (node id, incarnation, cluster).
    pub fn identity(&self) -> identity::DirIdentity {
        self.credentials.own()
    }

    // ----------------------------------------------------------- membership

    /// Initialise a new cluster of `members` (id, raft address), with a
    /// new cluster id that the members learn through the log.
    pub async fn init(&self, members: &[(NodeId, String)]) -> Result<(), String> {
        let nodes: BTreeMap<NodeId, BasicNode> = members
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr)))
            .collect();
        let fresh = !self
            .raft
            .is_initialized()
            .await
            .map_err(|e| e.to_string())?;
        let drawn = fresh && self.credentials.own().cluster.is_none();
        if drawn {
            self.credentials
                .set_cluster(Some(rand::random()))
                .map_err(|e| e.to_string())?;
        }
        let result = self.raft.initialize(nodes).await.map_err(|e| e.to_string());
        if result.is_err() && drawn && !self.raft.is_initialized().await.unwrap_or(true) {
            // No cluster came of it: the node may still join another one.
            self.credentials
                .set_cluster(None)
                .map_err(|e| e.to_string())?;
        }
        result
    }

    // ---------------------------------------------------------------- writes

    /// Replicate `op` as part of one entry; its replies, in order, once
    /// committed and applied.
    pub async fn propose(&self, op: Op) -> Result<Vec<Reply>, ClientError> {
        let replies = self.enqueue(vec![op], false).await?;
        Ok(replies.into_iter().flatten().map(Reply::from).collect())
    }

    async fn enqueue(&self, ops: Vec<Op>, leader_only: bool) -> Result<OpReplies, ClientError> {
        self.check_serving()?;
        // An entry too large for the transport could never replicate.
        if let Some(size) = ops.iter().map(Op::size_hint).find(|&s| s > PROPOSAL_MAX) {
            return Err(ClientError::Refused(format!(
                "write too large to replicate ({size} bytes; the limit is {PROPOSAL_MAX})"
            )));
        }
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            ops,
            leader_only,
            deadline: Instant::now() + self.timing.client_timeout,
            reply: tx,
        };
        if self.proposals.send(pending).await.is_err() {
            return Err(ClientError::Refused("raft node is shutting down".into()));
        }
        // The reply sender dropped: the node stopped, maybe after proposing
        // the batch, so the write may still commit on the other nodes.
        rx.await.unwrap_or_else(|_| {
            Err(ClientError::Unknown(
                "raft node stopped before the outcome was known".into(),
            ))
        })
    }

    /// Propose `request` as one entry: as leader directly, else through the
    /// leader, giving up at `deadline`. `leader_only`: fail with `NoQuorum`
    /// instead of forwarding.
    async fn write(
        &self,
        mut request: KiwiRequest,
        leader_only: bool,
        deadline: Instant,
    ) -> Result<KiwiResponse, ClientError> {
        loop {
            let leader = if leader_only {
                self.id
            } else {
                self.wait_for_leader(deadline).await?
            };
            if leader == self.id && self.is_draining() {
                // Handing leadership over: the write waits for the next
                // leader and goes there.
            } else if leader == self.id {
                if !self.leads_with_quorum() {
                    // Not (or maybe no longer) the leader: propose nothing
                    // that a new leader would only truncate.
                    if leader_only {
                        return Err(ClientError::NoQuorum);
                    }
                } else {
                    request.now_ms = self.engine.now_ms();
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    match tokio::time::timeout(remaining, self.raft.client_write(request.clone()))
                        .await
                    {
                        Err(_) => {
                            return Err(ClientError::Unconfirmed(format!(
                                "not committed within {:?}",
                                self.timing.client_timeout
                            )))
                        }
                        Ok(Ok(response)) => return Ok(response.data),
                        // openraft answers this both when it refused the
                        // entry (leadership lost just now) and when a new
                        // leader truncated it after it was appended — and a
                        // truncated entry may survive on another node and
                        // commit. Only a refusal before appending could be
                        // retried, and the two look alike: outcome unknown.
                        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                            return Err(ClientError::Unknown(
                                "leadership changed while the write was in flight".into(),
                            ))
                        }
                        Ok(Err(e)) => return Err(ClientError::Unknown(e.to_string())),
                    }
                }
            } else {
                let remaining = deadline.saturating_duration_since(Instant::now());
                match self
                    .call_peer(leader, Rpc::Forward(request.clone()), remaining)
                    .await
                {
                    Ok(RpcReply::Forward(Ok(response))) => return Ok(response),
                    Ok(RpcReply::Forward(Err(ForwardError::NotLeader { .. }))) => {}
                    Ok(RpcReply::Forward(Err(ForwardError::Unknown(e)))) => {
                        return Err(ClientError::Unconfirmed(e))
                    }
                    Ok(RpcReply::Forward(Err(ForwardError::Refused(e)))) => {
                        return Err(ClientError::Refused(e))
                    }
                    Ok(_) => return Err(ClientError::Unknown("unexpected answer".into())),
                    Err(e) if e.not_sent() => {}
                    Err(e) => return Err(ClientError::Unknown(e.to_string())),
                }
            }
            if Instant::now() >= deadline {
                return Err(ClientError::NoQuorum);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The current leader, waiting (bounded) while there is none.
    async fn wait_for_leader(&self, deadline: Instant) -> Result<NodeId, ClientError> {
        loop {
            if let Some(leader) = self.leader() {
                return Ok(leader);
            }
            if Instant::now() >= deadline || self.shutdown.is_cancelled() {
                return Err(ClientError::NoQuorum);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn call_peer(
        &self,
        target: NodeId,
        rpc: Rpc,
        timeout: Duration,
    ) -> Result<RpcReply, CallError> {
        if target == self.id {
            return Err(CallError::SelfRoute(target));
        }
        let addr = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            m.membership_config
                .membership()
                .get_node(&target)
                .map(|n| n.addr.clone())
        };
        let Some(addr) = addr else {
            return Err(CallError::BadAddr(format!("node {target} has no address")));
        };
        let pool = {
            let mut peers = self.peers.lock();
            let stale = peers.get(&target).is_some_and(|p| p.addr != addr);
            if stale {
                peers.remove(&target);
            }
            peers
                .entry(target)
                .or_insert_with(|| {
                    Arc::new(PeerPool {
                        target,
                        addr: addr.clone(),
                        slots: (0..POOL_SIZE)
                            .map(|_| {
                                tokio::sync::Mutex::new(PeerClient::new(
                                    self.outbound.clone(),
                                    target,
                                    addr.clone(),
                                ))
                            })
                            .collect(),
                    })
                })
                .clone()
        };
        pool.call(rpc, timeout).await
    }

    // ----------------------------------------------------------------- reads

    /// Wait until a read on this node sees every write acknowledged before
    /// the call (openraft's read index, through the leader on a follower).
    pub async fn linearize(&self) -> Result<(), ClientError> {
        self.check_serving()?;
        let deadline = Instant::now() + self.timing.client_timeout;
        loop {
            let leader = self.wait_for_leader(deadline).await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if leader == self.id {
                match self.read_index(remaining).await {
                    Ok(_) => return Ok(()),
                    Err(reads::ReadIndexError::NotLeader(_)) => {}
                    Err(reads::ReadIndexError::Failed(_)) => return Err(ClientError::NoQuorum),
                }
            } else {
                match self.remote_read_index(remaining).await {
                    Ok(index) => {
                        let remaining = deadline.saturating_duration_since(Instant::now());
                        return match index {
                            None => Ok(()),
                            Some(index) => self
                                .raft
                                .wait(Some(remaining))
                                .applied_index_at_least(Some(index), "linearizable read")
                                .await
                                .map(|_| ())
                                .map_err(|_| ClientError::NoQuorum),
                        };
                    }
                    Err(reads::ReadIndexError::NotLeader(_)) => {}
                    Err(reads::ReadIndexError::Failed(_)) => return Err(ClientError::NoQuorum),
                }
            }
            if Instant::now() >= deadline {
                return Err(ClientError::NoQuorum);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // ----------------------------------------------------------------- admin

    /// Run a `RAFT.*` command.
    pub async fn admin(&self, admin: RaftAdmin) -> Reply {
        let done = |r: Result<(), String>| match r {
            Ok(()) => Reply::OK,
            Err(e) => Reply::Error(format!("ERR {e}")),
        };
        match admin {
            RaftAdmin::Info => Reply::Bulk(self.info().into()),
            RaftAdmin::Init(members) => done(self.init(&members).await),
            RaftAdmin::AddNode(id, addr) => done(self.add_node(id, &addr).await),
            RaftAdmin::RemoveNode(id) => done(self.remove_node(id).await),
            RaftAdmin::Block { to, both } => {
                self.faults.block(to, both);
                Reply::OK
            }
            RaftAdmin::Unblock(peer) => {
                self.faults.unblock(peer);
                Reply::OK
            }
            RaftAdmin::Drop(rate) => {
                self.faults.set_drop_rate(rate);
                Reply::OK
            }
            RaftAdmin::Delay(ms) => {
                self.faults.set_delay(Duration::from_millis(ms));
                Reply::OK
            }
            RaftAdmin::Clock(ms) => {
                self.engine.set_clock_offset(ms);
                Reply::OK
            }
            RaftAdmin::Clear => {
                self.faults.clear();
                self.engine.set_clock_offset(0);
                Reply::OK
            }
        }
    }

    /// The committed index this node persisted. The log store writes the
    /// record as an `Option<LogId>` (openraft may save "nothing committed").
    pub fn committed_index(&self) -> Option<u64> {
        read_state::<Option<openraft::LogId<NodeId>>>(self.engine.storage(), state_key::COMMITTED)
            .ok()
            .flatten()
            .flatten()
            .map(|id| id.index)
    }

    /// `RAFT.INFO`: `field:value` lines.
    pub fn info(&self) -> String {
        let m = self.raft.metrics().borrow().clone();
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let list = |learners: bool| {
            membership
                .nodes()
                .filter(|(id, _)| voters.contains(id) != learners)
                .map(|(id, n)| format!("{id}={}", n.addr))
                .collect::<Vec<_>>()
                .join(",")
        };
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        let faults = self.faults.snapshot();
        let own = self.credentials.own();
        let registered: Vec<String> = identity::registered(self.engine.storage())
            .unwrap_or_default()
            .iter()
            .map(|id| id.to_string())
            .collect();
        let ids = |s: &std::collections::HashSet<NodeId>| {
            let mut v: Vec<_> = s.iter().map(|i| i.to_string()).collect();
            v.sort();
            v.join(",")
        };
        let lines = [
            format!("node_id:{}", self.id),
            format!("raft_addr:{}", self.addr),
            format!("role:{role}"),
            format!("term:{}", m.current_term),
            format!("leader:{}", opt(m.current_leader)),
            format!("commit_index:{}", opt(self.committed_index())),
            format!("applied_index:{}", opt(m.last_applied.map(|l| l.index))),
            format!("last_log_index:{}", opt(m.last_log_index)),
            format!("snapshot_index:{}", opt(m.snapshot.map(|l| l.index))),
            format!("members:{}", list(false)),
            format!("learners:{}", list(true)),
            format!("fault_blocked_out:{}", ids(&faults.blocked_out)),
            format!("fault_blocked_in:{}", ids(&faults.blocked_in)),
            format!("fault_drop:{}", faults.drop_rate),
            format!("fault_delay_ms:{}", faults.delay.as_millis()),
            format!("fault_clock_ms:{}", self.engine.clock_offset_ms()),
            format!("lease_reads:{}", self.reads.leased()),
            format!(
                "read_rounds:{}",
                self.reads.rounds() + self.remote_reads.rounds()
            ),
            format!("vote_hold_ms:{}", self.hold.length().as_millis()),
            format!(
                "cluster_id:{}",
                self.credentials
                    .cluster()
                    .map(|c| format!("{c:x}"))
                    .unwrap_or_else(|| "-".into())
            ),
            format!("incarnation:{:x}", own.incarnation),
            format!("registered:{}", registered.join(",")),
            format!("refused:{}", self.credentials.refused().unwrap_or_default()),
            format!(
                "peer_auth:{}",
                if self.outbound.secret.is_some() {
                    "secret"
                } else {
                    "none"
                }
            ),
            format!("peer_refusals:{}", self.inbound.refused()),
        ];
        let mut out = lines.join("\r\n");
        out.push_str("\r\n");
        out
    }

    // ---------------------------------------------------------------- expiry

    /// As leader, propose an entry with nothing in it: applying it moves
    /// the replicated clock to this node's time.
    pub async fn propose_clock_tick(&self) {
        if let Err(e) = self.enqueue(Vec::new(), true).await {
            tracing::debug!(node = self.id, error = %e, "clock tick not proposed");
        }
    }

    /// As leader, propose the deletion of keys the sweep found expired
    /// (grouped per database).
    pub async fn propose_expired(&self, keys: Vec<(u8, Vec<u8>)>) -> usize {
        let mut by_db: BTreeMap<u8, Vec<Vec<u8>>> = BTreeMap::new();
        for (db, key) in keys {
            by_db.entry(db).or_default().push(key);
        }
        let mut deleted = 0;
        for (db, keys) in by_db {
            let mut command = vec![crate::engine::EXPIRED_COMMAND.to_vec()];
            command.extend(keys);
            match self
                .enqueue(vec![Op::commands(db, false, vec![command])], true)
                .await
            {
                Ok(replies) => {
                    if let Some(WireReply::Int(n)) = replies.first().and_then(|r| r.first()) {
                        deleted += usize::try_from(*n).unwrap_or(0);
                    }
                }
                Err(e) => tracing::debug!(node = self.id, error = %e, "expiry proposal failed"),
            }
        }
        deleted
    }
}

/// Keep this node's identity in the replicated state: once it is a member,
/// register its incarnation (and the cluster id it initialised) through
/// the log; learn the cluster id from the log; refuse to serve when the
/// cluster knows its id with another directory.
async fn register_identity(node: Arc<RaftNode>) {
    const EVERY: Duration = Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        let own = node.credentials.own();
        if let Some(why) = identity::conflict(node.engine.storage(), &own) {
            node.credentials.refuse(why);
            continue;
        }
        let storage = node.engine.storage();
        let known_cluster = identity::replicated_cluster(storage).ok().flatten();
        if own.cluster.is_none() && known_cluster.is_some() {
            if let Err(e) = node.credentials.set_cluster(known_cluster) {
                tracing::warn!(node = node.id, error = %e, "cannot record the cluster id");
            }
            continue;
        }
        let member = node
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&node.id)
            .is_some();
        let registered = identity::replicated_incarnation(storage, node.id)
            .ok()
            .flatten()
            .is_some();
        if !member || (registered && (own.cluster.is_none() || known_cluster.is_some())) {
            continue;
        }
        match node
            .enqueue(
                vec![Op::commands(0, false, vec![identity::registration(&own)])],
                false,
            )
            .await
        {
            Ok(replies) => match replies.first().and_then(|r| r.first()) {
                Some(WireReply::Error(e)) => {
                    tracing::debug!(node = node.id, error = %e, "identity not registered yet")
                }
                _ => tracing::info!(node = node.id, "identity registered"),
            },
            Err(e) => tracing::debug!(node = node.id, error = %e, "identity registration failed"),
        }
    }
}
