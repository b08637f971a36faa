//! MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! MULTI queues commands in the session; EXEC runs them all while holding
//! the storage lock exclusively, so no other client's command lands in
//! between. WATCH registers the session as a waiter on keys; any committed
//! write to one of them marks it, and EXEC then answers a null array.
//! Under Raft, EXEC is one proposal that carries the watched keys with what
//! the client saw of them, checked again where it is applied
//! (`engine/exec.rs`, `engine/apply.rs`).

use super::{Call, CmdError, CmdResult};
use crate::resp::Reply;

pub fn multi(call: &mut Call<'_, '_>) -> CmdResult {
    if call.session.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    call.session.multi = Some(Vec::new());
    call.session.multi_failed = false;
    Ok(Reply::OK)
}

pub fn exec(call: &mut Call<'_, '_>) -> CmdResult {
    let Some(queue) = call.session.multi.take() else {
        return Err(CmdError::err("EXEC without MULTI"));
    };
    if std::mem::take(&mut call.session.multi_failed) {
        call.engine.unwatch(call.session);
        return Err(CmdError::Raw(
            "EXECABORT Transaction discarded because of previous errors.".into(),
        ));
    }
    if call.engine.is_replicated() {
        // Under Raft the whole transaction is one proposal, carrying what
        // the client watched: every node checks it again at apply.
        if call.session.watch.as_ref().is_some_and(|w| w.is_touched()) {
            call.engine.unwatch(call.session);
            return Ok(Reply::NilArray);
        }
        let watched = call.session.watched_keys.clone();
        call.engine.unwatch(call.session);
        let plan = call.engine.plan_exec(call.session, queue, watched);
        return Err(CmdError::Defer(super::Deferred::Exec(plan)));
    }
    Ok(call.engine.exec_queued(call.session, queue))
}

pub fn discard(call: &mut Call<'_, '_>) -> CmdResult {
    if call.session.multi.take().is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    call.session.multi_failed = false;
    call.engine.unwatch(call.session);
    Ok(Reply::OK)
}

pub fn watch(call: &mut Call<'_, '_>) -> CmdResult {
    if call.session.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    call.engine.watch(call.session, &call.args[1..])?;
    Ok(Reply::OK)
}

pub fn unwatch(call: &mut Call<'_, '_>) -> CmdResult {
    call.engine.unwatch(call.session);
    Ok(Reply::OK)
}
