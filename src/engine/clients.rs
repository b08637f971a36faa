//! Connected clients: what CLIENT LIST/INFO report about each, the table
//! CLIENT KILL and `maxclients` work on, and the session each is given.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{Engine, Mailbox, SubscriptionCounts};
use crate::cmd::Session;
use crate::storage::now_ms;

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
    /// Pub/sub messages on their way to the client.
    pub mailbox: Mailbox,
    /// How many channels, patterns and shard channels it listens to.
    pub subscribed: SubscriptionCounts,
    /// Waiting in a blocking command (CLIENT LIST's `b`).
    pub blocked: AtomicBool,
    /// CLIENT NO-EVICT ON (CLIENT LIST's `e`; Kiwi evicts no client).
    pub no_evict: AtomicBool,
    /// The ACL user it is authenticated as (`None`: the default user).
    pub user: Mutex<Option<Arc<crate::acl::AclUser>>>,
    /// CLIENT UNBLOCK's request to a blocked client: `Some(error)`.
    unblock: Mutex<Option<bool>>,
    unblocked: tokio::sync::Notify,
}

impl ClientInfo {
    /// A client that has run nothing yet, in database 0, speaking RESP2.
    pub(crate) fn new(id: u64, addr: String, laddr: String, last_active_ms: u64) -> ClientInfo {
        ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(None),
            db: AtomicU8::new(0),
            resp: AtomicU8::new(2),
            last_cmd: Mutex::new("NULL"),
            last_active_ms: AtomicU64::new(last_active_ms),
            mailbox: Mailbox::default(),
            subscribed: SubscriptionCounts::default(),
            blocked: AtomicBool::new(false),
            no_evict: AtomicBool::new(false),
            user: Mutex::new(None),
            unblock: Mutex::new(None),
            unblocked: tokio::sync::Notify::new(),
        }
    }

    /// CLIENT UNBLOCK: end this client's blocking wait now, with its
    /// timeout reply or (`error`) an UNBLOCKED error. False when it does
    /// not wait.
    pub fn request_unblock(&self, error: bool) -> bool {
        if !self.blocked.load(Ordering::Acquire) {
            return false;
        }
        *self.unblock.lock() = Some(error);
        self.unblocked.notify_one();
        true
    }

    /// Start a blocking wait (forgets an earlier, unanswered request).
    pub fn begin_block(&self) {
        *self.unblock.lock() = None;
        self.blocked.store(true, Ordering::Release);
    }

    pub fn end_block(&self) {
        self.blocked.store(false, Ordering::Release);
    }

    /// Resolves when CLIENT UNBLOCK asks; true for the error form.
    pub async fn unblock_requested(&self) -> bool {
        loop {
            if let Some(error) = self.unblock.lock().take() {
                return error;
            }
            self.unblocked.notified().await;
        }
    }
}

/// Connected clients by id (CLIENT LIST, CLIENT KILL, maxclients).
pub type ClientTable = HashMap<u64, Arc<ClientInfo>>;

impl Engine {
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
        let info = Arc::new(ClientInfo::new(id, addr, laddr, now_ms()));
        clients.insert(id, info.clone());
        self.stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        // As Redis: the default user, authenticated if it needs no password.
        let mut session = Session::new(info, !self.acl.auth_required());
        session.set_user(self.acl.default_user());
        session
    }

    pub fn disconnect(&self, session: &mut Session) {
        self.unwatch(session);
        self.pubsub
            .forget(&mut session.subscriptions, &session.info);
        self.monitors.remove(session.info.id);
        self.tracking_client_gone(session.info.id);
        self.clients.lock().remove(&session.id());
    }

    /// A session not tied to a connection (embedded use, tests).
    pub fn local_session(&self) -> Session {
        self.connect("local".into(), "local".into())
    }
}
