//! Per-connection state: selected database, protocol, name, authentication.

use std::sync::Arc;

use bytes::Bytes;

use crate::engine::{ClientInfo, Waiter};
use crate::resp::Protocol;

#[derive(Debug)]
pub struct Session {
    pub db: u8,
    pub protocol: Protocol,
    pub authenticated: bool,
    /// Set by QUIT: the connection closes after this reply.
    pub quit: bool,
    pub info: Arc<ClientInfo>,
    /// Commands queued since MULTI (`None` outside a transaction).
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A command queued since MULTI could not run: EXEC must refuse.
    pub multi_failed: bool,
    /// WATCHed keys and the waiter that records writes to them.
    pub watch: Option<Arc<Waiter>>,
    /// Each watched key with what the client had seen of it (used under
    /// Raft, where EXEC's entry carries them).
    pub watched_keys: Vec<crate::raft::Watched>,
    /// A blocked command is being run again after it blocked: as in Redis,
    /// a key that now holds another type counts as not ready (no WRONGTYPE).
    pub retrying_block: bool,
    /// READONLY under Raft: keyed reads run on this node's data without a
    /// read barrier (possibly stale).
    pub stale_reads: bool,
    /// Set by the engine when a command's function ran (so a refusal before
    /// it is counted as rejected, not failed, in INFO commandstats).
    pub ran_handler: bool,
    /// The session a script's `redis.call`s run in (the slow log shows
    /// them as Redis's Lua client, `?:0` with no name).
    pub in_script: bool,
    /// CLIENT REPLY: whether this client's replies are sent.
    pub reply_mode: ReplyMode,
    /// The channels, patterns and shard channels it listens to.
    pub subscriptions: crate::engine::Subscriptions,
    /// CLIENT TRACKING's settings (`None`: off).
    pub tracking: Option<crate::engine::TrackingMode>,
    /// The ACL user it runs as; `None` for the engine's own sessions
    /// (replicated apply), which may run anything, as Redis's internal
    /// clients.
    pub user: Option<Arc<crate::acl::AclUser>>,
}

impl Session {
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> Session {
        Session {
            db: 0,
            protocol: Protocol::Resp2,
            authenticated,
            quit: false,
            info,
            multi: None,
            multi_failed: false,
            watch: None,
            watched_keys: Vec::new(),
            retrying_block: false,
            stale_reads: false,
            ran_handler: false,
            in_script: false,
            reply_mode: ReplyMode::On,
            subscriptions: Default::default(),
            tracking: None,
            user: None,
        }
    }

    /// Whether ACL checks may be skipped: an internal session, or a user
    /// allowed everything.
    #[inline]
    pub fn unrestricted(&self) -> bool {
        self.user.as_ref().is_none_or(|u| u.unrestricted())
    }

    /// Run as `user` from now on (AUTH, HELLO AUTH, RESET).
    pub fn set_user(&mut self, user: Arc<crate::acl::AclUser>) {
        *self.info.user.lock() = Some(user.clone());
        self.user = Some(user);
    }

    /// The user's name as CLIENT LIST and ACL WHOAMI show it.
    pub fn user_name(&self) -> Bytes {
        self.user
            .as_ref()
            .map_or(Bytes::from_static(b"default"), |u| u.name.clone())
    }

    pub fn id(&self) -> u64 {
        self.info.id
    }

    pub fn name(&self) -> Option<Bytes> {
        self.info.name.lock().clone()
    }
}

/// CLIENT REPLY's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// CLIENT REPLY SKIP ran: its own reply and the next one are dropped.
    SkipNext,
    Skip,
}

impl Session {
    /// What of `reply` reaches the client under CLIENT REPLY, one command's
    /// reply at a time, in order (SKIP's own reply and the next command's
    /// are dropped).
    pub fn filter_reply(&mut self, reply: crate::resp::Reply) -> crate::resp::Reply {
        let dropped = crate::resp::Reply::Frames(Vec::new());
        match self.reply_mode {
            ReplyMode::On => reply,
            ReplyMode::Off => dropped,
            ReplyMode::SkipNext => {
                self.reply_mode = ReplyMode::Skip;
                dropped
            }
            ReplyMode::Skip => {
                self.reply_mode = ReplyMode::On;
                dropped
            }
        }
    }
}
