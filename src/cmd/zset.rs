//! Sorted-set commands.
//!
//! A sorted set is a `CollectionMeta` header (version, member count) plus two
//! entries per member, always written together in one batch:
//!
//! - `Cf::Data`: `data_key(db, key, version, member)` → `encode_score(score)`
//!   (8 bytes), the score of a member in O(1) (ZSCORE, ZADD, ZREM);
//! - `Cf::ZScore`: `data_key(db, key, version, encode_score(score) ‖ member)`
//!   → empty, the members ordered by score and then by member bytes, as Redis
//!   orders them. Score and lex ranges seek into it; ranks count along it
//!   (from whichever end is nearer).

use std::cmp::Ordering;
use std::collections::HashMap;

use bytes::Bytes;

use super::scan::{parse_cursor, resume_at, scan_done, scan_reply, ScanOptions};
use super::strings::count_lookup;
use super::table::{commands, flags::*};
use super::{
    int_arg, is, parse_i64, timeout_arg, BlockOn, Call, CmdError, CmdResult, Collection,
    CommandSpec, Flags,
};
use crate::resp::{format_double, Protocol, Reply};
use crate::storage::{
    data_key, data_prefix, decode_score, encode_score, prefix_end, Cf, CollectionMeta, Ctx,
    KeyType, Meta, MetaBody, StorageError,
};

/// Writes that only remove, and are O(1) per element (ZREM, ZPOPMIN).
const WFAST: Flags = Flags::WRITE.union(Flags::FAST);

pub static COMMANDS: &[CommandSpec] = commands! {
    "zadd", -4, WF, 1, 1, 1, zadd;
    "zincrby", 4, WF, 1, 1, 1, zincrby;
    "zrem", -3, WFAST, 1, 1, 1, zrem;
    "zcard", 2, RF, 1, 1, 1, zcard;
    "zscore", 3, RF, 1, 1, 1, zscore;
    "zmscore", -3, RF, 1, 1, 1, zmscore;
    "zrank", 3, RF, 1, 1, 1, zrank;
    "zrevrank", 3, RF, 1, 1, 1, zrevrank;
    "zcount", 4, RF, 1, 1, 1, zcount;
    "zlexcount", 4, RF, 1, 1, 1, zlexcount;
    "zrange", -4, R, 1, 1, 1, zrange;
    "zrangebyscore", -4, R, 1, 1, 1, zrangebyscore;
    "zrevrangebyscore", -4, R, 1, 1, 1, zrevrangebyscore;
    "zrangebylex", -4, R, 1, 1, 1, zrangebylex;
    "zrevrangebylex", -4, R, 1, 1, 1, zrevrangebylex;
    "zrevrange", -4, R, 1, 1, 1, zrevrange;
    "zrangestore", -5, W, 1, 2, 1, zrangestore;
    "zremrangebyrank", 4, WD, 1, 1, 1, zremrangebyrank;
    "zremrangebyscore", 4, WD, 1, 1, 1, zremrangebyscore;
    "zremrangebylex", 4, WD, 1, 1, 1, zremrangebylex;
    "zpopmin", -2, WFAST, 1, 1, 1, zpopmin;
    "zpopmax", -2, WFAST, 1, 1, 1, zpopmax;
    "bzpopmin", -3, blocking(WFAST), 1, -2, 1, bzpopmin;
    "bzpopmax", -3, blocking(WFAST), 1, -2, 1, bzpopmax;
    "zmpop", -4, WD, 0, 0, 0, zmpop;
    "bzmpop", -5, blocking(WD), 0, 0, 0, bzmpop;
    "zrandmember", -2, R, 1, 1, 1, zrandmember;
    "zunionstore", -4, W, 1, 1, 1, zunionstore;
    "zinterstore", -4, W, 1, 1, 1, zinterstore;
    "zdiffstore", -4, W, 1, 1, 1, zdiffstore;
    "zunion", -3, R, 0, 0, 0, zunion;
    "zinter", -3, R, 0, 0, 0, zinter;
    "zdiff", -3, R, 0, 0, 0, zdiff;
    "zintercard", -3, R, 0, 0, 0, zintercard;
    "zscan", -3, R, 1, 1, 1, zscan;
};

/// A member with its score.
type Scored = (Bytes, f64);

// ---------------------------------------------------------------- parsing

fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn starts_with_ci(s: &[u8], word: &[u8]) -> bool {
    s.len() >= word.len() && s[..word.len()].eq_ignore_ascii_case(word)
}

/// C's `strtod` as glibc implements it, on bytes: the value, how many bytes
/// it consumed (0 = no conversion), and whether it overflowed to infinity or
/// underflowed to zero (`errno == ERANGE` with a result Redis refuses).
fn strtod(s: &[u8]) -> (f64, usize, bool) {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
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
        let neg = match s.get(k) {
            Some(b'-') => {
                k += 1;
                true
            }
            Some(b'+') => {
                k += 1;
                false
            }
            _ => false,
        };
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

/// A score, increment or weight argument, accepted as Redis's
/// `getDoubleFromObject` accepts it: the whole string, no leading space,
/// no overflow, no underflow to zero, not NaN.
fn parse_score(arg: &[u8]) -> Option<f64> {
    if arg.first().is_none_or(|c| is_c_space(*c)) {
        return None;
    }
    let (v, n, range) = strtod(arg);
    (n == arg.len() && !range && !v.is_nan()).then_some(v)
}

fn score_arg(arg: &[u8]) -> CmdResult<f64> {
    parse_score(arg).ok_or(CmdError::NotFloat)
}

/// A score-range bound as Redis parses it (`strtod` up to the end of the
/// string): `(` for exclusive, leading spaces and an empty number allowed.
fn parse_score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let (text, exclusive) = match arg.first() {
        Some(b'(') => (&arg[1..], true),
        _ => (arg, false),
    };
    let (v, n, _) = strtod(text);
    // C stops at a NUL byte as at the end of the string.
    let ends = text.get(n).is_none_or(|c| *c == 0);
    (ends && !v.is_nan()).then_some((v, exclusive))
}

/// A range of scores, `min`/`max` each inclusive or exclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, minex) = parse_score_bound(min)?;
        let (max, maxex) = parse_score_bound(max)?;
        Some(ScoreRange {
            min,
            minex,
            max,
            maxex,
        })
    }

    fn parse_arg(min: &[u8], max: &[u8]) -> CmdResult<ScoreRange> {
        ScoreRange::parse(min, max).ok_or_else(|| CmdError::err("min or max is not a float"))
    }

    fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }

    /// Key bounds in the score index of the set whose entries start with
    /// `prefix`: lower inclusive, upper exclusive.
    fn span(&self, prefix: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let at = |score: f64| [prefix, &encode_score(score)[..]].concat();
        let lower = if self.minex {
            prefix_end(&at(self.min)).unwrap_or_else(|| at(self.min))
        } else {
            at(self.min)
        };
        let upper = if self.maxex {
            Some(at(self.max))
        } else {
            prefix_end(&at(self.max)).or_else(|| prefix_end(prefix))
        };
        (lower, upper)
    }
}

/// One end of a lex range: `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lex {
    Min,
    Max,
    In(Vec<u8>),
    Ex(Vec<u8>),
}

impl Lex {
    fn parse(arg: &[u8]) -> Option<Lex> {
        match arg.first()? {
            b'-' if arg.len() == 1 => Some(Lex::Min),
            b'+' if arg.len() == 1 => Some(Lex::Max),
            b'[' => Some(Lex::In(arg[1..].to_vec())),
            b'(' => Some(Lex::Ex(arg[1..].to_vec())),
            _ => None,
        }
    }

    fn exclusive(&self) -> bool {
        !matches!(self, Lex::In(_))
    }

    /// Redis's `sdscmplex`: `-` below every string, `+` above.
    fn cmp(&self, other: &Lex) -> Ordering {
        use Lex::*;
        match (self, other) {
            (Min, Min) | (Max, Max) => Ordering::Equal,
            (Min, _) | (_, Max) => Ordering::Less,
            (Max, _) | (_, Min) => Ordering::Greater,
            (In(a) | Ex(a), In(b) | Ex(b)) => a.cmp(b),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LexRange {
    min: Lex,
    max: Lex,
}

impl LexRange {
    fn parse(min: &[u8], max: &[u8]) -> Option<LexRange> {
        Some(LexRange {
            min: Lex::parse(min)?,
            max: Lex::parse(max)?,
        })
    }

    fn parse_arg(min: &[u8], max: &[u8]) -> CmdResult<LexRange> {
        LexRange::parse(min, max)
            .ok_or_else(|| CmdError::err("min or max not valid string range item"))
    }

    fn is_empty(&self) -> bool {
        match self.min.cmp(&self.max) {
            Ordering::Greater => true,
            Ordering::Equal => self.min.exclusive() || self.max.exclusive(),
            Ordering::Less => false,
        }
    }

    fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            Lex::Min => true,
            Lex::Max => false,
            Lex::In(x) => m >= &x[..],
            Lex::Ex(x) => m > &x[..],
        }
    }

    fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            Lex::Max => true,
            Lex::Min => false,
            Lex::In(x) => m <= &x[..],
            Lex::Ex(x) => m < &x[..],
        }
    }

    /// Key bounds among entries that share `base` (prefix ‖ one score).
    fn span(&self, base: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let after = |m: &[u8]| [base, m, &[0u8][..]].concat();
        let lower = match &self.min {
            Lex::Min => base.to_vec(),
            Lex::Max => prefix_end(base).unwrap_or_else(|| base.to_vec()),
            Lex::In(m) => [base, m].concat(),
            Lex::Ex(m) => after(m),
        };
        let upper = match &self.max {
            Lex::Max => prefix_end(base),
            Lex::Min => Some(base.to_vec()),
            Lex::In(m) => Some(after(m)),
            Lex::Ex(m) => Some([base, m].concat()),
        };
        (lower, upper)
    }
}

/// Redis's ZRANGE rank window: negative indexes from the end, clamped;
/// `None` when empty.
fn rank_window(start: i64, end: i64, len: u64) -> Option<(u64, u64)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as u64, end as u64))
}

// ---------------------------------------------------------------- storage

fn corrupt() -> CmdError {
    CmdError::Storage(StorageError::Corrupt("sorted-set entry".into()))
}

fn score_from(raw: &[u8]) -> CmdResult<f64> {
    let bytes: [u8; 8] = raw.try_into().map_err(|_| corrupt())?;
    Ok(decode_score(bytes))
}

/// The live sorted set at `key` for a command that writes.
fn zset(call: &Call<'_, '_>, key: &[u8]) -> CmdResult<Option<Collection>> {
    call.collection(key, KeyType::ZSet)
}

/// The live sorted set at `key` for a command that reads (counted in the
/// keyspace hit/miss statistics, as Redis's lookupKeyRead does).
fn read_zset(call: &Call<'_, '_>, key: &[u8]) -> CmdResult<Option<Collection>> {
    let found = zset(call, key)?;
    count_lookup(call, found.is_some());
    Ok(found)
}

fn prefix_of(ctx: &Ctx<'_>, key: &[u8], coll: &Collection) -> Vec<u8> {
    data_prefix(ctx.db, key, coll.version())
}

fn score_entry(prefix: &[u8], score: f64, member: &[u8]) -> Vec<u8> {
    [prefix, &encode_score(score)[..], member].concat()
}

fn get_score(ctx: &Ctx<'_>, key: &[u8], version: u64, member: &[u8]) -> CmdResult<Option<f64>> {
    ctx.get_data(&data_key(ctx.db, key, version, member))?
        .map(|v| score_from(&v))
        .transpose()
}

/// Give `member` the score `score`; `old` is its current score (`None`
/// when it is new to the set).
fn put_member(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    coll: &mut Collection,
    member: &[u8],
    old: Option<f64>,
    score: f64,
) {
    let prefix = data_prefix(ctx.db, key, coll.version());
    match old {
        Some(old) => ctx.delete(Cf::ZScore, &score_entry(&prefix, old, member)),
        None => coll.meta.len += 1,
    }
    ctx.put_data(
        &data_key(ctx.db, key, coll.version(), member),
        &encode_score(score),
    );
    ctx.put(Cf::ZScore, &score_entry(&prefix, score, member), &[]);
}

fn remove_member(ctx: &mut Ctx<'_>, key: &[u8], coll: &mut Collection, member: &[u8], score: f64) {
    let prefix = data_prefix(ctx.db, key, coll.version());
    ctx.delete(Cf::ZScore, &score_entry(&prefix, score, member));
    ctx.delete_data(&data_key(ctx.db, key, coll.version(), member));
    coll.meta.len = coll.meta.len.saturating_sub(1);
}

/// Walk the score index between `lower` and `upper` (exclusive) of the set
/// whose entries start with a prefix of `plen` bytes, calling
/// `visit(member, score)` until it returns false.
fn walk(
    ctx: &Ctx<'_>,
    plen: usize,
    lower: &[u8],
    upper: Option<&[u8]>,
    reverse: bool,
    mut visit: impl FnMut(&[u8], f64) -> bool,
) -> CmdResult<()> {
    for item in ctx.iter(Cf::ZScore, lower, upper, reverse) {
        let (k, _) = item?;
        if k.len() < plen + 8 {
            return Err(corrupt());
        }
        let score = score_from(&k[plen..plen + 8])?;
        if !visit(&k[plen + 8..], score) {
            break;
        }
    }
    Ok(())
}

/// Walk a whole set in score order (or reversed).
fn walk_all(
    ctx: &Ctx<'_>,
    prefix: &[u8],
    reverse: bool,
    visit: impl FnMut(&[u8], f64) -> bool,
) -> CmdResult<()> {
    let end = prefix_end(prefix);
    walk(ctx, prefix.len(), prefix, end.as_deref(), reverse, visit)
}

/// Every member of a set, ascending.
fn all_members(ctx: &Ctx<'_>, prefix: &[u8]) -> CmdResult<Vec<Scored>> {
    let mut out = Vec::new();
    walk_all(ctx, prefix, false, |m, s| {
        out.push((Bytes::copy_from_slice(m), s));
        true
    })?;
    Ok(out)
}

/// Members in a score range, in the walk's direction.
fn score_walk(
    ctx: &Ctx<'_>,
    prefix: &[u8],
    range: &ScoreRange,
    reverse: bool,
    visit: impl FnMut(&[u8], f64) -> bool,
) -> CmdResult<()> {
    if range.is_empty() {
        return Ok(());
    }
    let (lower, upper) = range.span(prefix);
    walk(ctx, prefix.len(), &lower, upper.as_deref(), reverse, visit)
}

/// The one score every member has, if they all have the same.
fn uniform_score(ctx: &Ctx<'_>, prefix: &[u8]) -> CmdResult<Option<f64>> {
    let mut ends = [None, None];
    for (i, reverse) in [false, true].into_iter().enumerate() {
        walk_all(ctx, prefix, reverse, |_, s| {
            ends[i] = Some(s);
            false
        })?;
    }
    Ok(match ends {
        [Some(a), Some(b)] if encode_score(a) == encode_score(b) => Some(a),
        _ => None,
    })
}

/// Members in a lex range, in the walk's direction. When every member has
/// the same score (the case lex ranges are meant for) this seeks straight
/// to the range; otherwise it walks in score order from the first member
/// inside the range to the first one past it, as Redis's skiplist does.
fn lex_walk(
    ctx: &Ctx<'_>,
    prefix: &[u8],
    range: &LexRange,
    reverse: bool,
    mut visit: impl FnMut(&[u8], f64) -> bool,
) -> CmdResult<()> {
    if range.is_empty() {
        return Ok(());
    }
    let (lower, upper) = match uniform_score(ctx, prefix)? {
        Some(score) => range.span(&[prefix, &encode_score(score)[..]].concat()),
        None => (prefix.to_vec(), prefix_end(prefix)),
    };
    let mut started = false;
    walk(
        ctx,
        prefix.len(),
        &lower,
        upper.as_deref(),
        reverse,
        |m, s| {
            if !started {
                started = if reverse {
                    range.lte_max(m)
                } else {
                    range.gte_min(m)
                };
                if !started {
                    return true;
                }
            }
            let inside = if reverse {
                range.gte_min(m)
            } else {
                range.lte_max(m)
            };
            inside && visit(m, s)
        },
    )
}

/// Members at ranks `start..=end` (ascending, inside the set), read from
/// whichever end of the index is nearer.
fn rank_slice(
    ctx: &Ctx<'_>,
    prefix: &[u8],
    len: u64,
    start: u64,
    end: u64,
) -> CmdResult<Vec<Scored>> {
    let count = end - start + 1;
    let from_end = len.saturating_sub(end + 1);
    let reverse = start > from_end;
    let mut skip = if reverse { from_end } else { start };
    let mut out = Vec::new();
    walk_all(ctx, prefix, reverse, |m, s| {
        if skip > 0 {
            skip -= 1;
            return true;
        }
        out.push((Bytes::copy_from_slice(m), s));
        (out.len() as u64) < count
    })?;
    if reverse {
        out.reverse();
    }
    Ok(out)
}

/// The 0-based rank of a member known to be in the set, counted from
/// whichever end is nearer (two walks in step; the shorter one ends first).
fn rank_of(ctx: &Ctx<'_>, prefix: &[u8], len: u64, score: f64, member: &[u8]) -> CmdResult<u64> {
    let target = score_entry(prefix, score, member);
    let after = [&target[..], &[0u8][..]].concat();
    let end = prefix_end(prefix);
    let mut below = ctx.iter(Cf::ZScore, prefix, Some(&target), false);
    let mut above = ctx.iter(Cf::ZScore, &after, end.as_deref(), true);
    let (mut n_below, mut n_above) = (0u64, 0u64);
    loop {
        match below.next() {
            None => return Ok(n_below),
            Some(item) => {
                item?;
                n_below += 1;
            }
        }
        match above.next() {
            None => return Ok(len.saturating_sub(n_above + 1)),
            Some(item) => {
                item?;
                n_above += 1;
            }
        }
    }
}

/// Replace `dst` by a new sorted set holding `items` (unique members), or
/// delete it when `items` is empty, as Redis's store variants do.
fn store_result(call: &mut Call<'_, '_>, dst: &[u8], items: &[Scored]) -> CmdResult<i64> {
    if items.is_empty() {
        if call.ctx.peek(dst)?.is_some() {
            call.ctx.delete_key(dst);
        }
        return Ok(0);
    }
    let mut coll = call.new_collection(KeyType::ZSet);
    for (member, score) in items {
        put_member(&mut call.ctx, dst, &mut coll, member, None, *score);
    }
    call.save_collection(dst, &coll);
    Ok(items.len() as i64)
}

/// Remove up to `count` members from the low (or high) end of a set.
fn pop_members(
    call: &mut Call<'_, '_>,
    key: &[u8],
    coll: &mut Collection,
    max: bool,
    count: u64,
) -> CmdResult<Vec<Scored>> {
    let prefix = prefix_of(&call.ctx, key, coll);
    let mut out = Vec::new();
    if count > 0 {
        walk_all(&call.ctx, &prefix, max, |m, s| {
            out.push((Bytes::copy_from_slice(m), s));
            (out.len() as u64) < count
        })?;
    }
    for (member, score) in &out {
        remove_member(&mut call.ctx, key, coll, member, *score);
    }
    // Popping nothing (a count of 0) writes nothing: a WATCH stays valid.
    if !out.is_empty() {
        call.save_collection(key, coll);
    }
    Ok(out)
}

// ----------------------------------------------------------------- replies

fn resp3(call: &Call<'_, '_>) -> bool {
    call.session.protocol == Protocol::Resp3
}

fn pair(member: Bytes, score: f64) -> Reply {
    Reply::Array(vec![Reply::Bulk(member), Reply::Double(score)])
}

/// Members, with scores if asked: flat `member, score, …` in RESP2, an
/// array of `[member, score]` pairs in RESP3.
fn scored_reply(call: &Call<'_, '_>, items: Vec<Scored>, withscores: bool) -> Reply {
    if !withscores {
        return Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect());
    }
    if resp3(call) {
        Reply::Array(items.into_iter().map(|(m, s)| pair(m, s)).collect())
    } else {
        flat_reply(items)
    }
}

fn flat_reply(items: Vec<Scored>) -> Reply {
    let mut out = Vec::with_capacity(items.len() * 2);
    for (m, s) in items {
        out.push(Reply::Bulk(m));
        out.push(Reply::Double(s));
    }
    Reply::Array(out)
}

/// `[[member, score], …]` in both protocols (ZMPOP).
fn pairs_reply(items: Vec<Scored>) -> Reply {
    Reply::Array(items.into_iter().map(|(m, s)| pair(m, s)).collect())
}

// ------------------------------------------------------------ ZADD family

pub fn zadd(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, false);
    let mut i = 2;
    while i < args.len() {
        let opt = &args[i];
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else if is(opt, "ch") {
            ch = true;
        } else if is(opt, "incr") {
            incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let elements = args.len() - i;
    if elements == 0 || !elements.is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if nx && xx {
        return Err(CmdError::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(CmdError::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && elements > 2 {
        return Err(CmdError::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    let pairs = args[i..]
        .chunks_exact(2)
        .map(|p| Ok((score_arg(&p[0])?, &p[1])))
        .collect::<CmdResult<Vec<_>>>()?;
    let mut coll = match zset(call, key)? {
        Some(c) => c,
        None if xx => return Ok(if incr { Reply::Nil } else { Reply::Int(0) }),
        None => call.new_collection(KeyType::ZSet),
    };
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last_score = 0.0;
    for (score, member) in pairs {
        match get_score(&call.ctx, key, coll.version(), member)? {
            Some(current) => {
                if nx {
                    continue;
                }
                let mut new = score;
                if incr {
                    new += current;
                    if new.is_nan() {
                        return Err(CmdError::err("resulting score is not a number (NaN)"));
                    }
                }
                if (lt && new >= current) || (gt && new <= current) {
                    continue;
                }
                if new != current {
                    put_member(&mut call.ctx, key, &mut coll, member, Some(current), new);
                    updated += 1;
                }
                last_score = new;
                processed += 1;
            }
            None => {
                if xx {
                    continue;
                }
                put_member(&mut call.ctx, key, &mut coll, member, None, score);
                added += 1;
                last_score = score;
                processed += 1;
            }
        }
    }
    if added > 0 || updated > 0 {
        call.save_collection(key, &coll);
    }
    Ok(if incr {
        if processed > 0 {
            Reply::Double(last_score)
        } else {
            Reply::Nil
        }
    } else if ch {
        Reply::Int(added + updated)
    } else {
        Reply::Int(added)
    })
}

pub fn zincrby(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let (key, member) = (&args[1], &args[3]);
    // Redis runs ZINCRBY through ZADD's parser: an option word where the
    // increment goes is taken as an option, which leaves no pair.
    if ["nx", "xx", "ch", "incr", "gt", "lt"]
        .iter()
        .any(|o| is(&args[2], o))
    {
        return Err(CmdError::Syntax);
    }
    let incr = score_arg(&args[2])?;
    let mut coll = match zset(call, key)? {
        Some(c) => c,
        None => call.new_collection(KeyType::ZSet),
    };
    let current = get_score(&call.ctx, key, coll.version(), member)?;
    let new = current.unwrap_or(0.0) + incr;
    if new.is_nan() {
        return Err(CmdError::err("resulting score is not a number (NaN)"));
    }
    if current != Some(new) {
        put_member(&mut call.ctx, key, &mut coll, member, current, new);
        call.save_collection(key, &coll);
    }
    Ok(Reply::Double(new))
}

pub fn zrem(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let Some(mut coll) = zset(call, key)? else {
        return Ok(Reply::Int(0));
    };
    let mut removed = 0;
    for member in &args[2..] {
        if let Some(score) = get_score(&call.ctx, key, coll.version(), member)? {
            remove_member(&mut call.ctx, key, &mut coll, member, score);
            removed += 1;
        }
    }
    if removed > 0 {
        call.save_collection(key, &coll);
    }
    Ok(Reply::Int(removed))
}

// ------------------------------------------------------------ point reads

pub fn zcard(call: &mut Call<'_, '_>) -> CmdResult {
    let len = read_zset(call, &call.args[1])?.map_or(0, |c| c.len());
    Ok(Reply::Int(len as i64))
}

pub fn zscore(call: &mut Call<'_, '_>) -> CmdResult {
    let (key, member) = (&call.args[1], &call.args[2]);
    let Some(coll) = read_zset(call, key)? else {
        return Ok(Reply::Nil);
    };
    Ok(match get_score(&call.ctx, key, coll.version(), member)? {
        Some(s) => Reply::Double(s),
        None => Reply::Nil,
    })
}

pub fn zmscore(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let coll = read_zset(call, key)?;
    let mut out = Vec::with_capacity(args.len() - 2);
    for member in &args[2..] {
        let score = match &coll {
            Some(c) => get_score(&call.ctx, key, c.version(), member)?,
            None => None,
        };
        out.push(score.map_or(Reply::Nil, Reply::Double));
    }
    Ok(Reply::Array(out))
}

fn rank_generic(call: &mut Call<'_, '_>, reverse: bool) -> CmdResult {
    let (key, member) = (&call.args[1], &call.args[2]);
    let Some(coll) = read_zset(call, key)? else {
        return Ok(Reply::Nil);
    };
    let Some(score) = get_score(&call.ctx, key, coll.version(), member)? else {
        return Ok(Reply::Nil);
    };
    let prefix = prefix_of(&call.ctx, key, &coll);
    let rank = rank_of(&call.ctx, &prefix, coll.len(), score, member)?;
    let rank = if reverse {
        coll.len().saturating_sub(rank + 1)
    } else {
        rank
    };
    Ok(Reply::Int(rank as i64))
}

pub fn zrank(call: &mut Call<'_, '_>) -> CmdResult {
    rank_generic(call, false)
}

pub fn zrevrank(call: &mut Call<'_, '_>) -> CmdResult {
    rank_generic(call, true)
}

pub fn zcount(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let range = ScoreRange::parse_arg(&args[2], &args[3])?;
    let Some(coll) = read_zset(call, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let prefix = prefix_of(&call.ctx, &args[1], &coll);
    let mut n = 0i64;
    score_walk(&call.ctx, &prefix, &range, false, |_, _| {
        n += 1;
        true
    })?;
    Ok(Reply::Int(n))
}

pub fn zlexcount(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let range = LexRange::parse_arg(&args[2], &args[3])?;
    let Some(coll) = read_zset(call, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let prefix = prefix_of(&call.ctx, &args[1], &coll);
    let mut n = 0i64;
    lex_walk(&call.ctx, &prefix, &range, false, |_, _| {
        n += 1;
        true
    })?;
    Ok(Reply::Int(n))
}

// ----------------------------------------------------------------- ranges

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

enum ParsedRange {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// Members of a parsed range, in reply order. LIMIT as Redis applies it:
/// a negative offset or a zero count gives nothing, a negative count no
/// limit.
fn range_items(
    ctx: &Ctx<'_>,
    prefix: &[u8],
    len: u64,
    range: &ParsedRange,
    reverse: bool,
    offset: i64,
    limit: i64,
) -> CmdResult<Vec<Scored>> {
    match range {
        ParsedRange::Rank(start, end) => {
            let Some((start, end)) = rank_window(*start, *end, len) else {
                return Ok(Vec::new());
            };
            if reverse {
                let mut items = rank_slice(ctx, prefix, len, len - 1 - end, len - 1 - start)?;
                items.reverse();
                Ok(items)
            } else {
                rank_slice(ctx, prefix, len, start, end)
            }
        }
        ParsedRange::Score(_) | ParsedRange::Lex(_) => {
            let mut out = Vec::new();
            if offset < 0 || (offset > 0 && offset as u64 >= len) || limit == 0 {
                return Ok(out);
            }
            let mut skip = offset;
            let visit = |m: &[u8], s: f64| {
                if skip > 0 {
                    skip -= 1;
                    return true;
                }
                out.push((Bytes::copy_from_slice(m), s));
                limit < 0 || (out.len() as u64) < limit as u64
            };
            match range {
                ParsedRange::Score(r) => score_walk(ctx, prefix, r, reverse, visit)?,
                ParsedRange::Lex(r) => lex_walk(ctx, prefix, r, reverse, visit)?,
                ParsedRange::Rank(..) => {}
            }
            Ok(out)
        }
    }
}

/// ZRANGE and its relatives (Redis's zrangeGenericCommand): `first` is the
/// index of the source key; `store` for ZRANGESTORE (destination at 1).
fn zrange_generic(
    call: &mut Call<'_, '_>,
    first: usize,
    store: bool,
    mut kind: RangeKind,
    mut dir: Direction,
) -> CmdResult {
    let args = call.args;
    let key = &args[first];
    let (mut minidx, mut maxidx) = (first + 1, first + 2);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = first + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let opt = &args[j];
        if !store && is(opt, "withscores") {
            withscores = true;
        } else if is(opt, "limit") && left >= 2 {
            offset = int_arg(&args[j + 1])?;
            limit = int_arg(&args[j + 2])?;
            j += 2;
        } else if dir == Direction::Auto && is(opt, "rev") {
            dir = Direction::Reverse;
        } else if kind == RangeKind::Auto && is(opt, "bylex") {
            kind = RangeKind::Lex;
        } else if kind == RangeKind::Auto && is(opt, "byscore") {
            kind = RangeKind::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if kind == RangeKind::Auto {
        kind = RangeKind::Rank;
    }
    let reverse = dir == Direction::Reverse;
    if limit != -1 && kind == RangeKind::Rank {
        return Err(CmdError::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == RangeKind::Lex {
        return Err(CmdError::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    if reverse && kind != RangeKind::Rank {
        std::mem::swap(&mut minidx, &mut maxidx);
    }
    let range = match kind {
        RangeKind::Score => {
            ParsedRange::Score(ScoreRange::parse_arg(&args[minidx], &args[maxidx])?)
        }
        RangeKind::Lex => ParsedRange::Lex(LexRange::parse_arg(&args[minidx], &args[maxidx])?),
        _ => ParsedRange::Rank(int_arg(&args[minidx])?, int_arg(&args[maxidx])?),
    };
    let items = match read_zset(call, key)? {
        None => Vec::new(),
        Some(coll) => {
            let prefix = prefix_of(&call.ctx, key, &coll);
            range_items(
                &call.ctx,
                &prefix,
                coll.len(),
                &range,
                reverse,
                offset,
                limit,
            )?
        }
    };
    if store {
        let n = store_result(call, &args[1], &items)?;
        return Ok(Reply::Int(n));
    }
    Ok(scored_reply(call, items, withscores))
}

pub fn zrange(call: &mut Call<'_, '_>) -> CmdResult {
    zrange_generic(call, 1, false, RangeKind::Auto, Direction::Auto)
}

pub fn zrevrange(call: &mut Call<'_, '_>) -> CmdResult {
    zrange_generic(call, 1, false, RangeKind::Rank, Direction::Reverse)
}

pub fn zrangebyscore(call: &mut Call<'_, '_>) -> CmdResult {
    zrange_generic(call, 1, false, RangeKind::Score, Direction::Forward)
}

pub fn zrevrangebyscore(call: &mut Call<'_, '_>) -> CmdResult {
    zrange_generic(call, 1, false, RangeKind::Score, Direction::Reverse)
}

pub fn zrangebylex(call: &mut Call<'_, '_>) -> CmdResult {
    zrange_generic(call, 1, false, RangeKind::Lex, Direction::Forward)
}

pub fn zrevrangebylex(call: &mut Call<'_, '_>) -> CmdResult {
    zrange_generic(call, 1, false, RangeKind::Lex, Direction::Reverse)
}

pub fn zrangestore(call: &mut Call<'_, '_>) -> CmdResult {
    zrange_generic(call, 2, true, RangeKind::Auto, Direction::Auto)
}

fn zremrange_generic(call: &mut Call<'_, '_>, kind: RangeKind) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let range = match kind {
        RangeKind::Score => ParsedRange::Score(ScoreRange::parse_arg(&args[2], &args[3])?),
        RangeKind::Lex => ParsedRange::Lex(LexRange::parse_arg(&args[2], &args[3])?),
        _ => ParsedRange::Rank(int_arg(&args[2])?, int_arg(&args[3])?),
    };
    let Some(mut coll) = zset(call, key)? else {
        return Ok(Reply::Int(0));
    };
    let prefix = prefix_of(&call.ctx, key, &coll);
    let items = range_items(&call.ctx, &prefix, coll.len(), &range, false, 0, -1)?;
    for (member, score) in &items {
        remove_member(&mut call.ctx, key, &mut coll, member, *score);
    }
    if !items.is_empty() {
        call.save_collection(key, &coll);
    }
    Ok(Reply::Int(items.len() as i64))
}

pub fn zremrangebyrank(call: &mut Call<'_, '_>) -> CmdResult {
    zremrange_generic(call, RangeKind::Rank)
}

pub fn zremrangebyscore(call: &mut Call<'_, '_>) -> CmdResult {
    zremrange_generic(call, RangeKind::Score)
}

pub fn zremrangebylex(call: &mut Call<'_, '_>) -> CmdResult {
    zremrange_generic(call, RangeKind::Lex)
}

// -------------------------------------------------------------------- pops

fn zpop_generic(call: &mut Call<'_, '_>, max: bool) -> CmdResult {
    let args = call.args;
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match args.get(2) {
        Some(arg) => Some(
            parse_i64(arg)
                .filter(|n| *n >= 0)
                .ok_or_else(|| CmdError::err("value is out of range, must be positive"))?,
        ),
        None => None,
    };
    let key = &args[1];
    let Some(mut coll) = zset(call, key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let items = pop_members(call, key, &mut coll, max, count.unwrap_or(1) as u64)?;
    Ok(match count {
        Some(_) => scored_reply(call, items, true),
        None => flat_reply(items),
    })
}

pub fn zpopmin(call: &mut Call<'_, '_>) -> CmdResult {
    zpop_generic(call, false)
}

pub fn zpopmax(call: &mut Call<'_, '_>) -> CmdResult {
    zpop_generic(call, true)
}

fn bzpop_generic(call: &mut Call<'_, '_>, max: bool) -> CmdResult<super::Outcome> {
    let args = call.args;
    let keys = &args[1..args.len() - 1];
    let timeout = timeout_arg(&args[args.len() - 1])?;
    for key in keys {
        if let Some(mut coll) = zset(call, key)? {
            let items = pop_members(call, key, &mut coll, max, 1)?;
            if let Some((member, score)) = items.into_iter().next() {
                return Ok(Reply::Array(vec![
                    Reply::Bulk(key.clone()),
                    Reply::Bulk(member),
                    Reply::Double(score),
                ])
                .into());
            }
        }
    }
    Ok(super::Outcome::Block(BlockOn {
        keys: keys.to_vec(),
        timeout,
        timeout_reply: Reply::NilArray,
        refused_reply: Reply::NilArray,
    }))
}

pub fn bzpopmin(call: &mut Call<'_, '_>) -> CmdResult<super::Outcome> {
    bzpop_generic(call, false)
}

pub fn bzpopmax(call: &mut Call<'_, '_>) -> CmdResult<super::Outcome> {
    bzpop_generic(call, true)
}

/// ZMPOP / BZMPOP from `numkeys_idx` on; `block` carries BZMPOP's timeout.
fn zmpop_generic(
    call: &mut Call<'_, '_>,
    numkeys_idx: usize,
    blocking: bool,
) -> CmdResult<super::Outcome> {
    let args = call.args;
    let numkeys = parse_i64(&args[numkeys_idx])
        .filter(|n| *n >= 1)
        .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
    let where_idx = match usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(numkeys_idx + 1))
    {
        Some(i) if i < args.len() => i,
        _ => return Err(CmdError::Syntax),
    };
    let max = if is(&args[where_idx], "min") {
        false
    } else if is(&args[where_idx], "max") {
        true
    } else {
        return Err(CmdError::Syntax);
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if count.is_none() && is(&args[j], "count") && more > 0 {
            j += 1;
            count = Some(
                parse_i64(&args[j])
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| CmdError::err("count should be greater than 0"))?,
            );
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let count = count.unwrap_or(1) as u64;
    // BZMPOP's timeout (argument 1) is read after the rest, as Redis does.
    let block = if blocking {
        Some(timeout_arg(&args[1])?)
    } else {
        None
    };
    let keys = &args[numkeys_idx + 1..where_idx];
    for key in keys {
        if let Some(mut coll) = zset(call, key)? {
            let items = pop_members(call, key, &mut coll, max, count)?;
            return Ok(Reply::Array(vec![Reply::Bulk(key.clone()), pairs_reply(items)]).into());
        }
    }
    match block {
        None => Ok(Reply::NilArray.into()),
        Some(timeout) => Ok(super::Outcome::Block(BlockOn {
            keys: keys.to_vec(),
            timeout,
            timeout_reply: Reply::NilArray,
            refused_reply: Reply::NilArray,
        })),
    }
}

pub fn zmpop(call: &mut Call<'_, '_>) -> CmdResult<super::Outcome> {
    zmpop_generic(call, 1, false)
}

pub fn bzmpop(call: &mut Call<'_, '_>) -> CmdResult<super::Outcome> {
    zmpop_generic(call, 2, true)
}

// ------------------------------------------------------------- ZRANDMEMBER

/// The most members a negative-count ZRANDMEMBER builds a reply of.
const MAX_RANDOM_REPLY: u64 = 1 << 26;

pub fn zrandmember(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    if args.len() >= 3 {
        let count = int_arg(&args[2])?;
        if count == i64::MIN {
            return Err(CmdError::err(format!(
                "value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            )));
        }
        if args.len() > 4 || (args.len() == 4 && !is(&args[3], "withscores")) {
            return Err(CmdError::Syntax);
        }
        let withscores = args.len() == 4;
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
            return Err(CmdError::err("value is out of range"));
        }
        return zrandmember_count(call, key, count, withscores);
    }
    let Some(coll) = read_zset(call, key)? else {
        return Ok(Reply::Nil);
    };
    let prefix = prefix_of(&call.ctx, key, &coll);
    let i = rand::random_range(0..coll.len().max(1));
    let picked = rank_slice(&call.ctx, &prefix, coll.len(), i, i)?;
    Ok(Reply::bulk_opt(picked.into_iter().next().map(|(m, _)| m)))
}

fn zrandmember_count(
    call: &mut Call<'_, '_>,
    key: &[u8],
    count: i64,
    withscores: bool,
) -> CmdResult {
    let Some(coll) = read_zset(call, key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let n = count.unsigned_abs();
    if count < 0 && n > MAX_RANDOM_REPLY {
        return Err(CmdError::err("value is out of range"));
    }
    let prefix = prefix_of(&call.ctx, key, &coll);
    let mut all = all_members(&call.ctx, &prefix)?;
    if all.is_empty() {
        return Ok(Reply::Array(Vec::new()));
    }
    let items: Vec<Scored> = if count < 0 {
        (0..n)
            .map(|_| all[rand::random_range(0..all.len())].clone())
            .collect()
    } else if n >= all.len() as u64 {
        // The whole set; Redis answers it highest score first.
        all.reverse();
        all
    } else {
        rand::seq::index::sample(&mut rand::rng(), all.len(), n as usize)
            .into_iter()
            .map(|i| all[i].clone())
            .collect()
    };
    Ok(scored_reply(call, items, withscores))
}

// -------------------------------------------------- union, inter, diff

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(target: &mut f64, value: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += value;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if value < *target {
                *target = value;
            }
        }
        Aggregate::Max => {
            if value > *target {
                *target = value;
            }
        }
    }
}

/// One input of ZUNION & co.: a sorted set, or a plain set whose members
/// all score 1 (a set keeps one data entry per member).
struct Source<'k> {
    key: &'k [u8],
    meta: Option<CollectionMeta>,
    weight: f64,
}

impl Source<'_> {
    fn len(&self) -> u64 {
        self.meta.map_or(0, |m| m.len)
    }

    fn all(&self, ctx: &Ctx<'_>) -> CmdResult<Vec<Scored>> {
        let Some(meta) = self.meta else {
            return Ok(Vec::new());
        };
        let prefix = data_prefix(ctx.db, self.key, meta.version);
        if meta.kind == KeyType::ZSet {
            return all_members(ctx, &prefix);
        }
        Ok(ctx
            .scan_data(&prefix)?
            .into_iter()
            .map(|(member, _)| (Bytes::from(member), 1.0))
            .collect())
    }

    fn score(&self, ctx: &Ctx<'_>, member: &[u8]) -> CmdResult<Option<f64>> {
        let Some(meta) = self.meta else {
            return Ok(None);
        };
        if meta.kind == KeyType::ZSet {
            return get_score(ctx, self.key, meta.version, member);
        }
        let found = ctx.get_data(&data_key(ctx.db, self.key, meta.version, member))?;
        Ok(found.map(|_| 1.0))
    }
}

fn open_source<'k>(call: &Call<'_, '_>, key: &'k [u8]) -> CmdResult<Source<'k>> {
    let meta = match call.ctx.get_meta(key)? {
        None => None,
        Some(Meta {
            body: MetaBody::Collection(c),
            ..
        }) if c.kind == KeyType::ZSet || c.kind == KeyType::Set => Some(c),
        Some(_) => return Err(CmdError::WrongType),
    };
    count_lookup(call, meta.is_some());
    Ok(Source {
        key,
        meta,
        weight: 1.0,
    })
}

/// Redis's zunionInterDiffGenericCommand: `dst` for the STORE variants,
/// `card` for ZINTERCARD (a count with an optional LIMIT).
fn zsetop_generic(
    call: &mut Call<'_, '_>,
    name: &str,
    op: SetOp,
    dst: Option<&Bytes>,
    numkeys_idx: usize,
    card: bool,
) -> CmdResult {
    let args = call.args;
    let setnum = int_arg(&args[numkeys_idx])?;
    if setnum < 1 {
        return Err(CmdError::err(format!(
            "at least 1 input key is needed for '{name}' command"
        )));
    }
    let first_key = numkeys_idx + 1;
    let available = (args.len() - first_key) as u64;
    if setnum as u64 > available {
        return Err(CmdError::Syntax);
    }
    let setnum = setnum as usize;
    let mut sources = Vec::with_capacity(setnum);
    for key in &args[first_key..first_key + setnum] {
        sources.push(open_source(call, key)?);
    }
    let mut how = Aggregate::Sum;
    let mut withscores = false;
    let mut limit: u64 = 0;
    let mut j = first_key + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        let opt = &args[j];
        if op != SetOp::Diff && !card && remaining > setnum && is(opt, "weights") {
            j += 1;
            for source in sources.iter_mut() {
                source.weight = parse_score(&args[j])
                    .ok_or_else(|| CmdError::err("weight value is not a float"))?;
                j += 1;
            }
        } else if op != SetOp::Diff && !card && remaining >= 2 && is(opt, "aggregate") {
            let which = &args[j + 1];
            how = if is(which, "sum") {
                Aggregate::Sum
            } else if is(which, "min") {
                Aggregate::Min
            } else if is(which, "max") {
                Aggregate::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if dst.is_none() && !card && is(opt, "withscores") {
            withscores = true;
            j += 1;
        } else if card && remaining >= 2 && is(opt, "limit") {
            limit = parse_i64(&args[j + 1])
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| CmdError::err("LIMIT can't be negative"))?;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }

    let ctx = &call.ctx;
    let mut result: Vec<Scored> = Vec::new();
    match op {
        SetOp::Union => {
            // Smallest inputs first, as Redis sums them.
            sources.sort_by_key(Source::len);
            let mut acc: HashMap<Bytes, f64> = HashMap::new();
            for source in &sources {
                for (member, score) in source.all(ctx)? {
                    let mut value = source.weight * score;
                    if value.is_nan() {
                        value = 0.0;
                    }
                    match acc.get_mut(&member) {
                        Some(target) => aggregate(target, value, how),
                        None => {
                            acc.insert(member, value);
                        }
                    }
                }
            }
            result = acc.into_iter().collect();
        }
        SetOp::Inter => {
            sources.sort_by_key(Source::len);
            if sources.iter().all(|s| s.len() > 0) {
                let mut count = 0u64;
                'members: for (member, score) in sources[0].all(ctx)? {
                    let mut total = sources[0].weight * score;
                    if total.is_nan() {
                        total = 0.0;
                    }
                    for other in &sources[1..] {
                        match other.score(ctx, &member)? {
                            Some(s) => aggregate(&mut total, s * other.weight, how),
                            None => continue 'members,
                        }
                    }
                    count += 1;
                    if card {
                        if limit > 0 && count >= limit {
                            break;
                        }
                    } else {
                        result.push((member, total));
                    }
                }
                if card {
                    return Ok(Reply::Int(count as i64));
                }
            } else if card {
                return Ok(Reply::Int(0));
            }
        }
        SetOp::Diff => {
            'members: for (member, score) in sources[0].all(ctx)? {
                for other in &sources[1..] {
                    if other.score(ctx, &member)?.is_some() {
                        continue 'members;
                    }
                }
                result.push((member, score));
            }
        }
    }
    result.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    match dst {
        Some(dst) => Ok(Reply::Int(store_result(call, dst, &result)?)),
        None => Ok(scored_reply(call, result, withscores)),
    }
}

pub fn zunionstore(call: &mut Call<'_, '_>) -> CmdResult {
    let dst = &call.args[1];
    zsetop_generic(call, "zunionstore", SetOp::Union, Some(dst), 2, false)
}

pub fn zinterstore(call: &mut Call<'_, '_>) -> CmdResult {
    let dst = &call.args[1];
    zsetop_generic(call, "zinterstore", SetOp::Inter, Some(dst), 2, false)
}

pub fn zdiffstore(call: &mut Call<'_, '_>) -> CmdResult {
    let dst = &call.args[1];
    zsetop_generic(call, "zdiffstore", SetOp::Diff, Some(dst), 2, false)
}

pub fn zunion(call: &mut Call<'_, '_>) -> CmdResult {
    zsetop_generic(call, "zunion", SetOp::Union, None, 1, false)
}

pub fn zinter(call: &mut Call<'_, '_>) -> CmdResult {
    zsetop_generic(call, "zinter", SetOp::Inter, None, 1, false)
}

pub fn zdiff(call: &mut Call<'_, '_>) -> CmdResult {
    zsetop_generic(call, "zdiff", SetOp::Diff, None, 1, false)
}

pub fn zintercard(call: &mut Call<'_, '_>) -> CmdResult {
    zsetop_generic(call, "zintercard", SetOp::Inter, None, 1, true)
}

// ------------------------------------------------------------------- ZSCAN

/// Sets up to this size answer a ZSCAN in one reply (cursor 0) in score
/// order, as Redis's listpack-encoded sorted sets do.
const SCAN_ALL_AT_ONCE: u64 = 128;

pub fn zscan(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let cursor = parse_cursor(&args[2])?;
    let Some(coll) = read_zset(call, key)? else {
        return Ok(scan_done(Vec::new()));
    };
    let options = ScanOptions::parse(args, 3, false)?;
    let wanted = |m: &[u8]| options.matches(m);
    let prefix = prefix_of(&call.ctx, key, &coll);
    let small = coll.len() <= SCAN_ALL_AT_ONCE;
    let mut out = Vec::new();
    let mut push = |m: &[u8], s: f64| {
        out.push(Reply::Bulk(Bytes::copy_from_slice(m)));
        // Redis prints a listpack's scores with d2string, a skiplist's
        // with %.17g.
        out.push(Reply::bulk(if small {
            d2string(s)
        } else {
            format_double(s)
        }));
    };
    if small {
        walk_all(&call.ctx, &prefix, false, |m, s| {
            if wanted(m) {
                push(m, s);
            }
            true
        })?;
        return Ok(scan_done(out));
    }
    // Larger sets: member order in the data family, resuming at the member
    // the cursor stands for.
    let Some(start) = resume_at(call, cursor) else {
        return Ok(scan_done(Vec::new()));
    };
    let lower = [&prefix[..], &start[..]].concat();
    let upper = prefix_end(&prefix);
    let mut next = None;
    for (examined, item) in call
        .ctx
        .iter(Cf::Data, &lower, upper.as_deref(), false)
        .enumerate()
    {
        let (k, v) = item?;
        let member = &k[prefix.len()..];
        if examined == options.count {
            next = Some(member.to_vec());
            break;
        }
        if wanted(member) {
            push(member, score_from(&v)?);
        }
    }
    Ok(scan_reply(call, next, out))
}

/// Redis's `d2string`: integral values up to 2^62 as integers, others
/// like `%.17g`.
fn d2string(v: f64) -> String {
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

    fn ordered(scores: &[f64]) {
        for w in scores.windows(2) {
            assert!(
                encode_score(w[0]) < encode_score(w[1]),
                "{} should sort before {}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn score_encoding_orders_like_doubles() {
        let tiny = f64::from_bits(1); // smallest subnormal
        ordered(&[
            f64::NEG_INFINITY,
            f64::MIN,
            -1e300,
            -2.5,
            -1.0,
            -f64::MIN_POSITIVE,
            -tiny * 2.0,
            -tiny,
            0.0,
            tiny,
            tiny * 2.0,
            f64::MIN_POSITIVE / 2.0,
            f64::MIN_POSITIVE,
            0.1,
            1.0,
            1.0000000000000002,
            2.5,
            1e300,
            f64::MAX,
            f64::INFINITY,
        ]);
    }

    #[test]
    fn negative_zero_is_zero() {
        assert_eq!(encode_score(-0.0), encode_score(0.0));
        assert_eq!(decode_score(encode_score(-0.0)), 0.0);
    }

    #[test]
    fn score_encoding_round_trips() {
        for v in [
            f64::NEG_INFINITY,
            -1.5,
            f64::from_bits(1),
            -f64::from_bits(1),
            0.1,
            f64::MAX,
            f64::INFINITY,
        ] {
            assert_eq!(decode_score(encode_score(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn strict_scores_match_redis() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"+1"), Some(1.0));
        assert_eq!(parse_score(b".5"), Some(0.5));
        assert_eq!(parse_score(b"5."), Some(5.0));
        assert_eq!(parse_score(b"-.5e-3"), Some(-0.0005));
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"0x1p3"), Some(8.0));
        assert_eq!(parse_score(b"0x.8"), Some(0.5));
        assert_eq!(parse_score(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"1e-310"), Some(1e-310));
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
            assert_eq!(parse_score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_score(b"0e-400"), Some(0.0));
    }

    #[test]
    fn score_bounds_parse_like_redis() {
        assert_eq!(parse_score_bound(b"1"), Some((1.0, false)));
        assert_eq!(parse_score_bound(b"(1"), Some((1.0, true)));
        assert_eq!(parse_score_bound(b"-inf"), Some((f64::NEG_INFINITY, false)));
        assert_eq!(parse_score_bound(b"(+inf"), Some((f64::INFINITY, true)));
        // strtod: leading spaces, an empty number and overflow are fine.
        assert_eq!(parse_score_bound(b" 1"), Some((1.0, false)));
        assert_eq!(parse_score_bound(b""), Some((0.0, false)));
        assert_eq!(parse_score_bound(b"("), Some((0.0, true)));
        assert_eq!(parse_score_bound(b"1e400"), Some((f64::INFINITY, false)));
        for bad in [&b"1 "[..], b"nan", b"(nan", b"x", b"((1", b" ", b"[1"] {
            assert_eq!(parse_score_bound(bad), None);
        }
    }

    #[test]
    fn score_range_emptiness() {
        let r = |a: &[u8], b: &[u8]| ScoreRange::parse(a, b).map(|r| r.is_empty());
        assert_eq!(r(b"1", b"1"), Some(false));
        assert_eq!(r(b"(1", b"1"), Some(true));
        assert_eq!(r(b"1", b"(1"), Some(true));
        assert_eq!(r(b"2", b"1"), Some(true));
        assert_eq!(r(b"-inf", b"+inf"), Some(false));
    }

    #[test]
    fn score_span_bounds() {
        let prefix = b"\x00pfx".to_vec();
        let key = |s: f64, m: &[u8]| score_entry(&prefix, s, m);
        let inside = |r: &ScoreRange, k: &[u8]| {
            let (lo, hi) = r.span(&prefix);
            k >= &lo[..] && hi.as_deref().is_none_or(|h| k < h)
        };
        let incl = ScoreRange::parse(b"1", b"2").unwrap();
        let excl = ScoreRange::parse(b"(1", b"(2").unwrap();
        for (k, a, b) in [
            (key(1.0, b""), true, false),
            (key(1.0, b"\xff\xff"), true, false),
            (key(1.5, b"m"), true, true),
            (key(2.0, b""), true, false),
            (key(2.0, b"\xff"), true, false),
            (key(0.5, b"\xff"), false, false),
            (key(2.5, b""), false, false),
        ] {
            assert_eq!(inside(&incl, &k), a);
            assert_eq!(inside(&excl, &k), b);
        }
        let zero = ScoreRange::parse(b"-0", b"0").unwrap();
        assert!(inside(&zero, &key(0.0, b"a")));
        assert!(inside(&zero, &key(-0.0, b"a")));
    }

    #[test]
    fn lex_bounds_parse_like_redis() {
        assert_eq!(Lex::parse(b"-"), Some(Lex::Min));
        assert_eq!(Lex::parse(b"+"), Some(Lex::Max));
        assert_eq!(Lex::parse(b"[a"), Some(Lex::In(b"a".to_vec())));
        assert_eq!(Lex::parse(b"(a"), Some(Lex::Ex(b"a".to_vec())));
        assert_eq!(Lex::parse(b"["), Some(Lex::In(Vec::new())));
        for bad in [&b""[..], b"a", b"+a", b"-a", b"{a"] {
            assert_eq!(Lex::parse(bad), None);
        }
        let empty = |a: &[u8], b: &[u8]| LexRange::parse(a, b).map(|r| r.is_empty());
        assert_eq!(empty(b"-", b"+"), Some(false));
        assert_eq!(empty(b"+", b"-"), Some(true));
        assert_eq!(empty(b"-", b"-"), Some(true));
        assert_eq!(empty(b"+", b"+"), Some(true));
        assert_eq!(empty(b"[a", b"[a"), Some(false));
        assert_eq!(empty(b"[a", b"(a"), Some(true));
        assert_eq!(empty(b"[b", b"[a"), Some(true));
        let r = LexRange::parse(b"(a", b"[c").unwrap();
        assert!(!r.gte_min(b"a") && r.gte_min(b"aa") && r.lte_max(b"c") && !r.lte_max(b"ca"));
    }

    #[test]
    fn lex_span_bounds() {
        let base = b"\x00pfx12345678".to_vec();
        let inside = |r: &LexRange, m: &[u8]| {
            let k = [&base[..], m].concat();
            let (lo, hi) = r.span(&base);
            k >= lo && hi.as_deref().is_none_or(|h| &k[..] < h)
        };
        let r = LexRange::parse(b"(b", b"[d").unwrap();
        assert!(!inside(&r, b"a"));
        assert!(!inside(&r, b"b"));
        assert!(inside(&r, b"b\x00"));
        assert!(inside(&r, b"c"));
        assert!(inside(&r, b"d"));
        assert!(!inside(&r, b"d\x00"));
        let all = LexRange::parse(b"-", b"+").unwrap();
        assert!(inside(&all, b""));
        assert!(inside(&all, b"\xff\xff"));
    }

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

    #[test]
    fn rank_windows() {
        assert_eq!(rank_window(0, -1, 5), Some((0, 4)));
        assert_eq!(rank_window(-100, 100, 5), Some((0, 4)));
        assert_eq!(rank_window(3, 1, 5), None);
        assert_eq!(rank_window(5, 10, 5), None);
        assert_eq!(rank_window(i64::MIN, i64::MAX, 5), Some((0, 4)));
        assert_eq!(rank_window(-1, -1, 5), Some((4, 4)));
        assert_eq!(rank_window(0, -1, 0), None);
    }
}
