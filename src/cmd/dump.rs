//! DUMP and RESTORE: a key's value in Redis 7.0's serialization format
//! (`rdb::value`), so values travel between Kiwi and redis-server both ways.
//!
//! DUMP reads the value through each family's accessors; RESTORE writes a
//! fresh collection version through each family's writer, so nothing of a
//! replaced value shows through, and it is an ordinary write (under Raft
//! its apply depends only on the entry: the TTL is computed from the
//! entry's clock).

use bytes::Bytes;

use super::lookup::count_lookup;
use super::{hash, int_arg, is, list, set, stream, zset, Call, CmdError, CmdResult};
use crate::rdb::value::{decode_payload, encode_payload, Value};
use crate::rdb::RdbError;
use crate::resp::Reply;
use crate::storage::events::class;
use crate::storage::{KeyType, Meta, MetaBody};

pub fn dump(call: &mut Call<'_, '_>) -> CmdResult {
    let key = &call.args[1];
    let meta = call.ctx.get_meta(key)?;
    count_lookup(call, meta.is_some(), key);
    let value = match meta.map(|m| m.body) {
        None => return Ok(Reply::Nil),
        Some(MetaBody::String(v)) => Value::String(v.to_vec()),
        Some(MetaBody::Collection(c)) => {
            let coll = call
                .collection(key, c.kind)?
                .ok_or_else(|| CmdError::err("the key vanished while dumping"))?;
            let bytes = |items: Vec<Bytes>| items.into_iter().map(|b| b.to_vec()).collect();
            match c.kind {
                KeyType::List => Value::List(bytes(list::elements(call, key, &coll)?)),
                KeyType::Set => Value::Set(bytes(set::members_of(call, key, &coll)?)),
                KeyType::Hash => Value::Hash(hash::fields_of(call, key, &coll)?),
                KeyType::ZSet => Value::ZSet(
                    zset::scored_members(call, key, &coll)?
                        .into_iter()
                        .map(|(m, s)| (m.to_vec(), s))
                        .collect(),
                ),
                KeyType::String => return Err(CmdError::WrongType),
                KeyType::Stream => Value::Stream(Box::new(
                    stream::persist::dump_value(call, key)?
                        .ok_or_else(|| CmdError::err("the key vanished while dumping"))?,
                )),
            }
        }
    };
    Ok(Reply::Bulk(Bytes::from(encode_payload(&value))))
}

/// RESTORE's options after the payload.
#[derive(Debug, Default)]
struct Options {
    replace: bool,
    absttl: bool,
}

/// Redis's order: options (IDLETIME and FREQ are validated, then ignored:
/// Kiwi keeps no LRU/LFU data), BUSYKEY, the TTL, the payload's footer,
/// then its value.
fn parse_options(args: &[Bytes]) -> CmdResult<Options> {
    let mut o = Options::default();
    let (mut idle, mut freq) = (false, false);
    let mut j = 0;
    while let Some(opt) = args.get(j) {
        let value = args.get(j + 1);
        if is(opt, "replace") {
            o.replace = true;
        } else if is(opt, "absttl") {
            o.absttl = true;
        } else if let (true, Some(v), false) = (is(opt, "idletime"), value, freq) {
            if int_arg(v)? < 0 {
                return Err(CmdError::err("Invalid IDLETIME value, must be >= 0"));
            }
            idle = true;
            j += 1;
        } else if let (true, Some(v), false) = (is(opt, "freq"), value, idle) {
            if !(0..=255).contains(&int_arg(v)?) {
                return Err(CmdError::err("Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = true;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

pub fn restore(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let o = parse_options(&args[4..])?;
    if !o.replace && call.ctx.peek(key)?.is_some() {
        return Err(CmdError::Raw(
            "BUSYKEY Target key name already exists.".into(),
        ));
    }
    let ttl = int_arg(&args[2])?;
    if ttl < 0 {
        return Err(CmdError::err("Invalid TTL value, must be >= 0"));
    }
    // Footer, format, or a type Kiwi does not have: each its own text.
    let value = decode_payload(&args[3]).map_err(|e: RdbError| CmdError::err(e.to_string()))?;
    let deleted = o.replace && call.ctx.peek(key)?.is_some();
    if deleted {
        call.ctx.delete_key(key);
    }
    let now = i64::try_from(call.ctx.now_ms).unwrap_or(i64::MAX);
    // Redis adds the clock with C's wrapping arithmetic: a TTL so large it
    // wraps negative is "already expired".
    let at = match (ttl, o.absttl) {
        (0, _) => None,
        (t, true) => Some(t),
        (t, false) => Some(t.wrapping_add(now)),
    };
    if at.is_some_and(|at| at <= now) {
        if deleted {
            call.ctx.notify(class::GENERIC, "del", key);
        }
        return Ok(Reply::OK);
    }
    let expire_at_ms = at.map(|at| at as u64);
    let mut coll = match value {
        Value::String(s) => {
            call.ctx
                .put_meta(key, &Meta::string(Bytes::from(s), expire_at_ms));
            None
        }
        Value::List(items) => Some(list::fill_new(call, key, &items)?),
        Value::Set(members) => Some(set::fill_new(call, key, &members)),
        Value::Hash(pairs) => Some(hash::fill_new(call, key, &pairs)),
        Value::ZSet(items) => Some(zset::fill_new(call, key, &items)),
        Value::Stream(value) => {
            stream::persist::restore_value(call, key, &value, expire_at_ms)?;
            None
        }
    };
    if let Some(coll) = coll.as_mut() {
        coll.expire_at_ms = expire_at_ms;
        call.save_collection(key, coll);
    }
    call.ctx.notify(class::NEW, "new", key);
    call.ctx.notify(class::GENERIC, "restore", key);
    Ok(Reply::OK)
}
