//! Commands that take from one list of several or wait for one: LMOVE,
//! RPOPLPUSH, LMPOP and the blocking BLMOVE, BRPOPLPUSH, BLPOP, BRPOP,
//! BLMPOP. A blocking command answers at once when there is something to
//! take, and otherwise returns [`Outcome::Block`] with the reply Redis
//! gives on timeout; the connection layer runs it again when a key changes.

use crate::storage::events::class::LIST;
use bytes::Bytes;

use super::super::args::{is, parse_i64, timeout_arg};
use super::super::{BlockOn, Call, CmdError, CmdResult, Outcome};
use super::store::{bulks, end_arg, get_list, missing_element, pop, push, source_list, End};
use crate::resp::Reply;
use crate::storage::KeyType;

// ------------------------------------------------------------------- moves

/// Pop one element from `src` at `from` and push it to `dst` at `to`.
/// `None` when `src` does not exist; WRONGTYPE (nothing changed) when
/// either key holds another type.
fn move_one(
    call: &mut Call<'_, '_>,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> CmdResult<Option<Bytes>> {
    let Some(mut source) = source_list(call, src)? else {
        return Ok(None);
    };
    if source.is_empty() {
        return Ok(None);
    }
    if src == dst {
        // One list: pop and push on the same header (a rotation), keeping
        // its TTL even when it held a single element.
        let Some(value) = pop(call, src, &mut source, from, 1)?.pop() else {
            return Ok(None);
        };
        push(call, src, &mut source, to, &value)?;
        call.ctx.notify(LIST, to.push_event(), src);
        call.ctx.notify(LIST, from.pop_event(), src);
        call.save_collection(src, &source);
        return Ok(Some(value));
    }
    let mut dest = match get_list(call, dst)? {
        Some(d) => d,
        None => call.new_collection(KeyType::List),
    };
    let Some(value) = pop(call, src, &mut source, from, 1)?.pop() else {
        return Ok(None);
    };
    push(call, dst, &mut dest, to, &value)?;
    call.notify_change(dst, &dest, LIST, to.push_event());
    call.save_collection(dst, &dest);
    call.ctx.notify(LIST, from.pop_event(), src);
    call.save_collection(src, &source);
    Ok(Some(value))
}

pub fn lmove(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let from = end_arg(&args[3])?;
    let to = end_arg(&args[4])?;
    Ok(Reply::bulk_opt(move_one(
        call, &args[1], &args[2], from, to,
    )?))
}

pub fn rpoplpush(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    Ok(Reply::bulk_opt(move_one(
        call,
        &args[1],
        &args[2],
        End::Right,
        End::Left,
    )?))
}

fn block(keys: &[Bytes], timeout: Option<std::time::Duration>, refused_reply: Reply) -> Outcome {
    let mut unique: Vec<Bytes> = Vec::with_capacity(keys.len());
    for k in keys {
        if !unique.contains(k) {
            unique.push(k.clone());
        }
    }
    Outcome::Block(BlockOn {
        keys: unique,
        timeout,
        timeout_reply: Reply::NilArray,
        refused_reply,
        retry_args: None,
        wake_all: false,
    })
}

pub fn blmove(call: &mut Call<'_, '_>) -> CmdResult<Outcome> {
    let args = call.args;
    let from = end_arg(&args[3])?;
    let to = end_arg(&args[4])?;
    let timeout = timeout_arg(&args[5])?;
    match move_one(call, &args[1], &args[2], from, to)? {
        Some(v) => Ok(Reply::Bulk(v).into()),
        None => Ok(block(&args[1..2], timeout, Reply::Nil)),
    }
}

pub fn brpoplpush(call: &mut Call<'_, '_>) -> CmdResult<Outcome> {
    let args = call.args;
    let timeout = timeout_arg(&args[3])?;
    match move_one(call, &args[1], &args[2], End::Right, End::Left)? {
        Some(v) => Ok(Reply::Bulk(v).into()),
        None => Ok(block(&args[1..2], timeout, Reply::Nil)),
    }
}

// ------------------------------------------------------- multi-key pops

/// Pop up to `count` elements from the first non-empty list of `keys`:
/// `(key, values)`, or `None` when every key is missing. WRONGTYPE stops at
/// the first key of another type met before a non-empty list.
fn pop_first(
    call: &mut Call<'_, '_>,
    keys: &[Bytes],
    end: End,
    count: u64,
) -> CmdResult<Option<(Bytes, Vec<Bytes>)>> {
    for key in keys {
        let Some(mut coll) = source_list(call, key)? else {
            continue;
        };
        if coll.is_empty() {
            continue;
        }
        let values = pop(call, key, &mut coll, end, count)?;
        call.ctx.notify(LIST, end.pop_event(), key);
        call.save_collection(key, &coll);
        return Ok(Some((key.clone(), values)));
    }
    Ok(None)
}

fn bpop_generic(call: &mut Call<'_, '_>, end: End) -> CmdResult<Outcome> {
    let args = call.args;
    let last = args.len() - 1;
    let timeout = timeout_arg(&args[last])?;
    let keys = &args[1..last];
    match pop_first(call, keys, end, 1)? {
        Some((key, mut values)) => {
            let value = values.pop().ok_or_else(|| missing_element(&key))?;
            Ok(Reply::Array(vec![Reply::Bulk(key), Reply::Bulk(value)]).into())
        }
        None => Ok(block(keys, timeout, Reply::NilArray)),
    }
}

pub fn blpop(call: &mut Call<'_, '_>) -> CmdResult<Outcome> {
    bpop_generic(call, End::Left)
}

pub fn brpop(call: &mut Call<'_, '_>) -> CmdResult<Outcome> {
    bpop_generic(call, End::Right)
}

/// The arguments of LMPOP/BLMPOP from the numkeys position on.
struct MpopArgs<'a> {
    keys: &'a [Bytes],
    end: End,
    count: u64,
}

fn parse_mpop(args: &[Bytes], numkeys_idx: usize) -> CmdResult<MpopArgs<'_>> {
    let numkeys = match parse_i64(&args[numkeys_idx]) {
        Some(n) if n > 0 => n as u64,
        _ => return Err(CmdError::err("numkeys should be greater than 0")),
    };
    let where_idx = (numkeys_idx as u64)
        .checked_add(numkeys)
        .and_then(|v| v.checked_add(1))
        .filter(|&v| v < args.len() as u64)
        .ok_or(CmdError::Syntax)? as usize;
    let end = end_arg(&args[where_idx])?;
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && is(&args[j], "count") && j + 1 < args.len() {
            j += 1;
            count = Some(match parse_i64(&args[j]) {
                Some(n) if n > 0 => n as u64,
                _ => return Err(CmdError::err("count should be greater than 0")),
            });
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(MpopArgs {
        keys: &args[numkeys_idx + 1..where_idx],
        end,
        count: count.unwrap_or(1),
    })
}

fn mpop_reply(key: Bytes, values: Vec<Bytes>) -> Reply {
    Reply::Array(vec![Reply::Bulk(key), bulks(values)])
}

pub fn lmpop(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let p = parse_mpop(args, 1)?;
    Ok(match pop_first(call, p.keys, p.end, p.count)? {
        Some((key, values)) => mpop_reply(key, values),
        None => Reply::NilArray,
    })
}

pub fn blmpop(call: &mut Call<'_, '_>) -> CmdResult<Outcome> {
    let args = call.args;
    let p = parse_mpop(args, 2)?;
    let timeout = timeout_arg(&args[1])?;
    match pop_first(call, p.keys, p.end, p.count)? {
        Some((key, values)) => Ok(mpop_reply(key, values).into()),
        None => Ok(block(p.keys, timeout, Reply::NilArray)),
    }
}
