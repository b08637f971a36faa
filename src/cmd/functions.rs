//! FCALL, FCALL_RO and FUNCTION.
//!
//! FCALL parses its call and hands it to the engine ([`Handled::Script`]),
//! like EVAL. FUNCTION LOAD / DELETE / FLUSH change the libraries, which are
//! stored with the data (the `raft_replicated` family), so they survive a
//! restart and, under Raft, travel through the log to every node.

use bytes::Bytes;

use super::scripting::{reply_error, status_lines};
use super::{args::err_text, glob_match, Call, CmdError, CmdResult, Handled};
use crate::resp::Reply;
use crate::script::functions::{list_entry, LibraryError, RestorePolicy};
use crate::script::state::{split_keys, KillError, ScriptCall};

pub fn fcall(call: &mut Call<'_, '_>) -> CmdResult<Handled> {
    function_call(call, false)
}

pub fn fcall_ro(call: &mut Call<'_, '_>) -> CmdResult<Handled> {
    function_call(call, true)
}

fn function_call(call: &mut Call<'_, '_>, read_only: bool) -> CmdResult<Handled> {
    let flags = {
        let mut guard = call.engine.function_engine().map_err(reply_error)?;
        let engine = guard.engine().ok_or_else(unavailable)?;
        match engine.function(&call.args[1]) {
            Some(f) => f.flags,
            None => return Err(CmdError::err("Function not found")),
        }
    };
    let rest = call.args.get(2..).unwrap_or_default();
    let numkeys_ok = rest
        .first()
        .and_then(|n| std::str::from_utf8(n).ok())
        .is_some_and(|n| n.parse::<i64>().is_ok());
    if !numkeys_ok {
        return Err(CmdError::err("Bad number of keys provided"));
    }
    let (keys, args) = split_keys(rest).map_err(|e| CmdError::Raw(e.into()))?;
    if read_only && !flags.no_writes {
        return Err(CmdError::err(
            "Can not execute a script with write flag using *_ro command.",
        ));
    }
    let name = String::from_utf8_lossy(&call.args[1]).into_owned();
    Ok(Handled::Script(Box::new(ScriptCall::function(
        name, flags, keys, args, read_only,
    ))))
}

/// FUNCTION LOAD / DELETE / FLUSH / LIST / STATS / KILL / HELP.
pub fn function(call: &mut Call<'_, '_>) -> CmdResult<Reply> {
    let sub = call.args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"load" => load(call),
        b"delete" => {
            let name = String::from_utf8_lossy(&call.args[2]).into_owned();
            {
                let mut guard = call.engine.function_engine().map_err(reply_error)?;
                let engine = guard.engine().ok_or_else(unavailable)?;
                engine.delete(&name).map_err(library_error)?;
            }
            call.ctx.delete_library(&name);
            Ok(Reply::OK)
        }
        b"flush" => {
            if let Some(mode) = call.args.get(2) {
                if call.args.len() > 3
                    || !(mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async"))
                {
                    return Err(CmdError::err(
                        "FUNCTION FLUSH only supports SYNC|ASYNC option",
                    ));
                }
            }
            let names = {
                let mut guard = call.engine.function_engine().map_err(reply_error)?;
                guard.engine().ok_or_else(unavailable)?.flush()
            };
            for name in names {
                call.ctx.delete_library(&name);
            }
            Ok(Reply::OK)
        }
        b"list" => list(call),
        b"stats" => stats(call),
        b"kill" => match call.engine.scripts.kill(true) {
            Ok(()) => Ok(Reply::OK),
            Err(e) => Err(CmdError::Raw(kill_text(e).into())),
        },
        b"dump" => {
            let mut guard = call.engine.function_engine().map_err(reply_error)?;
            let engine = guard.engine().ok_or_else(unavailable)?;
            Ok(Reply::Bulk(Bytes::from(engine.dump())))
        }
        b"restore" => restore(call),
        b"help" => Ok(help()),
        _ => Err(super::server::unknown_subcommand(&call.args[1], "FUNCTION")),
    }
}

/// FUNCTION KILL's refusals (Redis words NOTBUSY the same for both).
fn kill_text(e: KillError) -> &'static str {
    match e {
        KillError::NotBusy => "NOTBUSY No scripts in execution right now.",
        other => other.text(true),
    }
}

fn load(call: &mut Call<'_, '_>) -> CmdResult<Reply> {
    let last = call.args.len() - 1;
    let mut replace = false;
    for option in &call.args[2..last] {
        if option.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else {
            return Err(CmdError::err(format!(
                "Unknown option given: {}",
                String::from_utf8_lossy(option)
            )));
        }
    }
    let code: Bytes = call.args[last].clone();
    let name = {
        let mut guard = call.engine.function_engine().map_err(reply_error)?;
        let engine = guard.engine().ok_or_else(unavailable)?;
        engine.load(code.clone(), replace).map_err(library_error)?
    };
    call.ctx.put_library(&name, &code);
    Ok(Reply::Bulk(Bytes::from(name)))
}

fn restore(call: &mut Call<'_, '_>) -> CmdResult<Reply> {
    let policy = match call.args.get(3) {
        None => RestorePolicy::Append,
        Some(p) if call.args.len() == 4 => match p.to_ascii_lowercase().as_slice() {
            b"flush" => RestorePolicy::Flush,
            b"append" => RestorePolicy::Append,
            b"replace" => RestorePolicy::Replace,
            _ => return Err(bad_policy()),
        },
        Some(_) => {
            return Err(CmdError::err(format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
                err_text(&call.args[1], 128)
            )))
        }
    };
    let (removed, stored) = {
        let mut guard = call.engine.function_engine().map_err(reply_error)?;
        let engine = guard.engine().ok_or_else(unavailable)?;
        engine
            .restore(&call.args[2], policy)
            .map_err(library_error)?
    };
    for name in removed {
        call.ctx.delete_library(&name);
    }
    for (name, code) in stored {
        call.ctx.put_library(&name, &code);
    }
    Ok(Reply::OK)
}

fn bad_policy() -> CmdError {
    CmdError::err("Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
}

fn list(call: &mut Call<'_, '_>) -> CmdResult<Reply> {
    let mut pattern: Option<Bytes> = None;
    let mut with_code = false;
    let mut i = 2;
    while let Some(arg) = call.args.get(i) {
        if arg.eq_ignore_ascii_case(b"withcode") && !with_code {
            with_code = true;
        } else if arg.eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
            let Some(p) = call.args.get(i + 1) else {
                return Err(CmdError::err("library name argument was not given"));
            };
            pattern = Some(p.clone());
            i += 1;
        } else {
            return Err(CmdError::err(format!(
                "Unknown argument {}",
                String::from_utf8_lossy(arg)
            )));
        }
        i += 1;
    }
    let mut guard = call.engine.function_engine().map_err(reply_error)?;
    let engine = guard.engine().ok_or_else(unavailable)?;
    Ok(Reply::Array(
        engine
            .libraries()
            .filter(|lib| {
                pattern
                    .as_ref()
                    .is_none_or(|p| glob_match(p, lib.name.as_bytes()))
            })
            .map(|lib| list_entry(lib, with_code))
            .collect(),
    ))
}

fn stats(call: &mut Call<'_, '_>) -> CmdResult<Reply> {
    let running = match call.engine.scripts.running_function() {
        Some((name, command, ms)) => Reply::Map(vec![
            (bulk("name"), Reply::Bulk(Bytes::from(name))),
            (
                bulk("command"),
                Reply::Array(command.into_iter().map(Reply::Bulk).collect()),
            ),
            (bulk("duration_ms"), Reply::Int(ms)),
        ]),
        None => Reply::Nil,
    };
    // A running function holds the engine: answer from the last counts.
    let (libraries, functions) = match call.engine.scripts.function_counts() {
        Some(counts) => counts,
        None => {
            let mut guard = call.engine.function_engine().map_err(reply_error)?;
            let engine = guard.engine().ok_or_else(unavailable)?;
            (engine.libraries().count(), engine.function_count())
        }
    };
    let count = |n: usize| Reply::Int(i64::try_from(n).unwrap_or(i64::MAX));
    Ok(Reply::Map(vec![
        (bulk("running_script"), running),
        (
            bulk("engines"),
            Reply::Map(vec![(
                bulk("LUA"),
                Reply::Map(vec![
                    (bulk("libraries_count"), count(libraries)),
                    (bulk("functions_count"), count(functions)),
                ]),
            )]),
        ),
    ]))
}

fn bulk(text: &'static str) -> Reply {
    Reply::Bulk(Bytes::from_static(text.as_bytes()))
}

fn unavailable() -> CmdError {
    CmdError::err("the Lua interpreter is not available")
}

fn library_error(e: LibraryError) -> CmdError {
    CmdError::Raw(e.0)
}

fn help() -> Reply {
    let lines: &[&str] = &[
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
        "HELP",
        "    Prints this help.",
    ];
    status_lines(lines)
}
