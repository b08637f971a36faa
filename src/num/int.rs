//! Integers read as Redis and C read them: `string2ll` for arguments,
//! glibc's `atoi` where Redis calls it.

use super::is_c_space;

/// Redis's string2ll: optional '-', decimal digits, nothing else, no
/// leading zeros (except "0"), fits in i64.
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    if arg.is_empty() || arg.len() > 20 {
        return None;
    }
    let (neg, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = i64::from(c - b'0');
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
}

/// C's `atoi` as glibc has it: `(int) strtol(s, NULL, 10)` (leading spaces,
/// a sign, digits up to the first other byte; saturated, then truncated).
pub fn atoi(s: &[u8]) -> i32 {
    let mut rest = s;
    while let Some((c, tail)) = rest.split_first() {
        if !is_c_space(*c) {
            break;
        }
        rest = tail;
    }
    let neg = rest.first() == Some(&b'-');
    if matches!(rest.first(), Some(b'-' | b'+')) {
        rest = &rest[1..];
    }
    let mut v: i64 = 0;
    for c in rest.iter().take_while(|c| c.is_ascii_digit()) {
        let d = i64::from(c - b'0');
        v = if neg {
            v.saturating_mul(10).saturating_sub(d)
        } else {
            v.saturating_mul(10).saturating_add(d)
        };
    }
    v as i32
}
