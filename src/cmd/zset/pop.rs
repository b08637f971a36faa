//! Popping the lowest or highest members: ZPOPMIN, ZPOPMAX, ZMPOP, and the
//! blocking BZPOPMIN, BZPOPMAX, BZMPOP (which answer at once when a set has
//! members and otherwise return [`Outcome::Block`] with Redis's timeout
//! reply).

use super::super::{is, parse_i64, timeout_arg, BlockOn, Call, CmdError, CmdResult, Outcome};
use super::store::{pop_members, zset};
use super::{flat_reply, pairs_reply, scored_reply};
use crate::resp::Reply;

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

fn bzpop_generic(call: &mut Call<'_, '_>, max: bool) -> CmdResult<Outcome> {
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
    Ok(Outcome::Block(BlockOn {
        keys: keys.to_vec(),
        timeout,
        timeout_reply: Reply::NilArray,
        refused_reply: Reply::NilArray,
        retry_args: None,
        wake_all: false,
    }))
}

pub fn bzpopmin(call: &mut Call<'_, '_>) -> CmdResult<Outcome> {
    bzpop_generic(call, false)
}

pub fn bzpopmax(call: &mut Call<'_, '_>) -> CmdResult<Outcome> {
    bzpop_generic(call, true)
}

/// ZMPOP / BZMPOP from `numkeys_idx` on; `block` carries BZMPOP's timeout.
fn zmpop_generic(
    call: &mut Call<'_, '_>,
    numkeys_idx: usize,
    blocking: bool,
) -> CmdResult<Outcome> {
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
        Some(timeout) => Ok(Outcome::Block(BlockOn {
            keys: keys.to_vec(),
            timeout,
            timeout_reply: Reply::NilArray,
            refused_reply: Reply::NilArray,
            retry_args: None,
            wake_all: false,
        })),
    }
}

pub fn zmpop(call: &mut Call<'_, '_>) -> CmdResult<Outcome> {
    zmpop_generic(call, 1, false)
}

pub fn bzmpop(call: &mut Call<'_, '_>) -> CmdResult<Outcome> {
    zmpop_generic(call, 2, true)
}
