//! ACL in the engine: the users at start (`requirepass`, `user` lines,
//! `aclfile`), the check made before a command runs (and its ACL LOG
//! entry), and the clients that must go when their user is deleted or
//! loses channels they listen to.

use std::sync::Arc;

use bytes::Bytes;

use super::{Kind, Shared};
use crate::acl::log::{Context, Event, Reason};
use crate::acl::{catalog, channel_allowed, AclUser, Denied};
use crate::cmd::{CommandSpec, Session};
use crate::config::RuntimeConfig;
use crate::storage::now_ms;

/// The internal command a script of a restricted user travels in under
/// Raft: `KIWI.ASUSER <rules> EVAL …`. Every node's apply runs the script
/// with a user holding those rules, so its `redis.call`s are checked as
/// on the node the client is connected to (users are each node's own, so
/// the rules travel with the entry, not the name). Not in the command
/// table: clients cannot send it.
pub const AS_USER_COMMAND: &[u8] = b"kiwi.asuser";

/// `command` (a script call about to be proposed) as `session`'s user
/// must run it at apply: wrapped with the user's rules when restricted.
pub fn as_user(session: &Session, command: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    match &session.user {
        Some(user) if !user.unrestricted() => {
            let mut out = Vec::with_capacity(command.len() + 2);
            out.push(AS_USER_COMMAND.to_vec());
            out.push(user.state().describe().into_bytes());
            out.extend(command);
            out
        }
        _ => command,
    }
}

/// [`as_user`] for the commands that consult ACL rules while they run: a
/// script (its `redis.call`s), SORT (BY and GET need every key readable).
pub fn as_user_if_needed(session: &Session, command: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let checks_while_running = command.first().is_some_and(|name| {
        let lower = name.to_ascii_lowercase();
        matches!(
            &lower[..],
            b"eval" | b"evalsha" | b"eval_ro" | b"evalsha_ro" | b"fcall" | b"fcall_ro" | b"sort"
        )
    });
    match checks_while_running {
        true => as_user(session, command),
        false => command,
    }
}

/// `acl-pubsub-default`: whether new users may use every channel.
pub fn pubsub_all(config: &RuntimeConfig) -> bool {
    config.compat.text("acl-pubsub-default") == "allchannels"
}

/// An I/O error as C's strerror prints it.
pub fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

impl Shared {
    /// The users of a node starting: the default user's password, then
    /// redis.conf's `user` lines or the ACL file (not both, as Redis).
    pub(super) fn load_acl_at_start(&self, config: &RuntimeConfig) -> Result<(), String> {
        let pubsub_all = pubsub_all(config);
        self.acl.set_default_password(config.requirepass.as_deref());
        let aclfile = config.compat.text("aclfile");
        if !aclfile.is_empty() && !config.acl_users.is_empty() {
            return Err(
                "Configuring Redis with users defined in redis.conf and at the same \
                        setting an ACL file path is invalid. This setup is very likely to lead \
                        to configuration errors and security holes, please define either an \
                        ACL file or declare users directly in your redis.conf, but not both."
                    .into(),
            );
        }
        self.acl.load_configured(&config.acl_users, pubsub_all)?;
        if !aclfile.is_empty() {
            self.load_acl_file(&aclfile, pubsub_all, None)
                .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        }
        Ok(())
    }

    /// ACL LOAD: the file's users replace this node's; clients of users
    /// that were replaced are closed (`session` after its reply).
    pub fn load_acl_file(
        &self,
        path: &str,
        pubsub_all: bool,
        current: Option<&mut Session>,
    ) -> Result<(), String> {
        let text = std::fs::read(path).map_err(|e| {
            format!(
                "Error loading ACLs, opening file '{path}': {}",
                strerror(&e)
            )
        })?;
        let text = String::from_utf8_lossy(&text);
        let gone = self.acl.load_file(&text, path, pubsub_all)?;
        self.close_clients_of(&gone, current);
        Ok(())
    }

    /// Whether `session`'s user may run `args` now. A refusal is logged
    /// (ACL LOG) and handed back with the command's full name.
    pub(crate) fn acl_refusal(
        &self,
        session: &Session,
        spec: &CommandSpec,
        args: &[Bytes],
        context: Context,
    ) -> Option<(Denied, String)> {
        let user = session.user.as_ref()?;
        if user.unrestricted() {
            return None;
        }
        let cat = catalog();
        let id = cat.id_of_call(spec, args)?;
        let denied = user.state().check(id, spec, args).err()?;
        let full_name = cat.entry(id).map_or(spec.name, |e| e.name.as_str());
        if context != Context::Lua {
            // CLIENT LIST's `cmd` (in the log's client-info) names the
            // refused command, as Redis sets it before checking.
            *session.info.last_cmd.lock() = spec.name;
        }
        let object = match denied {
            Denied::Command => Bytes::from(full_name.to_string()),
            Denied::Key(at) | Denied::Channel(at) => args.get(at).cloned().unwrap_or_default(),
        };
        self.log_acl(
            session,
            denied.log_reason(),
            context,
            object,
            user.name.clone(),
        );
        Some((denied, full_name.to_string()))
    }

    /// Add an entry to ACL LOG about `session`'s client.
    pub(crate) fn log_acl(
        &self,
        session: &Session,
        reason: Reason,
        context: Context,
        object: Bytes,
        username: Bytes,
    ) {
        // The replicated apply (client id 0) logs nothing: the refusal of a
        // script's call there happens on every node alike.
        if session.info.id == 0 {
            return;
        }
        let line = crate::cmd::client_line(self, &session.info, session.db);
        let max_len = self
            .config
            .read()
            .compat
            .int("acllog-max-len")
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(128);
        self.acl.log.add(
            Event {
                reason,
                context,
                object,
                username,
                client_info: line.trim_end_matches('\n').to_string(),
            },
            now_ms(),
            max_len,
        );
    }

    /// Close the clients authenticated as one of `users` (deleted or
    /// replaced); `current`, if one of them, closes after its reply.
    pub fn close_clients_of(&self, users: &[Arc<AclUser>], current: Option<&mut Session>) {
        if users.is_empty() {
            return;
        }
        for user in users {
            user.revoke();
        }
        let is_gone = |u: &Option<Arc<AclUser>>| {
            u.as_ref()
                .is_some_and(|u| users.iter().any(|g| Arc::ptr_eq(g, u)))
        };
        let current_id = current.as_ref().map(|s| s.info.id);
        let clients: Vec<_> = self.clients.lock().values().cloned().collect();
        for c in clients {
            if Some(c.id) != current_id && is_gone(&c.user.lock()) {
                c.mailbox.kill();
            }
        }
        if let Some(session) = current {
            if is_gone(&session.user) {
                session.quit = true;
                session.authenticated = false;
                session.set_user(self.acl.default_user());
            }
        }
    }

    /// Redis 7's ACLKillPubsubClientsIfNeeded: after `user`'s channel
    /// rules shrank to `allowed`, close its clients listening to a channel
    /// or pattern no longer allowed (`current` after its reply).
    pub fn close_revoked_subscribers(
        &self,
        user: &Arc<AclUser>,
        allowed: &[Bytes],
        current: Option<&mut Session>,
    ) {
        let refused = self.pubsub.listeners_refused(|kind, name, client| {
            client
                .user
                .lock()
                .as_ref()
                .is_some_and(|u| Arc::ptr_eq(u, user))
                && !channel_allowed(allowed, name, kind == Kind::Pattern)
        });
        let current_id = current.as_ref().map(|s| s.info.id);
        for c in &refused {
            if Some(c.id) != current_id {
                c.mailbox.kill();
            }
        }
        if let Some(session) = current {
            if refused.iter().any(|c| c.id == session.info.id) {
                session.quit = true;
            }
        }
    }
}

/// The ACL LOG context of a command `session` runs.
pub fn context_of(session: &Session) -> Context {
    if session.in_script {
        Context::Lua
    } else if session.multi.is_some() {
        Context::Multi
    } else {
        Context::Toplevel
    }
}
