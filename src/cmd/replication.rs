//! Redis's replication, failover, migration and module commands. Kiwi
//! replicates with Raft and loads no modules: each answers what Redis
//! answers where Kiwi is in the same state (a master without replicas, no
//! modules, module loading switched off), and otherwise an error that says
//! what to use instead. BGREWRITEAOF compacts the database, Kiwi's
//! counterpart of rewriting the append-only file.

use super::server::{help_reply, unknown_subcommand};
use super::{is, parse_i64, Call, CmdError, CmdResult};
use crate::resp::Reply;

/// What to use for replication in Kiwi.
const USE_RAFT: &str = "Kiwi replicates with Raft, not with Redis replication: start \
    each node with --node-id and --raft-addr and add it to a cluster with RAFT.NODE ADD \
    <id> <host:port> (RAFT.INFO shows the cluster)";

/// REPLICAOF / SLAVEOF host port: NO ONE is what a Kiwi server already is.
pub fn replicaof(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    if is(&args[1], "NO") && is(&args[2], "ONE") {
        return Ok(Reply::OK);
    }
    if parse_i64(&args[2]).is_none_or(|p| !(0..=65535).contains(&p)) {
        return Err(CmdError::err("Invalid master port"));
    }
    Err(CmdError::err(USE_RAFT))
}

/// SYNC and PSYNC: no replica can attach.
pub fn sync(_call: &mut Call<'_, '_>) -> CmdResult {
    Err(CmdError::err(USE_RAFT))
}

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]: a server without
/// replicas cannot, as Redis says.
pub fn failover(call: &mut Call<'_, '_>) -> CmdResult {
    if call.args.get(1).is_some_and(|a| is(a, "ABORT")) {
        return Err(CmdError::err("No failover in progress."));
    }
    Err(CmdError::err("FAILOVER requires connected replicas."))
}

/// MIGRATE: Kiwi does not move keys between servers itself.
pub fn migrate(_call: &mut Call<'_, '_>) -> CmdResult {
    Err(CmdError::err(
        "Kiwi does not MIGRATE keys: DUMP them here and RESTORE them on the other server",
    ))
}

/// BGREWRITEAOF: flush the memtables and compact everything in the
/// background (Kiwi's write-ahead log needs no rewriting).
pub fn bgrewriteaof(call: &mut Call<'_, '_>) -> CmdResult {
    let job = call.engine.storage().compaction_job();
    std::thread::spawn(move || job.run());
    Ok(Reply::Status(
        "Background append only file rewriting started",
    ))
}

const MODULE_HELP: &[&str] = &[
    "LIST",
    "    Return a list of loaded modules.",
    "LOAD <path> [<arg> ...]",
    "    Load a module library from <path>, passing to it any optional arguments.",
    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    "    Load a module library from <path>, while passing it module configurations and optional arguments.",
    "UNLOAD <name>",
    "    Unload a module.",
];

/// Redis's refusal while `enable-module-command` is off (its default).
const MODULES_OFF: &str = "MODULE command not allowed. If the enable-module-command option is \
    set to \"local\", you can run it from a local connection, otherwise you need to set this \
    option in the configuration file, and then restart the server.";

/// MODULE LIST (none) / HELP; LOAD, LOADEX and UNLOAD refused.
pub fn module(call: &mut Call<'_, '_>) -> CmdResult {
    let sub = &call.args[1];
    if is(sub, "LIST") {
        return Ok(Reply::Array(Vec::new()));
    }
    if is(sub, "HELP") {
        return Ok(help_reply("MODULE", MODULE_HELP));
    }
    if is(sub, "LOAD") || is(sub, "LOADEX") || is(sub, "UNLOAD") {
        let enabled = call
            .engine
            .config
            .read()
            .compat
            .text("enable-module-command");
        if enabled == "no" {
            return Err(CmdError::err(MODULES_OFF));
        }
        return Err(CmdError::err("Kiwi does not load Redis modules"));
    }
    Err(unknown_subcommand(sub, "MODULE"))
}
