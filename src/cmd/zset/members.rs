//! Commands on single members: ZADD, ZINCRBY, ZREM, and the point reads
//! ZCARD, ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZCOUNT, ZLEXCOUNT.

use super::super::{is, Call, CmdError, CmdResult};
use super::range::{score_arg, LexRange, ScoreRange};
use super::store::{
    get_score, lex_walk, prefix_of, put_member, rank_of, remove_member, score_walk, zset,
};
use crate::resp::Reply;
use crate::storage::events::class::ZSET;
use crate::storage::KeyType;

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
        .map(|p| Ok((score_arg(&p[0])?, &p[1][..])))
        .collect::<CmdResult<Vec<_>>>()?;
    let opts = AddOptions {
        nx,
        xx,
        gt,
        lt,
        ch,
        incr,
    };
    add_scored(call, key, opts, &pairs)
}

/// ZADD's options, checked for conflicts by the caller.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::cmd) struct AddOptions {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
}

/// ZADD's work once its arguments are read (GEOADD ends here too): give
/// each member its score, in order, and answer what ZADD answers.
pub(in crate::cmd) fn add_scored(
    call: &mut Call<'_, '_>,
    key: &[u8],
    opts: AddOptions,
    pairs: &[(f64, &[u8])],
) -> CmdResult {
    let AddOptions {
        nx,
        xx,
        gt,
        lt,
        ch,
        incr,
    } = opts;
    let mut coll = match zset(call, key)? {
        Some(c) => c,
        None if xx => return Ok(if incr { Reply::Nil } else { Reply::Int(0) }),
        None => call.new_collection(KeyType::ZSet),
    };
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last_score = 0.0;
    for &(score, member) in pairs {
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
        let event = if incr { "zincr" } else { "zadd" };
        call.notify_change(key, &coll, ZSET, event);
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
        call.notify_change(key, &coll, ZSET, "zincr");
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
        call.ctx.notify(ZSET, "zrem", key);
        call.save_collection(key, &coll);
    }
    Ok(Reply::Int(removed))
}

// ------------------------------------------------------------ point reads

pub fn zcard(call: &mut Call<'_, '_>) -> CmdResult {
    let len = call
        .read_collection(&call.args[1], KeyType::ZSet)?
        .map_or(0, |c| c.len());
    Ok(Reply::Int(len as i64))
}

pub fn zscore(call: &mut Call<'_, '_>) -> CmdResult {
    let (key, member) = (&call.args[1], &call.args[2]);
    let Some(coll) = call.read_collection(key, KeyType::ZSet)? else {
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
    let coll = call.read_collection(key, KeyType::ZSet)?;
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
    let Some(coll) = call.read_collection(key, KeyType::ZSet)? else {
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
    let Some(coll) = call.read_collection(&args[1], KeyType::ZSet)? else {
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
    let Some(coll) = call.read_collection(&args[1], KeyType::ZSet)? else {
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
