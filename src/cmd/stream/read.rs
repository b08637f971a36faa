//! XREAD and XREADGROUP, blocking as BLPOP does: a read that finds
//! nothing answers [`Outcome::Block`] and the connection runs it again when
//! one of its streams changes. XREAD's `$` is resolved to the stream's last
//! ID once, when it first blocks (the retry carries the resolved IDs), so a
//! woken reader sees what was added since it started waiting.

use bytes::Bytes;

use super::store::{Consumer, Entry, Group, Pending, Stream};
use super::{
    entry_reply, estimate_distance, has_tombstones_from, id_reply, parse_strict_id, Call, CmdError,
    CmdResult,
};
use crate::cmd::args::{err_text, int_arg, is};
use crate::cmd::{BlockOn, Outcome};
use crate::resp::{Protocol, Reply};
use crate::storage::events::class::STREAM;
use crate::storage::StreamId;

/// Entries a woken reader gets at most when it gave no COUNT (Redis's
/// XREAD_BLOCKED_DEFAULT_COUNT).
const BLOCKED_DEFAULT_COUNT: usize = 1000;

/// The keys of an XREAD/XREADGROUP call: the first half of what follows
/// STREAMS (COMMAND GETKEYS, CLIENT TRACKING).
pub fn stream_keys(args: &[Bytes]) -> Vec<Bytes> {
    let Some(at) = args.iter().skip(1).position(|a| is(a, "streams")) else {
        return Vec::new();
    };
    let rest = args.get(at + 2..).unwrap_or(&[]);
    rest.get(..rest.len() / 2).unwrap_or(&[]).to_vec()
}

/// Whether BLOCK comes among the options (before STREAMS).
pub fn has_block(args: &[Bytes]) -> bool {
    let mut rest = args.iter().skip(1);
    while let Some(a) = rest.next() {
        if is(a, "streams") {
            return false;
        }
        if is(a, "block") {
            return true;
        }
        if is(a, "count") {
            rest.next();
        } else if is(a, "group") {
            rest.next();
            rest.next();
        }
    }
    false
}

/// What one stream of the call asks for.
enum Want {
    /// Entries after this ID.
    After(StreamId),
    /// XREADGROUP's `>`: entries never delivered to the group.
    New,
}

struct ReadArgs {
    /// `None`: no BLOCK; `Some(None)`: block forever.
    block: Option<Option<std::time::Duration>>,
    count: usize,
    streams_at: usize,
    group: Option<(Bytes, Bytes)>,
    noack: bool,
}

/// BLOCK's milliseconds, as Redis's getTimeoutFromObjectOrReply reads them.
fn block_arg(call: &Call<'_, '_>, arg: &[u8]) -> CmdResult<Option<std::time::Duration>> {
    let ms = crate::cmd::parse_i64(arg)
        .ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    if ms > 0 && ms > i64::MAX - call.ctx.now_ms as i64 {
        return Err(CmdError::err("timeout is out of range"));
    }
    Ok((ms > 0).then(|| std::time::Duration::from_millis(ms as u64)))
}

fn parse(call: &Call<'_, '_>, grouped: bool) -> CmdResult<ReadArgs> {
    let args = call.args;
    let mut r = ReadArgs {
        block: None,
        count: 0,
        streams_at: 0,
        group: None,
        noack: false,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = &args[i];
        if is(o, "block") && more > 0 {
            if call.session.in_script {
                return Err(CmdError::err(format!(
                    "{} command is not allowed with BLOCK option from scripts",
                    err_text(&args[0], usize::MAX)
                )));
            }
            i += 1;
            r.block = Some(block_arg(call, &args[i])?);
        } else if is(o, "count") && more > 0 {
            i += 1;
            r.count = usize::try_from(int_arg(&args[i])?.max(0)).unwrap_or(usize::MAX);
        } else if is(o, "streams") && more > 0 {
            r.streams_at = i + 1;
            if !(args.len() - r.streams_at).is_multiple_of(2) {
                return Err(CmdError::err(
                    "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            break;
        } else if is(o, "group") && more >= 2 {
            if !grouped {
                return Err(CmdError::err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if is(o, "noack") {
            if !grouped {
                return Err(CmdError::err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if r.streams_at == 0 {
        return Err(CmdError::Syntax);
    }
    if grouped && r.group.is_none() {
        return Err(CmdError::err("Missing GROUP option for XREADGROUP"));
    }
    Ok(r)
}

pub fn xread(call: &mut Call<'_, '_>) -> CmdResult<Outcome> {
    read_generic(call, false)
}

pub fn xreadgroup(call: &mut Call<'_, '_>) -> CmdResult<Outcome> {
    read_generic(call, true)
}

fn read_generic(call: &mut Call<'_, '_>, grouped: bool) -> CmdResult<Outcome> {
    let args = call.args;
    let r = parse(call, grouped)?;
    let n = (args.len() - r.streams_at) / 2;
    let keys = &args[r.streams_at..r.streams_at + n];
    let id_args = &args[r.streams_at + n..];
    let retrying = call.session.retrying_block;
    let mut wants = Vec::with_capacity(n);
    // The `$` IDs resolved, for the retry of a blocked XREAD.
    let mut resolved: Vec<Bytes> = Vec::with_capacity(n);
    let mut skip = vec![false; n];
    for (i, (key, id_arg)) in keys.iter().zip(id_args).enumerate() {
        let found = match call.read_stream(key) {
            Ok(s) => s,
            // A woken reader whose key changed type waits on, as in Redis.
            Err(CmdError::WrongType) if retrying => {
                skip[i] = true;
                None
            }
            Err(e) => return Err(e),
        };
        if let Some((group, _)) = &r.group {
            let exists = match &found {
                Some(s) => s.group(call, group)?.is_some(),
                None => false,
            };
            if !exists {
                if retrying && found.is_some() {
                    return Err(CmdError::Raw(
                        "NOGROUP the consumer group this client was blocked on no longer exists"
                            .into(),
                    ));
                }
                if retrying {
                    skip[i] = true;
                } else {
                    return Err(CmdError::Raw(format!(
                        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                        err_text(key, usize::MAX),
                        err_text(group, usize::MAX)
                    )));
                }
            }
        }
        if id_arg.as_ref() == b"$" {
            if grouped {
                return Err(CmdError::err(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                ));
            }
            let last = found.as_ref().map_or(StreamId::MIN, |s| s.last_id());
            resolved.push(Bytes::from(last.to_string()));
            wants.push(Want::After(last));
            continue;
        }
        resolved.push(id_arg.clone());
        if id_arg.as_ref() == b">" {
            if !grouped {
                return Err(CmdError::err(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ));
            }
            wants.push(Want::New);
            continue;
        }
        // Redis marks `>` with the greatest ID, so XREADGROUP takes that ID
        // for `>` too.
        match parse_strict_id(id_arg, 0)? {
            StreamId::MAX if grouped => wants.push(Want::New),
            id => wants.push(Want::After(id)),
        }
    }
    let count = match r.count {
        0 if retrying => BLOCKED_DEFAULT_COUNT,
        c => c,
    };
    let mut served: Vec<(Reply, Reply)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        if skip[i] {
            continue;
        }
        let Some(mut s) = call.read_stream(key)? else {
            continue;
        };
        let want = &wants[i];
        let reply = match &r.group {
            None => {
                let Want::After(gt) = want else { continue };
                if s.len() == 0 || s.edge(call, true)?.is_none_or(|top| top <= *gt) {
                    continue;
                }
                let Some(start) = gt.next() else { continue };
                let entries = s.range(call, start, StreamId::MAX, false, count)?;
                Reply::Array(entries.into_iter().map(entry_reply).collect())
            }
            Some((group_name, consumer)) => {
                let Some(mut group) = s.group(call, group_name)? else {
                    continue;
                };
                match want {
                    Want::After(gt) => {
                        touch_consumer(call, &s, &group.name, consumer)?;
                        history(call, &s, &group.name, consumer, *gt, count)?
                    }
                    Want::New => {
                        let top = match s.len() {
                            0 => None,
                            _ => s.edge(call, true)?,
                        };
                        if top.is_none_or(|top| top <= group.last_id) {
                            continue;
                        }
                        touch_consumer(call, &s, &group.name, consumer)?;
                        let reply =
                            deliver_new(call, &mut s, &mut group, consumer, count, r.noack)?;
                        s.put_group(call, &group);
                        reply
                    }
                }
            }
        };
        served.push((Reply::Bulk(key.clone()), reply));
    }
    if !served.is_empty() {
        return Ok(Outcome::Reply(match call.session.protocol {
            Protocol::Resp3 => Reply::Map(served),
            Protocol::Resp2 => Reply::Array(
                served
                    .into_iter()
                    .map(|(k, v)| Reply::Array(vec![k, v]))
                    .collect(),
            ),
        }));
    }
    match r.block {
        None => Ok(Outcome::Reply(Reply::NilArray)),
        Some(timeout) => {
            let mut unique: Vec<Bytes> = Vec::with_capacity(n);
            for k in keys {
                if !unique.contains(k) {
                    unique.push(k.clone());
                }
            }
            let mut retry = args[..r.streams_at + n].to_vec();
            retry.extend(resolved);
            Ok(Outcome::Block(BlockOn {
                keys: unique,
                timeout,
                timeout_reply: Reply::NilArray,
                refused_reply: Reply::NilArray,
                retry_args: (!grouped).then_some(retry),
                wake_all: true,
            }))
        }
    }
}

/// Look the consumer up, refreshing its seen-time, or create it (with
/// its keyspace event), as XREADGROUP does before serving it.
pub fn touch_consumer(
    call: &mut Call<'_, '_>,
    s: &Stream<'_>,
    group: &[u8],
    consumer: &[u8],
) -> CmdResult<()> {
    let existed = s.consumer(call, group, consumer)?.is_some();
    s.put_consumer(
        call,
        group,
        &Consumer {
            name: Bytes::copy_from_slice(consumer),
            seen_ms: call.ctx.now_ms,
        },
    );
    if !existed {
        call.ctx.notify(STREAM, "xgroup-createconsumer", s.key);
    }
    Ok(())
}

/// XREADGROUP with an ID: the consumer's own pending entries after `gt`,
/// each delivered once more (a deleted one as its ID and a nil).
fn history(
    call: &mut Call<'_, '_>,
    s: &Stream<'_>,
    group: &[u8],
    consumer: &[u8],
    gt: StreamId,
    count: usize,
) -> CmdResult<Reply> {
    let Some(start) = gt.next() else {
        return Ok(Reply::Array(Vec::new()));
    };
    let ids = s.owned(call, group, consumer, start, StreamId::MAX, count)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match s.entry(call, id)? {
            Some(fields) => {
                if let Some(mut p) = s.pending(call, group, id)? {
                    p.delivery_ms = call.ctx.now_ms;
                    p.deliveries = p.deliveries.saturating_add(1);
                    s.put_pending(call, group, &p)?;
                }
                out.push(entry_reply((id, fields)));
            }
            None => out.push(Reply::Array(vec![id_reply(id), Reply::NilArray])),
        }
    }
    Ok(Reply::Array(out))
}

/// XREADGROUP's `>`: entries after the group's last ID, which move it
/// on (and its read counter) and enter the pending lists unless NOACK.
fn deliver_new(
    call: &mut Call<'_, '_>,
    s: &mut Stream<'_>,
    group: &mut Group,
    consumer: &[u8],
    count: usize,
    noack: bool,
) -> CmdResult<Reply> {
    let Some(start) = group.last_id.next() else {
        return Ok(Reply::Array(Vec::new()));
    };
    let entries: Vec<Entry> = s.range(call, start, StreamId::MAX, false, count)?;
    let mut out = Vec::with_capacity(entries.len());
    for (id, fields) in entries {
        advance_group(s, group, id);
        if !noack {
            s.put_pending(
                call,
                &group.name,
                &Pending {
                    id,
                    consumer: Bytes::copy_from_slice(consumer),
                    delivery_ms: call.ctx.now_ms,
                    deliveries: 1,
                },
            )?;
        }
        out.push(entry_reply((id, fields)));
    }
    Ok(Reply::Array(out))
}

/// Move the group's last delivered ID to `id` (if past it), keeping its
/// read counter as streamReplyWithRange does.
pub fn advance_group(s: &Stream<'_>, group: &mut Group, id: StreamId) {
    if id <= group.last_id {
        return;
    }
    if group.entries_read != -1 && !has_tombstones_from(s, id) {
        group.entries_read += 1;
    } else if s.coll.meta.stream.entries_added != 0 {
        group.entries_read = estimate_distance(s, id);
    }
    group.last_id = id;
}
