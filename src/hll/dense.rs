#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Dense registers: 16384 six-bit values packed from the least significant
//! bit of each byte upwards (register 0 is the low 6 bits of byte 0).
//! Callers hand the bytes after the header; a missing byte reads as zero
//! (the last register never needs the byte after it).

use super::{RawRegisters, REGISTERS, REGISTER_BITS};

const MASK: u16 = (1 << REGISTER_BITS) - 1;

/// The byte a register starts in and the bit inside it.
fn position(index: usize) -> (usize, u32) {
    let bit = index * REGISTER_BITS;
    (bit / 8, (bit % 8) as u32)
}

/// Register `index`.
pub(super) fn get(regs: &[u8], index: usize) -> u8 {
    let (byte, shift) = position(index);
    let low = u16::from(regs.get(byte).copied().unwrap_or(0));
    let high = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((low | high << 8) >> shift) & MASK) as u8
}

/// Set register `index` to `value` (below 64).
pub(super) fn set(regs: &mut [u8], index: usize, value: u8) {
    let (byte, shift) = position(index);
    let value = u16::from(value) & MASK;
    let mask = MASK << shift;
    let bits = value << shift;
    if let Some(b) = regs.get_mut(byte) {
        *b = (*b & !(mask as u8)) | bits as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b = (*b & !((mask >> 8) as u8)) | (bits >> 8) as u8;
    }
}

/// Raise register `index` to `count` when lower: true when it rose.
pub(super) fn raise(regs: &mut [u8], index: usize, count: u8) -> bool {
    if count > get(regs, index) {
        set(regs, index, count);
        true
    } else {
        false
    }
}

/// Count the registers by value.
pub(super) fn histogram(regs: &[u8], histogram: &mut [u64; 64]) {
    for i in 0..REGISTERS {
        if let Some(slot) = histogram.get_mut(usize::from(get(regs, i))) {
            *slot += 1;
        }
    }
}

/// Raise each of `max` to the register it stands for.
pub(super) fn merge_into(max: &mut RawRegisters, regs: &[u8]) {
    for (i, m) in max.iter_mut().enumerate() {
        *m = (*m).max(get(regs, i));
    }
}
