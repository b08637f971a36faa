//! List commands.
//!
//! A list is a `CollectionMeta` header with an index window `[head, tail)`
//! and one data key per element: the element at absolute position `p`
//! (`head <= p < tail`) lives at `data_key(db, key, version, &p.to_be_bytes())`.
//! Every position of the window holds an element, so `len == tail - head`,
//! Redis index `i` is position `head + i` (or `tail + i` when negative), and
//! a range is one ordered scan of the data family. A new list starts at
//! `LIST_START_INDEX`; pushing left writes at `head - 1`, pushing right at
//! `tail`. Removing from the middle (LREM) or inserting (LINSERT) shifts the
//! shorter side of the list by the number of elements added or removed.
//!
//! The blocking variants answer at once when there is something to take
//! and otherwise return `Outcome::Block` with the reply Redis gives on
//! timeout; the connection layer re-runs them when one of the keys changes.
//!
//! [`store`] keeps the window and moves elements in it; this file has the
//! commands on one list, [`blocking`] those that take from one of several
//! lists or may block.

mod blocking;
mod store;

use super::args::{int_arg, is, parse_i64};
use super::collection::index_range;
use super::table::{commands, flags::*};
use super::{Call, CmdError, CmdResult, CommandSpec};
use crate::resp::Reply;
use crate::storage::events::class::LIST;
use crate::storage::{KeyType, LIST_START_INDEX};
use store::{
    bulks, get_list, index_offset, insert_at, missing_element, pop, pos_key, push, read_positions,
    remove_offsets, renew, scan, set_window, End,
};

pub static COMMANDS: &[CommandSpec] = commands! {
    "lpush", -3, WF, 1, 1, 1, lpush;
    "rpush", -3, WF, 1, 1, 1, rpush;
    "lpushx", -3, WF, 1, 1, 1, lpushx;
    "rpushx", -3, WF, 1, 1, 1, rpushx;
    "lpop", -2, WDF, 1, 1, 1, lpop;
    "rpop", -2, WDF, 1, 1, 1, rpop;
    "llen", 2, RF, 1, 1, 1, llen;
    "lrange", 4, R, 1, 1, 1, lrange;
    "lindex", 3, R, 1, 1, 1, lindex;
    "lset", 4, W, 1, 1, 1, lset;
    "linsert", 5, W, 1, 1, 1, linsert;
    "lrem", 4, WD, 1, 1, 1, lrem;
    "ltrim", 4, WD, 1, 1, 1, ltrim;
    "lpos", -3, R, 1, 1, 1, lpos;
    "lmove", 5, W, 1, 2, 1, blocking::lmove;
    "rpoplpush", 3, W, 1, 2, 1, blocking::rpoplpush;
    "lmpop", -4, WD, 0, 0, 0, blocking::lmpop;
    "blpop", -3, blocking(WD), 1, -2, 1, blocking::blpop;
    "brpop", -3, blocking(WD), 1, -2, 1, blocking::brpop;
    "blmove", 6, blocking(W), 1, 2, 1, blocking::blmove;
    "brpoplpush", 4, blocking(W), 1, 2, 1, blocking::brpoplpush;
    "blmpop", -5, blocking(WD), 0, 0, 0, blocking::blmpop;
};

// ------------------------------------------------------------------- pushes

fn push_generic(call: &mut Call<'_, '_>, end: End, only_existing: bool) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let mut coll = match get_list(call, key)? {
        Some(c) => c,
        None if only_existing => return Ok(Reply::Int(0)),
        None => call.new_collection(KeyType::List),
    };
    for value in &args[2..] {
        push(call, key, &mut coll, end, value)?;
    }
    call.notify_change(key, &coll, LIST, end.push_event());
    call.save_collection(key, &coll);
    Ok(Reply::Int(coll.len() as i64))
}

pub fn lpush(call: &mut Call<'_, '_>) -> CmdResult {
    push_generic(call, End::Left, false)
}

pub fn rpush(call: &mut Call<'_, '_>) -> CmdResult {
    push_generic(call, End::Right, false)
}

pub fn lpushx(call: &mut Call<'_, '_>) -> CmdResult {
    push_generic(call, End::Left, true)
}

pub fn rpushx(call: &mut Call<'_, '_>) -> CmdResult {
    push_generic(call, End::Right, true)
}

// --------------------------------------------------------------------- pops

/// `value is out of range, must be positive` for anything but an integer >= 0.
fn non_negative_arg(arg: &[u8], msg: &str) -> CmdResult<u64> {
    match parse_i64(arg) {
        Some(v) if v >= 0 => Ok(v as u64),
        _ => Err(CmdError::err(msg)),
    }
}

fn pop_generic(call: &mut Call<'_, '_>, end: End) -> CmdResult {
    let args = call.args;
    let name = if end == End::Left { "lpop" } else { "rpop" };
    if args.len() > 3 {
        return Err(CmdError::Arity(name.into()));
    }
    let count = match args.get(2) {
        Some(arg) => Some(non_negative_arg(
            arg,
            "value is out of range, must be positive",
        )?),
        None => None,
    };
    let key = &args[1];
    let Some(mut coll) = get_list(call, key)? else {
        return Ok(if count.is_some() {
            Reply::NilArray
        } else {
            Reply::Nil
        });
    };
    match count {
        Some(0) => Ok(Reply::Array(Vec::new())),
        Some(n) => {
            let values = pop(call, key, &mut coll, end, n)?;
            if !values.is_empty() {
                call.ctx.notify(LIST, end.pop_event(), key);
            }
            call.save_collection(key, &coll);
            Ok(bulks(values))
        }
        None => {
            let values = pop(call, key, &mut coll, end, 1)?;
            if !values.is_empty() {
                call.ctx.notify(LIST, end.pop_event(), key);
            }
            call.save_collection(key, &coll);
            Ok(Reply::bulk_opt(values.into_iter().next()))
        }
    }
}

pub fn lpop(call: &mut Call<'_, '_>) -> CmdResult {
    pop_generic(call, End::Left)
}

pub fn rpop(call: &mut Call<'_, '_>) -> CmdResult {
    pop_generic(call, End::Right)
}

// ------------------------------------------------------------------ readers

pub fn llen(call: &mut Call<'_, '_>) -> CmdResult {
    let coll = call.read_collection(&call.args[1], KeyType::List)?;
    Ok(Reply::Int(coll.map_or(0, |c| c.len() as i64)))
}

pub fn lrange(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let start = int_arg(&args[2])?;
    let end = int_arg(&args[3])?;
    let key = &args[1];
    let Some(coll) = call.read_collection(key, KeyType::List)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let Some((s, e)) = index_range(coll.len(), start, end) else {
        return Ok(Reply::Array(Vec::new()));
    };
    let head = coll.meta.head;
    let values = read_positions(call, key, &coll, head + s, head + e + 1, false)?;
    Ok(bulks(values))
}

pub fn lindex(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let Some(coll) = call.read_collection(key, KeyType::List)? else {
        return Ok(Reply::Nil);
    };
    let index = int_arg(&args[2])?;
    let Some(offset) = index_offset(coll.len(), index) else {
        return Ok(Reply::Nil);
    };
    let raw = pos_key(call, key, &coll, coll.meta.head + offset);
    match call.ctx.get_data(&raw)? {
        Some(v) => Ok(Reply::bulk(v)),
        None => Err(missing_element(key)),
    }
}

pub fn lset(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let Some(coll) = get_list(call, key)? else {
        return Err(CmdError::NoSuchKey);
    };
    let index = int_arg(&args[2])?;
    let Some(offset) = index_offset(coll.len(), index) else {
        return Err(CmdError::err("index out of range"));
    };
    let raw = pos_key(call, key, &coll, coll.meta.head + offset);
    call.ctx.put_data(&raw, &args[3]);
    call.ctx.notify(LIST, "lset", key);
    Ok(Reply::OK)
}

pub fn lpos(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let element = &args[2];
    let mut rank: i64 = 1;
    let mut count: Option<u64> = None;
    let mut maxlen: u64 = 0;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        if is(opt, "rank") && more {
            j += 1;
            rank = int_arg(&args[j])?;
            if rank == 0 {
                return Err(CmdError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(opt, "count") && more {
            j += 1;
            count = Some(non_negative_arg(&args[j], "COUNT can't be negative")?);
        } else if is(opt, "maxlen") && more {
            j += 1;
            maxlen = non_negative_arg(&args[j], "MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let key = &args[1];
    let Some(coll) = call.read_collection(key, KeyType::List)? else {
        return Ok(if count.is_some() {
            Reply::Array(Vec::new())
        } else {
            Reply::Nil
        });
    };
    let from_tail = rank < 0;
    // Redis 7.0 negates RANK in a C long: -LONG_MIN stays LONG_MIN, so
    // every match qualifies and COUNT never stops the search.
    let (skip, limit) = if rank == i64::MIN {
        (0, None)
    } else {
        (rank.unsigned_abs() - 1, count.filter(|&c| c > 0))
    };
    let mut matches = 0u64;
    let mut found_offsets = Vec::new();
    let mut scanned = 0u64;
    scan(call, key, &coll, from_tail, |offset, value| {
        if maxlen != 0 && scanned >= maxlen {
            return false;
        }
        scanned += 1;
        if value == &element[..] {
            matches += 1;
            if matches > skip {
                found_offsets.push(offset);
                if count.is_none() || limit.is_some_and(|l| found_offsets.len() as u64 >= l) {
                    return false;
                }
            }
        }
        true
    })?;
    if count.is_some() {
        Ok(Reply::Array(
            found_offsets
                .into_iter()
                .map(|o| Reply::Int(o as i64))
                .collect(),
        ))
    } else {
        Ok(found_offsets
            .first()
            .map_or(Reply::Nil, |&o| Reply::Int(o as i64)))
    }
}

// ---------------------------------------------------------- middle changes

pub fn linsert(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let after = if is(&args[2], "after") {
        true
    } else if is(&args[2], "before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let key = &args[1];
    let Some(mut coll) = get_list(call, key)? else {
        return Ok(Reply::Int(0));
    };
    let pivot = &args[3];
    let mut at = None;
    scan(call, key, &coll, false, |offset, value| {
        if value == &pivot[..] {
            at = Some(offset);
            false
        } else {
            true
        }
    })?;
    let Some(at) = at else {
        return Ok(Reply::Int(-1));
    };
    let offset = if after { at + 1 } else { at };
    insert_at(call, key, &mut coll, offset, &args[4])?;
    call.ctx.notify(LIST, "linsert", key);
    call.save_collection(key, &coll);
    Ok(Reply::Int(coll.len() as i64))
}

pub fn lrem(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let count = int_arg(&args[2])?;
    let key = &args[1];
    let Some(mut coll) = get_list(call, key)? else {
        return Ok(Reply::Int(0));
    };
    let element = &args[3];
    let from_tail = count < 0;
    // 0 = all; i64::MIN (whose negation overflows in Redis too) = all.
    let limit = count.unsigned_abs();
    let mut offsets = Vec::new();
    scan(call, key, &coll, from_tail, |offset, value| {
        if value == &element[..] {
            offsets.push(offset);
            if limit != 0 && offsets.len() as u64 >= limit {
                return false;
            }
        }
        true
    })?;
    if from_tail {
        offsets.reverse();
    }
    let removed = offsets.len() as i64;
    if removed > 0 {
        remove_offsets(call, key, &mut coll, &offsets)?;
        call.ctx.notify(LIST, "lrem", key);
        call.save_collection(key, &coll);
    }
    Ok(Reply::Int(removed))
}

pub fn ltrim(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let start = int_arg(&args[2])?;
    let end = int_arg(&args[3])?;
    let key = &args[1];
    let Some(mut coll) = get_list(call, key)? else {
        return Ok(Reply::OK);
    };
    let len = coll.len();
    let Some((s, e)) = index_range(len, start, end) else {
        let head = coll.meta.head;
        set_window(&mut coll, head, head);
        call.ctx.notify(LIST, "ltrim", key);
        call.save_collection(key, &coll);
        return Ok(Reply::OK);
    };
    let keep = e - s + 1;
    if keep == len {
        // Nothing to remove, but Redis counts the list as modified (a
        // WATCH on it fails): write its header back unchanged.
        call.ctx.notify(LIST, "ltrim", key);
        call.save_collection(key, &coll);
        return Ok(Reply::OK);
    }
    let (head, tail) = (coll.meta.head, coll.meta.tail);
    if keep < len - keep {
        // Copying the survivors to a fresh version is cheaper than deleting
        // the rest; the old version is reclaimed by compaction.
        let values = read_positions(call, key, &coll, head + s, head + e + 1, false)?;
        renew(call, &mut coll);
        for (i, v) in values.iter().enumerate() {
            let raw = pos_key(call, key, &coll, LIST_START_INDEX + i as u64);
            call.ctx.put_data(&raw, v);
        }
        set_window(&mut coll, LIST_START_INDEX, LIST_START_INDEX + keep);
    } else {
        for pos in (head..head + s).chain(head + e + 1..tail) {
            let raw = pos_key(call, key, &coll, pos);
            call.ctx.delete_data(&raw);
        }
        set_window(&mut coll, head + s, head + e + 1);
    }
    call.ctx.notify(LIST, "ltrim", key);
    call.save_collection(key, &coll);
    Ok(Reply::OK)
}

/// Every element of the list at `key`, head first (SORT's input).
pub(super) fn elements(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &super::Collection,
) -> CmdResult<Vec<bytes::Bytes>> {
    store::read_positions(call, key, coll, coll.meta.head, coll.meta.tail, false)
}

/// Replace `dest`, whatever it held, with a list of `values` (head first);
/// no values deletes it. `event` is the keyspace event of the command
/// (SORT's `sortstore`). Answers the new length.
pub(super) fn store_list(
    call: &mut Call<'_, '_>,
    dest: &[u8],
    values: &[bytes::Bytes],
    event: &'static str,
) -> CmdResult<i64> {
    if values.is_empty() {
        if call.ctx.peek(dest)?.is_some() {
            call.ctx.delete_key(dest);
            call.ctx
                .notify(crate::storage::events::class::GENERIC, "del", dest);
        }
        return Ok(0);
    }
    let existed =
        call.ctx.wants(crate::storage::events::class::NEW) && call.ctx.peek(dest)?.is_some();
    // A fresh version: nothing of the old value shows through, no TTL stays.
    let mut coll = call.new_collection(KeyType::List);
    for value in values {
        store::push(call, dest, &mut coll, store::End::Right, value)?;
    }
    coll.existed = existed;
    call.notify_change(dest, &coll, LIST, event);
    call.save_collection(dest, &coll);
    Ok(values.len() as i64)
}

/// A new list (fresh version, no TTL, header not saved) holding `values`,
/// head first: RESTORE's value, saved by the caller.
pub(super) fn fill_new(
    call: &mut Call<'_, '_>,
    key: &[u8],
    values: &[Vec<u8>],
) -> CmdResult<super::Collection> {
    let mut coll = call.new_collection(KeyType::List);
    for value in values {
        store::push(call, key, &mut coll, store::End::Right, value)?;
    }
    Ok(coll)
}
