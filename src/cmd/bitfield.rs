//! BITFIELD and BITFIELD_RO: signed and unsigned integers of 1 to 64 bits
//! (unsigned up to 63) at any bit offset of a string, read, written and
//! incremented with Redis's overflow policies (WRAP, SAT, FAIL).

use bytes::{Bytes, BytesMut};

use super::strings::{lookup_string, max_bulk_len, store};
use super::{is, parse_i64, Call, CmdError, CmdResult};
use crate::resp::Reply;
use crate::storage::events::class;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Get,
    Set,
    IncrBy,
}

#[derive(Clone, Copy)]
struct Op {
    kind: OpKind,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

pub fn bitfield(call: &mut Call<'_, '_>) -> CmdResult {
    run(call, false)
}

pub fn bitfield_ro(call: &mut Call<'_, '_>) -> CmdResult {
    run(call, true)
}

fn run(call: &mut Call<'_, '_>, read_only: bool) -> CmdResult {
    let args = call.args;
    let ops = parse(call, &args[2..])?;
    let writes = ops.iter().any(|op| op.kind != OpKind::Get);
    let key = &args[1];
    if !writes {
        let value = lookup_string(call, key, true)?.map(|(v, _)| v);
        let bytes: &[u8] = value.as_deref().unwrap_or(&[]);
        let replies = ops.iter().map(|op| Reply::Int(get(bytes, op))).collect();
        return Ok(Reply::Array(replies));
    }
    if read_only {
        return Err(CmdError::err(
            "BITFIELD_RO only supports the GET subcommand",
        ));
    }
    let old = lookup_string(call, key, false)?;
    let created = old.is_none();
    let (old, expire) = old.unwrap_or_default();
    // Room up to the farthest bit written, zero-filled, as Redis makes it
    // before running the operations (even ones that then FAIL).
    let highest = ops
        .iter()
        .filter(|op| op.kind != OpKind::Get)
        .map(|op| op.offset + u64::from(op.bits) - 1)
        .max()
        .unwrap_or(0);
    let needed = usize::try_from(highest / 8 + 1)
        .map_err(|_| CmdError::err("bit offset is not an integer or out of range"))?;
    let mut value = BytesMut::from(&old[..]);
    let grown = value.len() < needed;
    if grown {
        value.resize(needed, 0);
    }
    let mut changes = 0usize;
    let mut replies = Vec::with_capacity(ops.len());
    for op in &ops {
        if op.kind == OpKind::Get {
            replies.push(Reply::Int(get(&value, op)));
            continue;
        }
        let old_bits = read_bits(&value, op.offset, op.bits);
        let outcome = if op.signed {
            write_signed(op, sign_extend(old_bits, op.bits))
        } else {
            write_unsigned(op, old_bits)
        };
        match outcome {
            None => replies.push(Reply::Nil),
            Some((reply, new_bits)) => {
                replies.push(Reply::Int(reply));
                write_bits(&mut value, op.offset, op.bits, new_bits);
                if created || grown || new_bits != old_bits {
                    changes += 1;
                }
            }
        }
    }
    if created || grown || changes > 0 {
        let event = if changes > 0 { "setbit" } else { "" };
        store_value(call, key, value.freeze(), expire, event);
    }
    Ok(Reply::Array(replies))
}

/// Store the string; the `setbit` event only when a field changed.
fn store_value(
    call: &mut Call<'_, '_>,
    key: &[u8],
    value: Bytes,
    expire: crate::storage::Expiry,
    event: &'static str,
) {
    if event.is_empty() {
        let created = call.ctx.wants(class::NEW) && matches!(call.ctx.peek(key), Ok(None));
        call.ctx
            .put_meta(key, &crate::storage::Meta::string(value, expire));
        if created {
            call.ctx.notify(class::NEW, "new", key);
        }
    } else {
        store(call, key, value, expire, (class::STRING, event));
    }
}

fn parse(call: &Call<'_, '_>, args: &[Bytes]) -> CmdResult<Vec<Op>> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 0;
    while let Some(sub) = args.get(j) {
        let left = args.len() - j - 1;
        let kind = if is(sub, "GET") && left >= 2 {
            OpKind::Get
        } else if is(sub, "SET") && left >= 3 {
            OpKind::Set
        } else if is(sub, "INCRBY") && left >= 3 {
            OpKind::IncrBy
        } else if is(sub, "OVERFLOW") && left >= 1 {
            let name = &args[j + 1];
            overflow = if is(name, "WRAP") {
                Overflow::Wrap
            } else if is(name, "SAT") {
                Overflow::Sat
            } else if is(name, "FAIL") {
                Overflow::Fail
            } else {
                return Err(CmdError::err("Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (signed, bits) = field_type(&args[j + 1])?;
        let offset = field_offset(call, &args[j + 2], bits)?;
        let value = if kind == OpKind::Get {
            0
        } else {
            parse_i64(&args[j + 3]).ok_or(CmdError::NotInteger)?
        };
        ops.push(Op {
            kind,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if kind == OpKind::Get { 3 } else { 4 };
    }
    Ok(ops)
}

/// `i1`..`i64` or `u1`..`u63`.
fn field_type(arg: &[u8]) -> CmdResult<(bool, u32)> {
    let invalid = || {
        CmdError::err(
            "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
        )
    };
    let (signed, digits) = match arg.split_first() {
        Some((b'i', rest)) => (true, rest),
        Some((b'u', rest)) => (false, rest),
        _ => return Err(invalid()),
    };
    let bits = parse_i64(digits).ok_or_else(invalid)?;
    let max = if signed { 64 } else { 63 };
    if !(1..=max).contains(&bits) {
        return Err(invalid());
    }
    Ok((signed, bits as u32))
}

/// A bit offset, or `#n` meaning `n` fields of this type in.
fn field_offset(call: &Call<'_, '_>, arg: &[u8], bits: u32) -> CmdResult<u64> {
    const OUT_OF_RANGE: &str = "bit offset is not an integer or out of range";
    let (digits, scale) = match arg.split_first() {
        Some((b'#', rest)) => (rest, i64::from(bits)),
        _ => (arg, 1),
    };
    let offset = parse_i64(digits)
        .and_then(|n| n.checked_mul(scale))
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| CmdError::err(OUT_OF_RANGE))?;
    if offset >> 3 >= max_bulk_len(call) {
        return Err(CmdError::NodeLimit(OUT_OF_RANGE));
    }
    Ok(offset)
}

/// The `bits` bits at `offset` as an unsigned number (missing bytes are 0).
fn read_bits(value: &[u8], offset: u64, bits: u32) -> u64 {
    let mut out = 0u64;
    for j in 0..u64::from(bits) {
        let bit = offset + j;
        let set = usize::try_from(bit / 8)
            .ok()
            .and_then(|byte| value.get(byte))
            .is_some_and(|b| b & (0x80 >> (bit % 8)) != 0);
        out = (out << 1) | u64::from(set);
    }
    out
}

fn write_bits(value: &mut [u8], offset: u64, bits: u32, number: u64) {
    for j in 0..u64::from(bits) {
        let bit = offset + j;
        let on = (number >> (u64::from(bits) - 1 - j)) & 1 == 1;
        let Some(byte) = usize::try_from(bit / 8)
            .ok()
            .and_then(|byte| value.get_mut(byte))
        else {
            return;
        };
        let mask = 0x80u8 >> (bit % 8);
        if on {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

fn sign_extend(raw: u64, bits: u32) -> i64 {
    if bits == 64 {
        return raw as i64;
    }
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

fn mask(bits: u32) -> u64 {
    if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn get(value: &[u8], op: &Op) -> i64 {
    let raw = read_bits(value, op.offset, op.bits);
    if op.signed {
        sign_extend(raw, op.bits)
    } else {
        raw as i64
    }
}

/// `target` brought into `min..=max` by the op's overflow policy (WRAP:
/// `wrap`'s two's complement truncation); None when it overflows under FAIL.
fn fit(op: &Op, target: i128, min: i128, max: i128, wrap: impl Fn(u64) -> i128) -> Option<i128> {
    if (min..=max).contains(&target) {
        return Some(target);
    }
    match op.overflow {
        Overflow::Fail => None,
        Overflow::Sat => Some(target.clamp(min, max)),
        Overflow::Wrap => Some(wrap(target as u64 & mask(op.bits))),
    }
}

/// SET or INCRBY of a signed field holding `old`: the reply and the new
/// raw bits, or None when it overflows under FAIL.
fn write_signed(op: &Op, old: i64) -> Option<(i64, u64)> {
    let max: i128 = if op.bits == 64 {
        i128::from(i64::MAX)
    } else {
        (1i128 << (op.bits - 1)) - 1
    };
    let target: i128 = match op.kind {
        OpKind::IncrBy => i128::from(old) + i128::from(op.value),
        _ => i128::from(op.value),
    };
    let new = fit(op, target, -max - 1, max, |raw| {
        i128::from(sign_extend(raw, op.bits))
    })? as i64;
    let reply = if op.kind == OpKind::IncrBy { new } else { old };
    Some((reply, new as u64 & mask(op.bits)))
}

/// SET or INCRBY of an unsigned field holding `old`.
fn write_unsigned(op: &Op, old: u64) -> Option<(i64, u64)> {
    let target: i128 = match op.kind {
        OpKind::IncrBy => i128::from(old) + i128::from(op.value),
        // Redis reads a SET value as unsigned: -1 is 2^64-1, too big.
        _ => i128::from(op.value as u64),
    };
    let new = fit(op, target, 0, i128::from(mask(op.bits)), i128::from)? as u64;
    let reply = if op.kind == OpKind::IncrBy {
        new as i64
    } else {
        old as i64
    };
    Some((reply, new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_at_any_offset() {
        let mut value = vec![0u8; 16];
        for (offset, bits, number) in [(0, 8, 0xABu64), (3, 13, 0x1234), (7, 64, u64::MAX - 5)] {
            write_bits(&mut value, offset, bits, number & mask(bits));
            assert_eq!(read_bits(&value, offset, bits), number & mask(bits));
        }
    }

    #[test]
    fn sign_extension() {
        assert_eq!(sign_extend(0b1111, 4), -1);
        assert_eq!(sign_extend(0b0111, 4), 7);
        assert_eq!(sign_extend(u64::MAX, 64), -1);
    }
}
