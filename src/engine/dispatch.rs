//! Running one command: the checks Redis makes before a command runs
//! (known, arity, protected, AUTH, MISCONF, MULTI's queue), where it goes
//! under Raft (a proposal, a read barrier), and running its function
//! against one storage context committed as one batch.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::Engine;
use crate::cmd::{
    self, scripting, Call, CmdError, CmdResult, CommandSpec, Deferred, Flags, Handled, Outcome,
    Session,
};
use crate::raft::Op;
use crate::resp::{Protocol, Reply};
use crate::storage::locks::LockRequest;
use crate::storage::{now_ms, Ctx};

impl Engine {
    /// `local`: a keyed read runs here without asking Raft first.
    pub(super) fn dispatch(
        &self,
        session: &mut Session,
        args: &[Bytes],
        local: bool,
    ) -> CmdResult<Outcome> {
        session.ran_handler = false;
        let result = self.check_and_run(session, args, local);
        if let Err(e) = &result {
            if !session.ran_handler {
                // Refused before it ran: counted against the command when
                // it is known (Redis's rejected_calls), always as an error.
                let name = args
                    .first()
                    .and_then(|n| cmd::lookup(n))
                    .and_then(|spec| cmd::stats_name(spec, args));
                self.observer
                    .record_rejected(name.as_deref(), &e.to_string());
            }
        }
        result
    }

    fn check_and_run(
        &self,
        session: &mut Session,
        args: &[Bytes],
        local: bool,
    ) -> CmdResult<Outcome> {
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
        // While a script runs, others wait for it; past busy-reply-threshold
        // they are answered BUSY (a few commands still run, SCRIPT KILL…).
        if !local && self.scripts.is_running() && !scripting::allowed_while_busy(spec, args) {
            let threshold = self.config.read().busy_reply_threshold;
            match self.scripts.busy(session.info.id, threshold) {
                Ok(None) => {}
                Ok(Some(busy)) => {
                    if session.multi.is_some() {
                        session.multi_failed = true;
                    }
                    return Err(CmdError::Raw(busy.into()));
                }
                Err(until) => return Ok(Outcome::Defer(Deferred::AfterScript(until))),
            }
        }
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
        if !session.authenticated
            && !spec.flags.contains(Flags::NO_AUTH)
            && self.acl.auth_required()
        {
            return Err(CmdError::Raw("NOAUTH Authentication required.".into()));
        }
        // ACL: on the node the client is connected to, before anything is
        // queued, proposed or forwarded (cheap for an unrestricted user).
        if !session.unrestricted() {
            let context = super::context_of(session);
            if let Some((denied, full_name)) = self.acl_refusal(session, spec, args, context) {
                if spec.name == "exec" {
                    // A refused EXEC discards the transaction, as Redis.
                    session.multi = None;
                    session.multi_failed = false;
                    self.unwatch(session);
                    return Err(CmdError::Raw(format!(
                        "EXECABORT Transaction discarded because of: {}",
                        denied.error(&full_name)
                    )));
                }
                if session.multi.is_some() {
                    session.multi_failed = true;
                }
                return Err(CmdError::Raw(denied.error(&full_name)));
            }
        }
        // While writes fail in the file system, Redis refuses every write
        // command and PING (so health checks notice) with MISCONF, inside
        // MULTI too (EXEC then aborts); reads go on.
        if spec.is_write() || spec.name == "ping" {
            if let Err(e) = self.storage().check_writable() {
                if session.multi.is_some() {
                    session.multi_failed = true;
                }
                return Err(e.into());
            }
        }
        // RESP2 cannot tell messages from replies: a client that listens
        // may only manage its subscriptions (as Redis 7.0).
        if session.protocol == Protocol::Resp2
            && session.subscriptions.any()
            && !cmd::pubsub::allowed_in_context(spec.name)
        {
            let full_name = match spec.subcommand(args) {
                Ok(Some((name, _))) => name,
                _ => spec.name.to_string(),
            };
            return Err(cmd::pubsub::context_error(&full_name));
        }
        // Redis's `no-multi` commands.
        if session.multi.is_some() && matches!(spec.name, "shutdown" | "save" | "sync" | "psync") {
            session.multi_failed = true;
            return Err(CmdError::err("Command not allowed inside a transaction"));
        }
        if session.multi.is_some() && !spec.flags.contains(Flags::TRANSACTION) {
            if let Some(queue) = session.multi.as_mut() {
                queue.push(args.to_vec());
            }
            return Ok(Outcome::Reply(Reply::Status("QUEUED")));
        }
        if self.is_replicated() {
            if spec.through_log() || scripting::replicated_admin(spec, args) {
                // A blocking command with nothing to take here waits on this
                // node's keys rather than proposing an entry that would
                // answer its timeout reply at once.
                if spec.is_blocking() {
                    if let Ok(Handled::Block(block)) = self.probe(spec, session, args) {
                        return Ok(Outcome::Block(*block));
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
                        return Ok(Outcome::Defer(Deferred::Read));
                    }
                    if let Err(e @ CmdError::NodeLimit(_)) = self.probe(spec, session, args) {
                        return Err(e);
                    }
                }
                self.feed_monitors(session.db, &session.info.addr, spec, args);
                return Ok(Outcome::Defer(Deferred::Propose(Op::commands(
                    session.db,
                    session.protocol == Protocol::Resp3,
                    vec![super::acl::as_user_if_needed(
                        session,
                        args.iter().map(|a| a.to_vec()).collect(),
                    )],
                ))));
            }
            // WATCH too: what it records as seen must include every write
            // acknowledged before it, or the client's own write could abort
            // its transaction.
            // And what reads the script cache, which the log fills: a
            // client's EVALSHA after its SCRIPT LOAD through another node.
            let keyed = !spec.flags.contains(Flags::NO_KEYS)
                || spec.name == "watch"
                || scripting::reads_script_cache(spec, args);
            if !local && !session.stale_reads && keyed {
                // A blocking read (XREAD BLOCK) with nothing to read here
                // waits on this node's keys, like a blocking write; once
                // something arrives it reads behind the barrier.
                if spec.is_blocking() {
                    if let Ok(Handled::Block(block)) = self.probe(spec, session, args) {
                        return Ok(Outcome::Block(*block));
                    }
                }
                return Ok(Outcome::Defer(Deferred::Read));
            }
        }
        let handled = self.run(spec, session, args);
        self.track_command(session, spec, args);
        // Fed once it ran, as Redis (EVAL before its script's commands).
        if matches!(handled, Ok(Handled::Script(_))) {
            self.feed_monitors(session.db, &session.info.addr, spec, args);
        }
        let outcome = match handled {
            Ok(Handled::Reply(reply)) => Ok(Outcome::Reply(reply)),
            Ok(Handled::Block(block)) => Ok(Outcome::Block(*block)),
            Ok(Handled::Defer(deferred)) => Ok(Outcome::Defer(*deferred)),
            // EXEC handed its queue back: the transaction runs now, at
            // the top, never from inside a command.
            Ok(Handled::Exec(queue)) => Ok(self.exec(session, queue)),
            // Likewise a script, logged as slow once it finished.
            Ok(Handled::Script(call)) => {
                let started = std::time::Instant::now();
                let outcome = self.script(session, *call, local);
                let error = match &outcome {
                    Outcome::Reply(Reply::Error(text)) => Some(text.as_str()),
                    _ => None,
                };
                self.observe(spec, session, args, started.elapsed(), error);
                return Ok(outcome);
            }
            Err(e) => Err(e),
        };
        self.feed_monitors(session.db, &session.info.addr, spec, args);
        outcome
    }

    /// Whether `args` becomes a plain Raft proposal of its own when run now
    /// (a replicated write outside MULTI that cannot block and has no limit
    /// of this node's to check), so a pipeline may propose it in one entry
    /// with the writes around it.
    pub fn proposes(&self, session: &Session, args: &[Bytes]) -> bool {
        self.is_replicated()
            && session.multi.is_none()
            && session.authenticated
            && session.unrestricted()
            && args
                .first()
                .and_then(|name| cmd::lookup(name))
                .is_some_and(|spec| {
                    spec.arity_ok(args.len())
                        && spec.through_log()
                        && !spec.is_blocking()
                        && !spec.has_node_limits()
                })
    }

    /// Run `spec` under its locks (see [`lock_request`]) and commit its
    /// writes.
    fn run(
        &self,
        spec: &'static CommandSpec,
        session: &mut Session,
        args: &[Bytes],
    ) -> CmdResult<Handled> {
        self.count_command(spec, session);
        session
            .info
            .last_active_ms
            .store(now_ms(), Ordering::Relaxed);

        let (handled, expired) = {
            let mut request = LockRequest::default();
            lock_request(&mut request, spec, args);
            let hold = self.storage().locks().take(request);
            // Made under the locks: a SWAPDB cannot change the map it read.
            let mut ctx = self.storage().ctx(session.db, self.read_now_ms());
            ctx.limit_to(hold.stripes());
            ctx.writer = session.info.id;
            let (result, mut ctx) = self.call_handler(spec, session, args, ctx);
            let handled = result?;
            if ctx.is_dirty() {
                self.commit(&mut ctx)?;
            } else {
                // A read's events (keymiss) have nothing to wait for.
                self.publish_events(ctx.take_events());
            }
            (handled, ctx.take_expired_seen())
        };
        self.expire_found(expired);
        Ok(handled)
    }

    /// Count a command about to run (INFO's total, CLIENT LIST's `cmd`).
    pub(super) fn count_command(&self, spec: &'static CommandSpec, session: &Session) {
        self.stats
            .commands_processed
            .fetch_add(1, Ordering::Relaxed);
        *session.info.last_cmd.lock() = spec.name;
    }

    /// Run `spec` against this node's data and throw its writes away: what
    /// the command would do here now.
    fn probe(
        &self,
        spec: &'static CommandSpec,
        session: &mut Session,
        args: &[Bytes],
    ) -> CmdResult<Handled> {
        // Under Raft only, where every write holds the whole store.
        let _read_guard = self.storage().locks().everything_shared();
        let ctx = self.storage().ctx(session.db, self.read_now_ms());
        let (result, _discarded) = self.run_handler(spec, session, args, ctx);
        result
    }

    /// Run `spec`'s function against `ctx` (see [`Engine::run_handler`])
    /// and observe it: commandstats, errorstats, the slow log, latency.
    pub(super) fn call_handler<'a>(
        &'a self,
        spec: &'static CommandSpec,
        session: &mut Session,
        args: &[Bytes],
        ctx: Ctx<'a>,
    ) -> (CmdResult<Handled>, Ctx<'a>) {
        session.ran_handler = true;
        let started = std::time::Instant::now();
        let (result, ctx) = self.run_handler(spec, session, args, ctx);
        // A script is observed once it ran (see `dispatch`).
        if !matches!(result, Ok(Handled::Script(_))) {
            let error = match &result {
                Err(e) => Some(e.to_string()),
                Ok(Handled::Reply(Reply::Error(text))) => Some(text.clone()),
                _ => None,
            };
            self.observe(spec, session, args, started.elapsed(), error.as_deref());
        }
        (result, ctx)
    }

    /// Count a command that ran (commandstats, errorstats, histogram),
    /// log it if slow (EXEC only through its commands), sample latency.
    fn observe(
        &self,
        spec: &'static CommandSpec,
        session: &Session,
        args: &[Bytes],
        elapsed: std::time::Duration,
        error: Option<&str>,
    ) {
        let name = cmd::stats_name(spec, args);
        self.observer
            .record_call(name.as_deref().unwrap_or(spec.name), elapsed, error);
        let event = if spec.flags.contains(Flags::FAST) {
            "fast-command"
        } else {
            "command"
        };
        self.observer.latency_sample(event, elapsed);
        if spec.name == "exec" || !self.observer.is_slow(elapsed) {
            return;
        }
        let shown = super::monitor::shown(spec, args);
        let (addr, name) = match session.in_script {
            true => ("?:0".to_string(), Bytes::new()),
            false => (
                session.info.addr.clone(),
                session.info.name.lock().clone().unwrap_or_default(),
            ),
        };
        self.observer.push_slow(&shown, elapsed, addr, name);
    }

    /// Run `spec`'s function against `ctx` and hand the context back; the
    /// writes of a command that failed, or did not answer (it blocks or is
    /// deferred), are rolled back (to the savepoint, if any).
    fn run_handler<'a>(
        &'a self,
        spec: &'static CommandSpec,
        session: &mut Session,
        args: &[Bytes],
        ctx: Ctx<'a>,
    ) -> (CmdResult<Handled>, Ctx<'a>) {
        let mut call = Call {
            engine: &self.shared,
            session,
            ctx,
            args,
        };
        let result = (spec.handler)(&mut call);
        if !matches!(result, Ok(Handled::Reply(_))) {
            call.ctx.rollback();
        }
        (result, call.ctx)
    }
}

/// Redis's text for an unknown command: the name and the first arguments,
/// each quoted and followed by a space, cut at about 128 characters.
pub(super) fn unknown_command(args: &[Bytes]) -> CmdError {
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

/// Add what `spec` run with `args` must hold to `request`: its keys
/// (exclusively when it writes, or may rewrite what it reads), the whole
/// store, or nothing.
pub(super) fn lock_request(request: &mut LockRequest, spec: &CommandSpec, args: &[Bytes]) {
    match cmd::lock_scope(spec, args) {
        cmd::LockScope::Nothing => {}
        cmd::LockScope::Everything => request.add_everything(),
        cmd::LockScope::Keys(keys) => {
            let write = spec.locks_exclusively();
            for key in &keys {
                request.add_key(key, write);
            }
        }
    }
}
