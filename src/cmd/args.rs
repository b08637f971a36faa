//! Parsing of command arguments the way Redis parses them.

use bytes::Bytes;

use super::{CmdError, CmdResult};
pub use crate::num::parse_i64;
use crate::num::{string2ld, LongDouble};

/// An integer argument, or `ERR value is not an integer or out of range`.
pub fn int_arg(arg: &[u8]) -> CmdResult<i64> {
    parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// A database number (SELECT, COPY … DB): Redis reads a C `int`, with its
/// range text, then refuses what is not a database.
pub fn db_arg(arg: &[u8]) -> CmdResult<u8> {
    let v = int_arg(arg)?;
    if i32::try_from(v).is_err() {
        return Err(CmdError::err(format!(
            "value is out of range, value must between {} and {}",
            i32::MIN,
            i32::MAX
        )));
    }
    u8::try_from(v)
        .ok()
        .filter(|&db| db < crate::storage::DATABASES)
        .ok_or_else(|| CmdError::err("DB index is out of range"))
}

/// Case-insensitive comparison of an option argument.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Lossy text of an argument.
pub fn text(arg: &Bytes) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// An argument quoted in an error message as Redis's `%s` prints it: up to
/// its first NUL byte, and at most `max` bytes (`%.128s`).
pub fn err_text(arg: &[u8], max: usize) -> String {
    let end = memchr::memchr(0, arg).unwrap_or(arg.len()).min(max);
    String::from_utf8_lossy(&arg[..end]).into_owned()
}

/// A blocking command's timeout in seconds (BLPOP, BZPOPMIN, …), as Redis
/// 7.0's getTimeoutFromObjectOrReply reads it: a C `long double` (strtold:
/// hexadecimal and `inf` accepted, overflow and underflow refused), then
/// `(long long) ceill(secs * 1000)`. A product beyond the 64-bit range
/// converts to the minimum (x86-64), so `inf` and huge values are
/// "negative"; a tiny negative one rounds to 0 ms, which blocks forever
/// (`None`), as does 0.
pub fn timeout_arg(arg: &[u8]) -> CmdResult<Option<std::time::Duration>> {
    let negative = || CmdError::err("timeout is negative");
    let (neg, mant, exp) = match string2ld(arg) {
        Some(LongDouble::Finite { neg, mant, exp }) => (neg, mant, exp),
        Some(LongDouble::Inf { .. }) => return Err(negative()),
        _ => return Err(CmdError::err("timeout is not a float or out of range")),
    };
    // Close enough to the long double for whole milliseconds (2^exp may
    // round to 0 or infinity in f64; both ends are handled below).
    let secs = mant as f64 * (exp.clamp(-2000, 2000) as f64).exp2();
    let ms = ((if neg { -secs } else { secs }) * 1000.0).ceil();
    let limit = 2f64.powi(63);
    if !(-limit..limit).contains(&ms) || ms < 0.0 {
        return Err(negative());
    }
    // A positive value too small for an f64 is still 1 ms after ceill.
    let ms = if ms == 0.0 && mant != 0 && !neg {
        1.0
    } else {
        ms
    };
    if ms == 0.0 || ms > MAX_TIMEOUT_MS {
        return Ok(None); // longer than anyone waits: as good as forever
    }
    Ok(Some(std::time::Duration::from_millis(ms as u64)))
}

/// A thousand years: timeouts beyond it block forever (a timer that far
/// ahead would overflow the clock).
const MAX_TIMEOUT_MS: f64 = 1000.0 * 365.0 * 86_400_000.0;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(arg: &[u8]) -> Option<Option<u64>> {
        timeout_arg(arg)
            .ok()
            .map(|t| t.map(|d| d.as_millis() as u64))
    }

    fn err(arg: &[u8]) -> Option<String> {
        timeout_arg(arg).err().map(|e| e.to_string())
    }

    #[test]
    fn timeouts_as_redis_7_reads_them() {
        assert_eq!(ms(b"0"), Some(None));
        assert_eq!(ms(b"0.01"), Some(Some(10)));
        assert_eq!(ms(b"0.0001"), Some(Some(1)), "ceill");
        assert_eq!(ms(b"1e-4000"), Some(Some(1)), "tiny but a long double");
        assert_eq!(ms(b"0x1p-1"), Some(Some(500)), "strtold reads hex");
        // ceill(-0.1) is -0: zero milliseconds, which blocks forever.
        assert_eq!(ms(b"-0.0001"), Some(None));
        assert_eq!(ms(b"1e15"), Some(None), "as good as forever");
        let negative = Some("ERR timeout is negative".to_string());
        assert_eq!(err(b"-1"), negative);
        // (long long) of +inf or of more than 2^63 ms is LLONG_MIN on x86-64.
        assert_eq!(err(b"inf"), negative);
        assert_eq!(err(b"1e400"), negative);
        assert_eq!(err(b"1e100"), negative);
        let not_float = Some("ERR timeout is not a float or out of range".to_string());
        assert_eq!(err(b"1e-5000"), not_float, "underflow");
        assert_eq!(err(b"nan"), not_float);
        assert_eq!(err(b" 1"), not_float);
        assert_eq!(err(b""), not_float);
        assert_eq!(timeout_arg(b"2").ok(), Some(Some(Duration::from_secs(2))));
    }
}
