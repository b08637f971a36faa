//! XINFO STREAM [FULL [COUNT n]], XINFO GROUPS, XINFO CONSUMERS, XINFO HELP.
//!
//! Redis reports the shape of its radix tree of listpack nodes
//! (`radix-tree-keys`, `radix-tree-nodes`); Kiwi keeps the same nodes
//! (see [`super::store`]) and counts the nodes a radix tree of their keys
//! has, as Redis's rax builds it.

use bytes::Bytes;

use super::group::{help_reply, subcommand_syntax};
use super::store::{Group, Stream};
use super::{
    entry_reply, estimate_distance, has_tombstones_from, id_reply, Call, CmdError, CmdResult,
};
use crate::cmd::args::{err_text, int_arg, is};
use crate::resp::Reply;
use crate::storage::StreamId;

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

fn text(s: &'static str) -> Reply {
    Reply::bulk_str(s)
}

/// The nodes of a rax holding `keys` (sorted, distinct, 16 bytes each):
/// a compressed node for a shared run of bytes, a branching node where
/// keys part, a leaf per key. Depth is bounded by the key length.
fn rax_nodes(keys: &[[u8; 16]], depth: usize) -> u64 {
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return 1;
    };
    if keys.len() == 1 {
        return if depth >= 16 { 1 } else { 2 };
    }
    let mut split = depth;
    while split < 16 && first.get(split) == last.get(split) {
        split += 1;
    }
    let mut total = u64::from(split > depth) + 1;
    let mut start = 0;
    while start < keys.len() {
        let byte = keys.get(start).and_then(|k| k.get(split)).copied();
        let mut end = start + 1;
        while end < keys.len() && keys.get(end).and_then(|k| k.get(split)).copied() == byte {
            end += 1;
        }
        total += rax_nodes(keys.get(start..end).unwrap_or(&[]), split + 1);
        start = end;
    }
    total
}

/// Redis's streamReplyWithCGLag.
fn lag(s: &Stream<'_>, g: &Group) -> Reply {
    let added = s.coll.meta.stream.entries_added;
    if added == 0 {
        return Reply::Int(0);
    }
    if g.entries_read != -1 && !has_tombstones_from(s, g.last_id) {
        return Reply::Int(added as i64 - g.entries_read);
    }
    match estimate_distance(s, g.last_id) {
        -1 => Reply::Nil,
        read => Reply::Int(added as i64 - read),
    }
}

fn entries_read(g: &Group) -> Reply {
    match g.entries_read {
        -1 => Reply::Nil,
        n => Reply::Int(n),
    }
}

pub fn xinfo(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let sub = &args[1];
    if is(sub, "help") {
        if args.len() != 2 {
            return Err(subcommand_syntax("XINFO", sub));
        }
        return Ok(help_reply(XINFO_HELP));
    }
    if args.len() < 3 {
        return Err(subcommand_syntax("XINFO", sub));
    }
    let key = &args[2];
    let Some(s) = call.read_stream(key)? else {
        return Err(CmdError::NoSuchKey);
    };
    if is(sub, "consumers") && args.len() == 4 {
        let Some(_) = s.group(call, &args[3])? else {
            return Err(CmdError::Raw(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                err_text(&args[3], usize::MAX),
                err_text(key, usize::MAX)
            )));
        };
        let now = call.ctx.now_ms as i64;
        let mut out = Vec::new();
        for c in s.consumers(call, &args[3])? {
            let pending = s
                .owned(call, &args[3], &c.name, StreamId::MIN, StreamId::MAX, 0)?
                .len();
            out.push(Reply::Map(vec![
                (text("name"), Reply::Bulk(c.name)),
                (text("pending"), Reply::Int(pending as i64)),
                (text("idle"), Reply::Int((now - c.seen_ms as i64).max(0))),
            ]));
        }
        return Ok(Reply::Array(out));
    }
    if is(sub, "groups") && args.len() == 3 {
        let mut out = Vec::new();
        for g in s.groups(call)? {
            let consumers = s.consumers(call, &g.name)?.len();
            let pending = s
                .pending_range(call, &g.name, StreamId::MIN, StreamId::MAX, 0)?
                .len();
            out.push(Reply::Map(vec![
                (text("name"), Reply::Bulk(g.name.clone())),
                (text("consumers"), Reply::Int(consumers as i64)),
                (text("pending"), Reply::Int(pending as i64)),
                (text("last-delivered-id"), id_reply(g.last_id)),
                (text("entries-read"), entries_read(&g)),
                (text("lag"), lag(&s, &g)),
            ]));
        }
        return Ok(Reply::Array(out));
    }
    if is(sub, "stream") {
        return stream_info(call, &s);
    }
    Err(subcommand_syntax("XINFO", sub))
}

fn stream_info(call: &mut Call<'_, '_>, s: &Stream<'_>) -> CmdResult {
    let args = call.args;
    let opts = &args[3..];
    let mut count: i64 = 10;
    let full = !opts.is_empty();
    if full {
        if (opts.len() != 1 && opts.len() != 3) || !is(&opts[0], "full") {
            return Err(subcommand_syntax("XINFO", &args[1]));
        }
        if opts.len() == 3 {
            if !is(&opts[1], "count") {
                return Err(subcommand_syntax("XINFO", &args[1]));
            }
            count = int_arg(&opts[2])?;
            if count < 0 {
                count = 10;
            }
        }
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let m = s.coll.meta.stream;
    let nodes: Vec<[u8; 16]> = s
        .node_ids(call)?
        .into_iter()
        .map(StreamId::to_bytes)
        .collect();
    let mut out = vec![
        (text("length"), Reply::Int(s.len() as i64)),
        (text("radix-tree-keys"), Reply::Int(nodes.len() as i64)),
        (
            text("radix-tree-nodes"),
            Reply::Int(rax_nodes(&nodes, 0) as i64),
        ),
        (text("last-generated-id"), id_reply(m.last_id)),
        (text("max-deleted-entry-id"), id_reply(m.max_deleted)),
        (text("entries-added"), Reply::Int(m.entries_added as i64)),
        (text("recorded-first-entry-id"), id_reply(m.first_id)),
    ];
    let groups = s.groups(call)?;
    if !full {
        out.push((text("groups"), Reply::Int(groups.len() as i64)));
        let first = s.range(call, StreamId::MIN, StreamId::MAX, false, 1)?;
        let last = s.range(call, StreamId::MIN, StreamId::MAX, true, 1)?;
        let edge =
            |e: Vec<super::store::Entry>| e.into_iter().next().map_or(Reply::Nil, entry_reply);
        out.push((text("first-entry"), edge(first)));
        out.push((text("last-entry"), edge(last)));
        return Ok(Reply::Map(out));
    }
    let entries = s.range(call, StreamId::MIN, StreamId::MAX, false, count)?;
    out.push((
        text("entries"),
        Reply::Array(entries.into_iter().map(entry_reply).collect()),
    ));
    let mut group_replies = Vec::with_capacity(groups.len());
    for g in &groups {
        let pel = s.pending_range(call, &g.name, StreamId::MIN, StreamId::MAX, 0)?;
        let pel_count = pel.len();
        let pending: Vec<Reply> = pel
            .into_iter()
            .take(if count == 0 { usize::MAX } else { count })
            .map(|p| {
                Reply::Array(vec![
                    id_reply(p.id),
                    Reply::Bulk(p.consumer),
                    Reply::Int(p.delivery_ms as i64),
                    Reply::Int(p.deliveries as i64),
                ])
            })
            .collect();
        let mut consumers = Vec::new();
        for c in s.consumers(call, &g.name)? {
            let owned = s.owned(call, &g.name, &c.name, StreamId::MIN, StreamId::MAX, 0)?;
            let owned_count = owned.len();
            let mut cpending = Vec::new();
            for id in owned
                .into_iter()
                .take(if count == 0 { usize::MAX } else { count })
            {
                if let Some(p) = s.pending(call, &g.name, id)? {
                    cpending.push(Reply::Array(vec![
                        id_reply(id),
                        Reply::Int(p.delivery_ms as i64),
                        Reply::Int(p.deliveries as i64),
                    ]));
                }
            }
            consumers.push(Reply::Map(vec![
                (text("name"), Reply::Bulk(c.name.clone())),
                (text("seen-time"), Reply::Int(c.seen_ms as i64)),
                (text("pel-count"), Reply::Int(owned_count as i64)),
                (text("pending"), Reply::Array(cpending)),
            ]));
        }
        group_replies.push(Reply::Map(vec![
            (text("name"), Reply::Bulk(Bytes::clone(&g.name))),
            (text("last-delivered-id"), id_reply(g.last_id)),
            (text("entries-read"), entries_read(g)),
            (text("lag"), lag(s, g)),
            (text("pel-count"), Reply::Int(pel_count as i64)),
            (text("pending"), Reply::Array(pending)),
            (text("consumers"), Reply::Array(consumers)),
        ]));
    }
    out.push((text("groups"), Reply::Array(group_replies)));
    Ok(Reply::Map(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ms: u64, seq: u64) -> [u8; 16] {
        StreamId::new(ms, seq).to_bytes()
    }

    #[test]
    fn rax_nodes_count_as_redis_reports_them() {
        assert_eq!(rax_nodes(&[], 0), 1);
        assert_eq!(rax_nodes(&[key(1, 1)], 0), 2);
        assert_eq!(rax_nodes(&[key(1, 1), key(101, 1), key(201, 1)], 0), 8);
    }
}
