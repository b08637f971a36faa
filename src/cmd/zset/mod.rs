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
//!
//! The commands live by concept: [`members`] (ZADD, ZINCRBY, ZREM and the
//! point reads), [`ranges`] (ZRANGE and its relatives, ZREMRANGEBY*),
//! [`pop`] (ZPOP*, ZMPOP and their blocking forms), [`random`]
//! (ZRANDMEMBER), [`setop`] (ZUNION, ZINTER, ZDIFF and their STORE forms),
//! [`zscan`]; the layout above is [`store`]'s, range arguments [`range`]'s.

pub(super) mod members;
mod pop;
mod random;
mod range;
mod ranges;
mod setop;
pub(super) mod store;
mod zscan;

use bytes::Bytes;

use super::table::{commands, flags::*};
use super::{Call, CommandSpec};
use crate::resp::{Protocol, Reply};

pub static COMMANDS: &[CommandSpec] = commands! {
    "zadd", -4, WF, 1, 1, 1, members::zadd;
    "zincrby", 4, WF, 1, 1, 1, members::zincrby;
    "zrem", -3, WDF, 1, 1, 1, members::zrem;
    "zcard", 2, RF, 1, 1, 1, members::zcard;
    "zscore", 3, RF, 1, 1, 1, members::zscore;
    "zmscore", -3, RF, 1, 1, 1, members::zmscore;
    "zrank", 3, RF, 1, 1, 1, members::zrank;
    "zrevrank", 3, RF, 1, 1, 1, members::zrevrank;
    "zcount", 4, RF, 1, 1, 1, members::zcount;
    "zlexcount", 4, RF, 1, 1, 1, members::zlexcount;
    "zrange", -4, R, 1, 1, 1, ranges::zrange;
    "zrangebyscore", -4, R, 1, 1, 1, ranges::zrangebyscore;
    "zrevrangebyscore", -4, R, 1, 1, 1, ranges::zrevrangebyscore;
    "zrangebylex", -4, R, 1, 1, 1, ranges::zrangebylex;
    "zrevrangebylex", -4, R, 1, 1, 1, ranges::zrevrangebylex;
    "zrevrange", -4, R, 1, 1, 1, ranges::zrevrange;
    "zrangestore", -5, W, 1, 2, 1, ranges::zrangestore;
    "zremrangebyrank", 4, WD, 1, 1, 1, ranges::zremrangebyrank;
    "zremrangebyscore", 4, WD, 1, 1, 1, ranges::zremrangebyscore;
    "zremrangebylex", 4, WD, 1, 1, 1, ranges::zremrangebylex;
    "zpopmin", -2, WDF, 1, 1, 1, pop::zpopmin;
    "zpopmax", -2, WDF, 1, 1, 1, pop::zpopmax;
    "bzpopmin", -3, blocking(WDF), 1, -2, 1, pop::bzpopmin;
    "bzpopmax", -3, blocking(WDF), 1, -2, 1, pop::bzpopmax;
    "zmpop", -4, WD, 0, 0, 0, pop::zmpop;
    "bzmpop", -5, blocking(WD), 0, 0, 0, pop::bzmpop;
    "zrandmember", -2, R, 1, 1, 1, random::zrandmember;
    "zunionstore", -4, W, 1, 1, 1, setop::zunionstore;
    "zinterstore", -4, W, 1, 1, 1, setop::zinterstore;
    "zdiffstore", -4, W, 1, 1, 1, setop::zdiffstore;
    "zunion", -3, R, 0, 0, 0, setop::zunion;
    "zinter", -3, R, 0, 0, 0, setop::zinter;
    "zdiff", -3, R, 0, 0, 0, setop::zdiff;
    "zintercard", -3, R, 0, 0, 0, setop::zintercard;
    "zscan", -3, R, 1, 1, 1, zscan::zscan;
};

/// A member with its score.
pub(in crate::cmd) type Scored = (Bytes, f64);

// Replies.

pub(super) fn resp3(call: &Call<'_, '_>) -> bool {
    call.session.protocol == Protocol::Resp3
}

pub(super) fn pair(member: Bytes, score: f64) -> Reply {
    Reply::Array(vec![Reply::Bulk(member), Reply::Double(score)])
}

/// Members, with scores if asked: flat `member, score, …` in RESP2, an
/// array of `[member, score]` pairs in RESP3.
pub(super) fn scored_reply(call: &Call<'_, '_>, items: Vec<Scored>, withscores: bool) -> Reply {
    if !withscores {
        return Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect());
    }
    if resp3(call) {
        Reply::Array(items.into_iter().map(|(m, s)| pair(m, s)).collect())
    } else {
        flat_reply(items)
    }
}

pub(super) fn flat_reply(items: Vec<Scored>) -> Reply {
    let mut out = Vec::with_capacity(items.len() * 2);
    for (m, s) in items {
        out.push(Reply::Bulk(m));
        out.push(Reply::Double(s));
    }
    Reply::Array(out)
}

/// `[[member, score], …]` in both protocols (ZMPOP).
pub(super) fn pairs_reply(items: Vec<Scored>) -> Reply {
    Reply::Array(items.into_iter().map(|(m, s)| pair(m, s)).collect())
}

/// Every member of the sorted set at `key`, by score (SORT's input).
pub(super) fn members_by_score(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &super::Collection,
) -> super::CmdResult<Vec<Bytes>> {
    let prefix = store::prefix_of(&call.ctx, key, coll);
    Ok(store::all_members(&call.ctx, &prefix)?
        .into_iter()
        .map(|(member, _)| member)
        .collect())
}

/// Every (member, score) of the sorted set at `key`, by score (DUMP's input).
pub(super) fn scored_members(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &super::Collection,
) -> super::CmdResult<Vec<Scored>> {
    store::all_members(&call.ctx, &store::prefix_of(&call.ctx, key, coll))
}

/// A new sorted set (fresh version, no TTL, header not saved) holding
/// `items`, whose members are distinct: RESTORE's value, saved by the caller.
pub(super) fn fill_new(
    call: &mut Call<'_, '_>,
    key: &[u8],
    items: &[(Vec<u8>, f64)],
) -> super::Collection {
    let mut coll = call.new_collection(crate::storage::KeyType::ZSet);
    for (member, score) in items {
        store::put_member(&mut call.ctx, key, &mut coll, member, None, *score);
    }
    coll
}
