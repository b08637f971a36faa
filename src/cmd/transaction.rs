//! MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! MULTI queues commands in the session; EXEC hands the queue back to the
//! engine, which runs it all while holding the storage lock exclusively, so
//! no other client's command lands in between, and commits it as one batch.
//! WATCH registers the session as a waiter on keys; any committed write to
//! one of them marks it, and EXEC then answers a null array. Under Raft,
//! EXEC is one proposal that carries the watched keys with what the client
//! saw of them, checked again where it is applied (`engine/exec.rs`,
//! `engine/apply.rs`).

use super::{Call, CmdError, CmdResult, Handled};
use crate::resp::Reply;

pub fn multi(call: &mut Call<'_, '_>) -> CmdResult {
    if call.session.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    call.session.multi = Some(Vec::new());
    call.session.multi_failed = false;
    Ok(Reply::OK)
}

/// EXEC checks the transaction and hands its queue to the engine, which
/// runs it (`engine/exec.rs`): one batch standalone, one proposal under Raft.
pub fn exec(call: &mut Call<'_, '_>) -> CmdResult<Handled> {
    let Some(queue) = call.session.multi.take() else {
        return Err(CmdError::err("EXEC without MULTI"));
    };
    if std::mem::take(&mut call.session.multi_failed) {
        call.engine.unwatch(call.session);
        return Err(CmdError::Raw(
            "EXECABORT Transaction discarded because of previous errors.".into(),
        ));
    }
    Ok(Handled::Exec(queue))
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
