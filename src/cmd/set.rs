//! Set commands.
//!
//! A set is a `CollectionMeta` header (version, cardinality in `len`) plus
//! one data key per member: `data_key(db, key, version, member)` → the
//! member's number (see `positions.rs`: `0..len`, so SPOP and SRANDMEMBER
//! pick uniformly with one lookup; empty in sets from before the numbers).
//! Members are kept in byte order, which SSCAN cursors rely on.

use crate::storage::events::class::SET;
use std::collections::BTreeSet;

use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::Rng;

use super::positions::{self, Positions};
use super::sample::{distinct_positions, repeated_picks, repeated_positions, Picker};
use super::scan::{parse_cursor, resume_at, scan_done, scan_reply, ScanOptions};
use super::table::{commands, flags::*};
use super::{int_arg, is, parse_i64, Call, CmdError, CmdResult, Collection, CommandSpec};
use crate::resp::Reply;
use crate::storage::{data_key, data_prefix, prefix_end, Cf, Ctx, KeyType};

pub static COMMANDS: &[CommandSpec] = commands! {
    "sadd", -3, WF, 1, 1, 1, sadd;
    "srem", -3, WDF, 1, 1, 1, srem;
    "smove", 4, WDF, 1, 2, 1, smove;
    "scard", 2, RF, 1, 1, 1, scard;
    "sismember", 3, RF, 1, 1, 1, sismember;
    "smismember", -3, RF, 1, 1, 1, smismember;
    "smembers", 2, R, 1, 1, 1, smembers;
    "spop", -2, WDF, 1, 1, 1, spop;
    "srandmember", -2, R, 1, 1, 1, srandmember;
    "sinter", -2, R, 1, -1, 1, sinter;
    "sintercard", -3, R, 0, 0, 0, sintercard;
    "sinterstore", -3, W, 1, -1, 1, sinterstore;
    "sunion", -2, R, 1, -1, 1, sunion;
    "sunionstore", -3, W, 1, -1, 1, sunionstore;
    "sdiff", -2, R, 1, -1, 1, sdiff;
    "sdiffstore", -3, W, 1, -1, 1, sdiffstore;
    "sscan", -3, R, 1, 1, 1, sscan;
};

/// A point lookup costs about this many steps of a pass over members:
/// `k` picks of `n` members look `k` numbers up when `k * LOOKUP_COST < n`,
/// and walk the set once otherwise.
const LOOKUP_COST: u64 = 16;
// ---------------------------------------------------------------------------
// Reading and writing members.

/// The members of one version of a set, as a range of data keys, and
/// their numbers.
struct Members {
    prefix: Vec<u8>,
    end: Option<Vec<u8>>,
    positions: Positions,
}

impl Members {
    fn new(ctx: &Ctx<'_>, key: &[u8], coll: &Collection) -> Members {
        let prefix = data_prefix(ctx.keyspace(), key, coll.version());
        let end = prefix_end(&prefix);
        Members {
            prefix,
            end,
            positions: Positions::new(ctx, key, coll.version()),
        }
    }

    /// Members from `from` (inclusive) on, in byte order (or the reverse).
    fn iter<'c>(
        &self,
        ctx: &'c Ctx<'_>,
        from: &[u8],
        reverse: bool,
    ) -> impl Iterator<Item = CmdResult<Vec<u8>>> + 'c {
        let lower = [&self.prefix[..], from].concat();
        let skip = self.prefix.len();
        ctx.iter(Cf::Data, &lower, self.end.as_deref(), reverse)
            .map(move |item| {
                item.map(|(mut k, _)| k.split_off(skip))
                    .map_err(CmdError::from)
            })
    }

    fn all(&self, ctx: &Ctx<'_>) -> CmdResult<Vec<Bytes>> {
        self.iter(ctx, b"", false)
            .map(|m| m.map(Bytes::from))
            .collect()
    }

    /// The members at `positions` (ascending, repeats allowed), in one pass.
    fn at_positions(&self, ctx: &Ctx<'_>, positions: &[u64]) -> CmdResult<Vec<Bytes>> {
        let mut picker = Picker::new(positions);
        for member in self.iter(ctx, b"", false) {
            let member = member?;
            if !picker.offer(|| Bytes::from(member)) {
                break;
            }
        }
        Ok(picker.finish())
    }

    /// `k` distinct members picked uniformly among the first `n`, by one pass.
    fn sample_by_pass(&self, ctx: &Ctx<'_>, n: u64, k: u64) -> CmdResult<Vec<Bytes>> {
        let positions = distinct_positions(&mut *ctx.rng(), n, k);
        self.at_positions(ctx, &positions)
    }

    /// One member picked uniformly: one lookup of a random number, or a
    /// pass for a set from before Kiwi numbered members.
    fn random(&self, ctx: &Ctx<'_>, coll: &Collection) -> CmdResult<Option<Vec<u8>>> {
        let len = coll.len();
        if len == 0 {
            return Ok(None);
        }
        let n = ctx.rng().random_range(0..len);
        if coll.meta.indexed {
            if let Some(member) = self.positions.get(ctx, n)? {
                return Ok(Some(member));
            }
        }
        let n = usize::try_from(n).unwrap_or(0);
        match self.iter(ctx, b"", false).nth(n) {
            Some(m) => m.map(Some),
            // The header disagrees with the elements: take the first.
            None => self.iter(ctx, b"", false).next().transpose(),
        }
    }

    /// The members numbered `numbers` (repeats allowed), by lookups.
    fn numbered(&self, ctx: &Ctx<'_>, numbers: &[u64]) -> CmdResult<Vec<Bytes>> {
        let mut out = Vec::with_capacity(numbers.len());
        for &n in numbers {
            if let Some(member) = self.positions.get(ctx, n)? {
                out.push(Bytes::from(member));
            }
        }
        Ok(out)
    }
}

fn member_key(ctx: &Ctx<'_>, key: &[u8], coll: &Collection, member: &[u8]) -> Vec<u8> {
    data_key(ctx.keyspace(), key, coll.version(), member)
}

fn is_member(ctx: &Ctx<'_>, key: &[u8], coll: &Collection, member: &[u8]) -> CmdResult<bool> {
    Ok(ctx.get_data(&member_key(ctx, key, coll, member))?.is_some())
}

/// Add `member` unless it is there, numbered last; answers whether it was
/// added. Reads see this command's own writes: a member named twice counts
/// once.
fn add_member(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    coll: &mut Collection,
    member: &[u8],
) -> CmdResult<bool> {
    let raw = member_key(ctx, key, coll, member);
    if ctx.get_data(&raw)?.is_some() {
        return Ok(false);
    }
    if coll.meta.indexed {
        let number = coll.meta.len;
        ctx.put_data(&raw, &positions::encode(number));
        Positions::new(ctx, key, coll.version()).put(ctx, number, member);
    } else {
        ctx.put_data(&raw, b"");
    }
    coll.meta.len += 1;
    Ok(true)
}

/// Remove `member` if it is there (the last member takes its number);
/// answers whether it was. The header is the caller's to save.
fn take_member(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    coll: &mut Collection,
    member: &[u8],
) -> CmdResult<bool> {
    let raw = member_key(ctx, key, coll, member);
    let Some(value) = ctx.get_data(&raw)? else {
        return Ok(false);
    };
    ctx.delete_data(&raw);
    if coll.meta.indexed {
        let number = positions::decode(&value)?;
        let numbers = Positions::new(ctx, key, coll.version());
        if let Some(moved) = numbers.remove(ctx, number, coll.meta.len)? {
            let moved_key = member_key(ctx, key, coll, &moved);
            ctx.put_data(&moved_key, &positions::encode(number));
        }
    }
    coll.meta.len = coll.meta.len.saturating_sub(1);
    Ok(true)
}

/// Number the members of a set written before Kiwi kept numbers (one pass,
/// once): from then on its random picks are single lookups.
fn ensure_indexed(call: &mut Call<'_, '_>, key: &[u8], coll: &mut Collection) -> CmdResult<()> {
    if coll.meta.indexed || !coll.existed {
        return Ok(());
    }
    let members = Members::new(&call.ctx, key, coll).all(&call.ctx)?;
    number_members(&mut call.ctx, key, coll, &members);
    coll.meta.indexed = true;
    call.save_collection(key, coll);
    Ok(())
}

/// Remove members known to be in the set, and keep its header exact.
fn remove_members(
    call: &mut Call<'_, '_>,
    key: &[u8],
    coll: &mut Collection,
    members: &[Bytes],
    event: &'static str,
) -> CmdResult<()> {
    for member in members {
        take_member(&mut call.ctx, key, coll, member)?;
    }
    call.notify_change(key, coll, SET, event);
    call.save_collection(key, coll);
    Ok(())
}

fn set_reply(members: Vec<Bytes>) -> Reply {
    Reply::Set(members.into_iter().map(Reply::Bulk).collect())
}

fn array_reply(members: Vec<Bytes>) -> Reply {
    Reply::Array(members.into_iter().map(Reply::Bulk).collect())
}

// ---------------------------------------------------------------------------
// Single-set commands.

pub fn sadd(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let mut coll = call.collection_or_new(key, KeyType::Set)?;
    ensure_indexed(call, key, &mut coll)?;
    let mut added = 0u64;
    for member in &args[2..] {
        if add_member(&mut call.ctx, key, &mut coll, member)? {
            added += 1;
        }
    }
    if added > 0 {
        call.notify_change(key, &coll, SET, "sadd");
        call.save_collection(key, &coll);
    }
    Ok(Reply::Int(added as i64))
}

pub fn srem(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let Some(mut coll) = call.collection(key, KeyType::Set)? else {
        return Ok(Reply::Int(0));
    };
    ensure_indexed(call, key, &mut coll)?;
    let mut removed = 0i64;
    for member in &args[2..] {
        if take_member(&mut call.ctx, key, &mut coll, member)? {
            removed += 1;
        }
    }
    if removed > 0 {
        call.notify_change(key, &coll, SET, "srem");
        call.save_collection(key, &coll);
    }
    Ok(Reply::Int(removed))
}

pub fn scard(call: &mut Call<'_, '_>) -> CmdResult {
    let len = call
        .read_collection(&call.args[1], KeyType::Set)?
        .map_or(0, |c| c.len());
    Ok(Reply::Int(i64::try_from(len).unwrap_or(i64::MAX)))
}

pub fn sismember(call: &mut Call<'_, '_>) -> CmdResult {
    let (key, member) = (&call.args[1], &call.args[2]);
    let found = match call.read_collection(key, KeyType::Set)? {
        Some(coll) => is_member(&call.ctx, key, &coll, member)?,
        None => false,
    };
    Ok(Reply::Int(i64::from(found)))
}

pub fn smismember(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let coll = call.read_collection(key, KeyType::Set)?;
    let mut out = Vec::with_capacity(args.len() - 2);
    for member in &args[2..] {
        let found = match &coll {
            Some(coll) => is_member(&call.ctx, key, coll, member)?,
            None => false,
        };
        out.push(Reply::Int(i64::from(found)));
    }
    Ok(Reply::Array(out))
}

pub fn smembers(call: &mut Call<'_, '_>) -> CmdResult {
    let key = &call.args[1];
    Ok(match call.read_collection(key, KeyType::Set)? {
        Some(coll) => set_reply(Members::new(&call.ctx, key, &coll).all(&call.ctx)?),
        None => Reply::Set(Vec::new()),
    })
}

pub fn smove(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let (src_key, dst_key, member) = (&args[1], &args[2], &args[3]);
    // A missing source answers 0 before the destination's type is looked at.
    let Some(mut src) = call.collection(src_key, KeyType::Set)? else {
        return Ok(Reply::Int(0));
    };
    let dst = call.collection(dst_key, KeyType::Set)?;
    if src_key == dst_key {
        let found = is_member(&call.ctx, src_key, &src, member)?;
        return Ok(Reply::Int(i64::from(found)));
    }
    if !is_member(&call.ctx, src_key, &src, member)? {
        return Ok(Reply::Int(0));
    }
    ensure_indexed(call, src_key, &mut src)?;
    remove_members(
        call,
        src_key,
        &mut src,
        std::slice::from_ref(member),
        "srem",
    )?;
    let mut dst = match dst {
        Some(dst) => dst,
        None => call.new_collection(KeyType::Set),
    };
    ensure_indexed(call, dst_key, &mut dst)?;
    if add_member(&mut call.ctx, dst_key, &mut dst, member)? {
        call.notify_change(dst_key, &dst, SET, "sadd");
        call.save_collection(dst_key, &dst);
    }
    Ok(Reply::Int(1))
}

pub fn spop(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let count = match args.len() {
        2 => None,
        3 => Some(
            parse_i64(&args[2])
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| CmdError::err("value is out of range, must be positive"))?,
        ),
        _ => return Err(CmdError::Syntax),
    };
    let Some(mut coll) = call.collection(key, KeyType::Set)? else {
        return Ok(match count {
            None => Reply::Nil,
            Some(_) => Reply::Set(Vec::new()),
        });
    };
    if count == Some(0) {
        return Ok(Reply::Set(Vec::new()));
    }
    if count.is_some_and(|n| n >= coll.len()) {
        // Everything: one meta delete; the elements are reclaimed later.
        let all = Members::new(&call.ctx, key, &coll).all(&call.ctx)?;
        call.ctx.delete_key(key);
        return Ok(set_reply(all));
    }
    ensure_indexed(call, key, &mut coll)?;
    // One uniform number at a time among those left, the last member
    // moving into each freed one: an exact draw without replacement.
    let members = Members::new(&call.ctx, key, &coll);
    let mut popped = Vec::with_capacity(count.unwrap_or(1).min(1 << 16) as usize);
    for _ in 0..count.unwrap_or(1) {
        let Some(member) = members.random(&call.ctx, &coll)? else {
            break;
        };
        take_member(&mut call.ctx, key, &mut coll, &member)?;
        popped.push(Bytes::from(member));
    }
    if popped.is_empty() {
        // Only a header that disagrees with the members gets here.
        return Ok(match count {
            None => Reply::Nil,
            Some(_) => Reply::Set(Vec::new()),
        });
    }
    call.notify_change(key, &coll, SET, "spop");
    call.save_collection(key, &coll);
    Ok(match count {
        None => Reply::Bulk(popped.swap_remove(0)),
        Some(_) => set_reply(popped),
    })
}

pub fn srandmember(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let count = match args.len() {
        2 => None,
        3 => {
            let n = int_arg(&args[2])?;
            if n == i64::MIN {
                return Err(CmdError::err(
                    "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ));
            }
            Some(n)
        }
        _ => return Err(CmdError::Syntax),
    };
    let Some(coll) = call.read_collection(key, KeyType::Set)? else {
        return Ok(match count {
            None => Reply::Nil,
            Some(_) => Reply::Array(Vec::new()),
        });
    };
    let ctx = &call.ctx;
    let members = Members::new(ctx, key, &coll);
    let len = coll.len();
    let Some(count) = count else {
        return Ok(Reply::bulk_opt(members.random(ctx, &coll)?));
    };
    if count == 0 || len == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let by_lookups = |picks: u64| coll.meta.indexed && picks.saturating_mul(LOOKUP_COST) < len;
    if count > 0 {
        let count = count.unsigned_abs();
        if count >= len {
            return Ok(array_reply(members.all(ctx)?));
        }
        let mut picked = if by_lookups(count) {
            let numbers = distinct_positions(&mut *ctx.rng(), len, count);
            members.numbered(ctx, &numbers)?
        } else {
            members.sample_by_pass(ctx, len, count)?
        };
        picked.shuffle(&mut *ctx.rng());
        return Ok(array_reply(picked));
    }
    // Negative: that many picks, repeats allowed.
    let picks = repeated_picks(count.unsigned_abs())?;
    let positions = repeated_positions(&mut *ctx.rng(), len, picks);
    let mut picked = if by_lookups(picks) {
        members.numbered(ctx, &positions)?
    } else {
        members.at_positions(ctx, &positions)?
    };
    picked.shuffle(&mut *ctx.rng());
    Ok(array_reply(picked))
}

// ---------------------------------------------------------------------------
// Multi-set commands.

/// Every source set, `None` for a missing key. Like Redis, every key is
/// looked at, so one of another type anywhere is WRONGTYPE.
fn open_sources(
    call: &Call<'_, '_>,
    keys: &[Bytes],
    read: bool,
) -> CmdResult<Vec<Option<Collection>>> {
    keys.iter()
        .map(|key| {
            if read {
                call.read_collection(key, KeyType::Set)
            } else {
                call.collection(key, KeyType::Set)
            }
        })
        .collect()
}

/// Members in every source; stops after `limit` (0 = no limit). Returns
/// the count, and the members when `collect`.
fn intersect(
    call: &Call<'_, '_>,
    keys: &[Bytes],
    read: bool,
    limit: u64,
    collect: bool,
) -> CmdResult<(u64, Vec<Bytes>)> {
    let sets = open_sources(call, keys, read)?;
    let mut present = Vec::with_capacity(sets.len());
    for (key, set) in keys.iter().zip(sets) {
        match set {
            Some(coll) => present.push((key, coll)),
            // A missing key is an empty set: so is the intersection.
            None => return Ok((0, Vec::new())),
        }
    }
    // Walk the smallest set, look the others up.
    present.sort_by_key(|(_, coll)| coll.len());
    let Some(((small_key, small), others)) = present.split_first() else {
        return Ok((0, Vec::new()));
    };
    let ctx = &call.ctx;
    let mut count = 0u64;
    let mut out = Vec::new();
    for member in Members::new(ctx, small_key, small).iter(ctx, b"", false) {
        let member = member?;
        let mut everywhere = true;
        for (key, coll) in others {
            if key != small_key && !is_member(ctx, key, coll, &member)? {
                everywhere = false;
                break;
            }
        }
        if everywhere {
            count += 1;
            if collect {
                out.push(Bytes::from(member));
            }
            if count == limit {
                break;
            }
        }
    }
    Ok((count, out))
}

fn union(call: &Call<'_, '_>, keys: &[Bytes], read: bool) -> CmdResult<Vec<Bytes>> {
    let sets = open_sources(call, keys, read)?;
    let ctx = &call.ctx;
    let mut all = BTreeSet::new();
    for (key, set) in keys.iter().zip(sets) {
        if let Some(coll) = set {
            for member in Members::new(ctx, key, &coll).iter(ctx, b"", false) {
                all.insert(Bytes::from(member?));
            }
        }
    }
    Ok(all.into_iter().collect())
}

fn difference(call: &Call<'_, '_>, keys: &[Bytes], read: bool) -> CmdResult<Vec<Bytes>> {
    let sets = open_sources(call, keys, read)?;
    let Some(Some(first)) = sets.first() else {
        return Ok(Vec::new());
    };
    let first_key = &keys[0];
    // The same set named again removes everything.
    if keys[1..].iter().any(|k| k == first_key) {
        return Ok(Vec::new());
    }
    let others: Vec<(&Bytes, Collection)> = keys[1..]
        .iter()
        .zip(sets[1..].iter())
        .filter_map(|(k, s)| s.map(|c| (k, c)))
        .collect();
    let ctx = &call.ctx;
    let mut out = Vec::new();
    'members: for member in Members::new(ctx, first_key, first).iter(ctx, b"", false) {
        let member = member?;
        for (key, coll) in &others {
            if is_member(ctx, key, coll, &member)? {
                continue 'members;
            }
        }
        out.push(Bytes::from(member));
    }
    Ok(out)
}

/// Every member of the set at `key`, in byte order (SORT's input).
pub(super) fn members_of(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &Collection,
) -> CmdResult<Vec<Bytes>> {
    Members::new(&call.ctx, key, coll)
        .iter(&call.ctx, b"", false)
        .map(|m| m.map(Bytes::from))
        .collect()
}

/// OBJECT ENCODING of a set as Redis 7.0 names it: `intset` while every
/// member is an integer and there are at most 512 of them (the default
/// `set-max-intset-entries`), else `hashtable` (7.0 has no listpack sets).
/// Judged from the members, not from the set's history: Redis keeps a set
/// that once held a non-integer as `hashtable`.
pub(super) fn encoding(call: &Call<'_, '_>, key: &[u8]) -> CmdResult<&'static str> {
    const MAX_INTSET_ENTRIES: u64 = 512;
    let Some(coll) = call.read_collection(key, KeyType::Set)? else {
        return Ok("hashtable");
    };
    if coll.len() > MAX_INTSET_ENTRIES {
        return Ok("hashtable");
    }
    for member in Members::new(&call.ctx, key, &coll).iter(&call.ctx, b"", false) {
        if parse_i64(&member?).is_none() {
            return Ok("hashtable");
        }
    }
    Ok("intset")
}

/// A new set (fresh version, no TTL, header not saved) holding `members`,
/// which are distinct: RESTORE's value, saved by the caller.
pub(super) fn fill_new(call: &mut Call<'_, '_>, key: &[u8], members: &[Vec<u8>]) -> Collection {
    let mut coll = call.new_collection(KeyType::Set);
    number_members(&mut call.ctx, key, &mut coll, members);
    coll
}

/// Store `members` (distinct: all of the set) numbered `0..len`, as a set
/// this command creates or numbers for the first time.
fn number_members(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    coll: &mut Collection,
    members: &[impl AsRef<[u8]>],
) {
    let numbers = Positions::new(ctx, key, coll.version());
    for (number, member) in (0u64..).zip(members) {
        let raw = member_key(ctx, key, coll, member.as_ref());
        ctx.put_data(&raw, &positions::encode(number));
        numbers.put(ctx, number, member.as_ref());
    }
    coll.meta.len = members.len() as u64;
}

/// Replace `dest`, whatever it held, with a set of `members` (distinct);
/// no members deletes it. Answers the new cardinality.
fn store(call: &mut Call<'_, '_>, dest: &[u8], members: Vec<Bytes>) -> CmdResult {
    if members.is_empty() {
        if call.ctx.peek(dest)?.is_some() {
            call.ctx.delete_key(dest);
            call.ctx
                .notify(crate::storage::events::class::GENERIC, "del", dest);
        }
        return Ok(Reply::Int(0));
    }
    let event = match call.args[0].to_ascii_lowercase().as_slice() {
        b"sinterstore" => "sinterstore",
        b"sunionstore" => "sunionstore",
        _ => "sdiffstore",
    };
    let existed =
        call.ctx.wants(crate::storage::events::class::NEW) && call.ctx.peek(dest)?.is_some();
    // A fresh version: nothing of the old value (of any type) shows through,
    // and no TTL carries over.
    let mut coll = call.new_collection(KeyType::Set);
    number_members(&mut call.ctx, dest, &mut coll, &members);
    coll.existed = existed;
    call.notify_change(dest, &coll, SET, event);
    call.save_collection(dest, &coll);
    Ok(Reply::Int(members.len() as i64))
}

pub fn sinter(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let (_, members) = intersect(call, &args[1..], true, 0, true)?;
    Ok(set_reply(members))
}

pub fn sinterstore(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let (_, members) = intersect(call, &args[2..], false, 0, true)?;
    store(call, &args[1], members)
}

pub fn sunion(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    Ok(set_reply(union(call, &args[1..], true)?))
}

pub fn sunionstore(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let members = union(call, &args[2..], false)?;
    store(call, &args[1], members)
}

pub fn sdiff(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    Ok(set_reply(difference(call, &args[1..], true)?))
}

pub fn sdiffstore(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let members = difference(call, &args[2..], false)?;
    store(call, &args[1], members)
}

pub fn sintercard(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let numkeys = parse_i64(&args[1])
        .filter(|&n| n >= 1)
        .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > args.len() - 2 {
        return Err(CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    let keys = &args[2..2 + numkeys];
    let mut limit = 0u64;
    let mut i = 2 + numkeys;
    while i < args.len() {
        if is(&args[i], "limit") && i + 1 < args.len() {
            limit = parse_i64(&args[i + 1])
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| CmdError::err("LIMIT can't be negative"))?;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let (count, _) = intersect(call, keys, true, limit, false)?;
    Ok(Reply::Int(i64::try_from(count).unwrap_or(i64::MAX)))
}

// ---------------------------------------------------------------------------
// SSCAN.

pub fn sscan(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let cursor = parse_cursor(&args[2])?;
    let Some(coll) = call.read_collection(key, KeyType::Set)? else {
        return Ok(scan_done(Vec::new()));
    };
    let options = ScanOptions::parse(args, 3, false)?;
    let Some(start) = resume_at(call, cursor) else {
        return Ok(scan_done(Vec::new()));
    };
    let mut out = Vec::new();
    let mut next = None;
    for (examined, member) in Members::new(&call.ctx, key, &coll)
        .iter(&call.ctx, &start, false)
        .enumerate()
    {
        let member = member?;
        if examined == options.count {
            next = Some(member);
            break;
        }
        if options.matches(&member) {
            out.push(Reply::Bulk(Bytes::from(member)));
        }
    }
    Ok(scan_reply(call, next, out))
}
