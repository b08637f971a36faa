#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Sparse registers: run-length opcodes after the header.
//!
//! - ZERO `00xxxxxx`: 1..=64 registers at zero;
//! - XZERO `01xxxxxx yyyyyyyy`: 1..=16384 registers at zero;
//! - VAL `1vvvvvxx`: 1..=4 registers at value 1..=32.
//!
//! A valid value covers exactly 16384 registers. Redis reads a value whose
//! last opcode is a truncated XZERO with the byte after the string (its
//! terminating zero, or what an edit of that opcode wrote there) as its
//! second byte; [`op_at`] takes that byte as `past_end`, so such values
//! behave alike within a command.

use super::{dense, HllError, RawRegisters, DENSE, DENSE_LEN, ENCODING_AT, HEADER_LEN, REGISTERS};

const XZERO_BIT: u8 = 0x40;
const VAL_BIT: u8 = 0x80;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;

/// One opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Zero(usize),
    XZero(usize),
    /// Value and run length.
    Val(u8, usize),
}

impl Op {
    /// Registers it covers.
    fn span(self) -> usize {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }

    /// Bytes it takes.
    fn width(self) -> usize {
        match self {
            Op::XZero(_) => 2,
            _ => 1,
        }
    }
}

fn byte_at(data: &[u8], at: usize, past_end: u8) -> u8 {
    match data.get(at) {
        Some(&b) => b,
        None if at == data.len() => past_end,
        None => 0,
    }
}

/// The opcode starting at `at` (which must be inside `data`); `past_end`
/// is the byte after `data`.
fn op_at(data: &[u8], at: usize, past_end: u8) -> Op {
    let b = byte_at(data, at, past_end);
    if b & VAL_BIT != 0 {
        Op::Val(((b >> 2) & 0x1f) + 1, usize::from(b & 0x3) + 1)
    } else if b & XZERO_BIT != 0 {
        let low = byte_at(data, at + 1, past_end);
        Op::XZero(((usize::from(b & 0x3f) << 8) | usize::from(low)) + 1)
    } else {
        Op::Zero(usize::from(b & 0x3f) + 1)
    }
}

fn val_byte(value: u8, len: usize) -> u8 {
    VAL_BIT | ((value - 1) << 2) | (len - 1) as u8
}

/// Append ZERO/XZERO opcodes for `n` zero registers, the fewest bytes
/// first as Redis writes them (XZERO only past 64).
pub(super) fn push_zeros(out: &mut Vec<u8>, mut n: usize) {
    while n > 0 {
        let run = n.min(XZERO_MAX_LEN);
        push_zero_run(out, run);
        n -= run;
    }
}

fn push_zero_run(out: &mut Vec<u8>, run: usize) {
    if run > ZERO_MAX_LEN {
        let l = run - 1;
        out.push(XZERO_BIT | ((l >> 8) & 0x3f) as u8);
        out.push((l & 0xff) as u8);
    } else {
        out.push((run - 1) as u8);
    }
}

/// Walk the opcodes of `data` (the bytes after the header), calling `val`
/// for each run of a value inside the registers. Returns whether they
/// covered exactly 16384 registers; a run past the end stops the walk.
fn walk(data: &[u8], past_end: u8, mut val: impl FnMut(usize, usize, u8)) -> bool {
    let mut at = 0;
    let mut index = 0usize;
    while at < data.len() {
        let op = op_at(data, at, past_end);
        if let Op::Val(value, n) = op {
            if index + n > REGISTERS {
                return false;
            }
            val(index, n, value);
        }
        index = index.saturating_add(op.span());
        at += op.width();
    }
    index == REGISTERS
}

/// The dense form of the sparse `value` (header kept, encoding dense);
/// `past_end` is the byte after it.
pub(super) fn to_dense(value: &[u8], past_end: u8) -> Result<Vec<u8>, HllError> {
    let mut out = vec![0u8; DENSE_LEN];
    if let (Some(head), Some(old)) = (out.get_mut(..HEADER_LEN), value.get(..HEADER_LEN)) {
        head.copy_from_slice(old);
    }
    if let Some(e) = out.get_mut(ENCODING_AT) {
        *e = DENSE;
    }
    let regs = out.get_mut(HEADER_LEN..).unwrap_or_default();
    let data = value.get(HEADER_LEN..).unwrap_or_default();
    let valid = walk(data, past_end, |first, n, v| {
        for i in first..first + n {
            dense::set(regs, i, v);
        }
    });
    if valid {
        Ok(out)
    } else {
        Err(HllError::Corrupt)
    }
}

/// Whether the last opcode of `data` runs past its end (a truncated XZERO,
/// whose second byte Redis takes from past the string).
pub(super) fn ends_mid_opcode(data: &[u8]) -> bool {
    let mut at = 0;
    while at < data.len() {
        at += op_at(data, at, 0).width();
    }
    at > data.len()
}

/// Raise each of `max` to the register it stands for.
pub(super) fn merge_into(max: &mut RawRegisters, data: &[u8]) -> Result<(), HllError> {
    let valid = walk(data, 0, |first, n, v| {
        if let Some(run) = max.get_mut(first..first + n) {
            for m in run {
                *m = (*m).max(v);
            }
        }
    });
    if valid {
        Ok(())
    } else {
        Err(HllError::Corrupt)
    }
}

/// Count the registers by value; false when the opcodes do not cover
/// exactly 16384 registers (every opcode is counted, as Redis does).
pub(super) fn histogram(data: &[u8], histogram: &mut [u64; 64]) -> bool {
    let mut at = 0;
    let mut index = 0usize;
    while at < data.len() {
        let op = op_at(data, at, 0);
        let (value, n) = match op {
            Op::Val(v, n) => (usize::from(v), n),
            Op::Zero(n) | Op::XZero(n) => (0, n),
        };
        if let Some(slot) = histogram.get_mut(value) {
            *slot = slot.saturating_add(n as u64);
        }
        index = index.saturating_add(n);
        at += op.width();
    }
    index == REGISTERS
}

/// PFDEBUG DECODE's text: `z:N` ZERO, `Z:N` XZERO, `v:VALUE,N` VAL.
pub(super) fn describe(data: &[u8]) -> String {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let op = op_at(data, at, 0);
        out.push(match op {
            Op::Zero(n) => format!("z:{n}"),
            Op::XZero(n) => format!("Z:{n}"),
            Op::Val(v, n) => format!("v:{v},{n}"),
        });
        at += op.width();
    }
    out.join(" ")
}

/// What raising a sparse register did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Raised {
    Unchanged,
    Updated,
    /// The value must turn dense first (nothing was changed).
    NeedsDense,
}

/// Raise register `index` of the sparse `value` (header included) to
/// `count` when lower, splitting the opcode that covers it and merging
/// equal neighbours afterwards, exactly as Redis edits its bytes.
/// `past_end` is the byte after the value, kept up to date.
pub(super) fn raise(
    value: &mut Vec<u8>,
    past_end: &mut u8,
    index: usize,
    count: u8,
    max_bytes: u64,
) -> Result<Raised, HllError> {
    if count > VAL_MAX_VALUE {
        return Ok(Raised::NeedsDense);
    }
    // Find the opcode covering `index`.
    let end = value.len();
    let mut at = HEADER_LEN;
    let mut first = 0usize;
    let mut previous = None;
    let mut span = 0;
    while at < end {
        let op = op_at(value, at, *past_end);
        span = op.span();
        if index < first + span {
            break;
        }
        previous = Some(at);
        at += op.width();
        first += span;
    }
    if span == 0 || at >= end {
        return Err(HllError::Corrupt);
    }
    let op = op_at(value, at, *past_end);
    let last = first + span - 1;

    // A VAL already as high, or a single register: edit in place.
    let simple = match op {
        Op::Val(old, _) if old >= count => return Ok(Raised::Unchanged),
        Op::Val(_, 1) | Op::Zero(1) => true,
        _ => false,
    };
    if simple {
        if let Some(b) = value.get_mut(at) {
            *b = val_byte(count, 1);
        }
    } else {
        // Split into (before, our register, after).
        let mut seq = Vec::with_capacity(5);
        match op {
            Op::Val(old, _) => {
                if index != first {
                    seq.push(val_byte(old, index - first));
                }
                seq.push(val_byte(count, 1));
                if index != last {
                    seq.push(val_byte(old, last - index));
                }
            }
            Op::Zero(_) | Op::XZero(_) => {
                if index != first {
                    push_zero_run(&mut seq, index - first);
                }
                seq.push(val_byte(count, 1));
                if index != last {
                    push_zero_run(&mut seq, last - index);
                }
            }
        }
        let old_width = op.width();
        let new_len = (end + seq.len()).saturating_sub(old_width);
        if seq.len() > old_width && new_len as u64 > max_bytes {
            return Ok(Raised::NeedsDense);
        }
        // A truncated XZERO at the end: Redis's length still counts two
        // bytes replaced, so the new opcodes' last byte lands just past
        // the end, where the next read of the last opcode finds it.
        let last_byte = seq.last().copied().unwrap_or(0);
        let tail = (at + old_width).min(end);
        value.splice(at..tail, seq);
        *past_end = if value.len() > new_len { last_byte } else { 0 };
        value.truncate(new_len);
    }
    merge_neighbours(value, past_end, previous.unwrap_or(HEADER_LEN));
    super::invalidate_cache(value);
    Ok(Raised::Updated)
}

/// Merge adjacent VAL opcodes of equal value (up to the longest run a VAL
/// holds), looking at up to five opcodes from `at`.
fn merge_neighbours(value: &mut Vec<u8>, past_end: &mut u8, mut at: usize) {
    let mut budget = 5;
    while at < value.len() && budget > 0 {
        budget -= 1;
        match op_at(value, at, *past_end) {
            Op::XZero(_) => at += 2,
            Op::Zero(_) => at += 1,
            Op::Val(v1, n1) => {
                if at + 1 < value.len() {
                    if let Op::Val(v2, n2) = op_at(value, at + 1, *past_end) {
                        if v1 == v2 && n1 + n2 <= VAL_MAX_LEN {
                            if let Some(b) = value.get_mut(at + 1) {
                                *b = val_byte(v1, n1 + n2);
                            }
                            value.remove(at);
                            // Redis ends the shorter string with a zero.
                            *past_end = 0;
                            continue;
                        }
                    }
                }
                at += 1;
            }
        }
    }
}
