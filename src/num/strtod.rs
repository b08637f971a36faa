//! C's `strtod` as glibc implements it, and Redis's `string2d` on top.
//!
//! Sorted-set scores, ZADD increments, weights and score-range bounds are
//! doubles Redis reads with `strtod`: decimal and hexadecimal floats,
//! `inf`/`infinity`, `nan(…)`, leading spaces, and an `ERANGE` flag for
//! overflow and underflow. Rust's `str::parse` accepts a different set, so
//! the scanning is done here on bytes; the decimal conversion itself is
//! Rust's (correctly rounded, as glibc's is).

/// C's `isspace` in the "C" locale.
pub fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// An optional `+` or `-`: whether it was `-`, and the text after it.
pub(super) fn split_sign(s: &[u8]) -> (bool, &[u8]) {
    match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    }
}

fn starts_with_ci(s: &[u8], word: &[u8]) -> bool {
    s.len() >= word.len() && s[..word.len()].eq_ignore_ascii_case(word)
}

/// C's `strtod` as glibc implements it, on bytes: the value, how many bytes
/// it consumed (0 = no conversion), and whether it overflowed to infinity or
/// underflowed to zero (`errno == ERANGE` with a result Redis refuses).
pub fn strtod(s: &[u8]) -> (f64, usize, bool) {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let (neg, unsigned) = split_sign(&s[i..]);
    i = s.len() - unsigned.len();
    let sign = if neg { -1.0 } else { 1.0 };
    let rest = &s[i..];
    if starts_with_ci(rest, b"inf") {
        let n = if starts_with_ci(rest, b"infinity") {
            8
        } else {
            3
        };
        return (sign * f64::INFINITY, i + n, false);
    }
    if starts_with_ci(rest, b"nan") {
        let mut n = 3;
        if rest.get(3) == Some(&b'(') {
            let inner = rest[4..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            if rest.get(4 + inner) == Some(&b')') {
                n = 4 + inner + 1;
            }
        }
        return (f64::NAN, i + n, false);
    }
    if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        return match hex_float(&rest[2..]) {
            Some((v, n, range)) => (sign * v, i + 2 + n, range),
            // "0x" with no hex digits: only the "0" converts.
            None => (sign * 0.0, i + 1, false),
        };
    }
    let mut j = 0;
    let mut digits = 0;
    let mut nonzero = false;
    let mut scan_digits = |j: &mut usize| {
        while let Some(c) = rest.get(*j).filter(|c| c.is_ascii_digit()) {
            nonzero |= *c != b'0';
            digits += 1;
            *j += 1;
        }
    };
    scan_digits(&mut j);
    if rest.get(j) == Some(&b'.') {
        j += 1;
        scan_digits(&mut j);
    }
    if digits == 0 {
        return (0.0, 0, false);
    }
    if matches!(rest.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(rest.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if rest.get(k).is_some_and(u8::is_ascii_digit) {
            while rest.get(k).is_some_and(u8::is_ascii_digit) {
                k += 1;
            }
            j = k;
        }
    }
    let v: f64 = std::str::from_utf8(&rest[..j])
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0);
    let range = v.is_infinite() || (v == 0.0 && nonzero);
    (sign * v, i + j, range)
}

/// The hexadecimal part of a `0x…` float: value, bytes consumed after the
/// `0x`, range error; `None` when no hex digit follows.
fn hex_float(s: &[u8]) -> Option<(f64, usize, bool)> {
    const LIMIT: u128 = 1 << 120;
    let hex = |c: u8| (c as char).to_digit(16).map(u128::from);
    let (mut j, mut mant, mut exp, mut any, mut nonzero) = (0usize, 0u128, 0i64, false, false);
    while let Some(d) = s.get(j).and_then(|c| hex(*c)) {
        any = true;
        nonzero |= d != 0;
        if mant < LIMIT {
            mant = mant * 16 + d;
        } else {
            exp += 4;
        }
        j += 1;
    }
    if s.get(j) == Some(&b'.') {
        let mut k = j + 1;
        let mut frac_any = false;
        while let Some(d) = s.get(k).and_then(|c| hex(*c)) {
            frac_any = true;
            nonzero |= d != 0;
            if mant < LIMIT {
                mant = mant * 16 + d;
                exp -= 4;
            }
            k += 1;
        }
        if any || frac_any {
            any = true;
            j = k;
        }
    }
    if !any {
        return None;
    }
    if matches!(s.get(j), Some(b'p' | b'P')) {
        let mut k = j + 1;
        let (neg, unsigned) = split_sign(&s[k..]);
        k = s.len() - unsigned.len();
        if s.get(k).is_some_and(u8::is_ascii_digit) {
            let mut e: i64 = 0;
            while let Some(c) = s.get(k).filter(|c| c.is_ascii_digit()) {
                e = (e * 10 + i64::from(c - b'0')).min(1 << 20);
                k += 1;
            }
            exp += if neg { -e } else { e };
            j = k;
        }
    }
    let mut v = mant as f64;
    while exp != 0 && v != 0.0 && v.is_finite() {
        let step = exp.clamp(-1000, 1000);
        v *= 2f64.powi(step as i32);
        exp -= step;
    }
    let range = v.is_infinite() || (v == 0.0 && nonzero);
    Some((v, j, range))
}

/// Redis's `string2d` (behind `getDoubleFromObject`): the whole string is
/// one `strtod` number, no leading space, no overflow, no underflow to
/// zero, not NaN. Scores, increments and weights are read this way.
pub fn string2d(arg: &[u8]) -> Option<f64> {
    if arg.first().is_none_or(|c| is_c_space(*c)) {
        return None;
    }
    let (v, n, range) = strtod(arg);
    (n == arg.len() && !range && !v.is_nan()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_scores_match_redis() {
        assert_eq!(string2d(b"1.5"), Some(1.5));
        assert_eq!(string2d(b"+1"), Some(1.0));
        assert_eq!(string2d(b".5"), Some(0.5));
        assert_eq!(string2d(b"5."), Some(5.0));
        assert_eq!(string2d(b"-.5e-3"), Some(-0.0005));
        assert_eq!(string2d(b"0x10"), Some(16.0));
        assert_eq!(string2d(b"0x1p3"), Some(8.0));
        assert_eq!(string2d(b"0x.8"), Some(0.5));
        assert_eq!(string2d(b"inf"), Some(f64::INFINITY));
        assert_eq!(string2d(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(string2d(b"1e-310"), Some(1e-310));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"-nan",
            b"1e400",
            b"-1e400",
            b"1e-400",
            b"1e",
            b"+-1",
            b"0x",
            b"abc",
            b"1\x002",
            b"infinit",
        ] {
            assert_eq!(string2d(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(string2d(b"0e-400"), Some(0.0));
    }
}
