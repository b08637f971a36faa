//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD (Redis's
//! zunionInterDiffGenericCommand): plain sets count as sorted sets whose
//! members all score 1.

use std::cmp::Ordering;
use std::collections::HashMap;

use bytes::Bytes;

use super::super::lookup::count_lookup;
use super::super::{int_arg, is, parse_i64, Call, CmdError, CmdResult};
use super::store::{all_members, get_score, store_result};
use super::{scored_reply, Scored};
use crate::num::string2d;
use crate::resp::Reply;
use crate::storage::{data_key, data_prefix, CollectionMeta, Ctx, KeyType, Meta, MetaBody};

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
        let prefix = data_prefix(ctx.keyspace(), self.key, meta.version);
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
        let found = ctx.get_data(&data_key(ctx.keyspace(), self.key, meta.version, member))?;
        Ok(found.map(|_| 1.0))
    }
}

fn open_source<'k>(call: &Call<'_, '_>, key: &'k [u8]) -> CmdResult<Source<'k>> {
    let found = call.ctx.get_meta(key)?;
    // Counted before the type check: another type is a hit, as in Redis.
    count_lookup(call, found.is_some(), key);
    let meta = match found {
        None => None,
        Some(Meta {
            body: MetaBody::Collection(c),
            ..
        }) if c.kind == KeyType::ZSet || c.kind == KeyType::Set => Some(c),
        Some(_) => return Err(CmdError::WrongType),
    };
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
                source.weight = string2d(&args[j])
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
