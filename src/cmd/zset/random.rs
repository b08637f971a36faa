//! ZRANDMEMBER (Redis's zrandmemberCommand and zrandmemberWithCountCommand),
//! on the shared sampling helper.

use bytes::Bytes;

use super::super::sample::{distinct_positions, repeated_picks, repeated_positions, Picker};
use super::super::{int_arg, is, Call, CmdError, CmdResult};
use super::scored_reply;
use super::store::{all_members, prefix_of, rank_slice, walk_all};
use crate::resp::Reply;
use crate::storage::KeyType;

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
    let Some(coll) = call.read_collection(key, KeyType::ZSet)? else {
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
    let Some(coll) = call.read_collection(key, KeyType::ZSet)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let size = coll.len();
    let prefix = prefix_of(&call.ctx, key, &coll);
    // Redis's zrandmemberWithCountCommand: CASE 1, a negative count, picks
    // with repeats; CASE 2, a count covering the set, answers all of it;
    // CASES 3 and 4 (Redis copies the set, or picks until it has enough)
    // take distinct positions here. Either way one walk of the score index
    // keeps only the picks and stops after the last one.
    let positions = if count < 0 {
        let picks = repeated_picks(count.unsigned_abs())?;
        repeated_positions(&mut rand::rng(), size, picks)
    } else if count.unsigned_abs() >= size {
        let mut all = all_members(&call.ctx, &prefix)?;
        // The whole set; Redis answers it highest score first.
        all.reverse();
        return Ok(scored_reply(call, all, withscores));
    } else {
        distinct_positions(&mut rand::rng(), size, count.unsigned_abs())
    };
    let mut picker = Picker::new(&positions);
    walk_all(&call.ctx, &prefix, false, |m, s| {
        picker.offer(|| (Bytes::copy_from_slice(m), s))
    })?;
    let items = picker.finish_shuffled(&mut rand::rng());
    Ok(scored_reply(call, items, withscores))
}
