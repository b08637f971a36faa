//! Parsing of command arguments the way Redis parses them.

use bytes::Bytes;

use super::{CmdError, CmdResult};

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

/// An integer argument, or `ERR value is not an integer or out of range`.
pub fn int_arg(arg: &[u8]) -> CmdResult<i64> {
    parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// Redis's string2ld/strtold acceptance: a float with no surrounding spaces,
/// `inf`/`-inf` accepted, NaN refused.
pub fn parse_f64(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty()
        || text.starts_with(char::is_whitespace)
        || text.ends_with(char::is_whitespace)
    {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            // Rust accepts "nan"/"infinity" spellings and hex-free decimals;
            // reject what strtold would not treat as a number.
            if lower.contains("nan") || lower.contains("inf") {
                return None;
            }
            text.parse::<f64>().ok()?
        }
    };
    (!v.is_nan()).then_some(v)
}

pub fn float_arg(arg: &[u8]) -> CmdResult<f64> {
    parse_f64(arg).ok_or(CmdError::NotFloat)
}

/// Case-insensitive comparison of an option argument.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Lossy text of an argument for error messages.
pub fn text(arg: &Bytes) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// A blocking command's timeout in seconds (BLPOP, BZPOPMIN, …): a float,
/// 0 = forever. Redis's texts for a bad or negative one.
pub fn timeout_arg(arg: &[u8]) -> CmdResult<Option<std::time::Duration>> {
    let secs = parse_f64(arg)
        .filter(|v| v.is_finite())
        .ok_or_else(|| CmdError::err("timeout is not a float or out of range"))?;
    if secs < 0.0 {
        return Err(CmdError::err("timeout is negative"));
    }
    if secs == 0.0 {
        return Ok(None);
    }
    // Redis works in whole milliseconds.
    let ms = (secs * 1000.0).ceil();
    if ms > (i64::MAX / 2) as f64 {
        return Err(CmdError::err("timeout is out of range"));
    }
    Ok(Some(std::time::Duration::from_millis(ms as u64)))
}
