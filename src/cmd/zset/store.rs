//! How a sorted set is stored and walked: a member's score entry and its
//! place in the score index, written together; walks of the index by
//! score, by lex range and by rank; storing a computed result.

use crate::storage::events::class::ZSET;
use bytes::Bytes;

use super::super::collection::corrupt;
use super::super::{Call, CmdError, CmdResult, Collection};
use super::range::{LexRange, ScoreRange};
use super::Scored;
use crate::storage::{
    data_key, data_prefix, decode_score, encode_score, prefix_end, Cf, Ctx, KeyType,
};

/// A score entry whose encoding is broken.
pub(super) fn corrupt_entry() -> CmdError {
    corrupt("sorted-set entry")
}

pub(super) fn score_from(raw: &[u8]) -> CmdResult<f64> {
    let bytes: [u8; 8] = raw.try_into().map_err(|_| corrupt_entry())?;
    Ok(decode_score(bytes))
}

/// The live sorted set at `key` for a command that writes.
pub(super) fn zset(call: &Call<'_, '_>, key: &[u8]) -> CmdResult<Option<Collection>> {
    call.collection(key, KeyType::ZSet)
}

pub(in crate::cmd) fn prefix_of(ctx: &Ctx<'_>, key: &[u8], coll: &Collection) -> Vec<u8> {
    data_prefix(ctx.keyspace(), key, coll.version())
}

pub(super) fn score_entry(prefix: &[u8], score: f64, member: &[u8]) -> Vec<u8> {
    [prefix, &encode_score(score)[..], member].concat()
}

pub(in crate::cmd) fn get_score(
    ctx: &Ctx<'_>,
    key: &[u8],
    version: u64,
    member: &[u8],
) -> CmdResult<Option<f64>> {
    ctx.get_data(&data_key(ctx.keyspace(), key, version, member))?
        .map(|v| score_from(&v))
        .transpose()
}

/// Give `member` the score `score`; `old` is its current score (`None`
/// when it is new to the set).
pub(super) fn put_member(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    coll: &mut Collection,
    member: &[u8],
    old: Option<f64>,
    score: f64,
) {
    let prefix = data_prefix(ctx.keyspace(), key, coll.version());
    match old {
        Some(old) => ctx.delete(Cf::ZScore, &score_entry(&prefix, old, member)),
        None => coll.meta.len += 1,
    }
    ctx.put_data(
        &data_key(ctx.keyspace(), key, coll.version(), member),
        &encode_score(score),
    );
    ctx.put(Cf::ZScore, &score_entry(&prefix, score, member), &[]);
}

pub(super) fn remove_member(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    coll: &mut Collection,
    member: &[u8],
    score: f64,
) {
    let prefix = data_prefix(ctx.keyspace(), key, coll.version());
    ctx.delete(Cf::ZScore, &score_entry(&prefix, score, member));
    ctx.delete_data(&data_key(ctx.keyspace(), key, coll.version(), member));
    coll.meta.len = coll.meta.len.saturating_sub(1);
}

/// Walk the score index between `lower` and `upper` (exclusive) of the set
/// whose entries start with a prefix of `plen` bytes, calling
/// `visit(member, score)` until it returns false.
pub(in crate::cmd) fn walk(
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
            return Err(corrupt_entry());
        }
        let score = score_from(&k[plen..plen + 8])?;
        if !visit(&k[plen + 8..], score) {
            break;
        }
    }
    Ok(())
}

/// Walk a whole set in score order (or reversed).
pub(super) fn walk_all(
    ctx: &Ctx<'_>,
    prefix: &[u8],
    reverse: bool,
    visit: impl FnMut(&[u8], f64) -> bool,
) -> CmdResult<()> {
    let end = prefix_end(prefix);
    walk(ctx, prefix.len(), prefix, end.as_deref(), reverse, visit)
}

/// Every member of a set, ascending.
pub(super) fn all_members(ctx: &Ctx<'_>, prefix: &[u8]) -> CmdResult<Vec<Scored>> {
    let mut out = Vec::new();
    walk_all(ctx, prefix, false, |m, s| {
        out.push((Bytes::copy_from_slice(m), s));
        true
    })?;
    Ok(out)
}

/// Members in a score range, in the walk's direction.
pub(super) fn score_walk(
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
pub(super) fn uniform_score(ctx: &Ctx<'_>, prefix: &[u8]) -> CmdResult<Option<f64>> {
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
pub(super) fn lex_walk(
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
pub(super) fn rank_slice(
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
pub(super) fn rank_of(
    ctx: &Ctx<'_>,
    prefix: &[u8],
    len: u64,
    score: f64,
    member: &[u8],
) -> CmdResult<u64> {
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
pub(in crate::cmd) fn store_result(
    call: &mut Call<'_, '_>,
    dst: &[u8],
    items: &[Scored],
) -> CmdResult<i64> {
    if items.is_empty() {
        if call.ctx.peek(dst)?.is_some() {
            call.ctx.delete_key(dst);
            call.ctx
                .notify(crate::storage::events::class::GENERIC, "del", dst);
        }
        return Ok(0);
    }
    let event = match call.args[0].to_ascii_lowercase().as_slice() {
        b"zunionstore" => "zunionstore",
        b"zinterstore" => "zinterstore",
        b"zdiffstore" => "zdiffstore",
        b"geosearchstore" => "geosearchstore",
        b"georadius" | b"georadiusbymember" => "georadiusstore",
        _ => "zrangestore",
    };
    let existed =
        call.ctx.wants(crate::storage::events::class::NEW) && call.ctx.peek(dst)?.is_some();
    let mut coll = call.new_collection(KeyType::ZSet);
    for (member, score) in items {
        put_member(&mut call.ctx, dst, &mut coll, member, None, *score);
    }
    coll.existed = existed;
    call.notify_change(dst, &coll, ZSET, event);
    call.save_collection(dst, &coll);
    Ok(items.len() as i64)
}

/// Remove up to `count` members from the low (or high) end of a set.
pub(super) fn pop_members(
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
        call.ctx
            .notify(ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
        call.save_collection(key, coll);
    }
    Ok(out)
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
}
