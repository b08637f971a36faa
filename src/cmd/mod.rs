//! The command table and command execution.
//!
//! One table serves the RESP server, the embedded Python API and (later)
//! the Raft state machine: each entry names a command, its arity and flags,
//! where its keys are, and the function that runs it.

mod acl;
mod admin;
mod args;
mod bitfield;
mod bitmap;
mod client;
mod collection;
mod debug;
mod dump;
mod error;
pub mod functions;
mod geo;
mod glob;
mod hash;
mod hll;
mod info;
pub use admin::wait_in_transaction;
pub use info::render as info_text;
mod keys;
mod lcs;
mod list;
mod lookup;
mod observe;
mod outcome;
mod positions;
pub mod pubsub;
pub mod raft;
pub(crate) mod redis_meta;
mod replication;
mod sample;
mod scan;
mod scope;
pub mod scripting;
mod server;
mod session;
mod set;
mod sort;
pub(crate) mod stream;
mod strings;
mod table;
mod tracking;
mod transaction;
mod zset;

pub use args::{int_arg, is, parse_i64, text, timeout_arg};
pub(crate) use client::client_line;
pub use client::held_by_write_pause;
pub use collection::Collection;
pub use error::{CmdError, CmdResult};
pub use glob::{glob_match, stringmatch};
pub use outcome::{BlockOn, Deferred, Handled, Outcome};
pub use scan::ScanCursors;
pub use scope::{lock_scope, LockScope};
pub use server::command_keys;
pub use server::REDIS_VERSION;
pub use session::Session;
pub use stream::may_block;
pub use stream::store::{check_record as stream_record_ok, seeds as stream_record_seeds};
pub use table::{
    all as all_commands, arity_ok, command_names, group_of, lookup, stats_name, CommandSpec, Flags,
};

use bytes::Bytes;

use crate::engine::Shared;
use crate::storage::{Ctx, KeyType, Meta, MetaBody};

/// Everything a command function may touch while it runs: the engine's
/// state (not the engine: a command never runs another one), its session,
/// its storage context and its arguments.
pub struct Call<'a, 's> {
    pub engine: &'a Shared,
    pub session: &'s mut Session,
    pub ctx: Ctx<'a>,
    pub args: &'s [Bytes],
}

impl Call<'_, '_> {
    /// The string value of a live key; WRONGTYPE when it holds another type.
    pub fn get_string(&self, key: &[u8]) -> CmdResult<Option<Bytes>> {
        match self.ctx.get_meta(key)? {
            None => Ok(None),
            Some(Meta {
                body: MetaBody::String(v),
                ..
            }) => Ok(Some(v)),
            Some(_) => Err(CmdError::WrongType),
        }
    }

    /// The live meta record of `key`, required to be of type `kind`.
    pub fn get_typed(&self, key: &[u8], kind: KeyType) -> CmdResult<Option<Meta>> {
        match self.ctx.get_meta(key)? {
            Some(m) if m.kind() != kind => Err(CmdError::WrongType),
            other => Ok(other),
        }
    }

    pub fn arg(&self, i: usize) -> &Bytes {
        &self.args[i]
    }
}
