//! Doubles printed as Redis prints them.
//!
//! `%.17g` (Redis's reply and `addReplyDouble` text) and `d2string` (what
//! a listpack-encoded sorted set prints, e.g. in ZSCAN). The `long double`
//! text of INCRBYFLOAT is [`super::LongDouble::to_human_string`].

/// Format a double as Redis 7.0 does in replies (`%.17g`), with `inf`/`-inf`
/// for infinities.
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    format_g(d, 17)
}

/// C's `%.<precision>g` (Lua's number text uses 14): that many significant
/// digits, fixed or scientific notation by the exponent, trailing zeros
/// removed; `nan`, `-nan`, `inf`, `-inf` as glibc prints them.
pub fn format_g(d: f64, precision: usize) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let precision = precision.max(1);
    let sci = format!("{:.*e}", precision - 1, d);
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i64 = exp.parse().unwrap_or(0);
    if exp >= -4 && exp < precision as i64 {
        let decimals = (precision as i64 - 1 - exp).max(0) as usize;
        let fixed = format!("{:.*}", decimals, d);
        trim_fraction(&fixed).to_string()
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", trim_fraction(mantissa), sign, exp.abs())
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Redis's `d2string`: integral values up to 2^62 as integers, others
/// like `%.17g`.
pub fn d2string(v: f64) -> String {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    if (-LIMIT..=LIMIT).contains(&v) && v.fract() == 0.0 {
        return (v as i64).to_string();
    }
    format_double(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d2string_prints_integers_like_redis() {
        assert_eq!(d2string(123456789012345678.0), "123456789012345680");
        assert_eq!(d2string(4e18), "4000000000000000000");
        assert_eq!(d2string(5e18), "5e+18");
        assert_eq!(d2string(-3.0), "-3");
        assert_eq!(d2string(0.1), "0.10000000000000001");
        assert_eq!(d2string(f64::INFINITY), "inf");
        assert_eq!(d2string(0.0), "0");
    }
}
