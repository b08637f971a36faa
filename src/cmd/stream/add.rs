//! XADD, XTRIM, XDEL, XLEN, XRANGE, XREVRANGE and XSETID.

use bytes::Bytes;

use super::store::{Trim, TrimBy};
use super::{
    entries_reply, id_reply, parse_add_id, parse_strict_id, range_end, range_start, Call, CmdError,
    CmdResult, ParsedId,
};
use crate::cmd::args::{int_arg, is};
use crate::resp::Reply;
use crate::storage::events::class::{NEW, STREAM};
use crate::storage::StreamId;

/// Redis's default LIMIT of `~` trimming: 100 × stream-node-max-entries.
const APPROX_LIMIT: u64 = 100 * 100;

/// XADD's and XTRIM's options (streamParseAddOrTrimArgsOrReply).
struct AddArgs {
    trim: Option<Trim>,
    nomkstream: bool,
    /// XADD: the ID argument's position and what it says (`None`: `*`).
    id_pos: usize,
    id: Option<ParsedId>,
}

fn parse_add_or_trim(args: &[Bytes], xadd: bool) -> CmdResult<AddArgs> {
    let mut by: Option<TrimBy> = None;
    let mut approx = false;
    let mut limit: Option<u64> = None;
    let mut nomkstream = false;
    let mut id = None;
    let mut i = 2;
    let both = || {
        CmdError::err("syntax error, MAXLEN and MINID options at the same time are not compatible")
    };
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if is(opt, "maxlen") && more > 0 {
            if by.is_some() {
                return Err(both());
            }
            approx = false;
            let next = &args[i + 1];
            if more >= 2 && next.as_ref() == b"~" {
                approx = true;
                i += 1;
            } else if more >= 2 && next.as_ref() == b"=" {
                i += 1;
            }
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err(CmdError::err("The MAXLEN argument must be >= 0."));
            }
            i += 1;
            by = Some(TrimBy::MaxLen(n as u64));
        } else if is(opt, "minid") && more > 0 {
            if by.is_some() {
                return Err(both());
            }
            approx = false;
            let next = &args[i + 1];
            if more >= 2 && next.as_ref() == b"~" {
                approx = true;
                i += 1;
            } else if more >= 2 && next.as_ref() == b"=" {
                i += 1;
            }
            let min = parse_strict_id(&args[i + 1], 0)?;
            i += 1;
            by = Some(TrimBy::MinId(min));
        } else if is(opt, "limit") && more > 0 {
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err(CmdError::err("The LIMIT argument must be >= 0."));
            }
            limit = Some(n as u64);
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            nomkstream = true;
        } else if xadd {
            id = Some(parse_add_id(opt)?);
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if limit.is_some_and(|l| l != 0) && by.is_none() {
        return Err(CmdError::err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && by.is_none() {
        return Err(CmdError::err(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    let limit = match limit {
        Some(_) if !approx => {
            return Err(CmdError::err(
                "syntax error, LIMIT cannot be used without the special ~ option",
            ))
        }
        Some(l) => l,
        None if approx => APPROX_LIMIT,
        None => 0,
    };
    Ok(AddArgs {
        trim: by.map(|by| Trim { by, approx, limit }),
        nomkstream,
        id_pos: i,
        id,
    })
}

pub fn xadd(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let parsed = parse_add_or_trim(args, true)?;
    let field_pos = parsed.id_pos + 1;
    let nfields = args.len().saturating_sub(field_pos);
    if nfields < 2 || nfields % 2 == 1 {
        return Err(CmdError::Arity("xadd".into()));
    }
    if let Some(p) = parsed.id {
        if p.seq_given && p.id == StreamId::MIN {
            return Err(CmdError::err(
                "The ID specified in XADD must be greater than 0-0",
            ));
        }
    }
    let mut s = match call.stream(key)? {
        Some(s) => s,
        None if parsed.nomkstream => return Ok(Reply::Nil),
        None => call.new_stream(key),
    };
    let last = s.last_id();
    if last == StreamId::MAX {
        return Err(CmdError::err(
            "The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let id = match parsed.id {
        Some(ParsedId {
            id,
            seq_given: true,
        }) => Some(id),
        Some(ParsedId { id, .. }) if id.ms == last.ms => {
            if last.seq == u64::MAX {
                // Redis fails here without setting errno to EDOM, so it
                // answers with its other error.
                return Err(CmdError::err("Elements are too large to be stored"));
            }
            Some(StreamId::new(last.ms, last.seq + 1))
        }
        Some(ParsedId { id, .. }) => Some(id),
        None => {
            let now = call.ctx.now_ms;
            if now > last.ms {
                Some(StreamId::new(now, 0))
            } else {
                last.next()
            }
        }
    };
    let id = match id {
        Some(id) if id > last => id,
        _ => {
            return Err(CmdError::err(
                "The ID specified in XADD is equal or smaller than the target stream top item",
            ))
        }
    };
    let fields = &args[field_pos..];
    s.append(call, id, fields)?;
    if !s.coll.existed {
        call.ctx.notify(NEW, "new", key);
    }
    call.ctx.notify(STREAM, "xadd", key);
    if let Some(trim) = parsed.trim {
        if s.trim(call, &trim)? > 0 {
            call.ctx.notify(STREAM, "xtrim", key);
        }
    }
    s.save(call);
    Ok(id_reply(id))
}

pub fn xtrim(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let parsed = parse_add_or_trim(args, false)?;
    let Some(mut s) = call.stream(&args[1])? else {
        return Ok(Reply::Int(0));
    };
    let Some(trim) = parsed.trim else {
        return Ok(Reply::Int(0));
    };
    let deleted = s.trim(call, &trim)?;
    if deleted > 0 {
        call.ctx.notify(STREAM, "xtrim", &args[1]);
        s.save(call);
    }
    Ok(Reply::Int(deleted as i64))
}

pub fn xdel(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let Some(mut s) = call.stream(&args[1])? else {
        return Ok(Reply::Int(0));
    };
    let ids = args[2..]
        .iter()
        .map(|a| parse_strict_id(a, 0))
        .collect::<CmdResult<Vec<_>>>()?;
    let mut deleted = 0i64;
    let mut first_gone = false;
    for id in ids {
        if s.remove(call, id)? {
            let m = &mut s.coll.meta.stream;
            if id == m.first_id {
                first_gone = true;
            }
            if id > m.max_deleted {
                m.max_deleted = id;
            }
            deleted += 1;
        }
    }
    if deleted > 0 {
        if s.len() == 0 || first_gone {
            s.refresh_first(call)?;
        }
        call.ctx.notify(STREAM, "xdel", &args[1]);
        s.save(call);
    }
    Ok(Reply::Int(deleted))
}

pub fn xlen(call: &mut Call<'_, '_>) -> CmdResult {
    let key = &call.args[1];
    Ok(Reply::Int(
        call.read_stream(key)?.map_or(0, |s| s.len() as i64),
    ))
}

fn xrange_generic(call: &mut Call<'_, '_>, rev: bool) -> CmdResult {
    let args = call.args;
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let start = range_start(start_arg)?;
    let end = range_end(end_arg)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if is(&args[j], "count") && j + 1 < args.len() {
            count = int_arg(&args[j + 1])?.max(0);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let Some(s) = call.read_stream(&args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count == 0 {
        return Ok(Reply::NilArray);
    }
    let count = usize::try_from(count).unwrap_or(0);
    let entries = s.range(call, start, end, rev, count)?;
    Ok(entries_reply(entries))
}

pub fn xrange(call: &mut Call<'_, '_>) -> CmdResult {
    xrange_generic(call, false)
}

pub fn xrevrange(call: &mut Call<'_, '_>) -> CmdResult {
    xrange_generic(call, true)
}

pub fn xsetid(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let id = parse_strict_id(&args[2], 0)?;
    let mut entries_added: i64 = -1;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if is(&args[i], "entriesadded") && more > 0 {
            entries_added = int_arg(&args[i + 1])?;
            if entries_added < 0 {
                return Err(CmdError::err("entries_added must be positive"));
            }
            i += 2;
        } else if is(&args[i], "maxdeletedid") && more > 0 {
            max_deleted = parse_strict_id(&args[i + 1], 0)?;
            if id < max_deleted {
                return Err(CmdError::err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let Some(mut s) = call.stream(&args[1])? else {
        return Err(CmdError::NoSuchKey);
    };
    if s.len() > 0 {
        let top = s.edge(call, true)?.unwrap_or(StreamId::MIN);
        if id < top {
            return Err(CmdError::err(
                "The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if entries_added != -1 && s.len() > entries_added as u64 {
            return Err(CmdError::err(
                "The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    let m = &mut s.coll.meta.stream;
    m.last_id = id;
    if entries_added != -1 {
        m.entries_added = entries_added as u64;
    }
    if max_deleted != StreamId::MIN {
        m.max_deleted = max_deleted;
    }
    s.save(call);
    call.ctx.notify(STREAM, "xsetid", &args[1]);
    Ok(Reply::Status("OK"))
}
