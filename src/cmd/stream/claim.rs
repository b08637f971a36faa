//! XCLAIM and XAUTOCLAIM: moving pending entries to another consumer.

use bytes::Bytes;

use super::read::touch_consumer;
use super::store::{Pending, Stream};
use super::{
    entry_reply, id_reply, nogroup, parse_strict_id, range_start, Call, CmdError, CmdResult,
};
use crate::cmd::args::{err_text, is, parse_i64};
use crate::resp::Reply;
use crate::storage::StreamId;

fn int_or(arg: &[u8], msg: &str) -> CmdResult<i64> {
    parse_i64(arg).ok_or_else(|| CmdError::err(msg))
}

/// The reply for a claimed entry: its ID (JUSTID) or the whole entry.
fn claimed_reply(
    call: &Call<'_, '_>,
    s: &Stream<'_>,
    id: StreamId,
    justid: bool,
) -> CmdResult<Reply> {
    if justid {
        return Ok(id_reply(id));
    }
    let fields = s.entry(call, id)?.unwrap_or_default();
    Ok(entry_reply((id, fields)))
}

pub fn xclaim(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let found = call.read_stream(&args[1])?;
    let group = match &found {
        Some(s) => s.group(call, &args[2])?,
        None => None,
    };
    let (Some(s), Some(mut group)) = (found, group) else {
        return Err(nogroup(&args[1], &args[2]));
    };
    let min_idle = int_or(&args[4], "Invalid min-idle-time argument for XCLAIM")?.max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_strict_id(&args[j], 0) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let now = call.ctx.now_ms as i64;
    let mut force = false;
    let mut justid = false;
    let mut delivery: i64 = -1;
    let mut retrycount: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more > 0 {
            j += 1;
            delivery =
                now.wrapping_sub(int_or(&args[j], "Invalid IDLE option argument for XCLAIM")?);
        } else if is(opt, "time") && more > 0 {
            j += 1;
            delivery = int_or(&args[j], "Invalid TIME option argument for XCLAIM")?;
        } else if is(opt, "retrycount") && more > 0 {
            j += 1;
            retrycount = int_or(&args[j], "Invalid RETRYCOUNT option argument for XCLAIM")?;
        } else if is(opt, "lastid") && more > 0 {
            j += 1;
            last_id = parse_strict_id(&args[j], 0)?;
        } else {
            return Err(CmdError::err(format!(
                "Unrecognized XCLAIM option '{}'",
                err_text(opt, usize::MAX)
            )));
        }
        j += 1;
    }
    if last_id > group.last_id {
        group.last_id = last_id;
        s.put_group(call, &group);
    }
    if delivery < 0 || delivery > now {
        delivery = now;
    }
    let name = &args[3];
    let mut consumer_ready = false;
    let mut out = Vec::new();
    for id in ids {
        let nack = s.pending(call, &group.name, id)?;
        if s.entry(call, id)?.is_none() {
            if let Some(p) = nack {
                s.delete_pending(call, &group.name, &p.consumer, id);
            }
            continue;
        }
        // FORCE makes a pending entry owned by no one yet (delivered once).
        let (mut p, owned) = match nack {
            Some(p) => (p, true),
            None if force => (
                Pending {
                    id,
                    consumer: Bytes::new(),
                    delivery_ms: now as u64,
                    deliveries: 1,
                },
                false,
            ),
            None => continue,
        };
        if owned && min_idle != 0 && now - (p.delivery_ms as i64) < min_idle {
            continue;
        }
        if !consumer_ready {
            touch_consumer(call, &s, &group.name, name)?;
            consumer_ready = true;
        }
        p.delivery_ms = delivery as u64;
        if retrycount >= 0 {
            p.deliveries = retrycount as u64;
        } else if !justid {
            p.deliveries = p.deliveries.saturating_add(1);
        }
        p.consumer = name.clone();
        s.put_pending(call, &group.name, &p)?;
        out.push(claimed_reply(call, &s, id, justid)?);
    }
    Ok(Reply::Array(out))
}

pub fn xautoclaim(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let min_idle = int_or(&args[4], "Invalid min-idle-time argument for XAUTOCLAIM")?.max(0);
    let start = range_start(&args[5])?;
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is(&args[j], "count") && more > 0 {
            count = parse_i64(&args[j + 1])
                .filter(|c| (1..=i64::MAX / 16).contains(c))
                .ok_or_else(|| CmdError::err("COUNT must be > 0"))?;
            j += 1;
        } else if is(&args[j], "justid") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let found = call.read_stream(&args[1])?;
    let group = match &found {
        Some(s) => s.group(call, &args[2])?,
        None => None,
    };
    let (Some(s), Some(group)) = (found, group) else {
        return Err(nogroup(&args[1], &args[2]));
    };
    let mut attempts = count.saturating_mul(10);
    let now = call.ctx.now_ms as i64;
    let name = &args[3];
    let fetch = usize::try_from(attempts.saturating_add(1)).unwrap_or(usize::MAX);
    let pel = s.pending_range(call, &group.name, start, StreamId::MAX, fetch)?;
    let mut next = pel.into_iter();
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut consumer_ready = false;
    while attempts > 0 && count > 0 {
        attempts -= 1;
        let Some(mut p) = next.next() else { break };
        if s.entry(call, p.id)?.is_none() {
            s.delete_pending(call, &group.name, &p.consumer, p.id);
            deleted.push(id_reply(p.id));
            count -= 1;
            continue;
        }
        if min_idle != 0 && now - (p.delivery_ms as i64) < min_idle {
            continue;
        }
        if !consumer_ready {
            touch_consumer(call, &s, &group.name, name)?;
            consumer_ready = true;
        }
        p.delivery_ms = now as u64;
        if !justid {
            p.deliveries = p.deliveries.saturating_add(1);
        }
        p.consumer = name.clone();
        s.put_pending(call, &group.name, &p)?;
        claimed.push(claimed_reply(call, &s, p.id, justid)?);
        count -= 1;
    }
    let cursor = next.next().map_or(StreamId::MIN, |p| p.id);
    Ok(Reply::Array(vec![
        id_reply(cursor),
        Reply::Array(claimed),
        Reply::Array(deleted),
    ]))
}
