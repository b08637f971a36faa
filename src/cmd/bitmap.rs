//! Bitmaps on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP.
//! Bit 0 is the most significant bit of the first byte, as in Redis.

use bytes::{Bytes, BytesMut};

use super::strings::{lookup_string, max_bulk_len, store};
use super::table::{commands, flags::*};
use super::{int_arg, is, parse_i64, Call, CmdError, CmdResult, CommandSpec, Flags};
use crate::resp::Reply;

pub static COMMANDS: &[CommandSpec] = commands! {
    "setbit", 4, W.union(Flags::NODE_LIMITS), 1, 1, 1, setbit;
    "getbit", 3, RF, 1, 1, 1, getbit;
    "bitcount", -2, R, 1, 1, 1, bitcount;
    "bitpos", -3, R, 1, 1, 1, bitpos;
    "bitop", -4, W, 2, -1, 1, bitop;
};

/// An offset inside the largest string allowed (Redis's
/// getBitOffsetFromArgument): 2^32 bits with the default proto-max-bulk-len
/// of 512 MB. [`max_bulk_len`] says which limit applies.
fn bit_offset(call: &Call<'_, '_>, arg: &[u8]) -> CmdResult<u64> {
    const OUT_OF_RANGE: &str = "bit offset is not an integer or out of range";
    let offset = parse_i64(arg)
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| CmdError::err(OUT_OF_RANGE))?;
    if offset >> 3 >= max_bulk_len(call) {
        return Err(CmdError::NodeLimit(OUT_OF_RANGE));
    }
    Ok(offset)
}

fn bit_at(value: &[u8], bit: u64) -> bool {
    let byte = (bit / 8) as usize;
    value
        .get(byte)
        .is_some_and(|b| b & (0x80 >> (bit % 8)) != 0)
}

pub fn setbit(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let offset = bit_offset(call, &args[2])?;
    let on = match &args[3][..] {
        b"1" => true,
        b"0" => false,
        _ => return Err(CmdError::err("bit is not an integer or out of range")),
    };
    let key = &args[1];
    let (old, expire) = lookup_string(call, key, false)?.unwrap_or_default();
    // Below max_bulk_len (bit_offset), so the string stays within it.
    let byte = (offset / 8) as usize;
    let previous = bit_at(&old, offset);
    if previous == on && byte < old.len() {
        // Unchanged (as Redis, not counted as a modification: a WATCH stays).
        return Ok(Reply::Int(i64::from(previous)));
    }
    let mut value = BytesMut::from(&old[..]);
    if value.len() <= byte {
        value.resize(byte + 1, 0);
    }
    let mask = 0x80u8 >> (offset % 8);
    if on {
        value[byte] |= mask;
    } else {
        value[byte] &= !mask;
    }
    store(
        call,
        key,
        value.freeze(),
        expire,
        (crate::storage::events::class::STRING, "setbit"),
    );
    Ok(Reply::Int(i64::from(previous)))
}

pub fn getbit(call: &mut Call<'_, '_>) -> CmdResult {
    let offset = bit_offset(call, &call.args[2])?;
    let value = lookup_string(call, &call.args[1], true)?;
    Ok(Reply::Int(i64::from(
        value.is_some_and(|(v, _)| bit_at(&v, offset)),
    )))
}

/// Units of a BITCOUNT/BITPOS range.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Byte,
    Bit,
}

fn unit_arg(arg: &[u8]) -> CmdResult<Unit> {
    if is(arg, "byte") {
        Ok(Unit::Byte)
    } else if is(arg, "bit") {
        Ok(Unit::Bit)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Redis's range normalisation: negative from the end, clamped; `None`
/// when empty. `total` is the length in the range's unit.
fn clamp_range(start: i64, end: i64, total: i64) -> Option<(u64, u64)> {
    let start = if start < 0 {
        (total + start).max(0)
    } else {
        start
    };
    let end = if end < 0 { (total + end).max(0) } else { end }.min(total - 1);
    (start <= end && total > 0).then_some((start as u64, end as u64))
}

/// The bit range `[first, last]` a BYTE/BIT range covers.
fn bit_range(start: u64, end: u64, unit: Unit) -> (u64, u64) {
    match unit {
        Unit::Byte => (start * 8, end * 8 + 7),
        Unit::Bit => (start, end),
    }
}

fn count_bits(value: &[u8], first: u64, last: u64) -> u64 {
    let (first_byte, last_byte) = ((first / 8) as usize, (last / 8) as usize);
    if first.is_multiple_of(8) && last % 8 == 7 {
        return value[first_byte..=last_byte]
            .iter()
            .map(|b| u64::from(b.count_ones()))
            .sum();
    }
    (first..=last).filter(|&b| bit_at(value, b)).count() as u64
}

pub fn bitcount(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let Some((value, _)) = lookup_string(call, &args[1], true)? else {
        return Ok(Reply::Int(0));
    };
    let (start, end) = match args.len() {
        2 => (0, -1),
        4 | 5 => (int_arg(&args[2])?, int_arg(&args[3])?),
        _ => return Err(CmdError::Syntax),
    };
    // Redis answers an empty negative range before it reads the unit.
    if start < 0 && end < 0 && start > end {
        return Ok(Reply::Int(0));
    }
    let unit = match args.get(4) {
        Some(unit) => unit_arg(unit)?,
        None => Unit::Byte,
    };
    let total = match unit {
        Unit::Byte => value.len() as i64,
        Unit::Bit => value.len() as i64 * 8,
    };
    let Some((start, end)) = clamp_range(start, end, total) else {
        return Ok(Reply::Int(0));
    };
    let (first, last) = bit_range(start, end, unit);
    Ok(Reply::Int(count_bits(&value, first, last) as i64))
}

pub fn bitpos(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let wanted = match parse_i64(&args[2]) {
        Some(0) => false,
        Some(1) => true,
        Some(_) => return Err(CmdError::err("The bit argument must be 1 or 0.")),
        None => return Err(CmdError::NotInteger),
    };
    let Some((value, _)) = lookup_string(call, &args[1], true)? else {
        return Ok(Reply::Int(if wanted { -1 } else { 0 }));
    };
    if args.len() > 6 {
        return Err(CmdError::Syntax);
    }
    // Redis reads start, then the unit, then end.
    let start = if args.len() >= 4 {
        int_arg(&args[3])?
    } else {
        0
    };
    let unit = match args.get(5) {
        Some(unit) => unit_arg(unit)?,
        None => Unit::Byte,
    };
    let total = match unit {
        Unit::Byte => value.len() as i64,
        Unit::Bit => value.len() as i64 * 8,
    };
    let end_given = args.len() >= 5;
    let end = if end_given {
        int_arg(&args[4])?
    } else {
        total - 1
    };
    let Some((start, end)) = clamp_range(start, end, total) else {
        return Ok(Reply::Int(-1));
    };
    let (first, last) = bit_range(start, end, unit);
    if let Some(pos) = (first..=last).find(|&b| bit_at(&value, b) == wanted) {
        return Ok(Reply::Int(pos as i64));
    }
    // Looking for a clear bit with no end given: the string is padded
    // with zeros on the right, so the answer is the first bit after it.
    if !wanted && !end_given {
        return Ok(Reply::Int(last as i64 + 1));
    }
    Ok(Reply::Int(-1))
}

pub fn bitop(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let op = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    if !matches!(op.as_str(), "and" | "or" | "xor" | "not") {
        return Err(CmdError::Syntax);
    }
    if op == "not" && args.len() != 4 {
        return Err(CmdError::err(
            "BITOP NOT must be called with a single source key.",
        ));
    }
    let mut sources = Vec::with_capacity(args.len() - 3);
    for key in &args[3..] {
        sources.push(
            lookup_string(call, key, false)?
                .map(|(v, _)| v)
                .unwrap_or_default(),
        );
    }
    let len = sources.iter().map(Bytes::len).max().unwrap_or(0);
    let dest = &args[2];
    if len == 0 {
        // Only an existing key is deleted (and counts as modified).
        if call.ctx.get_raw_meta(dest)?.is_some() {
            call.ctx.delete_key(dest);
        }
        return Ok(Reply::Int(0));
    }
    let byte = |s: &Bytes, i: usize| s.get(i).copied().unwrap_or(0);
    let result: Vec<u8> = (0..len)
        .map(|i| match op.as_str() {
            "and" => sources.iter().fold(0xff, |acc, s| acc & byte(s, i)),
            "or" => sources.iter().fold(0, |acc, s| acc | byte(s, i)),
            "xor" => sources.iter().fold(0, |acc, s| acc ^ byte(s, i)),
            _ => !byte(&sources[0], i),
        })
        .collect();
    store(
        call,
        dest,
        Bytes::from(result),
        None,
        (crate::storage::events::class::STRING, "set"),
    );
    Ok(Reply::Int(len as i64))
}
