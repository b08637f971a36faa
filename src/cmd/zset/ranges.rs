//! ZRANGE and its relatives (Redis's zrangeGenericCommand: by rank, score
//! or lex, either direction, LIMIT, the STORE form) and ZREMRANGEBY*.

use crate::storage::events::class::ZSET;
use bytes::Bytes;

use super::super::collection::index_range;
use super::super::{int_arg, is, Call, CmdError, CmdResult};
use super::range::{LexRange, ScoreRange};
use super::store::{
    lex_walk, prefix_of, rank_slice, remove_member, score_walk, store_result, zset,
};
use super::{scored_reply, Scored};
use crate::resp::Reply;
use crate::storage::{Ctx, KeyType};

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
            let Some((start, end)) = index_range(len, *start, *end) else {
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
    let items = match call.read_collection(key, KeyType::ZSet)? {
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
        let event = match kind {
            RangeKind::Score => "zremrangebyscore",
            RangeKind::Lex => "zremrangebylex",
            _ => "zremrangebyrank",
        };
        call.ctx.notify(ZSET, event, key);
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
