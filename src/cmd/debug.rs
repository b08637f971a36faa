//! DEBUG: the subcommands tests lean on (SLEEP, SET-ACTIVE-EXPIRE, OBJECT,
//! RELOAD, ...), refused unless `enable-debug-command` allows it, with
//! Redis 7.0's texts.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::server::help_reply;
use super::{is, Call, CmdError, CmdResult};
use crate::resp::Reply;

const HELP: &[&str] = &[
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "    Dangerous: should be used only for testing the replication subsystem.",
    "JMAP",
    "    Create a memory map of the Java heap (no-op in Kiwi, as in Redis).",
    "OBJECT <key>",
    "    Show low level info about the <key> and associated value.",
    "QUICKLIST-PACKED-THRESHOLD <size>",
    "    Sets the threshold for elements to be inserted as plain vs packed nodes",
    "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
    "RELOAD [MERGE] [NOFLUSH] [NOSAVE]",
    "    Save the RDB on disk and reload it back to memory (Kiwi's data is always",
    "    on disk: nothing to reload).",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
];

/// Redis's refusal while `enable-debug-command` is off.
const DEBUG_OFF: &str = "DEBUG command not allowed. If the enable-debug-command option is set to \
    \"local\", you can run it from a local connection, otherwise you need to set this option in \
    the configuration file, and then restart the server.";

pub fn debug(call: &mut Call<'_, '_>) -> CmdResult {
    let allowed = call
        .engine
        .config
        .read()
        .compat
        .text("enable-debug-command");
    let allowed = match allowed.as_str() {
        "yes" => true,
        "local" => crate::config::FaultInjection::Local.allows(&call.session.info.addr),
        _ => false,
    };
    if !allowed {
        return Err(CmdError::err(DEBUG_OFF));
    }
    let args = call.args;
    let sub = &args[1];
    let n = args.len();
    if is(sub, "HELP") && n == 2 {
        return Ok(help_reply("DEBUG", HELP));
    }
    if is(sub, "SLEEP") && n == 3 {
        let seconds: f64 = std::str::from_utf8(&args[2])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|s: &f64| s.is_finite())
            .unwrap_or(0.0);
        if seconds > 0.0 {
            // As Redis's, the whole keyspace waits meanwhile.
            let _stalled = call.engine.storage().locks().everything();
            std::thread::sleep(Duration::from_secs_f64(seconds.min(3600.0)));
        }
        return Ok(Reply::OK);
    }
    if is(sub, "SET-ACTIVE-EXPIRE") && n == 3 {
        let on = super::parse_i64(&args[2]).is_some_and(|v| v != 0);
        call.engine.active_expire.store(on, Relaxed);
        return Ok(Reply::OK);
    }
    if is(sub, "OBJECT") && n == 3 {
        let Some(meta) = call.ctx.get_meta(&args[2])? else {
            return Err(CmdError::NoSuchKey);
        };
        let encoding = super::keys::encoding_name(&meta);
        return Ok(Reply::StatusOwned(format!(
            "Value at:0x0 refcount:1 encoding:{encoding} serializedlength:0 lru:0 lru_seconds_idle:0"
        )));
    }
    if (is(sub, "RELOAD") && n <= 5)
        || (is(sub, "JMAP") && n == 2)
        || (is(sub, "CHANGE-REPL-ID") && n == 2)
        || (is(sub, "QUICKLIST-PACKED-THRESHOLD") && n == 3)
    {
        return Ok(Reply::OK);
    }
    Err(CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        super::args::err_text(sub, 128)
    )))
}
