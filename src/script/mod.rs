#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Lua scripting as Redis 7.0 embeds it: EVAL scripts and FUNCTION libraries.
//!
//! This module is the interpreter side only. It knows nothing of keys or
//! storage: every `redis.call` goes through a [`ScriptHost`], which the engine
//! implements (run one command as the script's client and return its
//! [`Reply`]). What lives here:
//!
//! - [`vm::ScriptVm`]: one Lua 5.1 state set up as Redis sets up its own —
//!   the same libraries (base, table, string, math, cjson, struct, cmsgpack,
//!   bit), the same sandbox (read-only globals and library tables, no `os`,
//!   `io`, `loadfile`, `dofile`, `print`), Redis's `redis.*` API and its
//!   deterministic `math.random`;
//! - [`convert`]: RESP replies to Lua values and back, RESP2 and RESP3;
//! - [`cache::ScriptCache`]: the SHA1-keyed script cache behind EVALSHA and
//!   SCRIPT LOAD / EXISTS / FLUSH, and the `#!lua` shebang of EVAL scripts;
//! - [`functions`]: FUNCTION LOAD's library code (`#!lua name=...`,
//!   `redis.register_function` and its flags);
//! - [`libs`]: cjson, cmsgpack, bit and struct, written in Rust on mlua.
//!
//! # What the engine does with it
//!
//! A script runs to the end without anything interleaving (the engine holds
//! its write path for the whole run). The VM polls
//! [`ScriptHost::interrupted`] every 100,000 Lua instructions, which is where
//! the engine answers `BUSY` to others and honours SCRIPT KILL. Under Raft a
//! script is one log entry: the engine seeds `math.random` from the entry
//! ([`vm::ScriptVm::seed_random`]) and serves `TIME` from the entry's clock,
//! so every node runs the same.

pub mod cache;
pub mod convert;
pub mod functions;
pub mod libs;
mod rand;
mod raw;
pub mod state;
pub mod vm;

use bytes::Bytes;

use crate::resp::{Protocol, Reply};

pub use cache::{ScriptCache, ScriptFlags};
pub use functions::{FunctionFlags, Library, LibraryError};
pub use state::{ScriptCall, Scripts};
pub use vm::{ScriptVm, VmError};

/// Redis's `redis.log` levels (`LL_DEBUG` .. `LL_WARNING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Verbose,
    Notice,
    Warning,
}

/// One `redis.call` / `redis.pcall` as the host sees it.
#[derive(Debug, Clone)]
pub struct HostCall {
    /// The command and its arguments, as the script passed them (numbers are
    /// already formatted as Redis formats them, `%.17g`).
    pub args: Vec<Bytes>,
    /// The protocol the script asked for with `redis.setresp` (RESP2 unless
    /// it asked). The reply is converted for it by this module, so the host
    /// only needs it for commands whose behaviour depends on it.
    pub protocol: Protocol,
    /// True for EVAL_RO / EVALSHA_RO / FCALL_RO and for scripts or functions
    /// flagged `no-writes`: the host refuses a write command with
    /// `ERR Write commands are not allowed from read-only scripts.` (the VM
    /// adds nothing to that text).
    pub read_only: bool,
}

/// The error a script's `redis.call` of an unknown command gets (the host
/// answers it instead of the client-facing `unknown command` text).
pub const UNKNOWN_COMMAND: &str = "ERR Unknown Redis command called from script";
/// The error for a wrong number of arguments from a script.
pub const WRONG_ARITY: &str = "ERR Wrong number of args calling Redis command from script";

/// What a script needs from the engine that runs it.
///
/// One value lives for one script run; the VM calls it from inside Lua, so
/// an implementation must not call back into the VM.
pub trait ScriptHost {
    /// Run one command as the script's client and return its reply. An
    /// unknown command ([`UNKNOWN_COMMAND`]), wrong arity ([`WRONG_ARITY`]), a denied write, a command scripts may not
    /// call (Redis's `noscript` flag) are error replies with Redis's texts;
    /// `redis.call` raises them, `redis.pcall` returns them.
    fn call(&mut self, call: HostCall) -> Reply;

    /// `redis.log`: the default writes through `tracing`.
    fn log(&mut self, level: LogLevel, message: &[u8]) {
        let text = String::from_utf8_lossy(message);
        match level {
            LogLevel::Debug | LogLevel::Verbose => {
                tracing::debug!(target: "kiwi::script", "{text}")
            }
            LogLevel::Notice => tracing::info!(target: "kiwi::script", "{text}"),
            LogLevel::Warning => tracing::warn!(target: "kiwi::script", "{text}"),
        }
    }

    /// Polled every 100,000 Lua instructions: true stops the script with
    /// `ERR Script killed by user with SCRIPT KILL...` (the engine returns
    /// true only when SCRIPT KILL / FUNCTION KILL asked for a script that has
    /// not written). The default never interrupts.
    fn interrupted(&mut self) -> bool {
        false
    }
}
