//! Running a script (EVAL and friends) once its command parsed the call.
//!
//! A script runs against one storage context with the storage lock held
//! for the whole run (shared for a read-only script, exclusive otherwise),
//! so nothing interleaves with it, and its writes are committed as one
//! batch at the end — a script that fails half-way keeps what it wrote
//! before the error, as in Redis. Its `redis.call`s run here as commands
//! of the script's own client (same database to start with, its SELECTs
//! its own), one savepoint each.
//!
//! Standalone it runs where it was called. Under Raft a script that may
//! write is proposed as one entry carrying its body (EVALSHA becomes EVAL),
//! and every node runs it as it applies the entry: `math.random` seeded
//! from the log index, TIME from the entry's clock, and only commands whose
//! result is the same on every node. A read-only script (EVAL_RO,
//! `no-writes`) passes the read barrier and runs on the node it reached.

use bytes::Bytes;

use super::apply::replicable;
use super::{Engine, Outcome, Shared};
use crate::cmd::{self, scripting, CmdError, Deferred, Session};
use crate::raft::Op;
use crate::resp::{Protocol, Reply};
use crate::script::state::{CallKind, FunctionsGuard, RunGuard};
use crate::script::vm::RunMode;
use crate::script::{HostCall, ScriptCall, ScriptHost, UNKNOWN_COMMAND, WRONG_ARITY};
use crate::storage::{Ctx, VERSIONS_PER_ENTRY};

/// Where a script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// On this node only (standalone, or a read-only script under Raft).
    Local,
    /// In a replicated entry, the same on every node.
    Entry { seed: i32 },
}

/// Keyless commands a replicated script may call: their answer is the
/// same on every node (TIME is answered from the entry's clock).
const SAME_ON_EVERY_NODE: &[&str] = &["ping", "echo", "select"];

impl Engine {
    /// EVAL and friends once parsed: run it here, or under Raft, defer it
    /// (a read barrier for a read-only script, a proposal otherwise).
    pub(super) fn script(&self, session: &mut Session, call: ScriptCall, local: bool) -> Outcome {
        if self.is_replicated() {
            if !call.read_only {
                return Outcome::Defer(Deferred::Propose(Op::commands(
                    session.db,
                    session.protocol == Protocol::Resp3,
                    vec![super::acl::as_user(session, call.as_command())],
                )));
            }
            if !local && !session.stale_reads {
                return Outcome::Defer(Deferred::Read);
            }
        }
        // A script may touch any key, and sees none change while it runs
        // (read-only ones too: they run one at a time on the VM anyway).
        let _whole_store = self.storage().locks().everything();
        let mut ctx = self.storage().ctx(session.db, self.read_now_ms());
        ctx.writer = session.info.id;
        let reply = self.run_script(&mut ctx, session, &call, Place::Local);
        if ctx.is_dirty() {
            if let Err(e) = self.commit(&mut ctx) {
                return Outcome::Reply(Reply::Error(CmdError::from(e).to_string()));
            }
        } else {
            self.publish_events(ctx.take_events());
        }
        Outcome::Reply(reply)
    }

    /// Run `call` against `ctx` (the caller holds the storage lock and
    /// commits). Its reply, or its error as Redis words it.
    pub(super) fn run_script<'a>(
        &'a self,
        ctx: &mut Ctx<'a>,
        session: &mut Session,
        call: &ScriptCall,
        place: Place,
    ) -> Reply {
        let reply = match &call.kind {
            CallKind::Eval => self.run_eval(ctx, session, call, place),
            CallKind::Function(name) => self.run_function(ctx, session, call, name, place),
        };
        // The script's SELECTs were its own.
        session
            .info
            .db
            .store(session.db, std::sync::atomic::Ordering::Relaxed);
        reply
    }

    fn run_eval<'a>(
        &'a self,
        ctx: &mut Ctx<'a>,
        session: &Session,
        call: &ScriptCall,
        place: Place,
    ) -> Reply {
        let mut guard = match self.scripts.vm() {
            Ok(guard) => guard,
            Err(reply) => return reply,
        };
        let Some(vm) = guard.vm() else {
            return Reply::error("ERR the Lua interpreter is not available");
        };
        if let Err(reply) = self.scripts.load(vm, &call.body) {
            return reply;
        }
        if let Place::Entry { seed } = place {
            vm.seed_random(seed);
        }
        let run = self
            .scripts
            .start(session.info.id, None, place != Place::Local);
        let mut host = Host::new(self, ctx, session, place, &run);
        vm.eval(&mut host, &call.sha, &call.keys, &call.args, call.read_only)
    }

    fn run_function<'a>(
        &'a self,
        ctx: &mut Ctx<'a>,
        session: &Session,
        call: &ScriptCall,
        name: &str,
        place: Place,
    ) -> Reply {
        let mut guard = match self.function_engine() {
            Ok(guard) => guard,
            Err(reply) => return reply,
        };
        let Some(engine) = guard.engine() else {
            return Reply::error("ERR the Lua interpreter is not available");
        };
        let Some(callable) = engine.function(name.as_bytes()).cloned() else {
            return Reply::error("ERR Function not found");
        };
        if let Place::Entry { seed } = place {
            engine.vm().seed_random(seed);
        }
        let run = self.scripts.start(
            session.info.id,
            Some((
                callable.name.clone(),
                call.as_command().into_iter().map(Bytes::from).collect(),
            )),
            place != Place::Local,
        );
        let mut host = Host::new(self, ctx, session, place, &run);
        engine.vm().run(
            &mut host,
            &callable.function,
            &callable.name,
            &call.keys,
            &call.args,
            call.read_only,
            RunMode::Function,
        )
    }
}

impl Shared {
    /// The FUNCTION libraries, loaded from storage on first use.
    pub fn function_engine(&self) -> Result<FunctionsGuard<'_>, Reply> {
        self.scripts.functions(|| {
            self.storage().function_libraries().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the stored FUNCTION libraries");
                Vec::new()
            })
        })
    }
}

/// The engine as a script sees it.
struct Host<'e, 'c> {
    engine: &'e Engine,
    ctx: &'c mut Ctx<'e>,
    /// The script's client: the caller's identity, its own database.
    session: Session,
    place: Place,
    run: &'c RunGuard<'e>,
}

impl<'e, 'c> Host<'e, 'c> {
    fn new(
        engine: &'e Engine,
        ctx: &'c mut Ctx<'e>,
        caller: &Session,
        place: Place,
        run: &'c RunGuard<'e>,
    ) -> Self {
        let mut session = Session::new(caller.info.clone(), true);
        // The script's commands run as its caller's user.
        session.user = caller.user.clone();
        session.in_script = true;
        session.db = caller.db;
        Host {
            engine,
            ctx,
            session,
            place,
            run,
        }
    }
}

impl ScriptHost for Host<'_, '_> {
    fn call(&mut self, call: HostCall) -> Reply {
        let args: Vec<Bytes> = call.args;
        let Some(spec) = args.first().and_then(|name| cmd::lookup(name)) else {
            return Reply::error(UNKNOWN_COMMAND);
        };
        if !spec.arity_ok(args.len()) {
            return Reply::error(WRONG_ARITY);
        }
        match spec.subcommand(&args) {
            Err(_) => return Reply::error(UNKNOWN_COMMAND),
            Ok(Some((_, arity))) if !cmd::arity_ok(arity, args.len()) => {
                return Reply::error(WRONG_ARITY)
            }
            Ok(_) => {}
        }
        if !scripting::allowed_in_script(spec) {
            return Reply::error("ERR This Redis command is not allowed from script");
        }
        if !self.session.unrestricted() {
            let context = crate::acl::log::Context::Lua;
            if let Some((denied, _)) = self.engine.acl_refusal(&self.session, spec, &args, context)
            {
                return Reply::Error(format!(
                    "ERR The user executing the script {}",
                    denied.script_reason()
                ));
            }
        }
        // A read-only script may not run what may write (Redis counts its
        // may-replicate reads, PFCOUNT, among them).
        if call.read_only && spec.locks_exclusively() {
            return Reply::error("ERR Write commands are not allowed from read-only scripts.");
        }
        if spec.is_write() {
            if let Err(e) = self.engine.storage().check_writable() {
                return Reply::Error(CmdError::from(e).to_string());
            }
        }
        if let Place::Entry { .. } = self.place {
            if spec.name == "time" {
                let ms = self.ctx.now_ms;
                return Reply::Array(vec![
                    Reply::Bulk(Bytes::from((ms / 1000).to_string())),
                    Reply::Bulk(Bytes::from(((ms % 1000) * 1000).to_string())),
                ]);
            }
            // As for the entry's own commands: stop well inside its range.
            if self.ctx.versions_left() < VERSIONS_PER_ENTRY / 2 {
                return Reply::error("ERR replicated entry creates too many collections");
            }
            if !SAME_ON_EVERY_NODE.contains(&spec.name) {
                if let Err(e) = replicable(&args) {
                    return Reply::Error(e.to_string());
                }
            }
        }
        if spec.is_write() {
            self.run.wrote();
        }
        self.session.protocol = call.protocol;
        self.ctx.set_db(self.session.db);
        self.ctx.savepoint();
        self.engine
            .feed_monitors(self.session.db, "lua", spec, &args);
        let fresh = self.engine.storage().ctx(self.session.db, self.ctx.now_ms);
        let taken = std::mem::replace(&mut *self.ctx, fresh);
        let (result, back) = self
            .engine
            .call_handler(spec, &mut self.session, &args, taken);
        *self.ctx = back;
        match result {
            // A blocking command answers at once, as in Redis.
            Ok(handled) => handled.settle_here(),
            Err(e) => Reply::Error(e.to_string()),
        }
    }

    fn interrupted(&mut self) -> bool {
        self.run.kill_requested()
    }
}
