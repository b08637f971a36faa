//! Set commands.
//!
//! A set is a `CollectionMeta` header (version, cardinality in `len`) plus
//! one data key per member: `data_key(db, key, version, member)` → empty
//! value. Members are therefore kept in byte order, which SSCAN cursors and
//! the random pick below rely on.

use crate::storage::events::class::SET;
use std::collections::{BTreeSet, HashSet};

use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::Rng;

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

/// Sets up to this size are sampled exactly (uniformly) by walking them.
const SMALL_SET: u64 = 1024;
/// Rough cost of one random walk, counted in members a linear pass visits:
/// picking `k` members of `n` walks when `k * WALK_COST < n`, else passes.
const WALK_COST: u64 = 256;
/// Branches of the member trie are counted up to this many members.
const WALK_CAP: u64 = 16;
// ---------------------------------------------------------------------------
// Reading and writing members.

/// The members of one version of a set, as a range of data keys.
struct Members {
    prefix: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl Members {
    fn new(ctx: &Ctx<'_>, key: &[u8], coll: &Collection) -> Members {
        let prefix = data_prefix(ctx.keyspace(), key, coll.version());
        let end = prefix_end(&prefix);
        Members { prefix, end }
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

    /// One member picked at random: uniformly in sets of up to
    /// [`SMALL_SET`] members, by [`Members::random_walk`] in larger ones.
    fn random(&self, ctx: &Ctx<'_>, len: u64) -> CmdResult<Option<Vec<u8>>> {
        if len <= SMALL_SET {
            let n = ctx.rng().random_range(0..len.max(1));
            return self.nth_from(ctx, b"", n);
        }
        self.random_walk(ctx, len)
    }

    /// The member `n` places after `from` (the first one if there are fewer).
    fn nth_from(&self, ctx: &Ctx<'_>, from: &[u8], n: u64) -> CmdResult<Option<Vec<u8>>> {
        let n = usize::try_from(n).unwrap_or(0);
        match self.iter(ctx, from, false).nth(n) {
            Some(m) => m.map(Some),
            // The header disagrees with the elements: take the first.
            None => self.iter(ctx, from, false).next().transpose(),
        }
    }

    /// The first and last members starting with `stem`.
    fn bounds(&self, ctx: &Ctx<'_>, stem: &[u8]) -> CmdResult<Option<(Vec<u8>, Vec<u8>)>> {
        let lower = [&self.prefix[..], stem].concat();
        let upper = prefix_end(&lower).or_else(|| self.end.clone());
        let edge = |reverse: bool| -> CmdResult<Option<Vec<u8>>> {
            let mut it = ctx.iter(Cf::Data, &lower, upper.as_deref(), reverse);
            Ok(it
                .next()
                .transpose()?
                .map(|(k, _)| k[self.prefix.len()..].to_vec()))
        };
        match (edge(false)?, edge(true)?) {
            (Some(first), Some(last)) => Ok(Some((first, last))),
            _ => Ok(None),
        }
    }

    /// A random member of a large set without visiting all of it: a walk
    /// down the byte-trie of members. At each branching point every branch
    /// is counted up to [`WALK_CAP`] members; branches below the cap weigh
    /// their exact size, the others share what is left of the (estimated)
    /// size of the subtree. Small branches are sampled exactly, so the pick
    /// is close to uniform for usual member shapes, and every member can
    /// come up.
    fn random_walk(&self, ctx: &Ctx<'_>, len: u64) -> CmdResult<Option<Vec<u8>>> {
        const MAX_LEVELS: usize = 256;
        let mut stem: Vec<u8> = Vec::new();
        // Estimated number of members under `stem`.
        let mut size = len as f64;
        for _ in 0..MAX_LEVELS {
            let Some((first, last)) = self.bounds(ctx, &stem)? else {
                return Ok(None);
            };
            if first == last {
                return Ok(Some(first));
            }
            // Every member under the stem shares the common prefix of the
            // first and the last one: jump straight to where they branch.
            let common = first.iter().zip(&last).take_while(|(a, b)| a == b).count();
            stem.truncate(0);
            stem.extend_from_slice(&first[..common]);
            let branches = self.branches(ctx, &stem)?;
            if branches.is_empty() {
                return Ok(Some(first));
            }
            let known: u64 = branches.iter().filter_map(|b| b.size).sum();
            let big = branches.iter().filter(|b| b.size.is_none()).count();
            let big_size = if big == 0 {
                0.0
            } else {
                ((size - known as f64) / big as f64).max(WALK_CAP as f64)
            };
            let total = known as f64 + big_size * big as f64;
            let mut target = ctx.rng().random_range(0.0..total.max(f64::MIN_POSITIVE));
            let mut chosen = branches.len() - 1;
            for (i, b) in branches.iter().enumerate() {
                let weight = b.size.map_or(big_size, |n| n as f64);
                if target < weight {
                    chosen = i;
                    break;
                }
                target -= weight;
            }
            let branch = &branches[chosen];
            match (branch.byte, branch.size) {
                // The stem is a member itself.
                (None, _) => return Ok(Some(stem)),
                // A small branch: an exact pick among its members.
                (Some(byte), Some(n)) => {
                    stem.push(byte);
                    let n = ctx.rng().random_range(0..n.max(1));
                    return self.nth_from(ctx, &stem, n);
                }
                (Some(byte), None) => {
                    stem.push(byte);
                    size = big_size;
                }
            }
        }
        // Very deep branching: settle for the first member under the stem.
        Ok(self.bounds(ctx, &stem)?.map(|(first, _)| first))
    }

    /// The branches below `stem` (which members share): the stem itself if
    /// it is a member, then one per distinct next byte, each counted up to
    /// [`WALK_CAP`] members (`None` beyond).
    fn branches(&self, ctx: &Ctx<'_>, stem: &[u8]) -> CmdResult<Vec<Branch>> {
        let mut out = Vec::new();
        let mut it = self.iter(ctx, stem, false);
        let mut next = it.next().transpose()?;
        while let Some(member) = next.take() {
            if !member.starts_with(stem) {
                break;
            }
            if member.len() == stem.len() {
                out.push(Branch {
                    byte: None,
                    size: Some(1),
                });
                next = it.next().transpose()?;
                continue;
            }
            let branch = &member[..=stem.len()];
            let mut n = 1;
            while n < WALK_CAP {
                match it.next().transpose()? {
                    Some(m) if m.starts_with(branch) => n += 1,
                    other => {
                        next = other;
                        break;
                    }
                }
            }
            let byte = member[stem.len()];
            if n < WALK_CAP {
                out.push(Branch {
                    byte: Some(byte),
                    size: Some(n),
                });
                continue;
            }
            out.push(Branch {
                byte: Some(byte),
                size: None,
            });
            // Skip the rest of a big branch with one seek.
            let Some(after) = byte.checked_add(1) else {
                break;
            };
            let seek = [stem, &[after]].concat();
            it = self.iter(ctx, &seek, false);
            next = it.next().transpose()?;
        }
        Ok(out)
    }
}

/// One branch of the member trie below a stem.
struct Branch {
    /// The byte after the stem; `None` for the stem itself.
    byte: Option<u8>,
    /// Exact member count, when below [`WALK_CAP`].
    size: Option<u64>,
}

fn member_key(ctx: &Ctx<'_>, key: &[u8], coll: &Collection, member: &[u8]) -> Vec<u8> {
    data_key(ctx.keyspace(), key, coll.version(), member)
}

fn is_member(ctx: &Ctx<'_>, key: &[u8], coll: &Collection, member: &[u8]) -> CmdResult<bool> {
    Ok(ctx.get_data(&member_key(ctx, key, coll, member))?.is_some())
}

/// Remove members known to be in the set, and keep its header exact.
fn remove_members(
    call: &mut Call<'_, '_>,
    key: &[u8],
    coll: &mut Collection,
    members: &[Bytes],
    event: &'static str,
) {
    for member in members {
        let raw = member_key(&call.ctx, key, coll, member);
        call.ctx.delete_data(&raw);
    }
    coll.meta.len = coll.meta.len.saturating_sub(members.len() as u64);
    call.notify_change(key, coll, SET, event);
    call.save_collection(key, coll);
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
    let mut added = 0u64;
    for member in &args[2..] {
        let raw = member_key(&call.ctx, key, &coll, member);
        // Reads see this command's own writes: a member named twice counts once.
        if call.ctx.get_data(&raw)?.is_none() {
            call.ctx.put_data(&raw, b"");
            added += 1;
        }
    }
    if added > 0 {
        coll.meta.len += added;
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
    let removed = call.remove_elements(key, &mut coll, &args[2..], (SET, "srem"))?;
    Ok(Reply::Int(removed as i64))
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
    remove_members(
        call,
        src_key,
        &mut src,
        std::slice::from_ref(member),
        "srem",
    );
    let mut dst = match dst {
        Some(dst) => dst,
        None => call.new_collection(KeyType::Set),
    };
    let raw = member_key(&call.ctx, dst_key, &dst, member);
    if call.ctx.get_data(&raw)?.is_none() {
        call.ctx.put_data(&raw, b"");
        dst.meta.len += 1;
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
    let members = Members::new(&call.ctx, key, &coll);
    let len = coll.len();
    let Some(count) = count else {
        let Some(member) = members.random(&call.ctx, len)? else {
            return Ok(Reply::Nil);
        };
        let member = Bytes::from(member);
        remove_members(call, key, &mut coll, std::slice::from_ref(&member), "spop");
        return Ok(Reply::Bulk(member));
    };
    if count == 0 {
        return Ok(Reply::Set(Vec::new()));
    }
    if count >= len {
        // Everything: one meta delete; the elements are reclaimed later.
        let all = members.all(&call.ctx)?;
        call.ctx.delete_key(key);
        return Ok(set_reply(all));
    }
    let popped = if len <= SMALL_SET || count.saturating_mul(WALK_COST) >= len {
        members.sample_by_pass(&call.ctx, len, count)?
    } else {
        // A few members of a large set: one walk each, removing as we go
        // (the walk sees this command's deletions).
        let mut popped = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let Some(member) =
                members.random_walk(&call.ctx, coll.len().saturating_sub(popped.len() as u64))?
            else {
                break;
            };
            let raw = member_key(&call.ctx, key, &coll, &member);
            call.ctx.delete_data(&raw);
            popped.push(Bytes::from(member));
        }
        coll.meta.len = coll.meta.len.saturating_sub(popped.len() as u64);
        call.notify_change(key, &coll, SET, "spop");
        call.save_collection(key, &coll);
        return Ok(set_reply(popped));
    };
    remove_members(call, key, &mut coll, &popped, "spop");
    Ok(set_reply(popped))
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
        return Ok(Reply::bulk_opt(members.random(ctx, len)?));
    };
    if count == 0 || len == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    if count > 0 {
        let count = count.unsigned_abs();
        if count >= len {
            return Ok(array_reply(members.all(ctx)?));
        }
        let mut picked = if len <= SMALL_SET || count.saturating_mul(WALK_COST) >= len {
            members.sample_by_pass(ctx, len, count)?
        } else {
            distinct_walks(ctx, &members, len, count)?
        };
        picked.shuffle(&mut *ctx.rng());
        return Ok(array_reply(picked));
    }
    // Negative: that many picks, repeats allowed.
    let picks = repeated_picks(count.unsigned_abs())?;
    let picked = if len <= SMALL_SET || picks.saturating_mul(WALK_COST) >= len {
        let positions = repeated_positions(&mut *ctx.rng(), len, picks);
        let mut picked = members.at_positions(ctx, &positions)?;
        picked.shuffle(&mut *ctx.rng());
        picked
    } else {
        let mut picked = Vec::with_capacity(picks as usize);
        for _ in 0..picks {
            if let Some(m) = members.random_walk(ctx, len)? {
                picked.push(Bytes::from(m));
            }
        }
        picked
    };
    Ok(array_reply(picked))
}

/// `count` distinct members of a large set by random walks; falls back to
/// one pass when the walks keep landing on members already picked.
fn distinct_walks(ctx: &Ctx<'_>, members: &Members, len: u64, count: u64) -> CmdResult<Vec<Bytes>> {
    let mut seen = HashSet::new();
    let mut picked = Vec::with_capacity(count as usize);
    let mut attempts = count.saturating_mul(4).saturating_add(16);
    while (picked.len() as u64) < count && attempts > 0 {
        attempts -= 1;
        let Some(m) = members.random_walk(ctx, len)? else {
            break;
        };
        if seen.insert(m.clone()) {
            picked.push(Bytes::from(m));
        }
    }
    if (picked.len() as u64) < count {
        return members.sample_by_pass(ctx, len, count);
    }
    Ok(picked)
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

/// A new set (fresh version, no TTL, header not saved) holding `members`,
/// which are distinct: RESTORE's value, saved by the caller.
pub(super) fn fill_new(call: &mut Call<'_, '_>, key: &[u8], members: &[Vec<u8>]) -> Collection {
    let mut coll = call.new_collection(KeyType::Set);
    for member in members {
        let raw = member_key(&call.ctx, key, &coll, member);
        call.ctx.put_data(&raw, b"");
    }
    coll.meta.len = members.len() as u64;
    coll
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
    for member in &members {
        let raw = member_key(&call.ctx, dest, &coll, member);
        call.ctx.put_data(&raw, b"");
    }
    coll.meta.len = members.len() as u64;
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
