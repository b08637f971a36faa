//! How a list is stored: the index window `[head, tail)`, the data key of
//! each position, and the operations that keep every position of the
//! window filled (push, pop, insert and remove in the middle by shifting
//! the shorter side, renewing the version). Plus the index arithmetic
//! Redis applies to LINDEX/LRANGE/LTRIM arguments.

use bytes::Bytes;

use super::super::args::is;
use super::super::collection::corrupt;
use super::super::{Call, CmdError, CmdResult, Collection};
use crate::resp::Reply;
use crate::storage::{data_key, Cf, KeyType, LIST_START_INDEX};

// ------------------------------------------------------------ index arithmetic

/// The end of a list an operation works at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Left,
    Right,
}

impl End {
    /// The keyspace event of a push at this end.
    pub(super) fn push_event(self) -> &'static str {
        match self {
            End::Left => "lpush",
            End::Right => "rpush",
        }
    }

    /// The keyspace event of a pop from this end.
    pub(super) fn pop_event(self) -> &'static str {
        match self {
            End::Left => "lpop",
            End::Right => "rpop",
        }
    }
}

/// LEFT/RIGHT (any case), or a syntax error.
pub(super) fn end_arg(arg: &[u8]) -> CmdResult<End> {
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
pub(super) fn index_offset(len: u64, index: i64) -> Option<u64> {
    let len = i128::from(len);
    let i = if index < 0 {
        len + i128::from(index)
    } else {
        i128::from(index)
    };
    (0..len).contains(&i).then_some(i as u64)
}

/// How to close the gaps left by removing the elements at the sorted
/// positions `removed` from the window `[head, tail)`: shift what follows the
/// first removal left, or what precedes the last removal right — whichever
/// moves fewer elements. Returns true for "shift left".
pub(super) fn shift_left_is_cheaper(head: u64, tail: u64, removed: &[u64]) -> bool {
    let (Some(&first), Some(&last)) = (removed.first(), removed.last()) else {
        return true;
    };
    let k = removed.len() as u64;
    let after = (tail - first).saturating_sub(k);
    let before = (last + 1 - head).saturating_sub(k);
    after <= before
}

// ------------------------------------------------------------ storage helpers

pub(super) fn full() -> CmdError {
    CmdError::err("list index space exhausted")
}

/// An element missing from the index window of the list at `key`.
pub(super) fn missing_element(key: &[u8]) -> CmdError {
    corrupt(format!(
        "list '{}': element missing from its index window",
        String::from_utf8_lossy(key)
    ))
}

/// The data key of the element at absolute position `pos`.
pub(super) fn pos_key(call: &Call<'_, '_>, key: &[u8], coll: &Collection, pos: u64) -> Vec<u8> {
    data_key(call.ctx.keyspace(), key, coll.version(), &pos.to_be_bytes())
}

/// The live list at `key`; WRONGTYPE when it holds another type.
pub(super) fn get_list(call: &Call<'_, '_>, key: &[u8]) -> CmdResult<Option<Collection>> {
    call.collection(key, KeyType::List)
}

/// The list a pop takes from. When a blocked command runs again, a key that
/// meanwhile came to hold another type is just not ready (Redis serves blocked
/// clients only from lists), so it answers nothing rather than WRONGTYPE.
pub(super) fn source_list(call: &Call<'_, '_>, key: &[u8]) -> CmdResult<Option<Collection>> {
    match get_list(call, key) {
        Err(CmdError::WrongType) if call.session.retrying_block => Ok(None),
        found => found,
    }
}

/// Keep `len` equal to the window size.
pub(super) fn set_window(coll: &mut Collection, head: u64, tail: u64) {
    coll.meta.head = head;
    coll.meta.tail = tail;
    coll.meta.len = tail - head;
}

/// Ranges up to this long are read element by element instead of by an
/// iterator.
pub(super) const POINT_READS_UP_TO: u64 = 4;

/// The values at positions `[from, to)`, ascending or descending.
pub(super) fn read_positions(
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
                None => return Err(missing_element(key)),
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
        return Err(missing_element(key));
    }
    Ok(out)
}

/// Visit the elements from one end, with their offsets from the head,
/// until `visit` returns false.
pub(super) fn scan(
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
            return Err(missing_element(key));
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
pub(super) fn renew(call: &Call<'_, '_>, coll: &mut Collection) {
    coll.meta.version = call.ctx.next_version();
    set_window(coll, LIST_START_INDEX, LIST_START_INDEX);
}

pub(super) fn push(
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
pub(super) fn pop(
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
pub(super) fn insert_at(
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
pub(super) fn remove_offsets(
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

pub(super) fn bulks(values: Vec<Bytes>) -> Reply {
    Reply::Array(values.into_iter().map(Reply::Bulk).collect())
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
