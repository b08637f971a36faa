//! Consumer groups: XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER,
//! DELCONSUMER, HELP), XACK and XPENDING.

use bytes::Bytes;

use super::store::{Consumer, Group};
use super::{
    id_reply, nogroup, parse_id, parse_strict_id, range_end, range_start, Call, CmdError, CmdResult,
};
use crate::cmd::args::{err_text, int_arg, is};
use crate::resp::Reply;
use crate::storage::events::class::{NEW, STREAM};
use crate::storage::StreamId;

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

/// Redis's addReplyHelp: the lines as status replies.
pub fn help_reply(lines: &[&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::Status(l)).collect())
}

/// Redis's addReplySubcommandSyntaxError.
pub fn subcommand_syntax(cmd: &str, sub: &[u8]) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {cmd} HELP.",
        err_text(sub, 128)
    ))
}

fn nogroup_for_key(group: &[u8], key: &[u8]) -> CmdError {
    CmdError::Raw(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        err_text(group, usize::MAX),
        err_text(key, usize::MAX)
    ))
}

pub fn xgroup(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let sub = &args[1];
    let create = is(sub, "create");
    let setid = is(sub, "setid");
    let mut mkstream = false;
    let mut entries_read: i64 = -1;
    let mut found = None;
    if args.len() >= 4 {
        let mut i = 5;
        while i < args.len() {
            if create && is(&args[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if (create || setid) && is(&args[i], "entriesread") && i + 1 < args.len() {
                entries_read = int_arg(&args[i + 1])?;
                if entries_read < 0 && entries_read != -1 {
                    return Err(CmdError::err(
                        "value for ENTRIESREAD must be positive or -1",
                    ));
                }
                i += 2;
            } else {
                return Err(subcommand_syntax("XGROUP", sub));
            }
        }
        found = call.stream(&args[2])?;
    }
    let mut group = None;
    if args.len() >= 4 && !mkstream {
        let Some(s) = &found else {
            return Err(CmdError::err(
                "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
            ));
        };
        group = s.group(call, &args[3])?;
        if group.is_none() && (setid || is(sub, "createconsumer") || is(sub, "delconsumer")) {
            return Err(nogroup_for_key(&args[3], &args[2]));
        }
    }
    if args.len() == 2 && is(sub, "help") {
        return Ok(help_reply(XGROUP_HELP));
    }
    if create && (5..=8).contains(&args.len()) {
        let key = &args[2];
        let id = if args[4].as_ref() == b"$" {
            found.as_ref().map_or(StreamId::MIN, |s| s.last_id())
        } else {
            parse_strict_id(&args[4], 0)?
        };
        let s = match found {
            Some(s) => s,
            None => {
                let s = call.new_stream(key);
                s.save(call);
                call.ctx.notify(NEW, "new", key);
                s
            }
        };
        if s.group(call, &args[3])?.is_some() {
            return Err(CmdError::Raw(
                "BUSYGROUP Consumer Group name already exists".into(),
            ));
        }
        s.put_group(
            call,
            &Group {
                name: args[3].clone(),
                last_id: id,
                entries_read,
            },
        );
        call.ctx.notify(STREAM, "xgroup-create", key);
        return Ok(Reply::Status("OK"));
    }
    if setid && (args.len() == 5 || args.len() == 7) {
        let (Some(s), Some(mut g)) = (found, group) else {
            return Err(subcommand_syntax("XGROUP", sub));
        };
        let id = if args[4].as_ref() == b"$" {
            s.last_id()
        } else {
            parse_id(&args[4], 0)?
        };
        g.last_id = id;
        g.entries_read = entries_read;
        s.put_group(call, &g);
        call.ctx.notify(STREAM, "xgroup-setid", &args[2]);
        return Ok(Reply::Status("OK"));
    }
    if is(sub, "destroy") && args.len() == 4 {
        let Some(s) = found else {
            return Err(subcommand_syntax("XGROUP", sub));
        };
        if group.is_none() {
            return Ok(Reply::Int(0));
        }
        s.delete_group(call, &args[3])?;
        call.ctx.notify(STREAM, "xgroup-destroy", &args[2]);
        return Ok(Reply::Int(1));
    }
    if is(sub, "createconsumer") && args.len() == 5 {
        let Some(s) = found else {
            return Err(subcommand_syntax("XGROUP", sub));
        };
        if s.consumer(call, &args[3], &args[4])?.is_some() {
            return Ok(Reply::Int(0));
        }
        s.put_consumer(
            call,
            &args[3],
            &Consumer {
                name: args[4].clone(),
                seen_ms: call.ctx.now_ms,
            },
        );
        call.ctx.notify(STREAM, "xgroup-createconsumer", &args[2]);
        return Ok(Reply::Int(1));
    }
    if is(sub, "delconsumer") && args.len() == 5 {
        let Some(s) = found else {
            return Err(subcommand_syntax("XGROUP", sub));
        };
        if s.consumer(call, &args[3], &args[4])?.is_none() {
            return Ok(Reply::Int(0));
        }
        let pending = s.delete_consumer(call, &args[3], &args[4])?;
        call.ctx.notify(STREAM, "xgroup-delconsumer", &args[2]);
        return Ok(Reply::Int(pending as i64));
    }
    Err(subcommand_syntax("XGROUP", sub))
}

pub fn xack(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let Some(s) = call.read_stream(&args[1])? else {
        return Ok(Reply::Int(0));
    };
    if s.group(call, &args[2])?.is_none() {
        return Ok(Reply::Int(0));
    }
    let ids = args[3..]
        .iter()
        .map(|a| parse_strict_id(a, 0))
        .collect::<CmdResult<Vec<_>>>()?;
    let mut acked = 0;
    for id in ids {
        if let Some(p) = s.pending(call, &args[2], id)? {
            s.delete_pending(call, &args[2], &p.consumer, id);
            acked += 1;
        }
    }
    Ok(Reply::Int(acked))
}

pub fn xpending(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CmdError::Syntax);
    }
    let mut range = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0i64;
        if is(&args[3], "idle") {
            min_idle = int_arg(&args[4])?;
            if argc < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let count = int_arg(&args[at + 2])?.max(0);
        let start = range_start(&args[at])?;
        let end = range_end(&args[at + 1])?;
        let consumer = args.get(at + 3).cloned();
        range = Some((min_idle, start, end, count, consumer));
    }
    let found = call.read_stream(&args[1])?;
    let group = match &found {
        Some(s) => s.group(call, &args[2])?,
        None => None,
    };
    let (Some(s), Some(_)) = (found, group) else {
        return Err(nogroup(&args[1], &args[2]));
    };
    let group = &args[2];
    let Some((min_idle, start, end, count, consumer)) = range else {
        let all = s.pending_range(call, group, StreamId::MIN, StreamId::MAX, 0)?;
        let (Some(first), Some(last)) = (all.first(), all.last()) else {
            return Ok(Reply::Array(vec![
                Reply::Int(0),
                Reply::Nil,
                Reply::Nil,
                Reply::NilArray,
            ]));
        };
        let mut per_consumer: Vec<(Bytes, u64)> = Vec::new();
        for c in s.consumers(call, group)? {
            let n = s
                .owned(call, group, &c.name, StreamId::MIN, StreamId::MAX, 0)?
                .len() as u64;
            if n > 0 {
                per_consumer.push((c.name, n));
            }
        }
        return Ok(Reply::Array(vec![
            Reply::Int(all.len() as i64),
            id_reply(first.id),
            id_reply(last.id),
            Reply::Array(
                per_consumer
                    .into_iter()
                    .map(|(name, n)| {
                        Reply::Array(vec![Reply::Bulk(name), Reply::Bulk(n.to_string().into())])
                    })
                    .collect(),
            ),
        ]));
    };
    let now = call.ctx.now_ms as i64;
    let mut out = Vec::new();
    let mut left = count;
    let pending = match &consumer {
        Some(name) => {
            if s.consumer(call, group, name)?.is_none() {
                return Ok(Reply::Array(Vec::new()));
            }
            let mut v = Vec::new();
            for id in s.owned(call, group, name, start, end, 0)? {
                if let Some(p) = s.pending(call, group, id)? {
                    v.push(p);
                }
            }
            v
        }
        None => s.pending_range(call, group, start, end, 0)?,
    };
    for p in pending {
        if left == 0 {
            break;
        }
        let idle = now - p.delivery_ms as i64;
        if min_idle != 0 && idle < min_idle {
            continue;
        }
        left -= 1;
        out.push(Reply::Array(vec![
            id_reply(p.id),
            Reply::Bulk(p.consumer),
            Reply::Int(idle.max(0)),
            Reply::Int(p.deliveries as i64),
        ]));
    }
    Ok(Reply::Array(out))
}
