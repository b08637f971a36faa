//! MULTI/EXEC's transaction and WATCH. EXEC's command function only checks
//! the transaction and hands its queue back
//! ([`Handled::Exec`](crate::cmd::Handled::Exec)); the engine runs it
//! here, at the top, never from inside a command.
//!
//! Standalone, the queued commands run under one exclusive hold of the
//! storage lock, so no other client's command lands in between, and their
//! writes are committed as one batch, so a crash never leaves half of the
//! transaction on disk (each command behind a savepoint: a failing one
//! drops only its own writes).
//!
//! Under Raft, a transaction becomes one proposal that carries its queued
//! commands (each with the database it runs in) and what its client
//! WATCHed; every node applies or aborts it alike (see `apply.rs`).
//! Commands that act on the node rather than the keyspace (PING, ECHO,
//! CLIENT, CONFIG, keyless reads…) cannot travel in the log: they run here,
//! after the entry, and their replies take their places in EXEC's array.
//! SELECT is answered when planning and moves the commands after it to its
//! database, as in Redis; the connection ends in the database selected last.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::apply::replicable;
use super::dispatch::unknown_command;
use super::script::Place;
use super::{Engine, Shared, Waiter};
use crate::cmd::{self, CmdError, CommandSpec, Deferred, Handled, Outcome, Session};
use crate::raft::{Exec, Op, Watched, Work};
use crate::resp::{Protocol, Reply};
use crate::storage::{now_ms, StorageError};

/// A transaction ready to be proposed, and how to assemble its reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecPlan {
    /// The proposal ([`Work::Exec`]).
    pub op: Op,
    /// Where each queued command's reply comes from, in queue order.
    pub slots: Vec<Slot>,
    /// The connection's database once the transaction ran.
    pub db_after: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// The next reply of the entry.
    Entry,
    /// Run on this node after the entry, in database `db`.
    Local(u8, Vec<Bytes>),
    /// Answered when planning (SELECT).
    Answered(Reply),
}

impl ExecPlan {
    /// Whether the transaction needs the log at all: it has commands for
    /// the keyspace, or watched keys to check.
    pub fn needs_entry(&self) -> bool {
        match &self.op.work {
            Work::Exec(exec) => !exec.commands.is_empty() || !exec.watched.is_empty(),
            Work::Commands(c) => !c.is_empty(),
        }
    }
}

impl Engine {
    /// EXEC once its command checked the transaction: run `queue` here, or
    /// under Raft, the proposal the connection makes of it.
    pub(super) fn exec(&self, session: &mut Session, queue: Vec<Vec<Bytes>>) -> Outcome {
        if !self.is_replicated() {
            return Outcome::Reply(self.run_transaction(session, queue));
        }
        // Under Raft the whole transaction is one proposal, carrying what
        // the client watched: every node checks it again at apply.
        if session.watch.as_ref().is_some_and(|w| w.is_touched()) {
            self.unwatch(session);
            return Outcome::Reply(Reply::NilArray);
        }
        let watched = session.watched_keys.clone();
        self.unwatch(session);
        let plan = self.plan_exec(session, queue, watched);
        Outcome::Defer(Deferred::Exec(plan))
    }

    /// Run a transaction on this node (see the module's documentation).
    fn run_transaction(&self, session: &mut Session, queue: Vec<Vec<Bytes>>) -> Reply {
        let _guard = self.storage().locks().everything();
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
            if let Err(e) = self.storage().check_writable() {
                return exec_abort(e);
            }
        }
        let now = self.read_now_ms();
        let mut ctx = self.storage().ctx(session.db, now);
        ctx.writer = session.info.id;
        let mut replies = Vec::with_capacity(queue.len());
        for (args, spec) in queue.iter().zip(specs) {
            let Some(spec) = spec else {
                replies.push(Reply::Error(unknown_command(args).to_string()));
                continue;
            };
            if let Some(refused) = self.exec_refusal(session, spec, args) {
                replies.push(refused);
                continue;
            }
            self.count_command(spec, session);
            // SELECT inside the transaction moves the commands after it.
            ctx.set_db(session.db);
            ctx.savepoint();
            let (result, back) = self.call_handler(spec, session, args, ctx);
            ctx = back;
            if !matches!(result, Ok(Handled::Script(_))) {
                self.feed_monitors(session.db, &session.info.addr, spec, args);
            }
            self.track_command(session, spec, args);
            replies.push(match result {
                Ok(Handled::Script(call)) => {
                    self.feed_monitors(session.db, &session.info.addr, spec, args);
                    self.run_script(&mut ctx, session, &call, Place::Local)
                }
                // A blocking command answers at once; nothing is deferred.
                Ok(handled) => handled.settle_here(),
                Err(e) => Reply::Error(e.to_string()),
            });
        }
        session
            .info
            .last_active_ms
            .store(now_ms(), Ordering::Relaxed);
        if ctx.is_dirty() {
            if let Err(e) = self.commit(&mut ctx) {
                // Nothing of it is stored: none of it may look done.
                return exec_abort(e);
            }
        } else {
            self.publish_events(ctx.take_events());
        }
        Reply::Array(replies)
    }

    /// Turn a queued transaction into a proposal. SELECTs run now on the
    /// session (their replies are kept) and the session's database is put
    /// back: it changes only if the transaction runs.
    pub(crate) fn plan_exec(
        &self,
        session: &mut Session,
        queue: Vec<Vec<Bytes>>,
        watched: Vec<Watched>,
    ) -> ExecPlan {
        let original = session.db;
        let mut commands = Vec::new();
        let mut slots = Vec::with_capacity(queue.len());
        for args in queue {
            let spec = args.first().and_then(|name| cmd::lookup(name));
            if let Some(refused) = spec.and_then(|spec| self.exec_refusal(session, spec, &args)) {
                slots.push(Slot::Answered(refused));
                continue;
            }
            let is_select = spec.is_some_and(|spec| spec.name == "select");
            let args = match self.evalsha_as_eval(args) {
                Ok(args) => args,
                Err(reply) => {
                    slots.push(Slot::Answered(reply));
                    continue;
                }
            };
            if is_select {
                slots.push(Slot::Answered(self.execute_local(session, &args)));
            } else if spec.is_some_and(|spec| spec.name == "wait") {
                slots.push(Slot::Answered(cmd::wait_in_transaction(&args)));
            } else if replicable(&args).is_ok() {
                let command = args.iter().map(|a| a.to_vec()).collect();
                let command = super::acl::as_user_if_needed(session, command);
                commands.push((session.db, command));
                slots.push(Slot::Entry);
            } else {
                slots.push(Slot::Local(session.db, args));
            }
        }
        let db_after = session.db;
        session.db = original;
        session
            .info
            .db
            .store(original, std::sync::atomic::Ordering::Relaxed);
        ExecPlan {
            op: Op {
                db: original,
                resp3: session.protocol == Protocol::Resp3,
                work: Work::Exec(Exec { commands, watched }),
            },
            slots,
            db_after,
        }
    }

    /// ACL rules are checked again at EXEC, in case they changed since
    /// the command was queued: the command's reply if now refused.
    fn exec_refusal(
        &self,
        session: &Session,
        spec: &'static CommandSpec,
        args: &[Bytes],
    ) -> Option<Reply> {
        if session.unrestricted() {
            return None;
        }
        let (denied, _) = self.acl_refusal(session, spec, args, crate::acl::log::Context::Multi)?;
        Some(Reply::Error(format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {}",
            denied.exec_reason()
        )))
    }

    /// A queued EVALSHA as the EVAL of its body, which every node can run
    /// (NOSCRIPT when this node does not hold it).
    fn evalsha_as_eval(&self, mut args: Vec<Bytes>) -> Result<Vec<Bytes>, Reply> {
        let name = match args.first() {
            Some(n) if n.eq_ignore_ascii_case(b"evalsha") => &b"EVAL"[..],
            Some(n) if n.eq_ignore_ascii_case(b"evalsha_ro") => &b"EVAL_RO"[..],
            _ => return Ok(args),
        };
        let Some(sha) = args.get(1) else {
            return Ok(args);
        };
        let Some((body, _)) = self.scripts.lookup(sha) else {
            return Err(Reply::error(cmd::scripting::NOSCRIPT));
        };
        if let [n, b, ..] = args.as_mut_slice() {
            *n = Bytes::from_static(name);
            *b = body;
        }
        Ok(args)
    }

    /// EXEC's reply from the entry's reply (`None`: no entry was needed):
    /// the commands that run here run now, in their places.
    /// `slots` and `db_after` are the plan's (its proposal went to Raft).
    pub(crate) fn finish_exec(
        &self,
        session: &mut Session,
        slots: Vec<Slot>,
        db_after: u8,
        entry_reply: Option<Reply>,
    ) -> Reply {
        let mut from_entry = match entry_reply {
            None => Vec::new().into_iter(),
            Some(Reply::Array(replies)) => replies.into_iter(),
            // Aborted (a watched key changed) or refused: nothing ran.
            Some(other) => return other,
        };
        let mut replies = Vec::with_capacity(slots.len());
        for slot in slots {
            replies.push(match slot {
                Slot::Entry => from_entry
                    .next()
                    .unwrap_or_else(|| Reply::error("ERR missing reply from the replicated entry")),
                Slot::Local(db, args) => {
                    session.db = db;
                    self.execute_local(session, &args)
                }
                Slot::Answered(reply) => reply,
            });
        }
        session.db = db_after;
        session
            .info
            .db
            .store(db_after, std::sync::atomic::Ordering::Relaxed);
        Reply::Array(replies)
    }
}

impl Shared {
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
        let _read_guard = replicated.then(|| self.storage().locks().everything_shared());
        // Read before the keys: a later entry is then never counted as seen.
        let seen = self.applied_next.load(Ordering::Acquire);
        let ctx = self.storage().ctx(session.db, self.read_now_ms());
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
            session.watched_keys.push(Watched {
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
}

/// EXEC's reply when its writes cannot be stored, as Redis words it.
fn exec_abort(e: StorageError) -> Reply {
    Reply::Error(format!(
        "EXECABORT Transaction discarded because of: {}",
        CmdError::from(e)
    ))
}
