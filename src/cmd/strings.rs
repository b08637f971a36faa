//! String commands: GET, SET and its variants, MGET/MSET, APPEND, ranges,
//! and the INCR family.
//!
//! A string lives entirely in its meta record (`MetaBody::String`), so every
//! command here is one meta read and at most one meta write.

use bytes::{Bytes, BytesMut};

use super::{int_arg, is, parse_i64, Call, CmdError, CmdResult};
use crate::resp::{Reply, DEFAULT_MAX_BULK_LEN};
use crate::storage::{Expiry, Meta, MetaBody};

/// Count a read lookup in INFO's `keyspace_hits` / `keyspace_misses`, as
/// Redis does for commands that read a key (not for writes).
pub(super) fn count_lookup(call: &Call<'_, '_>, hit: bool) {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = &call.engine.stats;
    if hit {
        stats.keyspace_hits.fetch_add(1, Relaxed);
    } else {
        stats.keyspace_misses.fetch_add(1, Relaxed);
    }
}

/// The string at `key` with its expiry; WRONGTYPE for other types.
/// `read` counts the lookup in the keyspace statistics.
pub(super) fn lookup_string(
    call: &Call<'_, '_>,
    key: &[u8],
    read: bool,
) -> CmdResult<Option<(Bytes, Expiry)>> {
    let meta = call.ctx.get_meta(key)?;
    if read {
        count_lookup(call, meta.is_some());
    }
    match meta {
        None => Ok(None),
        Some(Meta {
            expire_at_ms,
            body: MetaBody::String(v),
        }) => Ok(Some((v, expire_at_ms))),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Store a string value, or delete the key when its deadline already passed
/// (SET … PXAT <past> answers OK and leaves no key, like Redis).
pub(super) fn store(call: &mut Call<'_, '_>, key: &[u8], value: Bytes, expire_at_ms: Expiry) {
    match expire_at_ms {
        Some(at) if at <= call.ctx.now_ms => call.ctx.delete_key(key),
        _ => call.ctx.put_meta(key, &Meta::string(value, expire_at_ms)),
    }
}

/// The largest string a command may build: this node's proto-max-bulk-len,
/// except when applying a replicated entry. CONFIG SET is not replicated,
/// so an apply uses Redis's default (512 MB), the same on every node; the
/// node's own limit was checked where the client sent the command
/// ([`CmdError::NodeLimit`] answers before anything is proposed).
pub(super) fn max_bulk_len(call: &Call<'_, '_>) -> u64 {
    if call.ctx.applies_log_entry() {
        DEFAULT_MAX_BULK_LEN as u64
    } else {
        call.engine.config.read().proto_max_bulk_len as u64
    }
}

/// Redis's checkStringLength: a string may not grow past proto-max-bulk-len.
fn check_string_length(call: &Call<'_, '_>, size: u64, append: u64) -> CmdResult<()> {
    match size.checked_add(append) {
        Some(total) if total <= max_bulk_len(call) => Ok(()),
        _ => Err(CmdError::NodeLimit(
            "string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

// ---------------------------------------------------------------------------
// Expiry options of SET and GETEX.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// Options of SET (`for_set`) or GETEX, parsed with Redis's exact conflict
/// rules (parseExtendedStringArgumentsOrReply).
#[derive(Debug, Default)]
struct StrOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(Unit, &'a [u8])>,
}

impl<'a> StrOpts<'a> {
    fn parse(args: &'a [Bytes], for_set: bool) -> CmdResult<StrOpts<'a>> {
        let mut o = StrOpts::default();
        let mut i = 0;
        while i < args.len() {
            let opt = &args[i][..];
            let next = args.get(i + 1);
            let unit = [
                ("ex", Unit::Ex),
                ("px", Unit::Px),
                ("exat", Unit::ExAt),
                ("pxat", Unit::PxAt),
            ]
            .into_iter()
            .find(|(name, _)| is(opt, name))
            .map(|(_, u)| u);
            if is(opt, "nx") && for_set && !o.xx {
                o.nx = true;
            } else if is(opt, "xx") && for_set && !o.nx {
                o.xx = true;
            } else if is(opt, "get") && for_set {
                o.get = true;
            } else if is(opt, "keepttl") && for_set && !o.persist && o.expire.is_none() {
                o.keepttl = true;
            } else if is(opt, "persist") && !for_set && !o.keepttl && o.expire.is_none() {
                o.persist = true;
            } else if let (Some(unit), Some(next)) = (unit, next) {
                // The same unit may repeat (the last one wins); mixing units,
                // or an expiry with KEEPTTL/PERSIST, is a syntax error.
                if o.keepttl || o.persist || o.expire.is_some_and(|(u, _)| u != unit) {
                    return Err(CmdError::Syntax);
                }
                o.expire = Some((unit, &next[..]));
                i += 1;
            } else {
                return Err(CmdError::Syntax);
            }
            i += 1;
        }
        Ok(o)
    }

    /// The absolute deadline the expiry option asks for, if any.
    fn deadline(&self, now_ms: u64, cmd: &str) -> CmdResult<Option<u64>> {
        self.expire
            .map(|(unit, arg)| deadline(unit, arg, now_ms, cmd))
            .transpose()
    }
}

/// Redis's getExpireMillisecondsOrReply: the value must be positive, and the
/// conversion to absolute milliseconds must not overflow.
fn deadline(unit: Unit, arg: &[u8], now_ms: u64, cmd: &str) -> CmdResult<u64> {
    let invalid = || CmdError::err(format!("invalid expire time in '{cmd}' command"));
    let v = int_arg(arg)?;
    if v <= 0 {
        return Err(invalid());
    }
    let ms = match unit {
        Unit::Ex | Unit::ExAt => v.checked_mul(1000).ok_or_else(invalid)?,
        Unit::Px | Unit::PxAt => v,
    };
    let at = match unit {
        Unit::Ex | Unit::Px => ms.checked_add(i64::try_from(now_ms).map_err(|_| invalid())?),
        Unit::ExAt | Unit::PxAt => Some(ms),
    };
    at.and_then(|at| u64::try_from(at).ok()).ok_or_else(invalid)
}

// ---------------------------------------------------------------------------
// GET / SET family.

pub fn get(call: &mut Call<'_, '_>) -> CmdResult {
    Ok(Reply::bulk_opt(
        lookup_string(call, &call.args[1], true)?.map(|(v, _)| v),
    ))
}

/// SET's core once options are parsed. Returns whether the value was
/// written and, for GET, the old value's reply.
fn set_core(
    call: &mut Call<'_, '_>,
    key: &Bytes,
    value: &Bytes,
    opts: &StrOpts<'_>,
    deadline: Option<u64>,
) -> CmdResult<(bool, Reply)> {
    if !(opts.get || opts.nx || opts.xx || opts.keepttl) {
        // A plain SET replaces whatever is there: no need to read it (a
        // collection's old elements are reclaimed by compaction).
        store(call, key, value.clone(), deadline);
        return Ok((true, Reply::Nil));
    }
    let old = call.ctx.get_meta(key)?;
    let mut old_reply = Reply::Nil;
    if opts.get {
        // SET … GET on a non-string is an error and changes nothing.
        count_lookup(call, old.is_some());
        match &old {
            Some(Meta {
                body: MetaBody::String(v),
                ..
            }) => old_reply = Reply::Bulk(v.clone()),
            Some(_) => return Err(CmdError::WrongType),
            None => {}
        }
    }
    let found = old.is_some();
    if (opts.nx && found) || (opts.xx && !found) {
        return Ok((false, old_reply));
    }
    let expire = if opts.keepttl {
        old.and_then(|m| m.expire_at_ms)
    } else {
        deadline
    };
    store(call, key, value.clone(), expire);
    Ok((true, old_reply))
}

pub fn set(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let opts = StrOpts::parse(&args[3..], true)?;
    let deadline = opts.deadline(call.ctx.now_ms, "set")?;
    let (done, old) = set_core(call, &args[1], &args[2], &opts, deadline)?;
    Ok(match (opts.get, done) {
        (true, _) => old,
        (false, true) => Reply::OK,
        (false, false) => Reply::Nil,
    })
}

pub fn setnx(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let opts = StrOpts {
        nx: true,
        ..StrOpts::default()
    };
    let (done, _) = set_core(call, &args[1], &args[2], &opts, None)?;
    Ok(Reply::Int(i64::from(done)))
}

fn setex_generic(call: &mut Call<'_, '_>, unit: Unit, cmd: &str) -> CmdResult {
    let args = call.args;
    let at = deadline(unit, &args[2], call.ctx.now_ms, cmd)?;
    set_core(call, &args[1], &args[3], &StrOpts::default(), Some(at))?;
    Ok(Reply::OK)
}

pub fn setex(call: &mut Call<'_, '_>) -> CmdResult {
    setex_generic(call, Unit::Ex, "setex")
}

pub fn psetex(call: &mut Call<'_, '_>) -> CmdResult {
    setex_generic(call, Unit::Px, "psetex")
}

pub fn getset(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let old = lookup_string(call, &args[1], true)?;
    // GETSET is SET without options: it drops any TTL.
    store(call, &args[1], args[2].clone(), None);
    Ok(Reply::bulk_opt(old.map(|(v, _)| v)))
}

pub fn getdel(call: &mut Call<'_, '_>) -> CmdResult {
    let key = &call.args[1];
    let old = lookup_string(call, key, true)?;
    if old.is_some() {
        call.ctx.delete_key(key);
    }
    Ok(Reply::bulk_opt(old.map(|(v, _)| v)))
}

pub fn getex(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let opts = StrOpts::parse(&args[2..], false)?;
    // A missing key answers nil before the expiry value is even checked.
    let Some((value, expire)) = lookup_string(call, key, true)? else {
        return Ok(Reply::Nil);
    };
    if let Some(at) = opts.deadline(call.ctx.now_ms, "getex")? {
        store(call, key, value.clone(), Some(at));
    } else if opts.persist && expire.is_some() {
        store(call, key, value.clone(), None);
    }
    Ok(Reply::Bulk(value))
}

pub fn mget(call: &mut Call<'_, '_>) -> CmdResult {
    let metas = call.ctx.multi_get_meta(&call.args[1..])?;
    let replies = metas
        .into_iter()
        .map(|m| {
            count_lookup(call, m.is_some());
            match m {
                // Keys of other types answer nil, not an error.
                Some(Meta {
                    body: MetaBody::String(v),
                    ..
                }) => Reply::Bulk(v),
                _ => Reply::Nil,
            }
        })
        .collect();
    Ok(Reply::Array(replies))
}

fn check_pairs(call: &Call<'_, '_>, cmd: &str) -> CmdResult<()> {
    // name + key/value pairs: an even count means a value is missing.
    if call.args.len().is_multiple_of(2) {
        return Err(CmdError::Arity(cmd.to_string()));
    }
    Ok(())
}

fn put_pairs(call: &mut Call<'_, '_>) {
    let args = call.args;
    for pair in args[1..].chunks_exact(2) {
        // Later duplicates win: the batch applies puts in order.
        store(call, &pair[0], pair[1].clone(), None);
    }
}

pub fn mset(call: &mut Call<'_, '_>) -> CmdResult {
    check_pairs(call, "mset")?;
    put_pairs(call);
    Ok(Reply::OK)
}

pub fn msetnx(call: &mut Call<'_, '_>) -> CmdResult {
    check_pairs(call, "msetnx")?;
    // All or nothing: any existing key, of any type, stops the command.
    for pair in call.args[1..].chunks_exact(2) {
        if call.ctx.peek(&pair[0])?.is_some() {
            return Ok(Reply::Int(0));
        }
    }
    put_pairs(call);
    Ok(Reply::Int(1))
}

pub fn append(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let (key, tail) = (&args[1], &args[2]);
    let (value, expire) = match lookup_string(call, key, false)? {
        None => (tail.clone(), None),
        Some((old, expire)) => {
            check_string_length(call, old.len() as u64, tail.len() as u64)?;
            let mut v = BytesMut::with_capacity(old.len() + tail.len());
            v.extend_from_slice(&old);
            v.extend_from_slice(tail);
            (v.freeze(), expire)
        }
    };
    let len = value.len() as i64;
    store(call, key, value, expire);
    Ok(Reply::Int(len))
}

pub fn strlen(call: &mut Call<'_, '_>) -> CmdResult {
    let v = lookup_string(call, &call.args[1], true)?;
    Ok(Reply::Int(v.map_or(0, |(v, _)| v.len() as i64)))
}

/// The byte range GETRANGE answers for `start..=end` over `len` bytes.
fn range_of(start: i64, end: i64, len: usize) -> Option<std::ops::Range<usize>> {
    let len = len as i64;
    // Both negative and inverted: empty, before any clamping.
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0).min(len - 1);
    if start > end || len == 0 {
        return None;
    }
    Some(start as usize..end as usize + 1)
}

pub fn getrange(call: &mut Call<'_, '_>) -> CmdResult {
    let start = int_arg(&call.args[2])?;
    let end = int_arg(&call.args[3])?;
    let Some((value, _)) = lookup_string(call, &call.args[1], true)? else {
        return Ok(Reply::Bulk(Bytes::new()));
    };
    Ok(Reply::Bulk(match range_of(start, end, value.len()) {
        Some(r) => value.slice(r),
        None => Bytes::new(),
    }))
}

pub fn setrange(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let (key, patch) = (&args[1], &args[3]);
    let offset = int_arg(&args[2])?;
    let Ok(offset) = u64::try_from(offset) else {
        return Err(CmdError::err("offset is out of range"));
    };
    let old = lookup_string(call, key, false)?;
    // An empty patch changes nothing and creates nothing: answer the length.
    if patch.is_empty() {
        return Ok(Reply::Int(old.map_or(0, |(v, _)| v.len() as i64)));
    }
    check_string_length(call, offset, patch.len() as u64)?;
    // Bounded by proto-max-bulk-len just above.
    let offset = offset as usize;
    let (old, expire) = old.unwrap_or_default();
    let mut v = BytesMut::from(&old[..]);
    if v.len() < offset + patch.len() {
        v.resize(offset + patch.len(), 0);
    }
    v[offset..offset + patch.len()].copy_from_slice(patch);
    let len = v.len() as i64;
    store(call, key, v.freeze(), expire);
    Ok(Reply::Int(len))
}

// ---------------------------------------------------------------------------
// INCR family.

/// Add `incr` to the integer at `key` (0 when missing), keeping its TTL.
fn incr_by(call: &mut Call<'_, '_>, incr: i64) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let (current, expire) = match lookup_string(call, key, false)? {
        // Only canonical integers count: " 10", "010", "+1" and "-0" do not.
        Some((v, expire)) => (parse_i64(&v).ok_or(CmdError::NotInteger)?, expire),
        None => (0, None),
    };
    let value = current.checked_add(incr).ok_or(CmdError::Overflow)?;
    let mut buf = itoa::Buffer::new();
    store(
        call,
        key,
        Bytes::copy_from_slice(buf.format(value).as_bytes()),
        expire,
    );
    Ok(Reply::Int(value))
}

pub fn incr(call: &mut Call<'_, '_>) -> CmdResult {
    incr_by(call, 1)
}

pub fn decr(call: &mut Call<'_, '_>) -> CmdResult {
    incr_by(call, -1)
}

pub fn incrby(call: &mut Call<'_, '_>) -> CmdResult {
    let incr = int_arg(&call.args[2])?;
    incr_by(call, incr)
}

pub fn decrby(call: &mut Call<'_, '_>) -> CmdResult {
    let decr = int_arg(&call.args[2])?;
    // Negating i64::MIN would overflow; Redis has its own text for that.
    let incr = decr
        .checked_neg()
        .ok_or_else(|| CmdError::err("decrement would overflow"))?;
    incr_by(call, incr)
}

pub fn incrbyfloat(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let (current, expire) = match lookup_string(call, key, false)? {
        Some((v, expire)) => (ld::parse(&v).ok_or(CmdError::NotFloat)?, expire),
        None => (ld::LongDouble::ZERO, None),
    };
    let incr = ld::parse(&args[2]).ok_or(CmdError::NotFloat)?;
    let sum = current.add(incr);
    if !sum.is_finite() {
        return Err(CmdError::err("increment would produce NaN or Infinity"));
    }
    let text = Bytes::from(sum.to_human_string());
    store(call, key, text.clone(), expire);
    Ok(Reply::Bulk(text))
}

/// Redis computes INCRBYFLOAT in C `long double`, which on x86-64 is the
/// x87 80-bit format (64-bit mantissa), parses with `strtold` and prints
/// with `%.17Lf`. An f64 would answer differently (10.5 + 0.1 would print
/// as 10.59999999999999964), so this module emulates that format exactly:
/// correctly rounded parsing, round-to-nearest-even addition, and exact
/// decimal printing, using a small big-integer helper.
pub(crate) mod ld {
    use std::cmp::Ordering;

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

        pub fn is_finite(self) -> bool {
            matches!(self, LongDouble::Finite { .. })
        }

        /// `self + other`, rounded to nearest, ties to even.
        pub fn add(self, other: LongDouble) -> LongDouble {
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

    fn is_c_space(c: u8) -> bool {
        matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
    }

    /// Redis's string2ld: `strtold` must consume the whole text, which may
    /// not start with a space; overflow, underflow to zero and NaN are
    /// refused, "inf" is accepted. Hexadecimal floats are accepted too.
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= MAX_CHARS || is_c_space(s[0]) {
            return None;
        }
        let (neg, rest) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
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
        let (neg, digits) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
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

    /// Unsigned big integer, little-endian 64-bit limbs, no high zero limbs.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    struct Big(Vec<u64>);

    impl Big {
        fn from_u64(v: u64) -> Big {
            let mut b = Big(vec![v]);
            b.trim();
            b
        }

        fn trim(&mut self) {
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
        }

        fn bit_len(&self) -> usize {
            match self.0.last() {
                Some(top) => self.0.len() * 64 - top.leading_zeros() as usize,
                None => 0,
            }
        }

        fn bit(&self, i: usize) -> bool {
            self.0.get(i / 64).is_some_and(|l| l >> (i % 64) & 1 == 1)
        }

        /// Whether any bit below position `i` is set.
        fn any_below(&self, i: usize) -> bool {
            let whole = (i / 64).min(self.0.len());
            if self.0[..whole].iter().any(|&l| l != 0) {
                return true;
            }
            let part = i % 64;
            part != 0
                && self
                    .0
                    .get(whole)
                    .is_some_and(|l| l & ((1u64 << part) - 1) != 0)
        }

        fn low_u64(&self) -> u64 {
            self.0.first().copied().unwrap_or(0)
        }

        /// The low 64 bits of `self >> n`.
        fn shr_low_u64(&self, n: usize) -> u64 {
            let (limb, bits) = (n / 64, n % 64);
            let lo = self.0.get(limb).copied().unwrap_or(0);
            let hi = self.0.get(limb + 1).copied().unwrap_or(0);
            if bits == 0 {
                lo
            } else {
                (lo >> bits) | (hi << (64 - bits))
            }
        }

        fn shr(&self, n: usize) -> Big {
            let (limbs, bits) = (n / 64, n % 64);
            let mut b = Big((limbs..self.0.len())
                .map(|i| self.shr_low_u64(i * 64 + bits))
                .collect());
            b.trim();
            b
        }

        fn shl(&self, n: usize) -> Big {
            if self.0.is_empty() {
                return Big::default();
            }
            let (limbs, bits) = (n / 64, n % 64);
            let mut out = vec![0u64; limbs];
            if bits == 0 {
                out.extend_from_slice(&self.0);
            } else {
                let mut carry = 0;
                for &l in &self.0 {
                    out.push((l << bits) | carry);
                    carry = l >> (64 - bits);
                }
                out.push(carry);
            }
            let mut b = Big(out);
            b.trim();
            b
        }

        fn add(&self, other: &Big) -> Big {
            let n = self.0.len().max(other.0.len());
            let mut out = Vec::with_capacity(n + 1);
            let mut carry = false;
            for i in 0..n {
                let a = self.0.get(i).copied().unwrap_or(0);
                let b = other.0.get(i).copied().unwrap_or(0);
                let (s, c1) = a.overflowing_add(b);
                let (s, c2) = s.overflowing_add(u64::from(carry));
                out.push(s);
                carry = c1 || c2;
            }
            out.push(u64::from(carry));
            let mut b = Big(out);
            b.trim();
            b
        }

        /// `self - other`, for `self >= other`.
        fn sub(&self, other: &Big) -> Big {
            let mut out = Vec::with_capacity(self.0.len());
            let mut borrow = false;
            for (i, &a) in self.0.iter().enumerate() {
                let b = other.0.get(i).copied().unwrap_or(0);
                let (d, b1) = a.overflowing_sub(b);
                let (d, b2) = d.overflowing_sub(u64::from(borrow));
                out.push(d);
                borrow = b1 || b2;
            }
            let mut b = Big(out);
            b.trim();
            b
        }

        fn cmp(&self, other: &Big) -> Ordering {
            self.0
                .len()
                .cmp(&other.0.len())
                .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
        }

        fn mul_small(&self, m: u64) -> Big {
            let mut out = Vec::with_capacity(self.0.len() + 1);
            let mut carry = 0u128;
            for &l in &self.0 {
                let p = u128::from(l) * u128::from(m) + carry;
                out.push(p as u64);
                carry = p >> 64;
            }
            out.push(carry as u64);
            let mut b = Big(out);
            b.trim();
            b
        }

        fn mul(&self, other: &Big) -> Big {
            let mut out = vec![0u64; self.0.len() + other.0.len()];
            for (i, &a) in self.0.iter().enumerate() {
                let mut carry = 0u128;
                for (j, &b) in other.0.iter().enumerate() {
                    let t = u128::from(a) * u128::from(b) + u128::from(out[i + j]) + carry;
                    out[i + j] = t as u64;
                    carry = t >> 64;
                }
                out[i + other.0.len()] = carry as u64;
            }
            let mut b = Big(out);
            b.trim();
            b
        }

        fn pow10(n: usize) -> Big {
            let mut b = Big::from_u64(1);
            for _ in 0..n / 19 {
                b = b.mul_small(10u64.pow(19));
            }
            b.mul_small(10u64.pow((n % 19) as u32))
        }

        /// Quotient and remainder by shift-and-subtract; used only where
        /// the quotient is a few dozen bits long.
        fn div_rem(&self, d: &Big) -> (Big, Big) {
            let mut r = self.clone();
            let mut q = Big::default();
            if self.bit_len() < d.bit_len() {
                return (q, r);
            }
            for i in (0..=self.bit_len() - d.bit_len()).rev() {
                let shifted = d.shl(i);
                if r.cmp(&shifted) != Ordering::Less {
                    r = r.sub(&shifted);
                    q = q.add(&Big::from_u64(1).shl(i));
                }
            }
            (q, r)
        }

        /// Divide in place by `d`, returning the remainder.
        fn div_small(&mut self, d: u64) -> u64 {
            let mut rem = 0u128;
            for l in self.0.iter_mut().rev() {
                let cur = (rem << 64) | u128::from(*l);
                *l = (cur / u128::from(d)) as u64;
                rem = cur % u128::from(d);
            }
            self.trim();
            rem as u64
        }

        fn to_decimal(&self) -> String {
            const CHUNK: u64 = 10_000_000_000_000_000_000; // 10^19
            let mut n = self.clone();
            let mut chunks = Vec::new();
            while !n.0.is_empty() {
                chunks.push(n.div_small(CHUNK));
            }
            let mut s = chunks
                .pop()
                .map_or_else(|| "0".to_string(), |top| top.to_string());
            for c in chunks.iter().rev() {
                s.push_str(&format!("{c:019}"));
            }
            s
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn incr(start: &str, by: &str) -> Option<String> {
            let sum = parse(start.as_bytes())?.add(parse(by.as_bytes())?);
            sum.is_finite().then(|| sum.to_human_string())
        }

        fn one(v: &str) -> Option<String> {
            incr("0", v)
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
                assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
            }
            // Infinity parses, but any sum with it is refused by INCRBYFLOAT.
            assert_eq!(one("inf"), None);
            assert_eq!(one("-INFINITY"), None);
            assert_eq!(incr("1e4932", "1e4932"), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::range_of;

    #[test]
    fn getrange_indexes() {
        assert_eq!(range_of(0, -1, 11), Some(0..11));
        assert_eq!(range_of(-3, -1, 11), Some(8..11));
        assert_eq!(range_of(5, 2, 11), None);
        assert_eq!(range_of(-100, -50, 11), Some(0..1));
        assert_eq!(range_of(3, 100, 11), Some(3..11));
        assert_eq!(range_of(11, 20, 11), None);
        assert_eq!(range_of(-1, -2, 11), None);
        assert_eq!(range_of(0, i64::MAX, 11), Some(0..11));
        assert_eq!(range_of(i64::MIN, i64::MIN, 11), Some(0..1));
        assert_eq!(range_of(0, 0, 0), None);
        assert_eq!(range_of(-1, -1, 0), None);
    }
}
