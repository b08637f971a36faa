//! Applying a replicated entry: the Raft state machine's way into the
//! command layer.
//!
//! An entry runs as of its own clock (never earlier than the last applied
//! entry's: the replicated clock does not go backwards when a leader with
//! a slower clock takes over), with collection versions and random picks
//! derived from its log index, its proposals in order, each with the
//! database and protocol its client used. A transaction is checked against
//! what its client WATCHed — the writes of later entries (recorded per key
//! in the replicated family) and of the proposals before it in the same
//! entry — so every node aborts it alike. Nothing here reads the node's
//! configuration or clock.

use std::sync::Arc;

use bytes::Bytes;

use super::dispatch::unknown_command;
use super::script::Place;
use super::{ClientInfo, Engine};
use crate::cmd::{self, scripting, CmdError, CommandSpec, Flags, Handled, Session};
use crate::raft::{Exec, Op, Work};
use crate::resp::{Protocol, Reply};
use crate::storage::{
    log_versions, replicated, Ctx, RaftCf, StorageError, DATABASES, VERSIONS_PER_ENTRY,
};

/// The internal command the Raft leader proposes for keys its expiry sweep
/// found expired: `KIWI.EXPIRED key ...` deletes each key that is still
/// expired as of the entry's clock (a key written again since survives).
/// Not in the command table: clients cannot send it.
pub const EXPIRED_COMMAND: &[u8] = b"kiwi.expired";

impl Engine {
    /// Apply one replicated entry (the Raft state machine's path): run the
    /// proposals `ops` as of the leader's clock `now_ms` (or the replicated
    /// clock, if later), with collection versions derived from
    /// `log_index`, so every node reaches the same state. The entry's
    /// writes, its replicated records and `raft_writes` (last applied,
    /// membership) reach RocksDB as one batch, under one exclusive hold of
    /// the command lock. A command that fails answers its error and leaves
    /// no writes; a storage failure fails the whole entry. Replies: one
    /// list per proposal.
    pub(crate) fn apply_replicated(
        &self,
        now_ms: u64,
        log_index: u64,
        ops: Vec<Op>,
        raft_writes: Vec<(RaftCf, Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<Vec<Reply>>, StorageError> {
        let _guard = self.storage.locks().everything();
        let clock = now_ms.max(self.storage.replicated_clock()?);
        let mut ctx = self.storage.ctx(0, clock);
        ctx.use_log_versions(log_versions(log_index)?);
        let mut session = self.replica_session();
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            session.protocol = match op.resp3 {
                true => Protocol::Resp3,
                false => Protocol::Resp2,
            };
            match op.work {
                Work::Commands(commands) => {
                    let mut replies = Vec::with_capacity(commands.len());
                    for args in commands {
                        replies.push(self.apply_command(
                            &mut ctx,
                            &mut session,
                            log_index,
                            op.db,
                            args,
                        )?);
                    }
                    out.push(replies);
                }
                Work::Exec(exec) => {
                    if self.watch_broken(&mut ctx, &exec)? {
                        out.push(vec![Reply::NilArray]);
                        continue;
                    }
                    let mut replies = Vec::with_capacity(exec.commands.len());
                    for (db, args) in exec.commands {
                        replies.push(self.apply_command(
                            &mut ctx,
                            &mut session,
                            log_index,
                            db,
                            args,
                        )?);
                    }
                    out.push(vec![Reply::Array(replies)]);
                }
            }
        }
        let touched = ctx.touched();
        for (cf, key, value) in raft_writes
            .into_iter()
            .chain(replicated::entry_records(&touched, log_index, clock))
        {
            ctx.put_raft(cf, &key, value);
        }
        // Still under the lock: a keyed read, or a client woken here, runs
        // only once the entry also counts as applied.
        self.commit(&mut ctx)?;
        self.set_applied(Some(log_index), clock);
        Ok(out)
    }

    /// Run one command of an entry in database `db`.
    fn apply_command<'a>(
        &'a self,
        ctx: &mut Ctx<'a>,
        session: &mut Session,
        log_index: u64,
        db: u8,
        args: Vec<Vec<u8>>,
    ) -> Result<Reply, StorageError> {
        if db >= DATABASES {
            return Ok(Reply::error("ERR DB index is out of range"));
        }
        let args: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
        ctx.set_db(db);
        session.db = db;
        if args
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(EXPIRED_COMMAND))
        {
            return delete_expired(ctx, args.get(1..).unwrap_or_default());
        }
        if args
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(crate::raft::identity::IDENTITY_COMMAND))
        {
            return crate::raft::identity::apply_registration(
                ctx,
                args.get(1..).unwrap_or_default(),
            );
        }
        if args
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(super::AS_USER_COMMAND))
        {
            return self.apply_as_user(ctx, session, log_index, db, args);
        }
        let spec = match replicable(&args) {
            Ok(spec) => spec,
            Err(e) => return Ok(Reply::Error(e.to_string())),
        };
        // No command takes more than a handful of versions; stopping with a
        // margin keeps every entry inside its own range.
        if ctx.versions_left() < VERSIONS_PER_ENTRY / 2 {
            return Ok(Reply::error(
                "ERR replicated entry creates too many collections",
            ));
        }
        ctx.savepoint();
        let taken = std::mem::replace(ctx, self.storage.ctx(db, ctx.now_ms));
        let (result, back) = self.call_handler(spec, session, &args, taken);
        *ctx = back;
        Ok(match result {
            Ok(Handled::Script(call)) => {
                let seed = i32::try_from(log_index & 0x7fff_ffff).unwrap_or(0);
                self.run_script(ctx, session, &call, Place::Entry { seed })
            }
            // A blocking command answers at once; nothing is deferred.
            Ok(handled) => handled.settle_here(),
            // Not the command's fault and maybe not on every node: the
            // entry must not count as applied.
            Err(CmdError::Storage(e)) => return Err(e),
            Err(e) => Reply::Error(e.to_string()),
        })
    }

    /// `KIWI.ASUSER <rules> <command…>`: the command (a script) run as a
    /// user with those ACL rules (see [`super::acl::as_user`]).
    fn apply_as_user<'a>(
        &'a self,
        ctx: &mut Ctx<'a>,
        session: &mut Session,
        log_index: u64,
        db: u8,
        args: Vec<Bytes>,
    ) -> Result<Reply, StorageError> {
        let (Some(rules), Some(command)) = (args.get(1), args.get(2..)) else {
            return Ok(Reply::error("ERR malformed replicated command"));
        };
        // One level only: the wrapped command is never wrapped again.
        if command
            .first()
            .is_none_or(|n| n.eq_ignore_ascii_case(super::AS_USER_COMMAND))
        {
            return Ok(Reply::error("ERR malformed replicated command"));
        }
        let user = match crate::acl::AclUser::from_rules(rules) {
            Ok(user) => user,
            Err(e) => return Ok(Reply::Error(format!("ERR {e}"))),
        };
        let command = command.iter().map(|a| a.to_vec()).collect();
        session.user = Some(user);
        let reply = self.apply_command(ctx, session, log_index, db, command);
        session.user = None;
        reply
    }

    /// Whether a key the transaction watched changed since its client saw
    /// it: written by a later entry, by a proposal earlier in this entry,
    /// or (having existed) expired by now.
    fn watch_broken(&self, ctx: &mut Ctx<'_>, exec: &Exec) -> Result<bool, StorageError> {
        if exec.watched.is_empty() {
            return Ok(false);
        }
        let in_entry = ctx.touched();
        for w in &exec.watched {
            let entry_key = (w.db, w.key.clone());
            if in_entry.keys.binary_search(&entry_key).is_ok() {
                return Ok(true);
            }
            let after = |index: Option<u64>| index.is_some_and(|i| i >= w.seen);
            if after(self.storage.last_written(w.db, &w.key)?) {
                return Ok(true);
            }
            // As in Redis, a flush changes only the watched keys it deletes:
            // one that did not exist at WATCH and was not written since (a
            // write would have aborted above) is not one of them.
            let flushed =
                in_entry.flushed.contains(w.db) || after(self.storage.last_flushed(w.db)?);
            if flushed && w.existed {
                return Ok(true);
            }
            // As Redis's SWAPDB: the watched key changed if it exists in
            // the database before or after the swap.
            let swapped =
                in_entry.swapped.contains(w.db) || after(self.storage.last_swapped(w.db)?);
            if swapped {
                ctx.set_db(w.db);
                if w.existed || ctx.get_raw_meta(&w.key)?.is_some() {
                    return Ok(true);
                }
            }
            if w.existed {
                ctx.set_db(w.db);
                if ctx
                    .get_raw_meta(&w.key)?
                    .is_some_and(|m| m.is_expired(ctx.now_ms))
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The session replicated commands run in: no connection, no client
    /// list entry, already authenticated.
    fn replica_session(&self) -> Session {
        let info = ClientInfo::new(0, "raft".into(), "raft".into(), 0);
        Session::new(Arc::new(info), true)
    }
}

fn delete_expired(ctx: &mut Ctx<'_>, keys: &[Bytes]) -> Result<Reply, StorageError> {
    let now = ctx.now_ms;
    let mut deleted = 0;
    for key in keys {
        if ctx.get_raw_meta(key)?.is_some_and(|m| m.is_expired(now)) {
            ctx.delete_key(key);
            ctx.notify(crate::storage::events::class::EXPIRED, "expired", key);
            deleted += 1;
        }
    }
    Ok(Reply::Int(deleted))
}

/// The command `args` names, if a replicated entry may carry it: writes and
/// keyed reads (a read inside a replicated EXEC answers like any other).
/// Connection, server and transaction-control commands act on one node's
/// state, not the keyspace, so they never travel through the log.
pub(crate) fn replicable(args: &[Bytes]) -> Result<&'static CommandSpec, CmdError> {
    let Some(name) = args.first() else {
        return Err(CmdError::err("empty command"));
    };
    let Some(spec) = cmd::lookup(name) else {
        return Err(unknown_command(args));
    };
    if !spec.arity_ok(args.len()) {
        return Err(CmdError::Arity(spec.name.to_string()));
    }
    let keyed_read = spec.flags.contains(Flags::READONLY) && !spec.flags.contains(Flags::NO_KEYS);
    let script = matches!(
        spec.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    ) || scripting::replicated_admin(spec, args);
    if spec.through_log() || keyed_read || script {
        Ok(spec)
    } else {
        Err(CmdError::err(format!(
            "'{}' cannot run in a replicated entry",
            spec.name
        )))
    }
}
