//! The engine: [`Shared`], the state commands share (storage,
//! configuration, clients, statistics, waiters, scan cursors, clocks), and
//! [`Engine`], which runs commands: [`Engine::execute`] and its siblings
//! are the entry points every way in (RESP server, embedded API) uses.
//! Commands see only [`Shared`], so none can run another.
//!
//! - `dispatch`: the checks before a command runs, and running it;
//! - `pipeline`: pipelined commands sharing one lock hold and one batch;
//! - `exec`: MULTI/EXEC's transaction and WATCH, standalone and under Raft;
//! - `apply`: a replicated entry, the Raft state machine's way in;
//! - `clients`, `waiters`: who is connected, who waits for which key;
//! - `pubsub`, `mailbox`: who listens to which channel, and the messages
//!   on their way to each client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::cmd::{Deferred, ScanCursors, Session};
use crate::config::RuntimeConfig;
use crate::resp::{Protocol, Reply};
use crate::storage::{now_ms, Storage, StorageError};

mod acl;
mod apply;
mod backup;
mod clients;
mod dispatch;
mod exec;
mod mailbox;
mod monitor;
mod notify;
mod observe;
mod pause;
mod pipeline;
mod pubsub;
mod script;
mod tracking;
mod waiters;

pub use crate::cmd::Outcome;
pub use acl::{context_of, pubsub_all, strerror, AS_USER_COMMAND};
pub use apply::EXPIRED_COMMAND;
pub use clients::{ClientInfo, ClientTable};
pub use exec::{ExecPlan, Slot};
pub use mailbox::Mailbox;
pub use observe::{LatencyEvent, Observer, SlowEntry};
pub use pause::{ClientPause, PauseKind};
pub use pubsub::{confirmation, Kind, PubSub, SubscriptionCounts, Subscriptions};
pub use tracking::TrackingMode;
pub use waiters::{DbKey, KeyWaiters, Waiter};

/// Counters INFO stats reports.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections_received: AtomicU64,
    pub commands_processed: AtomicU64,
    pub expired_keys: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub blocked_clients: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
}

/// The engine's state: what commands may reach while they run (through
/// [`Call`](crate::cmd::Call)). Running commands is [`Engine`]'s alone, so
/// no command can run another one.
pub struct Shared {
    storage: Storage,
    /// What CONFIG GET/SET read and change.
    pub config: RwLock<RuntimeConfig>,
    /// The certificates `tls-*` names, as loaded (CONFIG SET reloads them).
    pub tls: Arc<crate::tls::TlsState>,
    pub stats: Stats,
    pub clients: Mutex<ClientTable>,
    /// SCAN's cursors, valid on any connection.
    pub scan_cursors: Mutex<ScanCursors>,
    next_client_id: AtomicU64,
    started: Instant,
    /// INFO's `run_id`: random, new at every start.
    pub run_id: String,
    /// Clients waiting for keys to change (blocked pops, WATCH).
    pub waiters: KeyWaiters,
    /// CLIENT TRACKING: who tracks, who read what.
    pub tracking: tracking::Tracking,
    /// Clients in MONITOR mode.
    pub monitors: monitor::Monitors,
    /// The Lua interpreter, the script cache, the script running now.
    pub scripts: crate::script::Scripts,
    /// Pub/sub: who listens to which channel.
    pub pubsub: PubSub,
    /// ACL users, the ACL log.
    pub acl: crate::acl::Acl,
    /// CLIENT PAUSE: commands held back for a while.
    pub pause: ClientPause,
    /// Commandstats, errorstats, the slow log, latency events.
    pub observer: Observer,
    /// SAVE / BGSAVE: the last checkpoint, changes since.
    pub saves: Arc<backup::Saves>,
    /// DEBUG SET-ACTIVE-EXPIRE: whether the expiry sweep runs.
    pub active_expire: AtomicBool,
    /// The TCP port the server listens on (0 when there is none).
    pub tcp_port: std::sync::atomic::AtomicU16,
    /// The keyspace is replicated by Raft: writes become proposals, reads
    /// wait for a read barrier, only applied entries change it.
    replicated: AtomicBool,
    /// Under Raft: one past the last applied log index (0: none applied).
    /// What a WATCH records as seen.
    applied_next: AtomicU64,
    /// Milliseconds added to this node's clock (`RAFT.FAULT CLOCK`, a
    /// fault injected by tests; 0 otherwise).
    clock_offset_ms: AtomicI64,
    /// Under Raft: the replicated clock as of the last applied entry. Reads
    /// judge expiry by it, not by this node's clock, so a read never sees
    /// a key that a read before it (on any node) saw expired.
    replicated_clock_ms: AtomicU64,
    /// SHUTDOWN asked the server this engine serves to stop (the same path
    /// as SIGTERM: `Server::wait_for_signal` returns, connections close).
    pub shutdown_request: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("storage", &self.storage)
            .finish()
    }
}

/// Runs commands: every way in (RESP server, embedded API, Raft state
/// machine) goes through it. Its state is [`Shared`], which it derefs to.
#[derive(Debug)]
pub struct Engine {
    shared: Shared,
}

impl std::ops::Deref for Engine {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Engine {
    pub fn open(config: RuntimeConfig) -> Result<Engine, StorageError> {
        let storage = Storage::open_sized(&config.dir, config.appendfsync, config.memory)?;
        storage.notify_mask().set(config.notify_keyspace_events);
        let run_id: String = (0..40)
            .map(|_| char::from(b"0123456789abcdef"[rand::random_range(0..16usize)]))
            .collect();
        let shared = Shared {
            storage,
            config: RwLock::new(config),
            tls: Arc::default(),
            stats: Stats::default(),
            clients: Mutex::new(HashMap::new()),
            scan_cursors: Mutex::new(ScanCursors::default()),
            waiters: KeyWaiters::default(),
            scripts: crate::script::Scripts::default(),
            monitors: monitor::Monitors::default(),
            tracking: tracking::Tracking::default(),
            pubsub: PubSub::default(),
            acl: crate::acl::Acl::new(),
            pause: ClientPause::default(),
            observer: Observer::new(crate::cmd::command_names()),
            saves: Arc::default(),
            active_expire: AtomicBool::new(true),
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            run_id,
            tcp_port: std::sync::atomic::AtomicU16::new(0),
            replicated: AtomicBool::new(false),
            applied_next: AtomicU64::new(0),
            clock_offset_ms: AtomicI64::new(0),
            replicated_clock_ms: AtomicU64::new(0),
            shutdown_request: tokio_util::sync::CancellationToken::new(),
        };
        let config = shared.config.read().clone();
        shared.observe_config(&config);
        shared
            .load_acl_at_start(&config)
            .map_err(|reason| StorageError::Open {
                path: config.dir.clone(),
                reason,
            })?;
        Ok(Engine { shared })
    }

    /// Run one command and return its reply. `args[0]` is the command name.
    /// A blocking command that finds nothing answers its timeout reply at
    /// once (there is no connection to wait on).
    pub fn execute(&self, session: &mut Session, args: &[Bytes]) -> Reply {
        match self.execute_or_block(session, args) {
            Outcome::Reply(reply) => reply,
            Outcome::Block(block) => block.refused_reply,
            // No connection to wait on: a busy script is waited for on the lock.
            Outcome::Defer(Deferred::Read | Deferred::AfterScript(_)) => {
                self.execute_local(session, args)
            }
            Outcome::Defer(Deferred::Exec(plan)) if !plan.needs_entry() => {
                self.finish_exec(session, plan.slots, plan.db_after, None)
            }
            Outcome::Defer(_) => Reply::error("ERR this command needs a raft node's server"),
        }
    }

    /// Run a command on this node's keyspace without Raft's read barrier
    /// (after the caller passed it, or for a stale read). Writes still
    /// become proposals under Raft.
    pub fn execute_local(&self, session: &mut Session, args: &[Bytes]) -> Reply {
        match self.execute_after_barrier(session, args) {
            Outcome::Reply(reply) => reply,
            Outcome::Block(block) => block.refused_reply,
            Outcome::Defer(_) => Reply::error("ERR this command needs a raft node's server"),
        }
    }

    /// What a command comes to once the caller passed Raft's read barrier
    /// ([`Deferred::Read`]): a read's reply, or for a write checked against
    /// this node's limits, its refusal or its proposal.
    pub fn execute_after_barrier(&self, session: &mut Session, args: &[Bytes]) -> Outcome {
        outcome(self.dispatch(session, args, true))
    }

    /// Run one command; a blocking command that finds nothing to take
    /// answers [`Outcome::Block`] and the caller decides how to wait.
    pub fn execute_or_block(&self, session: &mut Session, args: &[Bytes]) -> Outcome {
        outcome(self.dispatch(session, args, false))
    }

    /// Convenience for callers that hold plain byte strings.
    pub fn execute_args<A: AsRef<[u8]>>(&self, session: &mut Session, args: &[A]) -> Reply {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_ref()))
            .collect();
        self.execute(session, &args)
    }

    pub fn protocol_of(session: &Session) -> Protocol {
        session.protocol
    }
}

impl Shared {
    /// Whether writes go through Raft (see [`Outcome::Defer`]).
    pub fn is_replicated(&self) -> bool {
        self.replicated.load(Ordering::Acquire)
    }

    pub fn set_replicated(&self, on: bool) {
        self.replicated.store(on, Ordering::Release);
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Hand the slow log and latency thresholds to the observer (at start
    /// and after CONFIG SET).
    pub fn observe_config(&self, config: &RuntimeConfig) {
        let compat = &config.compat;
        self.observer.configure(
            compat.int("slowlog-log-slower-than").unwrap_or(10_000),
            compat
                .int("slowlog-max-len")
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(128),
            compat
                .int("latency-monitor-threshold")
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
        );
    }

    /// This node's clock, in milliseconds since the Unix epoch, shifted by
    /// an injected clock fault if any.
    pub fn now_ms(&self) -> u64 {
        let offset = self.clock_offset_ms.load(Ordering::Relaxed);
        now_ms().saturating_add_signed(offset)
    }

    /// The injected clock shift, in ms.
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms.load(Ordering::Relaxed)
    }

    /// Shift this node's clock by `offset_ms` (a fault for tests; 0 resets).
    pub fn set_clock_offset(&self, offset_ms: i64) {
        self.clock_offset_ms.store(offset_ms, Ordering::Relaxed);
    }

    /// Record that entries up to `index` are applied (`None`: none), and
    /// the replicated clock they reached.
    pub(crate) fn set_applied(&self, index: Option<u64>, clock_ms: u64) {
        let next = index.map_or(0, |i| i.saturating_add(1));
        self.replicated_clock_ms.store(clock_ms, Ordering::Release);
        self.applied_next.store(next, Ordering::Release);
    }

    /// The replicated clock as of the last applied entry (0: none).
    pub fn replicated_clock_ms(&self) -> u64 {
        self.replicated_clock_ms.load(Ordering::Acquire)
    }

    /// The time a read judges expiry by: this node's clock standalone; the
    /// replicated clock under Raft (every node's reads then agree, and a
    /// later read never brings back a key an earlier one saw expired; the
    /// leader keeps that clock moving, see the expiry sweep).
    pub fn read_now_ms(&self) -> u64 {
        match self.is_replicated() {
            true => self.replicated_clock_ms(),
            false => self.now_ms(),
        }
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// Run `f`, which may take long (a script), without holding up the other
/// tasks of this tokio worker: on a multi-threaded runtime they move to
/// another thread meanwhile, so clients keep being served (and answered
/// BUSY) while a script runs even with one worker.
pub fn long_running<R>(f: impl FnOnce() -> R) -> R {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    match multi_thread {
        true => tokio::task::block_in_place(f),
        false => f(),
    }
}

/// A failed command's outcome is its error reply.
fn outcome(result: crate::cmd::CmdResult<Outcome>) -> Outcome {
    result.unwrap_or_else(|e| Outcome::Reply(Reply::Error(e.to_string())))
}

/// Seconds and microseconds of the wall clock (TIME).
pub fn wall_clock() -> (u64, u64) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), u64::from(d.subsec_micros()))
}
