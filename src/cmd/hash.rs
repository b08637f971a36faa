//! Hash commands (HSET, HGET).
//!
//! A hash is a `CollectionMeta` record holding its version and field count,
//! plus one data key per field: `data_key(db, key, version, field)` → value.

use std::collections::HashSet;

use super::strings::count_lookup;
use super::table::{commands, flags::*};
use super::{Call, CmdError, CmdResult, CommandSpec};
use crate::resp::Reply;
use crate::storage::{data_key, CollectionMeta, KeyType, Meta, MetaBody};

pub static COMMANDS: &[CommandSpec] = commands! {
    "hset", -4, WF, 1, 1, 1, hset;
    "hget", 3, RF, 1, 1, 1, hget;
};

/// The collection header of a live hash at `key`; WRONGTYPE for others.
fn hash_meta(call: &Call<'_, '_>, key: &[u8]) -> CmdResult<Option<(CollectionMeta, Meta)>> {
    match call.get_typed(key, KeyType::Hash)? {
        Some(meta) => match meta.body {
            MetaBody::Collection(coll) => Ok(Some((coll, meta))),
            MetaBody::String(_) => Err(CmdError::WrongType),
        },
        None => Ok(None),
    }
}

pub fn hset(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    // name, key, then field/value pairs.
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::Arity("hset".into()));
    }
    let key = &args[1];
    let db = call.ctx.db;
    let (mut coll, expire_at_ms, existed) = match hash_meta(call, key)? {
        Some((coll, meta)) => (coll, meta.expire_at_ms, true),
        // A new hash (also over an expired one) takes a fresh version, so
        // elements of any older version stay invisible.
        None => (
            CollectionMeta {
                kind: KeyType::Hash,
                version: call.ctx.next_version(),
                len: 0,
                head: 0,
                tail: 0,
            },
            None,
            false,
        ),
    };
    // Fields written by this command: reads do not see the pending batch,
    // so a field named twice must not count as new twice.
    let mut written = HashSet::new();
    let mut created = 0u64;
    for pair in args[2..].chunks_exact(2) {
        let (field, value) = (&pair[0], &pair[1]);
        let raw = data_key(db, key, coll.version, field);
        if written.insert(&field[..]) && (!existed || call.ctx.get_data(&raw)?.is_none()) {
            created += 1;
        }
        call.ctx.put_data(&raw, value);
    }
    if created > 0 || !existed {
        coll.len += created;
        let meta = Meta {
            expire_at_ms,
            body: MetaBody::Collection(coll),
        };
        call.ctx.put_meta(key, &meta);
    }
    Ok(Reply::Int(created as i64))
}

pub fn hget(call: &mut Call<'_, '_>) -> CmdResult {
    let (key, field) = (&call.args[1], &call.args[2]);
    let meta = call.ctx.get_meta(key)?;
    count_lookup(call, meta.is_some());
    let coll = match meta {
        None => return Ok(Reply::Nil),
        Some(Meta {
            body: MetaBody::Collection(coll),
            ..
        }) if coll.kind == KeyType::Hash => coll,
        Some(_) => return Err(CmdError::WrongType),
    };
    let value = call
        .ctx
        .get_data(&data_key(call.ctx.db, key, coll.version, field))?;
    Ok(Reply::bulk_opt(value))
}
