//! The engine: storage plus everything commands share (configuration,
//! clients, statistics), and [`Engine::execute`], the one entry point every
//! way in (RESP server, embedded API) uses to run a command.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::cmd::{self, BlockOn, Call, CmdError, CommandSpec, Deferred, Flags, Session};
use crate::config::RuntimeConfig;
use crate::raft::Op;
use crate::resp::{Protocol, Reply};
use crate::storage::{now_ms, Ctx, Flushed, Storage, StorageError, Touched};

mod apply;
mod exec;

pub use apply::EXPIRED_COMMAND;
pub use exec::{ExecPlan, Slot};

/// What CLIENT LIST/INFO report about one connection.
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub created: Instant,
    pub name: Mutex<Option<Bytes>>,
    pub db: AtomicU8,
    pub resp: AtomicU8,
    pub last_cmd: Mutex<&'static str>,
    pub last_active_ms: AtomicU64,
}

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

/// Cursor positions of SCAN calls in progress: a cursor number stands for
/// the key the next call resumes at.
#[derive(Debug, Default)]
pub struct ScanCursors {
    next_id: u64,
    positions: HashMap<u64, Vec<u8>>,
    order: std::collections::VecDeque<u64>,
}

const MAX_SCAN_CURSORS: usize = 16 * 1024;

impl ScanCursors {
    pub fn save(&mut self, position: Vec<u8>) -> u64 {
        if self.order.len() >= MAX_SCAN_CURSORS {
            if let Some(old) = self.order.pop_front() {
                self.positions.remove(&old);
            }
        }
        // Cursor numbers never repeat and are never 0 (0 = start/end).
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let id = self.next_id;
        self.positions.insert(id, position);
        self.order.push_back(id);
        id
    }

    pub fn get(&self, id: u64) -> Option<Vec<u8>> {
        self.positions.get(&id).cloned()
    }
}

/// What running a command came to.
#[derive(Debug)]
pub enum Outcome {
    Reply(Reply),
    /// A blocking command found nothing: wait as [`BlockOn`] says, then run it again.
    Block(BlockOn),
    /// Under Raft: the command needs the cluster (a proposal, a read
    /// barrier, an admin operation); the connection awaits it.
    Defer(Deferred),
}

/// One client waiting for keys to change: a blocked pop sleeps on
/// `notify`; WATCH reads `touched` at EXEC.
#[derive(Debug, Default)]
pub struct Waiter {
    pub notify: tokio::sync::Notify,
    touched: AtomicBool,
    /// A client blocked in BLPOP and friends (not a WATCH): blocked clients
    /// of a key are woken one at a time, oldest first, as Redis serves them.
    blocked: bool,
}

impl Waiter {
    /// The waiter of a blocked command.
    pub fn blocked_client() -> Waiter {
        Waiter {
            blocked: true,
            ..Waiter::default()
        }
    }

    pub fn is_touched(&self) -> bool {
        self.touched.load(Ordering::Acquire)
    }

    fn touch(&self) {
        self.touched.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

/// Wake every WATCH on a key's list and its oldest blocked client.
fn wake(list: &[Arc<Waiter>]) {
    let mut blocked_woken = false;
    for w in list {
        if !w.blocked {
            w.touch();
        } else if !blocked_woken {
            w.touch();
            blocked_woken = true;
        }
    }
}

/// A key of one database: (database, key).
pub type DbKey = (u8, Vec<u8>);

/// Who waits on which key.
#[derive(Debug, Default)]
pub struct KeyWaiters {
    by_key: Mutex<HashMap<DbKey, Vec<Arc<Waiter>>>>,
    registered: AtomicUsize,
}

impl KeyWaiters {
    pub fn is_empty(&self) -> bool {
        self.registered.load(Ordering::Acquire) == 0
    }

    pub fn register(&self, key: &DbKey, waiter: &Arc<Waiter>) {
        self.by_key
            .lock()
            .entry(key.clone())
            .or_default()
            .push(waiter.clone());
        self.registered.fetch_add(1, Ordering::AcqRel);
    }

    /// Forget `waiter` on `key`. A blocked client leaving (served, timed
    /// out, gone) hands its turn to the next one, in case what woke it is
    /// still there to take.
    pub fn unregister(&self, key: &DbKey, waiter: &Arc<Waiter>) {
        let mut map = self.by_key.lock();
        if let Some(list) = map.get_mut(key) {
            if let Some(pos) = list.iter().position(|w| Arc::ptr_eq(w, waiter)) {
                // `remove`, not `swap_remove`: the list is in arrival order.
                list.remove(pos);
                self.registered.fetch_sub(1, Ordering::AcqRel);
                if waiter.blocked {
                    // Nothing was written: only the next blocked client
                    // is woken, never a WATCH (its EXEC would fail).
                    if let Some(next) = list.iter().find(|w| w.blocked) {
                        next.touch();
                    }
                }
            }
            if list.is_empty() {
                map.remove(key);
            }
        }
    }

    /// The keys waited on in database `db` (`None`: in every one).
    pub fn keys_in(&self, dbs: Flushed) -> Vec<DbKey> {
        self.by_key
            .lock()
            .keys()
            .filter(|(d, _)| dbs.contains(*d))
            .cloned()
            .collect()
    }

    /// Wake who waits on a key the command changed: every WATCH, and the
    /// oldest blocked client (the next one gets its turn when it leaves).
    pub fn touch(&self, touched: &Touched) {
        let map = self.by_key.lock();
        if !touched.flushed.is_empty() {
            for ((db, _), list) in map.iter() {
                if touched.flushed.contains(*db) {
                    wake(list);
                }
            }
        }
        for key in &touched.keys {
            if let Some(list) = map.get(key) {
                wake(list);
            }
        }
    }
}

/// Connected clients by id (CLIENT LIST, CLIENT KILL, maxclients).
pub type ClientTable = HashMap<u64, Arc<ClientInfo>>;

pub struct Engine {
    storage: Storage,
    pub config: RwLock<RuntimeConfig>,
    /// The certificates `tls-*` names, as loaded (CONFIG SET reloads them).
    pub tls: Arc<crate::tls::TlsState>,
    pub stats: Stats,
    pub clients: Mutex<ClientTable>,
    pub scan_cursors: Mutex<ScanCursors>,
    next_client_id: AtomicU64,
    started: Instant,
    pub run_id: String,
    /// Clients waiting for keys to change (blocked pops, WATCH).
    pub waiters: KeyWaiters,
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
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("storage", &self.storage)
            .finish()
    }
}

impl Engine {
    pub fn open(config: RuntimeConfig) -> Result<Engine, StorageError> {
        let storage = Storage::open_with(&config.dir, config.appendfsync)?;
        let run_id: String = (0..40)
            .map(|_| char::from(b"0123456789abcdef"[rand::random_range(0..16usize)]))
            .collect();
        Ok(Engine {
            storage,
            config: RwLock::new(config),
            tls: Arc::default(),
            stats: Stats::default(),
            clients: Mutex::new(HashMap::new()),
            scan_cursors: Mutex::new(ScanCursors::default()),
            waiters: KeyWaiters::default(),
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            run_id,
            tcp_port: std::sync::atomic::AtomicU16::new(0),
            replicated: AtomicBool::new(false),
            applied_next: AtomicU64::new(0),
            clock_offset_ms: AtomicI64::new(0),
            replicated_clock_ms: AtomicU64::new(0),
        })
    }

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

    /// Register a client and give it a session. Every session must be
    /// handed back to [`Engine::disconnect`].
    pub fn connect(&self, addr: String, laddr: String) -> Session {
        let mut clients = self.clients.lock();
        self.register(&mut clients, addr, laddr)
    }

    /// Register a client unless `maxclients` are already connected: the
    /// count and the registration happen under one lock, so simultaneous
    /// connections cannot all slip in under the limit.
    pub fn connect_within(
        &self,
        addr: String,
        laddr: String,
        maxclients: usize,
    ) -> Option<Session> {
        let mut clients = self.clients.lock();
        (clients.len() < maxclients).then(|| self.register(&mut clients, addr, laddr))
    }

    fn register(&self, clients: &mut ClientTable, addr: String, laddr: String) -> Session {
        let id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(None),
            db: AtomicU8::new(0),
            resp: AtomicU8::new(2),
            last_cmd: Mutex::new("NULL"),
            last_active_ms: AtomicU64::new(now_ms()),
        });
        clients.insert(id, info.clone());
        self.stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        let authenticated = self.config.read().requirepass.is_none();
        Session::new(info, authenticated)
    }

    pub fn disconnect(&self, session: &mut Session) {
        self.unwatch(session);
        self.clients.lock().remove(&session.id());
    }

    /// A session not tied to a connection (embedded use, tests).
    pub fn local_session(&self) -> Session {
        self.connect("local".into(), "local".into())
    }

    /// Run one command and return its reply. `args[0]` is the command name.
    /// A blocking command that finds nothing answers its timeout reply at
    /// once (there is no connection to wait on).
    pub fn execute(&self, session: &mut Session, args: &[Bytes]) -> Reply {
        match self.execute_or_block(session, args) {
            Outcome::Reply(reply) => reply,
            Outcome::Block(block) => block.refused_reply,
            Outcome::Defer(Deferred::Read) => self.execute_local(session, args),
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
        self.outcome(self.dispatch(session, args, true))
    }

    /// Run one command; a blocking command that finds nothing to take
    /// answers [`Outcome::Block`] and the caller decides how to wait.
    pub fn execute_or_block(&self, session: &mut Session, args: &[Bytes]) -> Outcome {
        self.outcome(self.dispatch(session, args, false))
    }

    fn outcome(&self, result: Result<Reply, CmdError>) -> Outcome {
        match result {
            Ok(reply) => Outcome::Reply(reply),
            Err(CmdError::Block(block)) => Outcome::Block(block),
            Err(CmdError::Defer(deferred)) => Outcome::Defer(deferred),
            Err(e) => Outcome::Reply(Reply::Error(e.to_string())),
        }
    }

    /// `local`: a keyed read runs here without asking Raft first.
    fn dispatch(
        &self,
        session: &mut Session,
        args: &[Bytes],
        local: bool,
    ) -> Result<Reply, CmdError> {
        let Some(name) = args.first() else {
            return Err(CmdError::err("empty command"));
        };
        let checked = match cmd::lookup(name) {
            Some(spec) if spec.arity_ok(args.len()) => spec.check_subcommand(args).map(|()| spec),
            Some(spec) => Err(CmdError::Arity(spec.name.to_string())),
            None => Err(unknown_command(args)),
        };
        let spec = match checked {
            Ok(spec) => spec,
            Err(e) if name.eq_ignore_ascii_case(b"exec") => {
                // Redis answers a malformed EXEC by discarding the transaction.
                session.multi = None;
                session.multi_failed = false;
                self.unwatch(session);
                return Err(CmdError::Raw(format!(
                    "EXECABORT Transaction discarded because of: {}",
                    e.to_string().trim_start_matches("ERR ")
                )));
            }
            Err(e) => {
                // Inside MULTI a command that cannot run makes EXEC fail.
                if session.multi.is_some() {
                    session.multi_failed = true;
                }
                return Err(e);
            }
        };
        // As Redis: a protected command is refused before AUTH is asked for.
        if spec.flags.contains(Flags::PROTECTED)
            && !self
                .config
                .read()
                .fault_injection
                .allows(&session.info.addr)
        {
            if session.multi.is_some() {
                session.multi_failed = true;
            }
            return Err(CmdError::err(cmd::raft::FAULTS_OFF));
        }
        if !session.authenticated && !spec.flags.contains(Flags::NO_AUTH) {
            return Err(CmdError::Raw("NOAUTH Authentication required.".into()));
        }
        // While writes fail in the file system, Redis refuses every write
        // command and PING (so health checks notice) with MISCONF, inside
        // MULTI too (EXEC then aborts); reads go on.
        if spec.is_write() || spec.name == "ping" {
            if let Err(e) = self.storage.check_writable() {
                if session.multi.is_some() {
                    session.multi_failed = true;
                }
                return Err(e.into());
            }
        }
        if session.multi.is_some() && !spec.flags.contains(Flags::TRANSACTION) {
            if let Some(queue) = session.multi.as_mut() {
                queue.push(args.to_vec());
            }
            return Ok(Reply::Status("QUEUED"));
        }
        if self.is_replicated() {
            if spec.is_write() {
                // A blocking command with nothing to take here waits on this
                // node's keys rather than proposing an entry that would
                // answer its timeout reply at once.
                if spec.is_blocking() {
                    if let Err(CmdError::Block(block)) = self.probe(spec, session, args) {
                        return Err(CmdError::Block(block));
                    }
                }
                // This node's configured limits are judged here, where the
                // client sent the command, on this node's data once it holds
                // every write acknowledged before (a read barrier first, as
                // for a read: the client's own last write may not be applied
                // here yet). The apply uses fixed limits, so every node
                // applies the entry alike.
                if spec.has_node_limits() {
                    if !local {
                        return Err(CmdError::Defer(Deferred::Read));
                    }
                    if let Err(e @ CmdError::NodeLimit(_)) = self.probe(spec, session, args) {
                        return Err(e);
                    }
                }
                return Err(CmdError::Defer(Deferred::Propose(Op::commands(
                    session.db,
                    session.protocol == Protocol::Resp3,
                    vec![args.iter().map(|a| a.to_vec()).collect()],
                ))));
            }
            // WATCH too: what it records as seen must include every write
            // acknowledged before it, or the client's own write could abort
            // its transaction.
            let keyed = !spec.flags.contains(Flags::NO_KEYS) || spec.name == "watch";
            if !local && !session.stale_reads && keyed {
                return Err(CmdError::Defer(Deferred::Read));
            }
        }
        self.run(spec, session, args, false)
    }

    /// Whether `args` becomes a plain Raft proposal of its own when run now
    /// (a replicated write outside MULTI that cannot block and has no limit
    /// of this node's to check), so a pipeline may propose it in one entry
    /// with the writes around it.
    pub fn proposes(&self, session: &Session, args: &[Bytes]) -> bool {
        self.is_replicated()
            && session.multi.is_none()
            && session.authenticated
            && args
                .first()
                .and_then(|name| cmd::lookup(name))
                .is_some_and(|spec| {
                    spec.arity_ok(args.len())
                        && spec.is_write()
                        && !spec.is_blocking()
                        && !spec.has_node_limits()
                })
    }

    /// A data command that may share a batch with its neighbours in a
    /// pipeline: known, right arity, touching keys, outside MULTI.
    fn groupable(&self, session: &Session, args: &[Bytes]) -> Option<&'static CommandSpec> {
        // Under Raft every write is proposed and every read linearized;
        // after a failed write each command is checked on its own.
        if session.multi.is_some()
            || !session.authenticated
            || self.is_replicated()
            || self.storage.write_failed()
        {
            return None;
        }
        let spec = cmd::lookup(args.first()?)?;
        (spec.arity_ok(args.len()) && !spec.flags.contains(Flags::NO_KEYS)).then_some(spec)
    }

    /// Run pipelined requests in order. Consecutive data commands share one
    /// hold of the storage lock and one RocksDB batch — each behind a
    /// savepoint, so a failing one drops only its own writes — so a
    /// pipelining client costs one RocksDB write per batch, not per command.
    /// Replies come back for the requests run; if one must block, or must
    /// go through Raft ([`Outcome::Defer`]), its outcome is returned and the
    /// requests after it have not run. Nothing runs after QUIT.
    pub fn execute_pipeline(
        &self,
        session: &mut Session,
        requests: &[Vec<Bytes>],
    ) -> (Vec<Reply>, Option<Outcome>) {
        let mut replies = Vec::with_capacity(requests.len());
        let mut i = 0;
        while i < requests.len() && !session.quit {
            let run = requests[i..]
                .iter()
                .take_while(|args| self.groupable(session, args).is_some())
                .count();
            if run >= 2 {
                if let Some(block) = self.run_group(session, &requests[i..i + run], &mut replies) {
                    return (replies, Some(Outcome::Block(block)));
                }
                i += run;
                continue;
            }
            match self.execute_or_block(session, &requests[i]) {
                Outcome::Reply(reply) => replies.push(reply),
                stop => return (replies, Some(stop)),
            }
            i += 1;
        }
        (replies, None)
    }

    /// Run a group of data commands under one lock hold and commit them as
    /// one batch; replies are pushed only once the batch is durable.
    fn run_group(
        &self,
        session: &mut Session,
        group: &[Vec<Bytes>],
        replies: &mut Vec<Reply>,
    ) -> Option<BlockOn> {
        let specs: Vec<&'static CommandSpec> = group
            .iter()
            .filter_map(|a| self.groupable(session, a))
            .collect();
        let lock = self.storage.lock();
        let _read_guard;
        let _write_guard;
        if specs.iter().any(|s| s.is_write()) {
            _write_guard = lock.write();
        } else {
            _read_guard = lock.read();
        }
        let now = now_ms();
        let mut ctx = self.storage.ctx(session.db, now);
        let mut results = Vec::with_capacity(group.len());
        let mut blocked = None;
        for (spec, args) in specs.iter().zip(group) {
            self.stats
                .commands_processed
                .fetch_add(1, Ordering::Relaxed);
            *session.info.last_cmd.lock() = spec.name;
            ctx.savepoint();
            let (result, back) = self.call_handler(spec, session, args, ctx);
            ctx = back;
            match result {
                Ok(reply) => results.push(reply),
                Err(CmdError::Block(block)) => {
                    blocked = Some(block);
                    break;
                }
                Err(e) => results.push(Reply::Error(e.to_string())),
            }
        }
        session.info.last_active_ms.store(now, Ordering::Relaxed);
        if ctx.is_dirty() {
            let touched = self.touched_by(&ctx);
            if let Err(e) = ctx.commit() {
                // Nothing of the group is stored: none of it may look done.
                let error = Reply::Error(CmdError::from(e).to_string());
                results.iter_mut().for_each(|r| *r = error.clone());
            } else if let Some(touched) = touched {
                self.waiters.touch(&touched);
            }
        }
        replies.extend(results);
        blocked
    }

    /// Run `spec`. `locked`: the caller (EXEC) already holds the storage
    /// lock exclusively.
    pub(crate) fn run(
        &self,
        spec: &'static CommandSpec,
        session: &mut Session,
        args: &[Bytes],
        locked: bool,
    ) -> Result<Reply, CmdError> {
        self.stats
            .commands_processed
            .fetch_add(1, Ordering::Relaxed);
        *session.info.last_cmd.lock() = spec.name;
        session
            .info
            .last_active_ms
            .store(now_ms(), Ordering::Relaxed);

        let ctx = self.storage.ctx(session.db, self.read_now_ms());
        let lock = self.storage.lock();
        let _read_guard;
        let _write_guard;
        if !locked {
            if spec.is_write() {
                _write_guard = lock.write();
            } else if !spec.flags.contains(Flags::NO_KEYS) {
                _read_guard = lock.read();
            }
        }
        let (result, mut ctx) = self.call_handler(spec, session, args, ctx);
        let reply = result?;
        if ctx.is_dirty() {
            let touched = self.touched_by(&ctx);
            ctx.commit()?;
            // Still under the lock: EXEC checks WATCH under it too.
            if let Some(touched) = touched {
                self.waiters.touch(&touched);
            }
        }
        Ok(reply)
    }

    /// What `ctx`'s writes change for waiters, if anyone waits; called
    /// before the batch is committed. A flush counts only for the keys it
    /// deletes, as in Redis (a WATCH of a key that did not exist holds).
    pub(crate) fn touched_by(&self, ctx: &Ctx<'_>) -> Option<Touched> {
        if self.waiters.is_empty() {
            return None;
        }
        let mut touched = ctx.touched();
        let flushed = std::mem::take(&mut touched.flushed);
        if !flushed.is_empty() {
            for (db, key) in self.waiters.keys_in(flushed) {
                // Unsure (a read error): wake it, which is only spurious.
                let existed = self
                    .storage
                    .ctx(db, 0)
                    .get_raw_meta(&key)
                    .map_or(true, |meta| meta.is_some());
                if existed {
                    touched.keys.push((db, key));
                }
            }
        }
        Some(touched)
    }

    /// Run `spec` against this node's data and throw its writes away: what
    /// the command would do here now.
    fn probe(
        &self,
        spec: &'static CommandSpec,
        session: &mut Session,
        args: &[Bytes],
    ) -> Result<Reply, CmdError> {
        let ctx = self.storage.ctx(session.db, self.read_now_ms());
        let _read_guard = self.storage.lock().read();
        let (result, _discarded) = self.call_handler(spec, session, args, ctx);
        result
    }

    /// Run `spec`'s function against `ctx` and hand the context back; a
    /// failed command's writes are rolled back (to the savepoint, if any).
    fn call_handler<'a>(
        &'a self,
        spec: &'static CommandSpec,
        session: &mut Session,
        args: &[Bytes],
        ctx: Ctx<'a>,
    ) -> (Result<Reply, CmdError>, Ctx<'a>) {
        let mut call = Call {
            engine: self,
            session,
            ctx,
            args,
        };
        let result = (spec.handler)(&mut call);
        if result.is_err() {
            call.ctx.rollback();
        }
        (result, call.ctx)
    }

    /// EXEC: run the queued commands under one exclusive hold of the
    /// storage lock, so no other client's command lands in between, and
    /// commit their writes as one batch, so a crash never leaves half of
    /// the transaction on disk (each command behind a savepoint: a failing
    /// one drops only its own writes).
    pub(crate) fn exec_queued(&self, session: &mut Session, queue: Vec<Vec<Bytes>>) -> Reply {
        let _guard = self.storage.lock().write();
        if session.watch.as_ref().is_some_and(|w| w.is_touched()) {
            self.unwatch(session);
            return Reply::NilArray;
        }
        self.unwatch(session);
        let specs: Vec<Option<&'static CommandSpec>> = queue
            .iter()
            .map(|args| args.first().and_then(|name| cmd::lookup(name)))
            .collect();
        if specs.iter().flatten().any(|spec| spec.is_write()) {
            if let Err(e) = self.storage.check_writable() {
                return exec_abort(e);
            }
        }
        let now = self.read_now_ms();
        let mut ctx = self.storage.ctx(session.db, now);
        let mut replies = Vec::with_capacity(queue.len());
        for (args, spec) in queue.iter().zip(specs) {
            let Some(spec) = spec else {
                replies.push(Reply::Error(unknown_command(args).to_string()));
                continue;
            };
            self.stats
                .commands_processed
                .fetch_add(1, Ordering::Relaxed);
            *session.info.last_cmd.lock() = spec.name;
            // SELECT inside the transaction moves the commands after it.
            ctx.db = session.db;
            ctx.savepoint();
            let (result, back) = self.call_handler(spec, session, args, ctx);
            ctx = back;
            replies.push(match result {
                Ok(reply) => reply,
                Err(CmdError::Block(block)) => block.refused_reply,
                Err(e) => Reply::Error(e.to_string()),
            });
        }
        session
            .info
            .last_active_ms
            .store(now_ms(), Ordering::Relaxed);
        if ctx.is_dirty() {
            let touched = self.touched_by(&ctx);
            if let Err(e) = ctx.commit() {
                // Nothing of it is stored: none of it may look done.
                return exec_abort(e);
            }
            if let Some(touched) = touched {
                self.waiters.touch(&touched);
            }
        }
        Reply::Array(replies)
    }

    /// WATCH: remember `keys` of the session's database; a write to any of
    /// them makes the next EXEC fail. Under Raft each key also records what
    /// the client has seen — the entries applied here so far, and whether
    /// the key existed — which EXEC's entry carries so that every node
    /// checks it again at apply.
    pub(crate) fn watch(&self, session: &mut Session, keys: &[Bytes]) -> Result<(), StorageError> {
        let waiter = session
            .watch
            .get_or_insert_with(|| Arc::new(Waiter::default()))
            .clone();
        let replicated = self.is_replicated();
        let _read_guard = replicated.then(|| self.storage.lock().read());
        // Read before the keys: a later entry is then never counted as seen.
        let seen = self.applied_next.load(Ordering::Acquire);
        let ctx = self.storage.ctx(session.db, self.read_now_ms());
        for key in keys {
            let db = session.db;
            if session
                .watched_keys
                .iter()
                .any(|w| w.db == db && w.key == key[..])
            {
                continue;
            }
            let existed = replicated && ctx.get_meta(key)?.is_some();
            self.waiters.register(&(db, key.to_vec()), &waiter);
            session.watched_keys.push(crate::raft::Watched {
                db,
                key: key.to_vec(),
                seen,
                existed,
            });
        }
        Ok(())
    }

    /// Forget every watched key of the session.
    pub fn unwatch(&self, session: &mut Session) {
        if let Some(waiter) = session.watch.take() {
            for w in session.watched_keys.drain(..) {
                self.waiters.unregister(&(w.db, w.key), &waiter);
            }
        }
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

/// EXEC's reply when its writes cannot be stored, as Redis words it.
fn exec_abort(e: StorageError) -> Reply {
    Reply::Error(format!(
        "EXECABORT Transaction discarded because of: {}",
        CmdError::from(e)
    ))
}

/// Redis's text for an unknown command: the name and the first arguments,
/// each quoted and followed by a space, cut at about 128 characters.
fn unknown_command(args: &[Bytes]) -> CmdError {
    let name: String = String::from_utf8_lossy(&args[0])
        .chars()
        .take(128)
        .collect();
    let mut listed = String::new();
    for arg in &args[1..] {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        let text = String::from_utf8_lossy(arg);
        let cut: String = text.chars().take(room).collect();
        listed.push('\'');
        listed.push_str(&cut);
        listed.push_str("' ");
    }
    CmdError::err(format!(
        "unknown command '{name}', with args beginning with: {listed}"
    ))
}

/// Seconds and microseconds of the wall clock (TIME).
pub fn wall_clock() -> (u64, u64) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), u64::from(d.subsec_micros()))
}
