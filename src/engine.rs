//! The engine: storage plus everything commands share (configuration,
//! clients, statistics), and [`Engine::execute`], the one entry point every
//! way in (RESP server, embedded API) uses to run a command.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::cmd::{self, Call, CmdError, Flags, Session};
use crate::config::RuntimeConfig;
use crate::resp::{Protocol, Reply};
use crate::storage::{now_ms, Storage, StorageError};

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

pub struct Engine {
    storage: Storage,
    pub config: RwLock<RuntimeConfig>,
    pub stats: Stats,
    pub clients: Mutex<HashMap<u64, Arc<ClientInfo>>>,
    pub scan_cursors: Mutex<ScanCursors>,
    next_client_id: AtomicU64,
    started: Instant,
    pub run_id: String,
    /// The TCP port the server listens on (0 when there is none).
    pub tcp_port: std::sync::atomic::AtomicU16,
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
        let storage = Storage::open(&config.dir)?;
        let run_id: String = (0..40)
            .map(|_| char::from(b"0123456789abcdef"[rand::random_range(0..16usize)]))
            .collect();
        Ok(Engine {
            storage,
            config: RwLock::new(config),
            stats: Stats::default(),
            clients: Mutex::new(HashMap::new()),
            scan_cursors: Mutex::new(ScanCursors::default()),
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            run_id,
            tcp_port: std::sync::atomic::AtomicU16::new(0),
        })
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Register a client and give it a session. Every session must be
    /// handed back to [`Engine::disconnect`].
    pub fn connect(&self, addr: String, laddr: String) -> Session {
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
        self.clients.lock().insert(id, info.clone());
        self.stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        let authenticated = self.config.read().requirepass.is_none();
        Session::new(info, authenticated)
    }

    pub fn disconnect(&self, session: &Session) {
        self.clients.lock().remove(&session.id());
    }

    /// A session not tied to a connection (embedded use, tests).
    pub fn local_session(&self) -> Session {
        self.connect("local".into(), "local".into())
    }

    /// Run one command and return its reply. `args[0]` is the command name.
    pub fn execute(&self, session: &mut Session, args: &[Bytes]) -> Reply {
        match self.try_execute(session, args) {
            Ok(reply) => reply,
            Err(e) => Reply::Error(e.to_string()),
        }
    }

    fn try_execute(&self, session: &mut Session, args: &[Bytes]) -> Result<Reply, CmdError> {
        let Some(name) = args.first() else {
            return Err(CmdError::err("empty command"));
        };
        let Some(spec) = cmd::lookup(name) else {
            return Err(unknown_command(args));
        };
        if !spec.arity_ok(args.len()) {
            return Err(CmdError::Arity(spec.name.to_string()));
        }
        if !session.authenticated && !spec.flags.contains(Flags::NO_AUTH) {
            return Err(CmdError::Raw("NOAUTH Authentication required.".into()));
        }
        self.stats
            .commands_processed
            .fetch_add(1, Ordering::Relaxed);
        *session.info.last_cmd.lock() = spec.name;
        session
            .info
            .last_active_ms
            .store(now_ms(), Ordering::Relaxed);

        let now = now_ms();
        let ctx = self.storage.ctx(session.db, now);
        let lock = self.storage.lock();
        let _read_guard;
        let _write_guard;
        if spec.is_write() {
            _write_guard = lock.write();
        } else if !spec.flags.contains(Flags::NO_KEYS) {
            _read_guard = lock.read();
        }
        let mut call = Call {
            engine: self,
            session,
            ctx,
            args,
        };
        let result = (spec.handler)(&mut call);
        match result {
            Ok(reply) => {
                call.ctx.commit()?;
                Ok(reply)
            }
            Err(e) => {
                call.ctx.rollback();
                Err(e)
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
