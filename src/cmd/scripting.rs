//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT.
//!
//! The EVAL family only parses its call (numkeys, the cached body, the
//! shebang's flags) and hands it to the engine
//! ([`Handled::Script`]), which runs it at the top with the storage lock
//! held for the whole run (`engine/script.rs`), as EXEC's queue is run: no
//! command runs other commands. SCRIPT acts on the script cache.

use bytes::Bytes;

use super::{Call, CmdError, CmdResult, CommandSpec, Handled};
use crate::resp::Reply;
use crate::script::state::{split_keys, ScriptCall};

/// EVALSHA's answer for a SHA the cache does not hold.
pub const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

pub fn eval(call: &mut Call<'_, '_>) -> CmdResult<Handled> {
    script_call(call, false, false)
}

pub fn eval_ro(call: &mut Call<'_, '_>) -> CmdResult<Handled> {
    script_call(call, false, true)
}

pub fn evalsha(call: &mut Call<'_, '_>) -> CmdResult<Handled> {
    script_call(call, true, false)
}

pub fn evalsha_ro(call: &mut Call<'_, '_>) -> CmdResult<Handled> {
    script_call(call, true, true)
}

fn script_call(call: &mut Call<'_, '_>, by_sha: bool, read_only: bool) -> CmdResult<Handled> {
    let first = call.args[1].clone();
    let rest = call.args.get(2..).unwrap_or_default();
    split_keys(rest).map_err(|e| CmdError::Raw(e.into()))?;
    let body = match by_sha {
        true => match call.engine.scripts.lookup(&first) {
            Some((body, _)) => body,
            None => return Err(CmdError::Raw(NOSCRIPT.into())),
        },
        false => first,
    };
    let script = ScriptCall::parse(body, rest, read_only).map_err(CmdError::Raw)?;
    Ok(Handled::Script(Box::new(script)))
}

/// SCRIPT LOAD / EXISTS / FLUSH / KILL / DEBUG / HELP.
pub fn script(call: &mut Call<'_, '_>) -> CmdResult<Reply> {
    let sub = call.args[1].to_ascii_lowercase();
    let scripts = &call.engine.scripts;
    match sub.as_slice() {
        b"load" => {
            let body: Bytes = call.args[2].clone();
            let mut guard = scripts.vm().map_err(reply_error)?;
            let Some(vm) = guard.vm() else {
                return Err(CmdError::err("the Lua interpreter is not available"));
            };
            let sha = scripts.load(vm, &body).map_err(reply_error)?;
            Ok(Reply::Bulk(Bytes::from(sha)))
        }
        b"exists" => Ok(Reply::Array(
            call.args[2..]
                .iter()
                .map(|sha| Reply::Int(i64::from(scripts.exists(sha))))
                .collect(),
        )),
        b"flush" => {
            if let Some(mode) = call.args.get(2) {
                if call.args.len() > 3
                    || !(mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async"))
                {
                    return Err(CmdError::err("SCRIPT FLUSH only support SYNC|ASYNC option"));
                }
            }
            scripts.flush();
            Ok(Reply::OK)
        }
        b"kill" => match scripts.kill(false) {
            Ok(()) => Ok(Reply::OK),
            Err(e) => Err(CmdError::Raw(e.text(false).into())),
        },
        b"debug" => {
            let mode = call.args[2].to_ascii_lowercase();
            match mode.as_slice() {
                b"no" => Ok(Reply::OK),
                b"yes" | b"sync" => Err(CmdError::err(
                    "Kiwi has no Lua debugger: SCRIPT DEBUG YES and SYNC are not supported",
                )),
                _ => Err(CmdError::err("Use SCRIPT DEBUG YES/SYNC/NO")),
            }
        }
        b"help" => Ok(help()),
        _ => Err(super::server::unknown_subcommand(&call.args[1], "SCRIPT")),
    }
}

/// Whether `args` runs a script (EVAL, EVALSHA and their `_RO` forms), or
/// is an EXEC whose queue `queued` holds one: such a request may run long.
pub fn runs_script(args: &[Bytes], queued: Option<&Vec<Vec<Bytes>>>) -> bool {
    let is_script = |args: &[Bytes]| {
        args.first().is_some_and(|name| {
            [
                &b"eval"[..],
                b"evalsha",
                b"eval_ro",
                b"evalsha_ro",
                b"fcall",
                b"fcall_ro",
                // DEBUG SLEEP holds the server like a long script.
                b"debug",
            ]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        })
    };
    is_script(args)
        || (args
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(b"exec"))
            && queued.is_some_and(|q| q.iter().any(|a| is_script(a))))
}

/// SCRIPT subcommands that change the cache of every node: under Raft they
/// travel through the log so that EVALSHA finds a script on any node.
pub fn replicated_admin(spec: &CommandSpec, args: &[Bytes]) -> bool {
    let sub = |names: &[&[u8]]| {
        args.get(1)
            .is_some_and(|s| names.iter().any(|n| s.eq_ignore_ascii_case(n)))
    };
    match spec.name {
        "script" => sub(&[b"load", b"flush"]),
        "function" => sub(&[b"load", b"delete", b"flush", b"restore"]),
        _ => false,
    }
}

/// Whether the command reads the script cache (EVALSHA, SCRIPT EXISTS):
/// under Raft it passes the read barrier first, so it sees every SCRIPT
/// LOAD acknowledged before it.
pub fn reads_script_cache(spec: &CommandSpec, args: &[Bytes]) -> bool {
    match spec.name {
        "evalsha" | "evalsha_ro" => true,
        "script" => args
            .get(1)
            .is_some_and(|s| s.eq_ignore_ascii_case(b"exists")),
        _ => false,
    }
}

/// Commands a script may not call (Redis 7.0's `noscript` flag): `name` or
/// `name|subcommand`.
const NOT_FROM_SCRIPTS: &[&str] = &[
    "auth",
    "hello",
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    "quit",
    "reset",
    "eval",
    "eval_ro",
    "evalsha",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
    "script",
    "function",
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "monitor",
    "blpop",
    "brpop",
    "brpoplpush",
    "blmove",
    "bzpopmin",
    "bzpopmax",
    "save",
    "bgsave",
    "bgrewriteaof",
    "shutdown",
    "debug",
    "wait",
    "role",
    "sync",
    "psync",
    "replconf",
    "replicaof",
    "slaveof",
    "failover",
    "acl",
    "latency",
    "module",
    "config",
    "client",
];

/// Whether a script may call `spec` (with `args`). CLIENT, CONFIG, ACL,
/// LATENCY and MODULE are refused whole: Redis refuses each of their
/// subcommands that Kiwi has.
pub fn allowed_in_script(spec: &CommandSpec) -> bool {
    !NOT_FROM_SCRIPTS.contains(&spec.name)
}

/// What answers while a script runs past `busy-reply-threshold` (Redis's
/// `allow-busy` commands).
pub fn allowed_while_busy(spec: &CommandSpec, args: &[Bytes]) -> bool {
    let sub = |name: &[u8]| args.get(1).is_some_and(|s| s.eq_ignore_ascii_case(name));
    match spec.name {
        "auth" | "hello" | "multi" | "discard" | "watch" | "unwatch" | "quit" | "reset"
        | "shutdown" => true,
        "script" => sub(b"kill"),
        "function" => sub(b"kill") || sub(b"stats"),
        _ => false,
    }
}

/// The error reply of the script engine (an interpreter that did not
/// start, a script that did not compile) as a command's error.
pub(super) fn reply_error(reply: Reply) -> CmdError {
    match reply {
        Reply::Error(text) => CmdError::Raw(text),
        other => CmdError::Raw(format!("ERR {other:?}")),
    }
}

fn help() -> Reply {
    let lines: &[&str] = &[
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ];
    status_lines(lines)
}

/// SCRIPT HELP / FUNCTION HELP: Redis's lines, as status replies.
pub(super) fn status_lines(lines: &[&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::Status(l)).collect())
}
