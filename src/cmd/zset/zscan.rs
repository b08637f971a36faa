//! ZSCAN: small sets whole in score order, larger ones in member order
//! from the cursor's member on.

use bytes::Bytes;

use super::super::scan::{parse_cursor, resume_at, scan_done, scan_reply, ScanOptions};
use super::super::{Call, CmdResult};
use super::store::{prefix_of, score_from, walk_all};
use crate::num::{d2string, format_double};
use crate::resp::Reply;
use crate::storage::{prefix_end, Cf, KeyType};

/// Sets up to this size answer a ZSCAN in one reply (cursor 0) in score
/// order, as Redis's listpack-encoded sorted sets do.
const SCAN_ALL_AT_ONCE: u64 = 128;

pub fn zscan(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let cursor = parse_cursor(&args[2])?;
    let Some(coll) = call.read_collection(key, KeyType::ZSet)? else {
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
