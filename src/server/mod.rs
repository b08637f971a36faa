#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! The RESP server: a tokio listener, one task per connection, pipelined
//! request handling, and the active-expiry sweep.

mod connection;
pub mod metrics;
mod output;

pub use crate::tls::TlsError;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use crate::config::RuntimeConfig;
use crate::engine::Engine;
use crate::raft::{RaftNode, RaftOptions};
use crate::storage::SweepCursor;
use crate::KiwiError;

/// Under Raft, how far the replicated clock may fall behind the leader's
/// before the leader proposes an empty entry to move it.
const CLOCK_TICK_MS: u64 = 200;

/// Keys the expiry sweep examines per tick.
const SWEEP_BUDGET: usize = 500;

/// A running server: its own tokio runtime, listener and engine.
/// The longest a stopping leader spends handing leadership over.
pub const HANDOVER_BOUND: Duration = Duration::from_secs(5);

/// [`Server::stop`] (or drop) shuts everything down and closes the storage.
pub struct Server {
    runtime: Option<Runtime>,
    engine: Option<Arc<Engine>>,
    raft: Option<Arc<RaftNode>>,
    shutdown: CancellationToken,
    addr: SocketAddr,
    /// Cancelled when SIGINT or SIGTERM arrives, once caught
    /// ([`Server::catch_signals`]).
    signalled: CancellationToken,
    catching_signals: bool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// Open the storage, bind the listener and start serving. Port 0 picks a
    /// free port; [`Server::addr`] tells which.
    pub fn start(config: RuntimeConfig) -> Result<Server, KiwiError> {
        Server::start_inner(config, None)
    }

    /// Start a node whose keyspace Raft replicates: the raft listener and
    /// openraft start before clients are accepted. Writes become proposals,
    /// reads wait for a read barrier, and only the leader expires keys.
    pub fn start_raft(config: RuntimeConfig, raft: RaftOptions) -> Result<Server, KiwiError> {
        Server::start_inner(config, Some(raft))
    }

    fn start_inner(config: RuntimeConfig, raft: Option<RaftOptions>) -> Result<Server, KiwiError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(match raft {
                Some(_) => config.io_threads.max(crate::config::MIN_RAFT_IO_THREADS),
                None => config.io_threads,
            })
            .thread_name("kiwi-worker")
            .enable_all()
            .build()
            .map_err(KiwiError::Io)?;
        let bind = format!("{}:{}", config.bind, config.port);
        let std_listener =
            std::net::TcpListener::bind(&bind).map_err(|e| KiwiError::Bind(bind.clone(), e))?;
        std_listener.set_nonblocking(true).map_err(KiwiError::Io)?;
        let addr = std_listener.local_addr().map_err(KiwiError::Io)?;
        // Every tls-* file is read now: a bad one stops the start.
        let tls = crate::tls::TlsState::default();
        tls.configure(&config.tls)
            .map_err(|e| KiwiError::Config(e.to_string()))?;
        let tls_listener = match tls.clients() {
            Some(_) => {
                let bind = format!("{}:{}", config.bind, config.tls.port);
                let listener = std::net::TcpListener::bind(&bind)
                    .map_err(|e| KiwiError::Bind(bind.clone(), e))?;
                listener.set_nonblocking(true).map_err(KiwiError::Io)?;
                Some(listener)
            }
            None => None,
        };
        let metrics_listener = match config.metrics_port {
            0 => None,
            port => {
                let bind = format!("{}:{}", config.bind, port);
                let listener = std::net::TcpListener::bind(&bind)
                    .map_err(|e| KiwiError::Bind(bind.clone(), e))?;
                listener.set_nonblocking(true).map_err(KiwiError::Io)?;
                Some(listener)
            }
        };
        let unixsocket = config.unixsocket.clone();
        let unixsocketperm = config.unixsocketperm;
        let engine = Arc::new(Engine::open(config)?);
        engine.tls.adopt(tls);
        if raft.is_none() {
            // Writes here would bypass the log of the cluster it belongs to.
            crate::raft::identity::check_standalone(engine.storage())
                .map_err(|e| KiwiError::Config(e.to_string()))?;
        }
        engine.tcp_port.store(addr.port(), Ordering::Relaxed);
        // With port 0 the OS chose: CONFIG GET port tells the real one.
        engine.config.write().port = addr.port();
        let shutdown = CancellationToken::new();
        let raft = match raft {
            Some(mut options) => Some(
                runtime
                    .block_on(RaftNode::start(engine.clone(), {
                        // `tls-cluster` comes from the server's settings
                        // unless the caller gave its own.
                        options.tls = options.tls.or_else(|| Some(engine.tls.clone()));
                        options
                    }))
                    .map_err(|e| KiwiError::Config(e.to_string()))?,
            ),
            None => None,
        };
        let listener = {
            let _enter = runtime.enter();
            TcpListener::from_std(std_listener).map_err(KiwiError::Io)?
        };
        runtime.spawn(accept_loop(
            engine.clone(),
            listener,
            shutdown.clone(),
            raft.clone(),
            false,
        ));
        if let Some(std_listener) = tls_listener {
            let listener = {
                let _enter = runtime.enter();
                TcpListener::from_std(std_listener).map_err(KiwiError::Io)?
            };
            if let Ok(tls_addr) = listener.local_addr() {
                tracing::info!(addr = %tls_addr, "serving TLS clients");
            }
            runtime.spawn(accept_loop(
                engine.clone(),
                listener,
                shutdown.clone(),
                raft.clone(),
                true,
            ));
        }
        #[cfg(unix)]
        if let Some(path) = unixsocket {
            // A stale socket file from an earlier run would make bind fail.
            let _ = std::fs::remove_file(&path);
            let listener = {
                let _enter = runtime.enter();
                tokio::net::UnixListener::bind(&path)
                    .map_err(|e| KiwiError::Bind(path.display().to_string(), e))?
            };
            if let Some(perm) = unixsocketperm {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(perm))
                    .map_err(KiwiError::Io)?;
            }
            runtime.spawn(accept_unix_loop(
                engine.clone(),
                listener,
                path,
                shutdown.clone(),
                raft.clone(),
            ));
        }
        if let Some(std_listener) = metrics_listener {
            let listener = {
                let _enter = runtime.enter();
                TcpListener::from_std(std_listener).map_err(KiwiError::Io)?
            };
            if let Ok(metrics_addr) = listener.local_addr() {
                tracing::info!(addr = %metrics_addr, "serving metrics at /metrics");
            }
            runtime.spawn(metrics::serve(
                engine.clone(),
                listener,
                shutdown.clone(),
                raft.clone(),
            ));
        }
        runtime.spawn(expiry_loop(engine.clone(), shutdown.clone(), raft.clone()));
        // SHUTDOWN closes every client at once; the rest of the stop
        // (Raft, the storage) follows in `Server::stop`.
        runtime.spawn({
            let (engine, shutdown) = (engine.clone(), shutdown.clone());
            async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = engine.shutdown_request.cancelled() => shutdown.cancel(),
                }
            }
        });
        tracing::info!(%addr, dir = %engine.storage().path().display(), "kiwi server ready");
        Ok(Server {
            runtime: Some(runtime),
            engine: Some(engine),
            raft,
            shutdown,
            addr,
            signalled: CancellationToken::new(),
            catching_signals: false,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn engine(&self) -> Option<&Arc<Engine>> {
        self.engine.as_ref()
    }

    /// The node's Raft, when it runs with one.
    pub fn raft(&self) -> Option<&Arc<RaftNode>> {
        self.raft.as_ref()
    }

    /// Run `future` on the server's runtime and wait for it (admin calls
    /// from synchronous code: tests, Python). `None` once stopped.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> Option<F::Output> {
        self.runtime.as_ref().map(|rt| rt.block_on(future))
    }

    /// Whether a client's SHUTDOWN stopped the server (it then serves no
    /// one; [`Server::stop`] releases the rest).
    pub fn shutdown_requested(&self) -> bool {
        self.engine
            .as_ref()
            .is_none_or(|e| e.shutdown_request.is_cancelled())
    }

    /// Catch SIGINT and SIGTERM from now on instead of letting their
    /// default action end the process: call it before telling anyone the
    /// server is ready, so a signal sent right after is a clean stop.
    /// [`Server::wait_for_signal`] returns once one arrives. Idempotent.
    pub fn catch_signals(&mut self) -> Result<(), KiwiError> {
        let Some(runtime) = &self.runtime else {
            return Ok(());
        };
        if self.catching_signals {
            return Ok(());
        }
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let _entered = runtime.enter();
            let mut term = signal(SignalKind::terminate()).map_err(KiwiError::Io)?;
            let mut int = signal(SignalKind::interrupt()).map_err(KiwiError::Io)?;
            let caught = self.signalled.clone();
            runtime.spawn(async move {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
                    _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
                }
                caught.cancel();
            });
        }
        #[cfg(not(unix))]
        {
            let caught = self.signalled.clone();
            runtime.spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    caught.cancel();
                }
            });
        }
        self.catching_signals = true;
        Ok(())
    }

    /// Block the calling thread until SIGINT or SIGTERM arrives, or a
    /// client's SHUTDOWN.
    pub fn wait_for_signal(&mut self) -> Result<(), KiwiError> {
        self.catch_signals()?;
        let (Some(runtime), Some(engine)) = (&self.runtime, &self.engine) else {
            return Ok(());
        };
        let requested = engine.shutdown_request.clone();
        let signalled = self.signalled.clone();
        runtime.block_on(async {
            tokio::select! {
                _ = signalled.cancelled() => {}
                _ = requested.cancelled() => tracing::info!("SHUTDOWN received, shutting down"),
            }
        });
        Ok(())
    }

    /// Before a clean stop (SIGTERM, SHUTDOWN): if this node leads a
    /// cluster, hand leadership to an up-to-date follower first (bounded by
    /// [`HANDOVER_BOUND`]), so that the cluster does not wait out an
    /// election. Writes arriving meanwhile go to the next leader.
    pub fn hand_over_leadership(&self) {
        if let (Some(raft), Some(runtime)) = (self.raft.as_ref(), self.runtime.as_ref()) {
            runtime.block_on(raft.hand_over(HANDOVER_BOUND));
        }
    }

    /// Stop accepting, close every connection, wait for the tasks to end and
    /// close the storage. Idempotent.
    pub fn stop(&mut self) {
        self.shutdown.cancel();
        if let (Some(raft), Some(runtime)) = (self.raft.take(), self.runtime.as_ref()) {
            runtime.block_on(raft.shutdown());
        }
        if let Some(runtime) = self.runtime.take() {
            // Tasks see the cancellation at their next await; whatever is
            // left after the grace period is dropped with the runtime.
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
        if let Some(engine) = self.engine.take() {
            if let Err(e) = engine.storage().flush() {
                tracing::warn!(error = %e, "flushing the WAL at shutdown failed");
            }
            drop(engine);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accept TCP clients (over TLS when `tls`, with the certificates loaded
/// at the moment of each accept) and serve each on its own task.
async fn accept_loop(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: CancellationToken,
    raft: Option<Arc<RaftNode>>,
    tls: bool,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                set_keepalive(&stream, engine.config.read().tcp_keepalive);
                let local = stream
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                let engine = engine.clone();
                let shutdown = shutdown.clone();
                let raft = raft.clone();
                let peer = connection::Peer {
                    addr: peer.to_string(),
                    ip: Some(peer.ip()),
                };
                let acceptor = match tls {
                    true => match engine.tls.clients() {
                        Some(acceptor) => Some(acceptor),
                        None => continue,
                    },
                    false => None,
                };
                match acceptor {
                    None => {
                        tokio::spawn(connection::serve(
                            engine, stream, peer, local, shutdown, raft,
                        ));
                    }
                    Some(acceptor) => {
                        let handshake = acceptor.accept(stream);
                        tokio::spawn(async move {
                            match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, handshake)
                                .await
                            {
                                Ok(Ok(stream)) => {
                                    connection::serve(engine, stream, peer, local, shutdown, raft)
                                        .await
                                }
                                Ok(Err(e)) => {
                                    tracing::info!(peer = %peer.addr, error = %e, "TLS handshake failed")
                                }
                                Err(_) => {
                                    tracing::info!(peer = %peer.addr, "TLS handshake timed out")
                                }
                            }
                        });
                    }
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(unix)]
async fn accept_unix_loop(
    engine: Arc<Engine>,
    listener: tokio::net::UnixListener,
    path: std::path::PathBuf,
    shutdown: CancellationToken,
    raft: Option<Arc<RaftNode>>,
) {
    let local = path.display().to_string();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let engine = engine.clone();
                let shutdown = shutdown.clone();
                // Redis shows unix-socket clients as `addr=/path:0`.
                let peer = connection::Peer {
                    addr: format!("{local}:0"),
                    ip: None,
                };
                tokio::spawn(connection::serve(
                    engine,
                    stream,
                    peer,
                    local.clone(),
                    shutdown,
                    raft.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept on unix socket failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// `tcp-keepalive` as Redis sets it on Linux: probes after `seconds` of
/// idleness, every third of that, three of them.
fn set_keepalive(stream: &tokio::net::TcpStream, seconds: u64) {
    if seconds == 0 {
        return;
    }
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(seconds))
        .with_interval(Duration::from_secs((seconds / 3).max(1)))
        .with_retries(3);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "setting TCP keepalive failed");
    }
}

/// The active expiry sweep. Under Raft only the leader sweeps, and it
/// deletes nothing itself: it proposes the deletions through the log
/// (followers never expire on their own).
async fn expiry_loop(
    engine: Arc<Engine>,
    shutdown: CancellationToken,
    raft: Option<Arc<RaftNode>>,
) {
    let mut cursor = SweepCursor::default();
    loop {
        let hz = engine.config.read().hz.max(1);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(1000 / u64::from(hz))) => {}
        }
        // As in Redis, no active expiry while a script runs (it holds the
        // keyspace; waiting for it here would hold up a worker thread), nor
        // after DEBUG SET-ACTIVE-EXPIRE 0.
        if engine.scripts.is_running() || !engine.active_expire.load(Ordering::Relaxed) {
            continue;
        }
        if let Some(node) = &raft {
            if !node.is_leader() {
                continue;
            }
            match engine
                .storage()
                .collect_expired(&mut cursor, SWEEP_BUDGET, engine.now_ms())
            {
                // Reads judge expiry by the replicated clock: while keys
                // with a TTL exist, keep it near the leader's own when no
                // entry moved it lately (an idle cluster without them
                // stays quiet).
                Ok(keys) if keys.is_empty() => {
                    let lag = engine.now_ms().saturating_sub(engine.replicated_clock_ms());
                    if lag > CLOCK_TICK_MS && cursor.saw_volatile_keys() {
                        node.propose_clock_tick().await;
                    }
                }
                Ok(keys) => {
                    let n = node.propose_expired(keys).await;
                    engine
                        .stats
                        .expired_keys
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
            continue;
        }
        let swept =
            engine
                .storage()
                .sweep_expired(&mut cursor, SWEEP_BUDGET, engine.now_ms(), |t| {
                    engine.waiters.touch(t);
                    engine.publish_expired(t);
                    engine.invalidate(t, 0);
                });
        match swept {
            Ok(n) => {
                engine
                    .stats
                    .expired_keys
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
    }
}
