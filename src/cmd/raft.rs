//! `RAFT.*`: cluster administration and fault injection. The functions
//! only check their arguments; the connection runs the operation on the
//! node's [`RaftNode`](crate::raft::RaftNode) (a node without Raft answers
//! an error).
//!
//! - `RAFT.INFO`
//! - `RAFT.CLUSTER INIT <id> <addr> [<id> <addr> ...]`
//! - `RAFT.NODE ADD <id> <addr>` (learner, then voter) | `RAFT.NODE REMOVE <id>`
//! - `RAFT.FAULT BLOCK <to-id> [BOTH]` | `UNBLOCK <id>` | `DROP <fraction>`
//!   | `DELAY <ms>` | `CLOCK <offset-ms>` | `CLEAR`: only when
//!   `enable-fault-injection` allows it (see [`FAULTS_OFF`]).

use super::table::{
    commands,
    flags::{A, AP, C},
};
use super::{is, parse_i64, text, Call, CmdError, CmdResult, CommandSpec, Deferred};
use crate::resp::Reply;

/// A checked `RAFT.*` request.
#[derive(Debug, Clone, PartialEq)]
pub enum RaftAdmin {
    Info,
    Init(Vec<(u64, String)>),
    AddNode(u64, String),
    RemoveNode(u64),
    Block {
        to: u64,
        both: bool,
    },
    Unblock(u64),
    Drop(f64),
    Delay(u64),
    /// Shift the node's clock by this many ms (0 puts it back).
    Clock(i64),
    /// Every fault off: links, drops, delay, clock.
    Clear,
}

/// What `RAFT.FAULT` answers when `enable-fault-injection` does not allow
/// it: Redis's text for DEBUG without `enable-debug-command`.
pub const FAULTS_OFF: &str = "RAFT.FAULT command not allowed. If the enable-fault-injection \
    option is set to \"local\", you can run it from a local connection, otherwise you need to \
    set this option in the configuration file, and then restart the server.";

/// The largest clock shift `RAFT.FAULT CLOCK` takes: a year.
const MAX_CLOCK_OFFSET_MS: u64 = 366 * 24 * 3600 * 1000;

pub(crate) static COMMANDS: &[CommandSpec] = commands! {
    "raft.info", 1, A, 0, 0, 0, info;
    "raft.cluster", -2, A, 0, 0, 0, cluster;
    "raft.node", -3, A, 0, 0, 0, node;
    "raft.fault", -2, AP, 0, 0, 0, fault;
};

/// Redis Cluster's replica-read switches: under Raft, READONLY lets this
/// connection read the node's own data without asking the leader (fast,
/// possibly stale, served even without a quorum); READWRITE restores
/// linearizable reads. A standalone node answers as a standalone Redis.
pub(crate) static CLUSTER_COMMANDS: &[CommandSpec] = commands! {
    "readonly", 1, C, 0, 0, 0, readonly;
    "readwrite", 1, C, 0, 0, 0, readwrite;
};

fn stale_reads(call: &mut Call<'_, '_>, on: bool) -> CmdResult {
    if !call.engine.is_replicated() {
        return Err(CmdError::err("This instance has cluster support disabled"));
    }
    call.session.stale_reads = on;
    Ok(Reply::OK)
}

fn readonly(call: &mut Call<'_, '_>) -> CmdResult {
    stale_reads(call, true)
}

fn readwrite(call: &mut Call<'_, '_>) -> CmdResult {
    stale_reads(call, false)
}

fn defer(admin: RaftAdmin) -> CmdResult<super::Outcome> {
    Ok(super::Outcome::Defer(Deferred::Raft(admin)))
}

fn node_id(arg: &[u8]) -> CmdResult<u64> {
    parse_i64(arg)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| CmdError::err("invalid node id"))
}

fn info(_call: &mut Call<'_, '_>) -> CmdResult<super::Outcome> {
    defer(RaftAdmin::Info)
}

fn cluster(call: &mut Call<'_, '_>) -> CmdResult<super::Outcome> {
    let args = call.args;
    if !is(&args[1], "init") {
        return Err(CmdError::err(format!(
            "unknown subcommand '{}'. Try RAFT.CLUSTER INIT <id> <addr> ...",
            text(&args[1])
        )));
    }
    let pairs = &args[2..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(CmdError::Arity("raft.cluster".into()));
    }
    let members = pairs
        .chunks(2)
        .map(|p| Ok((node_id(&p[0])?, text(&p[1]))))
        .collect::<CmdResult<Vec<_>>>()?;
    defer(RaftAdmin::Init(members))
}

fn node(call: &mut Call<'_, '_>) -> CmdResult<super::Outcome> {
    let args = call.args;
    match args.len() {
        4 if is(&args[1], "add") => defer(RaftAdmin::AddNode(node_id(&args[2])?, text(&args[3]))),
        3 if is(&args[1], "remove") => defer(RaftAdmin::RemoveNode(node_id(&args[2])?)),
        _ => Err(CmdError::Syntax),
    }
}

fn fault(call: &mut Call<'_, '_>) -> CmdResult<super::Outcome> {
    let args = call.args;
    let sub = &args[1];
    match args.len() {
        3 | 4 if is(sub, "block") => {
            let both = match args.get(3) {
                None => false,
                Some(w) if is(w, "both") => true,
                Some(_) => return Err(CmdError::Syntax),
            };
            defer(RaftAdmin::Block {
                to: node_id(&args[2])?,
                both,
            })
        }
        3 if is(sub, "unblock") => defer(RaftAdmin::Unblock(node_id(&args[2])?)),
        3 if is(sub, "drop") => match crate::num::string2d(&args[2]) {
            Some(f) if (0.0..=1.0).contains(&f) => defer(RaftAdmin::Drop(f)),
            _ => Err(CmdError::err("drop fraction must be between 0 and 1")),
        },
        3 if is(sub, "delay") => match parse_i64(&args[2]).and_then(|n| u64::try_from(n).ok()) {
            Some(ms) => defer(RaftAdmin::Delay(ms)),
            None => Err(CmdError::err("delay must be a non-negative number of ms")),
        },
        3 if is(sub, "clock") => match parse_i64(&args[2]) {
            Some(ms) if ms.unsigned_abs() <= MAX_CLOCK_OFFSET_MS => defer(RaftAdmin::Clock(ms)),
            _ => Err(CmdError::err(
                "clock offset must be a number of ms within a year either way",
            )),
        },
        2 if is(sub, "clear") => defer(RaftAdmin::Clear),
        _ => Err(CmdError::Syntax),
    }
}
