//! C `long double` arithmetic as Redis 7.0 on x86-64 does it.
//!
//! Redis computes INCRBYFLOAT and HINCRBYFLOAT in C `long double`, which on
//! x86-64 is the x87 80-bit format (64-bit mantissa), parses it with
//! `strtold` (`string2ld` in util.c) and prints it with `%.17Lf`
//! (`ld2string`). An f64 would answer differently (10.5 + 0.1 would print
//! as 10.59999999999999964), so this module emulates that format exactly:
//! correctly rounded parsing, round-to-nearest-even addition, and exact
//! decimal printing, on the big integers of [`super::big`].

use std::cmp::Ordering;

use super::big::Big;
use super::strtod::{is_c_space, split_sign};

/// Exponent of the lowest mantissa bit of the smallest subnormal.
const MIN_EXP: i64 = -16445;
/// Largest exponent of a finite value's leading bit.
const MAX_LEAD: i64 = 16383;
/// Redis's MAX_LONG_DOUBLE_CHARS: longer inputs are not floats.
const MAX_CHARS: usize = 5 * 1024;
/// Decimal exponents beyond these bounds certainly overflow/underflow.
const MAX_DEC_EXP: i64 = 4933;
const MIN_DEC_EXP: i64 = -4952;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongDouble {
    /// `(-1)^neg × mant × 2^exp`.
    Finite {
        neg: bool,
        mant: u64,
        exp: i64,
    },
    Inf {
        neg: bool,
    },
    Nan,
}

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble::Finite {
        neg: false,
        mant: 0,
        exp: 0,
    };

    /// A double widened to `long double` (exact: every double is one).
    pub fn from_f64(d: f64) -> LongDouble {
        let neg = d.is_sign_negative();
        if d.is_nan() {
            return LongDouble::Nan;
        }
        if d.is_infinite() {
            return LongDouble::Inf { neg };
        }
        let bits = d.to_bits();
        let field = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        let (mant, exp) = if field == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), field - 1075)
        };
        LongDouble::Finite { neg, mant, exp }
    }

    pub fn is_finite(self) -> bool {
        matches!(self, LongDouble::Finite { .. })
    }

    /// `%.17Lf` with trailing zeros (and a bare '.') removed, and "-0"
    /// turned into "0": Redis's ld2string in LD_STR_HUMAN mode.
    pub fn to_human_string(self) -> String {
        let (neg, mant, exp) = match self {
            LongDouble::Finite { neg, mant, exp } => (neg, mant, exp),
            LongDouble::Inf { neg: false } => return "inf".into(),
            LongDouble::Inf { neg: true } => return "-inf".into(),
            LongDouble::Nan => return "nan".into(),
        };
        const SCALE: u128 = 100_000_000_000_000_000; // 10^17
        let (mut int, frac) = if exp >= 0 {
            (Big::from_u64(mant).shl(exp as usize), 0u128)
        } else {
            let k = exp.unsigned_abs();
            let int = if k >= 64 { 0 } else { mant >> k };
            let frac_bits = if k >= 64 {
                mant
            } else {
                mant & ((1u64 << k) - 1)
            };
            // frac_bits × 10^17 < 2^121, so u128 holds it; the digits
            // are (frac_bits × 10^17) / 2^k rounded half to even.
            let scaled = u128::from(frac_bits) * SCALE;
            let digits = if k >= 128 {
                0 // below 2^-128 × 10^17 / 2: rounds to zero
            } else {
                let q = scaled >> k;
                let rem = scaled & ((1u128 << k) - 1);
                let half = 1u128 << (k - 1);
                if rem > half || (rem == half && q & 1 == 1) {
                    q + 1
                } else {
                    q
                }
            };
            (Big::from_u64(int), digits)
        };
        let frac = if frac == SCALE {
            int = int.add(&Big::from_u64(1));
            0
        } else {
            frac
        };
        let mut s = String::new();
        if neg {
            s.push('-');
        }
        s.push_str(&int.to_decimal());
        s.push_str(&format!(".{frac:017}"));
        let trimmed = s.trim_end_matches('0').trim_end_matches('.');
        if trimmed == "-0" {
            "0".into()
        } else {
            trimmed.into()
        }
    }
}

impl std::ops::Add for LongDouble {
    type Output = LongDouble;

    /// `self + other`, rounded to nearest, ties to even.
    fn add(self, other: LongDouble) -> LongDouble {
        use LongDouble::*;
        match (self, other) {
            (Nan, _) | (_, Nan) => Nan,
            (Inf { neg: a }, Inf { neg: b }) if a != b => Nan,
            (Inf { neg }, _) | (_, Inf { neg }) => Inf { neg },
            (Finite { mant: 0, .. }, x) | (x, Finite { mant: 0, .. }) => x,
            (
                Finite {
                    neg: na,
                    mant: ma,
                    exp: ea,
                },
                Finite {
                    neg: nb,
                    mant: mb,
                    exp: eb,
                },
            ) => {
                // Exact sum over the common exponent, then one rounding.
                let e = ea.min(eb);
                let a = Big::from_u64(ma).shl((ea - e) as usize);
                let b = Big::from_u64(mb).shl((eb - e) as usize);
                if na == nb {
                    round(na, a.add(&b), e)
                } else {
                    match a.cmp(&b) {
                        Ordering::Greater => round(na, a.sub(&b), e),
                        Ordering::Less => round(nb, b.sub(&a), e),
                        Ordering::Equal => LongDouble::ZERO,
                    }
                }
            }
        }
    }
}

/// Round `(-1)^neg × m × 2^e` to the format: 64-bit mantissa, subnormals
/// below 2^-16382, infinity past the largest finite value.
fn round(neg: bool, m: Big, e: i64) -> LongDouble {
    let len = m.bit_len() as i64;
    if len == 0 {
        return LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        };
    }
    let target = (e + len - 64).max(MIN_EXP);
    let (mant, exp) = if target <= e {
        (m.low_u64(), e)
    } else {
        let shift = (target - e) as usize;
        let mut q = m.shr_low_u64(shift);
        let half = m.bit(shift - 1);
        let sticky = m.any_below(shift - 1);
        let mut exp = target;
        if half && (sticky || q & 1 == 1) {
            q = match q.checked_add(1) {
                Some(q) => q,
                None => {
                    exp += 1;
                    1 << 63
                }
            };
        }
        (q, exp)
    };
    if mant != 0 && exp + i64::from(64 - mant.leading_zeros()) - 1 > MAX_LEAD {
        return LongDouble::Inf { neg };
    }
    LongDouble::Finite { neg, mant, exp }
}

/// Redis's string2ld: `strtold` must consume the whole text, which may
/// not start with a space; overflow, underflow to zero and NaN are
/// refused, "inf" is accepted. Hexadecimal floats are accepted too.
pub fn string2ld(s: &[u8]) -> Option<LongDouble> {
    if s.is_empty() || s.len() >= MAX_CHARS || is_c_space(s[0]) {
        return None;
    }
    let (neg, rest) = split_sign(s);
    if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        return Some(LongDouble::Inf { neg });
    }
    let value = if rest.len() > 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        parse_hex(neg, &rest[2..])?
    } else {
        parse_decimal(neg, rest)?
    };
    match value {
        // Out of range: strtold reports ERANGE and Redis refuses it.
        LongDouble::Inf { .. } | LongDouble::Nan => None,
        v => Some(v),
    }
}

/// Split `digits[.digits]` (at least one digit) into the digits and
/// the count after the point; returns the rest of the text.
fn mantissa(s: &[u8], radix: u32) -> Option<(Vec<u8>, usize, &[u8])> {
    let mut digits = Vec::new();
    let mut frac = 0;
    let mut seen_point = false;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(d) = char::from(c).to_digit(radix) {
            digits.push(d as u8);
            if seen_point {
                frac += 1;
            }
        } else {
            break;
        }
        i += 1;
    }
    (!digits.is_empty()).then_some((digits, frac, &s[i..]))
}

/// An exponent: `[+-]digits`, saturated far beyond any meaningful range.
fn exponent(s: &[u8]) -> Option<i64> {
    let (neg, digits) = split_sign(s);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits
        .iter()
        .fold(0i64, |v, d| {
            v.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        })
        .min(1 << 40);
    Some(if neg { -v } else { v })
}

fn parse_hex(neg: bool, s: &[u8]) -> Option<LongDouble> {
    let (digits, frac, rest) = mantissa(s, 16)?;
    let exp = match rest.first() {
        None => 0,
        Some(b'p' | b'P') => exponent(&rest[1..])?,
        Some(_) => return None,
    };
    let mut m = Big::default();
    for d in digits.iter().skip_while(|&&d| d == 0) {
        m = m.mul_small(16).add(&Big::from_u64(u64::from(*d)));
    }
    if m.bit_len() == 0 {
        return Some(LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        });
    }
    let e = exp - 4 * frac as i64;
    let lead = e + m.bit_len() as i64 - 1;
    if lead > MAX_LEAD {
        return Some(LongDouble::Inf { neg });
    }
    if lead < MIN_EXP - 2 {
        return None; // underflows to zero
    }
    nonzero(round(neg, m, e))
}

fn parse_decimal(neg: bool, s: &[u8]) -> Option<LongDouble> {
    let (digits, frac, rest) = mantissa(s, 10)?;
    let exp = match rest.first() {
        None => 0,
        Some(b'e' | b'E') => exponent(&rest[1..])?,
        Some(_) => return None,
    };
    let digits: Vec<u8> = digits.into_iter().skip_while(|&d| d == 0).collect();
    if digits.is_empty() {
        return Some(LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        });
    }
    // value = digits × 10^exp10, in [10^(n-1+exp10), 10^(n+exp10)).
    let exp10 = exp - frac as i64;
    let n = digits.len() as i64;
    if n - 1 + exp10 >= MAX_DEC_EXP {
        return Some(LongDouble::Inf { neg });
    }
    if n + exp10 < MIN_DEC_EXP {
        return None;
    }
    let mut m = Big::default();
    for chunk in digits.chunks(19) {
        let v = chunk.iter().fold(0u64, |v, &d| v * 10 + u64::from(d));
        m = m
            .mul_small(10u64.pow(chunk.len() as u32))
            .add(&Big::from_u64(v));
    }
    if exp10 >= 0 {
        return nonzero(round(neg, m.mul(&Big::pow10(exp10 as usize)), 0));
    }
    // m / 10^-exp10: scale m by 2^s so the quotient has 66 or 67 bits
    // (64 kept, the rounding bit, one more); whatever is lost (the
    // remainder, bits shifted out of m) becomes one sticky bit below.
    let d = Big::pow10(exp10.unsigned_abs() as usize);
    let s = (d.bit_len() + 66) as i64 - m.bit_len() as i64;
    let (scaled, lost) = if s >= 0 {
        (m.shl(s as usize), false)
    } else {
        let n = s.unsigned_abs() as usize;
        (m.shr(n), m.any_below(n))
    };
    let (q, r) = scaled.div_rem(&d);
    let sticky = lost || r.bit_len() != 0;
    let q = q.shl(1).add(&Big::from_u64(u64::from(sticky)));
    nonzero(round(neg, q, -s - 1))
}

/// A nonzero input that rounded to zero underflowed: not a float.
fn nonzero(v: LongDouble) -> Option<LongDouble> {
    match v {
        LongDouble::Finite { mant: 0, .. } => None,
        v => Some(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(start: &str, by: &str) -> Option<String> {
        let sum = string2ld(start.as_bytes())? + string2ld(by.as_bytes())?;
        sum.is_finite().then(|| sum.to_human_string())
    }

    fn one(v: &str) -> Option<String> {
        incr("0", v)
    }

    #[test]
    fn doubles_print_as_redis_prints_coordinates() {
        // GEOPOS replies of Redis 7.0 (addReplyHumanLongDouble).
        let h = |d: f64| LongDouble::from_f64(d).to_human_string();
        assert_eq!(h(10.000002086162567), "10.00000208616256714");
        assert_eq!(h(0.9999994591429768), "0.99999945914297683");
        assert_eq!(h(-0.0), "0");
        assert_eq!(h(180.0), "180");
        // GEOPOS of a point at the northern limit (clamped to it).
        assert_eq!(h(85.05112878), "85.0511287799999991");
    }

    #[test]
    fn matches_redis() {
        // Every expected text below is what Redis 7.0 on x86-64 answers.
        assert_eq!(one("0.1").as_deref(), Some("0.1"));
        assert_eq!(incr("10.5", "0.1").as_deref(), Some("10.6"));
        assert_eq!(one("5.0e3").as_deref(), Some("5000"));
        assert_eq!(incr("1.1", "2.2").as_deref(), Some("3.3"));
        assert_eq!(incr("0.3", "-0.1").as_deref(), Some("0.2"));
        assert_eq!(incr("1", "1e-10").as_deref(), Some("1.0000000001"));
        assert_eq!(
            one("1.23456789012345678").as_deref(),
            Some("1.23456789012345678")
        );
        assert_eq!(
            one("123456789012345678901234567890").as_deref(),
            Some("123456789012345678899921813504")
        );
        assert_eq!(one("1e20").as_deref(), Some("100000000000000000000"));
        assert_eq!(one("1e-20").as_deref(), Some("0"));
        assert_eq!(one("-1e-20").as_deref(), Some("0"));
        assert_eq!(one("-0").as_deref(), Some("0"));
        assert_eq!(one("3.0").as_deref(), Some("3"));
        assert_eq!(one("0.000000000000000005").as_deref(), Some("0"));
        assert_eq!(
            one("0.000000000000000015").as_deref(),
            Some("0.00000000000000002")
        );
        assert_eq!(
            one("0.000000000000000025").as_deref(),
            Some("0.00000000000000002")
        );
        assert_eq!(one("0x10").as_deref(), Some("16"));
        assert_eq!(one("0x1.8p1").as_deref(), Some("3"));
        assert_eq!(one("+.5e1").as_deref(), Some("5"));
        assert_eq!(one(".5").as_deref(), Some("0.5"));
        assert_eq!(one("5.").as_deref(), Some("5"));
        assert_eq!(one("1e-4950").as_deref(), Some("0"));
        assert_eq!(one("0x1p-16445").as_deref(), Some("0"));
        assert_eq!(one("0e99999999999999").as_deref(), Some("0"));
        let big = "99999999999999999996685879655845645660560099847415567207797047994921734868838061872100126921888539320446747225054013223152134749593960583597420814430196418767959100019603190778663109604507106667939153395788938914560543563061268364901618630217086589253444881623791300855757318142424510452728255046343928578048";
        assert_eq!(one("1e308").as_deref(), Some(big));
        assert!(one("1e400")
            .is_some_and(|s| s.len() == 401 && s.starts_with("1000000000000000000028188")));
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            " 1",
            "1 ",
            "abc",
            "1.5e",
            "1.5e+",
            "0x",
            "1_0",
            "nan",
            "1e4933",
            "1e-4960",
            "1e-99999999999999",
            ".",
            "-",
            "e5",
            "infin",
        ] {
            assert_eq!(string2ld(bad.as_bytes()), None, "{bad:?}");
        }
        // Infinity parses, but any sum with it is refused by INCRBYFLOAT.
        assert_eq!(one("inf"), None);
        assert_eq!(one("-INFINITY"), None);
        assert_eq!(incr("1e4932", "1e4932"), None);
    }
}
