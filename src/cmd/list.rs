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

use bytes::Bytes;

use super::args::{int_arg, is, parse_i64, timeout_arg};
use super::strings::count_lookup;
use super::table::{commands, flags::*};
use super::{BlockOn, Call, CmdError, CmdResult, Collection, CommandSpec, Flags};
use crate::resp::Reply;
use crate::storage::{data_key, Cf, KeyType, StorageError, LIST_START_INDEX};

/// Writes that only remove, and are fast (LPOP, RPOP).
const WDF: Flags = WD.union(Flags::FAST);

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
    "lmove", 5, W, 1, 2, 1, lmove;
    "rpoplpush", 3, W, 1, 2, 1, rpoplpush;
    "lmpop", -4, WD, 0, 0, 0, lmpop;
    "blpop", -3, blocking(WD), 1, -2, 1, blpop;
    "brpop", -3, blocking(WD), 1, -2, 1, brpop;
    "blmove", 6, blocking(W), 1, 2, 1, blmove;
    "brpoplpush", 4, blocking(W), 1, 2, 1, brpoplpush;
    "blmpop", -5, blocking(WD), 0, 0, 0, blmpop;
};

// ------------------------------------------------------------ index arithmetic

/// The end of a list an operation works at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Left,
    Right,
}

/// LEFT/RIGHT (any case), or a syntax error.
fn end_arg(arg: &[u8]) -> CmdResult<End> {
    if is(arg, "left") {
        Ok(End::Left)
    } else if is(arg, "right") {
        Ok(End::Right)
    } else {
        Err(CmdError::Syntax)
    }
}

/// The offset (0-based from the head) of Redis index `index` in a list of
/// `len` elements; negative indexes count from the tail. `None` when out of range.
fn index_offset(len: u64, index: i64) -> Option<u64> {
    let len = i128::from(len);
    let i = if index < 0 {
        len + i128::from(index)
    } else {
        i128::from(index)
    };
    (0..len).contains(&i).then_some(i as u64)
}

/// The inclusive offsets LRANGE/LTRIM `start end` cover in a list of `len`
/// elements, clamped as Redis clamps them; `None` for an empty range.
fn range_offsets(len: u64, start: i64, end: i64) -> Option<(u64, u64)> {
    let len = i128::from(len);
    let (mut s, mut e) = (i128::from(start), i128::from(end));
    if s < 0 {
        s += len;
    }
    if e < 0 {
        e += len;
    }
    if s < 0 {
        s = 0;
    }
    if s > e || s >= len {
        return None;
    }
    if e >= len {
        e = len - 1;
    }
    Some((s as u64, e as u64))
}

/// How to close the gaps left by removing the elements at the sorted
/// positions `removed` from the window `[head, tail)`: shift what follows the
/// first removal left, or what precedes the last removal right — whichever
/// moves fewer elements. Returns true for "shift left".
fn shift_left_is_cheaper(head: u64, tail: u64, removed: &[u64]) -> bool {
    let (Some(&first), Some(&last)) = (removed.first(), removed.last()) else {
        return true;
    };
    let k = removed.len() as u64;
    let after = (tail - first).saturating_sub(k);
    let before = (last + 1 - head).saturating_sub(k);
    after <= before
}

// ------------------------------------------------------------ storage helpers

fn full() -> CmdError {
    CmdError::err("list index space exhausted")
}

fn corrupt(key: &[u8]) -> CmdError {
    CmdError::Storage(StorageError::Corrupt(format!(
        "list '{}': element missing from its index window",
        String::from_utf8_lossy(key)
    )))
}

/// The data key of the element at absolute position `pos`.
fn pos_key(call: &Call<'_, '_>, key: &[u8], coll: &Collection, pos: u64) -> Vec<u8> {
    data_key(call.ctx.db, key, coll.version(), &pos.to_be_bytes())
}

/// The live list at `key`; WRONGTYPE when it holds another type.
fn get_list(call: &Call<'_, '_>, key: &[u8]) -> CmdResult<Option<Collection>> {
    call.collection(key, KeyType::List)
}

/// The list a pop takes from. When a blocked command runs again, a key that
/// meanwhile came to hold another type is just not ready (Redis serves blocked
/// clients only from lists), so it answers nothing rather than WRONGTYPE.
fn source_list(call: &Call<'_, '_>, key: &[u8]) -> CmdResult<Option<Collection>> {
    match get_list(call, key) {
        Err(CmdError::WrongType) if call.session.retrying_block => Ok(None),
        found => found,
    }
}

/// [`get_list`] for a read-only command: counted in the keyspace hits/misses.
fn read_list(call: &Call<'_, '_>, key: &[u8]) -> CmdResult<Option<Collection>> {
    let found = get_list(call, key);
    count_lookup(call, !matches!(found, Ok(None)));
    found
}

/// Keep `len` equal to the window size.
fn set_window(coll: &mut Collection, head: u64, tail: u64) {
    coll.meta.head = head;
    coll.meta.tail = tail;
    coll.meta.len = tail - head;
}

/// Ranges up to this long are read element by element instead of by an
/// iterator.
const POINT_READS_UP_TO: u64 = 4;

/// The values at positions `[from, to)`, ascending or descending.
fn read_positions(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &Collection,
    from: u64,
    to: u64,
    reverse: bool,
) -> CmdResult<Vec<Bytes>> {
    if from >= to {
        return Ok(Vec::new());
    }
    let want = to - from;
    if want <= POINT_READS_UP_TO {
        // LPOP, LINDEX, a short LRANGE: point reads (bloom-filtered) cost
        // less than opening an iterator over every memtable and file.
        let mut out = Vec::with_capacity(want as usize);
        for i in 0..want {
            let pos = if reverse { to - 1 - i } else { from + i };
            match call.ctx.get_data(&pos_key(call, key, coll, pos))? {
                Some(v) => out.push(Bytes::from(v)),
                None => return Err(corrupt(key)),
            }
        }
        return Ok(out);
    }
    let lower = pos_key(call, key, coll, from);
    let upper = pos_key(call, key, coll, to);
    let mut out = Vec::with_capacity(want.min(4096) as usize);
    for item in call.ctx.iter(Cf::Data, &lower, Some(&upper), reverse) {
        let (_, v) = item?;
        out.push(Bytes::from(v));
    }
    if out.len() as u64 != want {
        return Err(corrupt(key));
    }
    Ok(out)
}

/// Visit the elements from one end, with their offsets from the head,
/// until `visit` returns false.
fn scan(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &Collection,
    from_tail: bool,
    mut visit: impl FnMut(u64, &[u8]) -> bool,
) -> CmdResult<()> {
    let (head, tail) = (coll.meta.head, coll.meta.tail);
    let lower = pos_key(call, key, coll, head);
    let upper = pos_key(call, key, coll, tail);
    for (seen, item) in call
        .ctx
        .iter(Cf::Data, &lower, Some(&upper), from_tail)
        .enumerate()
    {
        let (_, v) = item?;
        let seen = seen as u64;
        if seen >= coll.len() {
            return Err(corrupt(key));
        }
        let offset = if from_tail {
            coll.len() - 1 - seen
        } else {
            seen
        };
        if !visit(offset, &v) {
            break;
        }
    }
    Ok(())
}

/// Start the list over under a fresh version (it is empty, or about to be
/// rewritten whole): the old elements become unreachable and compaction
/// reclaims them, so nothing has to be deleted one by one.
fn renew(call: &Call<'_, '_>, coll: &mut Collection) {
    coll.meta.version = call.ctx.next_version();
    set_window(coll, LIST_START_INDEX, LIST_START_INDEX);
}

fn push(
    call: &mut Call<'_, '_>,
    key: &[u8],
    coll: &mut Collection,
    end: End,
    value: &[u8],
) -> CmdResult<()> {
    let (head, tail) = (coll.meta.head, coll.meta.tail);
    let (pos, head, tail) = match end {
        End::Left => {
            let pos = head.checked_sub(1).ok_or_else(full)?;
            (pos, pos, tail)
        }
        End::Right => (tail, head, tail.checked_add(1).ok_or_else(full)?),
    };
    let raw = pos_key(call, key, coll, pos);
    call.ctx.put_data(&raw, value);
    set_window(coll, head, tail);
    Ok(())
}

/// Remove and return up to `n` elements from one end, in pop order.
fn pop(
    call: &mut Call<'_, '_>,
    key: &[u8],
    coll: &mut Collection,
    end: End,
    n: u64,
) -> CmdResult<Vec<Bytes>> {
    let n = n.min(coll.len());
    let (head, tail) = (coll.meta.head, coll.meta.tail);
    let (from, to) = match end {
        End::Left => (head, head + n),
        End::Right => (tail - n, tail),
    };
    let values = read_positions(call, key, coll, from, to, end == End::Right)?;
    if n == coll.len() {
        renew(call, coll);
        return Ok(values);
    }
    for pos in from..to {
        let raw = pos_key(call, key, coll, pos);
        call.ctx.delete_data(&raw);
    }
    match end {
        End::Left => set_window(coll, to, tail),
        End::Right => set_window(coll, head, from),
    }
    Ok(values)
}

/// Insert `value` so that it ends up at offset `offset` (0..=len).
fn insert_at(
    call: &mut Call<'_, '_>,
    key: &[u8],
    coll: &mut Collection,
    offset: u64,
    value: &[u8],
) -> CmdResult<()> {
    let (head, tail) = (coll.meta.head, coll.meta.tail);
    let at = head + offset;
    if tail - at <= at - head {
        // Shift [at, tail) one to the right.
        tail.checked_add(1).ok_or_else(full)?;
        let moved = read_positions(call, key, coll, at, tail, false)?;
        for (i, v) in moved.iter().enumerate() {
            let raw = pos_key(call, key, coll, at + 1 + i as u64);
            call.ctx.put_data(&raw, v);
        }
        let raw = pos_key(call, key, coll, at);
        call.ctx.put_data(&raw, value);
        set_window(coll, head, tail + 1);
    } else {
        // Shift [head, at) one to the left.
        let new_head = head.checked_sub(1).ok_or_else(full)?;
        let moved = read_positions(call, key, coll, head, at, false)?;
        for (i, v) in moved.iter().enumerate() {
            let raw = pos_key(call, key, coll, new_head + i as u64);
            call.ctx.put_data(&raw, v);
        }
        let raw = pos_key(call, key, coll, at - 1);
        call.ctx.put_data(&raw, value);
        set_window(coll, new_head, tail);
    }
    Ok(())
}

/// Remove the elements at the given offsets (ascending, distinct) and close
/// the gap by shifting the shorter side.
fn remove_offsets(
    call: &mut Call<'_, '_>,
    key: &[u8],
    coll: &mut Collection,
    offsets: &[u64],
) -> CmdResult<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    if offsets.len() as u64 >= coll.len() {
        renew(call, coll);
        return Ok(());
    }
    let (head, tail) = (coll.meta.head, coll.meta.tail);
    let removed: Vec<u64> = offsets.iter().map(|o| head + o).collect();
    let k = removed.len() as u64;
    let (first, last) = (removed[0], removed[removed.len() - 1]);
    if shift_left_is_cheaper(head, tail, &removed) {
        let values = read_positions(call, key, coll, first, tail, false)?;
        let mut skip = removed.iter().peekable();
        let mut dst = first;
        for (i, v) in values.iter().enumerate() {
            let src = first + i as u64;
            if skip.peek() == Some(&&src) {
                skip.next();
                continue;
            }
            if src != dst {
                let raw = pos_key(call, key, coll, dst);
                call.ctx.put_data(&raw, v);
            }
            dst += 1;
        }
        for pos in tail - k..tail {
            let raw = pos_key(call, key, coll, pos);
            call.ctx.delete_data(&raw);
        }
        set_window(coll, head, tail - k);
    } else {
        let values = read_positions(call, key, coll, head, last + 1, true)?;
        let mut skip = removed.iter().rev().peekable();
        let mut dst = last;
        for (i, v) in values.iter().enumerate() {
            let src = last - i as u64;
            if skip.peek() == Some(&&src) {
                skip.next();
                continue;
            }
            if src != dst {
                let raw = pos_key(call, key, coll, dst);
                call.ctx.put_data(&raw, v);
            }
            dst = dst.wrapping_sub(1);
        }
        for pos in head..head + k {
            let raw = pos_key(call, key, coll, pos);
            call.ctx.delete_data(&raw);
        }
        set_window(coll, head + k, tail);
    }
    Ok(())
}

fn bulks(values: Vec<Bytes>) -> Reply {
    Reply::Array(values.into_iter().map(Reply::Bulk).collect())
}

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
            call.save_collection(key, &coll);
            Ok(bulks(values))
        }
        None => {
            let values = pop(call, key, &mut coll, end, 1)?;
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
    let coll = read_list(call, &call.args[1])?;
    Ok(Reply::Int(coll.map_or(0, |c| c.len() as i64)))
}

pub fn lrange(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let start = int_arg(&args[2])?;
    let end = int_arg(&args[3])?;
    let key = &args[1];
    let Some(coll) = read_list(call, key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let Some((s, e)) = range_offsets(coll.len(), start, end) else {
        return Ok(Reply::Array(Vec::new()));
    };
    let head = coll.meta.head;
    let values = read_positions(call, key, &coll, head + s, head + e + 1, false)?;
    Ok(bulks(values))
}

pub fn lindex(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let Some(coll) = read_list(call, key)? else {
        return Ok(Reply::Nil);
    };
    let index = int_arg(&args[2])?;
    let Some(offset) = index_offset(coll.len(), index) else {
        return Ok(Reply::Nil);
    };
    let raw = pos_key(call, key, &coll, coll.meta.head + offset);
    match call.ctx.get_data(&raw)? {
        Some(v) => Ok(Reply::bulk(v)),
        None => Err(corrupt(key)),
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
    let Some(coll) = read_list(call, key)? else {
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
    let Some((s, e)) = range_offsets(len, start, end) else {
        let head = coll.meta.head;
        set_window(&mut coll, head, head);
        call.save_collection(key, &coll);
        return Ok(Reply::OK);
    };
    let keep = e - s + 1;
    if keep == len {
        // Nothing to remove, but Redis counts the list as modified (a
        // WATCH on it fails): write its header back unchanged.
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
    call.save_collection(key, &coll);
    Ok(Reply::OK)
}

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
    call.save_collection(src, &source);
    call.save_collection(dst, &dest);
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

fn block(
    keys: &[Bytes],
    timeout: Option<std::time::Duration>,
    refused_reply: Reply,
) -> super::Outcome {
    let mut unique: Vec<Bytes> = Vec::with_capacity(keys.len());
    for k in keys {
        if !unique.contains(k) {
            unique.push(k.clone());
        }
    }
    super::Outcome::Block(BlockOn {
        keys: unique,
        timeout,
        timeout_reply: Reply::NilArray,
        refused_reply,
    })
}

pub fn blmove(call: &mut Call<'_, '_>) -> CmdResult<super::Outcome> {
    let args = call.args;
    let from = end_arg(&args[3])?;
    let to = end_arg(&args[4])?;
    let timeout = timeout_arg(&args[5])?;
    match move_one(call, &args[1], &args[2], from, to)? {
        Some(v) => Ok(Reply::Bulk(v).into()),
        None => Ok(block(&args[1..2], timeout, Reply::Nil)),
    }
}

pub fn brpoplpush(call: &mut Call<'_, '_>) -> CmdResult<super::Outcome> {
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
        call.save_collection(key, &coll);
        return Ok(Some((key.clone(), values)));
    }
    Ok(None)
}

fn bpop_generic(call: &mut Call<'_, '_>, end: End) -> CmdResult<super::Outcome> {
    let args = call.args;
    let last = args.len() - 1;
    let timeout = timeout_arg(&args[last])?;
    let keys = &args[1..last];
    match pop_first(call, keys, end, 1)? {
        Some((key, mut values)) => {
            let value = values.pop().ok_or_else(|| corrupt(&key))?;
            Ok(Reply::Array(vec![Reply::Bulk(key), Reply::Bulk(value)]).into())
        }
        None => Ok(block(keys, timeout, Reply::NilArray)),
    }
}

pub fn blpop(call: &mut Call<'_, '_>) -> CmdResult<super::Outcome> {
    bpop_generic(call, End::Left)
}

pub fn brpop(call: &mut Call<'_, '_>) -> CmdResult<super::Outcome> {
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

pub fn blmpop(call: &mut Call<'_, '_>) -> CmdResult<super::Outcome> {
    let args = call.args;
    let p = parse_mpop(args, 2)?;
    let timeout = timeout_arg(&args[1])?;
    match pop_first(call, p.keys, p.end, p.count)? {
        Some((key, values)) => Ok(mpop_reply(key, values).into()),
        None => Ok(block(p.keys, timeout, Reply::NilArray)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_offset_positive_and_negative() {
        assert_eq!(index_offset(3, 0), Some(0));
        assert_eq!(index_offset(3, 2), Some(2));
        assert_eq!(index_offset(3, 3), None);
        assert_eq!(index_offset(3, -1), Some(2));
        assert_eq!(index_offset(3, -3), Some(0));
        assert_eq!(index_offset(3, -4), None);
        assert_eq!(index_offset(0, 0), None);
        assert_eq!(index_offset(0, -1), None);
        assert_eq!(index_offset(3, i64::MAX), None);
        assert_eq!(index_offset(3, i64::MIN), None);
        assert_eq!(index_offset(u64::MAX, -1), Some(u64::MAX - 1));
        assert_eq!(index_offset(u64::MAX, i64::MIN), Some(u64::MAX - (1 << 63)));
    }

    #[test]
    fn range_offsets_clamp_like_redis() {
        assert_eq!(range_offsets(5, 0, -1), Some((0, 4)));
        assert_eq!(range_offsets(5, 1, 2), Some((1, 2)));
        assert_eq!(range_offsets(5, -2, -1), Some((3, 4)));
        assert_eq!(range_offsets(5, -100, 100), Some((0, 4)));
        assert_eq!(range_offsets(5, 4, 100), Some((4, 4)));
        assert_eq!(range_offsets(5, 5, 10), None);
        assert_eq!(range_offsets(5, 3, 2), None);
        assert_eq!(range_offsets(5, 0, -6), None);
        assert_eq!(range_offsets(5, -6, -6), None);
        assert_eq!(range_offsets(5, -6, 0), Some((0, 0)));
        assert_eq!(range_offsets(0, 0, -1), None);
        assert_eq!(range_offsets(5, i64::MIN, i64::MAX), Some((0, 4)));
        assert_eq!(range_offsets(5, i64::MAX, i64::MIN), None);
        assert_eq!(range_offsets(5, i64::MIN, i64::MIN), None);
    }

    #[test]
    fn shift_side_choice() {
        let (h, t) = (100, 110);
        // Removing near the tail: shift the tail part.
        assert!(shift_left_is_cheaper(h, t, &[108]));
        // Removing near the head: shift the head part.
        assert!(!shift_left_is_cheaper(h, t, &[101]));
        // The last element: nothing to move left of the gap... on the right.
        assert!(shift_left_is_cheaper(h, t, &[109]));
        assert!(!shift_left_is_cheaper(h, t, &[100]));
        // Spread removals: after first = 110-101-2 = 7, before last = 109-100+1-2 = 8.
        assert!(shift_left_is_cheaper(h, t, &[101, 108]));
        assert!(shift_left_is_cheaper(h, t, &[]));
    }

    #[test]
    fn end_words() {
        assert_eq!(end_arg(b"LEFT").ok(), Some(End::Left));
        assert_eq!(end_arg(b"right").ok(), Some(End::Right));
        assert!(end_arg(b"up").is_err());
    }
}
