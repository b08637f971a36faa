//! String commands: GET, SET and its variants, MGET/MSET, APPEND, ranges,
//! and the INCR family.
//!
//! A string lives entirely in its meta record (`MetaBody::String`), so every
//! command here is one meta read and at most one meta write.

use crate::storage::events::class;
use bytes::{Bytes, BytesMut};

use super::lookup::count_lookup;
use super::{int_arg, is, parse_i64, Call, CmdError, CmdResult};
use crate::num::{string2ld, LongDouble};
use crate::resp::{Reply, DEFAULT_MAX_BULK_LEN};
use crate::storage::{Expiry, Meta, MetaBody};

/// The string at `key` with its expiry; WRONGTYPE for other types.
/// `read` counts the lookup in the keyspace statistics.
pub(super) fn lookup_string(
    call: &Call<'_, '_>,
    key: &[u8],
    read: bool,
) -> CmdResult<Option<(Bytes, Expiry)>> {
    let meta = call.ctx.get_meta(key)?;
    if read {
        count_lookup(call, meta.is_some(), key);
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
/// `event` is the keyspace event the command raises (after `new` when the
/// key is created).
pub(super) fn store(
    call: &mut Call<'_, '_>,
    key: &[u8],
    value: Bytes,
    expire_at_ms: Expiry,
    event: (u32, &'static str),
) {
    let created = call.ctx.wants(class::NEW) && matches!(call.ctx.peek(key), Ok(None));
    match expire_at_ms {
        Some(at) if at <= call.ctx.now_ms => {
            call.ctx.delete_key(key);
            call.ctx.notify(class::GENERIC, "del", key);
        }
        _ => {
            call.ctx.put_meta(key, &Meta::string(value, expire_at_ms));
            if created {
                call.ctx.notify(class::NEW, "new", key);
            }
            call.ctx.notify(event.0, event.1, key);
        }
    }
}

const SET_EVENT: (u32, &str) = (class::STRING, "set");

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
        store(call, key, value.clone(), deadline, SET_EVENT);
        if deadline.is_some() {
            call.ctx.notify(class::GENERIC, "expire", key);
        }
        return Ok((true, Reply::Nil));
    }
    let old = call.ctx.get_meta(key)?;
    let mut old_reply = Reply::Nil;
    if opts.get {
        // SET … GET on a non-string is an error and changes nothing.
        count_lookup(call, old.is_some(), key);
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
    store(call, key, value.clone(), expire, SET_EVENT);
    if !opts.keepttl && deadline.is_some() {
        call.ctx.notify(class::GENERIC, "expire", key);
    }
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
    store(call, &args[1], args[2].clone(), None, SET_EVENT);
    Ok(Reply::bulk_opt(old.map(|(v, _)| v)))
}

pub fn getdel(call: &mut Call<'_, '_>) -> CmdResult {
    let key = &call.args[1];
    let old = lookup_string(call, key, true)?;
    if old.is_some() {
        call.ctx.delete_key(key);
        call.ctx.notify(class::GENERIC, "del", key);
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
        store(
            call,
            key,
            value.clone(),
            Some(at),
            (class::GENERIC, "expire"),
        );
    } else if opts.persist && expire.is_some() {
        store(call, key, value.clone(), None, (class::GENERIC, "persist"));
    }
    Ok(Reply::Bulk(value))
}

pub fn mget(call: &mut Call<'_, '_>) -> CmdResult {
    let metas = call.ctx.multi_get_meta(&call.args[1..])?;
    let replies = metas
        .into_iter()
        .zip(&call.args[1..])
        .map(|(m, key)| {
            count_lookup(call, m.is_some(), key);
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
        store(call, &pair[0], pair[1].clone(), None, SET_EVENT);
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
    store(call, key, value, expire, (class::STRING, "append"));
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
    store(call, key, v.freeze(), expire, (class::STRING, "setrange"));
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
        (class::STRING, "incrby"),
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
        Some((v, expire)) => (string2ld(&v).ok_or(CmdError::NotFloat)?, expire),
        None => (LongDouble::ZERO, None),
    };
    let incr = string2ld(&args[2]).ok_or(CmdError::NotFloat)?;
    let sum = current + incr;
    if !sum.is_finite() {
        return Err(CmdError::err("increment would produce NaN or Infinity"));
    }
    let text = Bytes::from(sum.to_human_string());
    store(
        call,
        key,
        text.clone(),
        expire,
        (class::STRING, "incrbyfloat"),
    );
    Ok(Reply::Bulk(text))
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
