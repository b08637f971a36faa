//! Keyspace commands: DEL, EXISTS, TYPE, KEYS, SCAN, RENAME, RANDOMKEY,
//! DBSIZE, FLUSHDB/FLUSHALL and the expiry commands.

use crate::storage::events::class;
use std::collections::HashSet;

use bytes::Bytes;

use super::lookup::count_lookup;
use super::scan::{parse_cursor, resume_at, scan_done, scan_reply, ScanOptions};
use super::{glob_match, int_arg, is, Call, CmdError, CmdResult};
use crate::resp::Reply;
use crate::storage::{Ctx, KeyType, Meta, MetaBody};

pub fn del(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let mut seen = HashSet::new();
    let mut deleted = 0;
    for key in &args[1..] {
        // A key named twice is deleted (and counted) once.
        if seen.insert(&key[..]) && call.ctx.peek(key)?.is_some() {
            call.ctx.delete_key(key);
            call.ctx.notify(class::GENERIC, "del", key);
            deleted += 1;
        }
    }
    Ok(Reply::Int(deleted))
}

pub fn exists(call: &mut Call<'_, '_>) -> CmdResult {
    let mut n = 0;
    // Unlike DEL, a key named twice counts twice.
    for key in &call.args[1..] {
        let hit = call.ctx.peek(key)?.is_some();
        count_lookup(call, hit, key);
        n += i64::from(hit);
    }
    Ok(Reply::Int(n))
}

pub fn type_(call: &mut Call<'_, '_>) -> CmdResult {
    let found = call.ctx.peek(&call.args[1])?;
    count_lookup(call, found.is_some(), &call.args[1]);
    Ok(Reply::Status(found.map_or("none", |(kind, _)| kind.name())))
}

pub fn keys(call: &mut Call<'_, '_>) -> CmdResult {
    let pattern = &call.args[1][..];
    let all = pattern == b"*";
    let mut out = Vec::new();
    call.ctx.for_each_key(b"", |key, _, _| {
        if all || glob_match(pattern, key) {
            out.push(Reply::Bulk(Bytes::copy_from_slice(key)));
        }
        true
    })?;
    Ok(Reply::Array(out))
}

pub fn scan(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let cursor = parse_cursor(&args[1])?;
    let options = ScanOptions::parse(args, 2, true)?;
    let Some(start) = resume_at(call, cursor) else {
        return Ok(scan_done(Vec::new()));
    };
    let mut keys = Vec::new();
    let mut examined = 0;
    let mut next = None;
    call.ctx.for_each_key(&start, |key, key_kind, _| {
        if examined == options.count {
            next = Some(key.to_vec());
            return false;
        }
        examined += 1;
        if options.matches(key) && options.kind.is_none_or(|k| k == Some(key_kind)) {
            keys.push(Reply::Bulk(Bytes::copy_from_slice(key)));
        }
        true
    })?;
    Ok(scan_reply(call, next, keys))
}

fn rename_generic(call: &mut Call<'_, '_>, nx: bool) -> CmdResult {
    let args = call.args;
    let (from, to) = (&args[1], &args[2]);
    let Some(meta) = call.ctx.get_meta(from)? else {
        return Err(CmdError::NoSuchKey);
    };
    let done = |ok: bool| {
        if nx {
            Reply::Int(i64::from(ok))
        } else {
            Reply::OK
        }
    };
    if from == to {
        return Ok(done(false));
    }
    if nx && call.ctx.peek(to)?.is_some() {
        return Ok(done(false));
    }
    let db = call.ctx.db();
    let meta = relocated(call, meta, (db, from), (db, to))?;
    call.ctx.put_meta(to, &meta);
    call.ctx.delete_key(from);
    // As COPY: the destination is added anew.
    call.ctx.notify(class::NEW, "new", to);
    call.ctx.notify(class::GENERIC, "rename_from", from);
    call.ctx.notify(class::GENERIC, "rename_to", to);
    Ok(done(true))
}

/// `meta` as it must be stored under another name: element keys embed the
/// user key, so a collection's elements are copied under the new name and a
/// fresh version (nothing of an older key of that name shows through). The
/// source's elements become unreachable with its meta record and are
/// reclaimed by compaction.
fn relocated(
    call: &mut Call<'_, '_>,
    meta: Meta,
    from: (u8, &[u8]),
    to: (u8, &[u8]),
) -> CmdResult<Meta> {
    match meta.body {
        MetaBody::String(_) => Ok(meta),
        MetaBody::Collection(mut coll) => {
            let version = call.ctx.next_version();
            call.ctx
                .copy_elements((from.0, from.1, coll.version), (to.0, to.1, version))?;
            coll.version = version;
            Ok(Meta {
                expire_at_ms: meta.expire_at_ms,
                body: MetaBody::Collection(coll),
            })
        }
    }
}

/// MOVE key db: the key (value and TTL) to another database, unless it is
/// missing here or present there.
pub fn move_key(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let dst_db = super::args::db_arg(&args[2])?;
    let src_db = call.ctx.db();
    if dst_db == src_db {
        return Err(CmdError::err("source and destination objects are the same"));
    }
    let Some(meta) = call.ctx.get_meta(key)? else {
        return Ok(Reply::Int(0));
    };
    call.ctx.set_db(dst_db);
    let taken = call.ctx.peek(key);
    call.ctx.set_db(src_db);
    if taken?.is_some() {
        return Ok(Reply::Int(0));
    }
    let meta = relocated(call, meta, (src_db, key), (dst_db, key))?;
    // Redis's order of events: new (there), move_from (here), move_to.
    call.ctx.set_db(dst_db);
    call.ctx.put_meta(key, &meta);
    call.ctx.notify(class::NEW, "new", key);
    call.ctx.set_db(src_db);
    call.ctx.delete_key(key);
    call.ctx.notify(class::GENERIC, "move_from", key);
    call.ctx.set_db(dst_db);
    call.ctx.notify(class::GENERIC, "move_to", key);
    call.ctx.set_db(src_db);
    Ok(Reply::Int(1))
}

/// COPY source destination [DB index] [REPLACE]
pub fn copy(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let (from, to) = (&args[1], &args[2]);
    let src_db = call.ctx.db();
    let mut dst_db = src_db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "replace") {
            replace = true;
            i += 1;
        } else if is(&args[i], "db") && i + 1 < args.len() {
            dst_db = super::args::db_arg(&args[i + 1])?;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if src_db == dst_db && from == to {
        return Err(CmdError::err("source and destination objects are the same"));
    }
    let Some(meta) = call.ctx.get_meta(from)? else {
        return Ok(Reply::Int(0));
    };
    call.ctx.set_db(dst_db);
    let exists = call.ctx.peek(to);
    call.ctx.set_db(src_db);
    if exists.as_ref().is_ok_and(|e| e.is_some()) && !replace {
        return Ok(Reply::Int(0));
    }
    exists?;
    let meta = relocated(call, meta, (src_db, from), (dst_db, to))?;
    call.ctx.set_db(dst_db);
    call.ctx.put_meta(to, &meta);
    // Redis deletes the destination, then adds the copy: always `new`.
    call.ctx.notify(class::NEW, "new", to);
    call.ctx.notify(class::GENERIC, "copy_to", to);
    call.ctx.set_db(src_db);
    Ok(Reply::Int(1))
}

/// TOUCH key [key ...]: how many exist (Kiwi keeps no access times).
pub fn touch(call: &mut Call<'_, '_>) -> CmdResult {
    let mut n = 0;
    for key in &call.args[1..] {
        n += i64::from(call.ctx.peek(key)?.is_some());
    }
    Ok(Reply::Int(n))
}

/// OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ|HELP. Encodings are Redis 7.0's
/// names for a value of that shape and size.
pub fn object(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    if sub == "help" && args.len() == 2 {
        return Ok(Reply::Array(
            [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
                "HELP",
                "    Prints this help.",
            ]
            .into_iter()
            .map(Reply::Status)
            .collect(),
        ));
    }
    if !matches!(sub.as_str(), "encoding" | "refcount" | "idletime" | "freq") {
        return Err(CmdError::err(format!(
            "unknown subcommand '{}'. Try OBJECT HELP.",
            super::args::err_text(&args[1], 128)
        )));
    }
    if args.len() != 3 {
        return Err(CmdError::Arity(format!("object|{sub}")));
    }
    let Some(meta) = call.ctx.get_meta(&args[2])? else {
        return Ok(Reply::Nil);
    };
    Ok(match sub.as_str() {
        "encoding" if meta.kind() == KeyType::Set => {
            Reply::bulk_str(super::set::encoding(call, &args[2])?)
        }
        "encoding" => Reply::bulk_str(encoding_name(&meta)),
        "refcount" => Reply::Int(1),
        "idletime" => Reply::Int(0),
        _ => {
            return Err(CmdError::err(
                "An LFU maxmemory policy is not selected, access frequency not tracked. \
                 Please note that when switching between policies at runtime LRU and LFU data \
                 will take some time to adjust.",
            ))
        }
    })
}

pub(super) fn encoding_name(meta: &Meta) -> &'static str {
    match &meta.body {
        MetaBody::String(v) => {
            if v.len() <= 20 && super::parse_i64(v).is_some() {
                "int"
            } else if v.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        MetaBody::Collection(c) => match c.kind {
            KeyType::Hash if c.len <= 128 => "listpack",
            KeyType::Hash => "hashtable",
            // Redis 7.0 keeps every list in a quicklist (listpack is 7.2).
            KeyType::List => "quicklist",
            // Redis 7.0 has no listpack sets (see `set::encoding`).
            KeyType::Set if c.len <= 512 => "intset",
            KeyType::Set => "hashtable",
            KeyType::ZSet if c.len <= 128 => "listpack",
            KeyType::ZSet => "skiplist",
            KeyType::String => "raw",
            KeyType::Stream => "stream",
        },
    }
}

pub fn rename(call: &mut Call<'_, '_>) -> CmdResult {
    rename_generic(call, false)
}

pub fn renamenx(call: &mut Call<'_, '_>) -> CmdResult {
    rename_generic(call, true)
}

/// The first live key at or after `from`, and the one after it.
type KeyAndNext = (Vec<u8>, Option<Vec<u8>>);

fn two_keys(ctx: &Ctx<'_>, from: &[u8]) -> CmdResult<Option<KeyAndNext>> {
    let mut found = Vec::with_capacity(2);
    ctx.for_each_key(from, |key, _, _| {
        found.push(key.to_vec());
        found.len() < 2
    })?;
    let mut it = found.into_iter();
    Ok(it.next().map(|first| (first, it.next())))
}

/// One branch of the key trie under a prefix.
struct Branch {
    /// The first key in the branch.
    first: Vec<u8>,
    /// The byte after the prefix; None when the prefix itself is the key.
    byte: Option<u8>,
    /// Whether `first` is the only key in the branch.
    alone: bool,
}

/// A random live key. Databases of up to 1000 keys are sampled uniformly;
/// larger ones by a random walk down the byte-trie of keys, which costs a
/// few seeks per level instead of a scan of the whole keyspace. Every key
/// is reachable, but each branch is equally likely whatever its size, so
/// keys in sparse branches come up more often than in Redis.
fn random_key(ctx: &Ctx<'_>) -> CmdResult<Option<Vec<u8>>> {
    const SMALL: usize = 1000;
    const MAX_DEPTH: usize = 64;
    let mut seen = 0usize;
    let mut pick = None;
    ctx.for_each_key(b"", |key, _, _| {
        seen += 1;
        if seen > SMALL {
            return false;
        }
        if rand::random_range(0..seen) == 0 {
            pick = Some(key.to_vec());
        }
        true
    })?;
    if seen <= SMALL {
        return Ok(pick);
    }
    let mut prefix: Vec<u8> = Vec::new();
    for _ in 0..MAX_DEPTH {
        let mut branches = Vec::new();
        let mut seek = prefix.clone();
        while let Some((first, second)) = two_keys(ctx, &seek)? {
            if !first.starts_with(&prefix) {
                break;
            }
            if first.len() == prefix.len() {
                // The prefix is itself a key: a branch of its own; the next
                // branches start at prefix + 0x00.
                branches.push(Branch {
                    first,
                    byte: None,
                    alone: true,
                });
                seek = [&prefix[..], &[0]].concat();
                continue;
            }
            let byte = first[prefix.len()];
            let branch = &first[..=prefix.len()];
            let alone = !second.is_some_and(|s| s.starts_with(branch));
            branches.push(Branch {
                first,
                byte: Some(byte),
                alone,
            });
            match byte.checked_add(1) {
                Some(b) => seek = [&prefix[..], &[b]].concat(),
                None => break,
            }
        }
        if branches.is_empty() {
            // Cannot happen while the lock is held; answer the sample.
            return Ok(pick);
        }
        let branch = branches.swap_remove(rand::random_range(0..branches.len()));
        match branch.byte {
            Some(b) if !branch.alone => prefix.push(b),
            _ => return Ok(Some(branch.first)),
        }
    }
    // Very long shared prefixes: settle for the first key below this one.
    Ok(two_keys(ctx, &prefix)?.map(|(first, _)| first))
}

pub fn randomkey(call: &mut Call<'_, '_>) -> CmdResult {
    Ok(Reply::bulk_opt(random_key(&call.ctx)?))
}

/// DBSIZE: from the keyspace's count, in constant time. As Redis's, it
/// includes keys whose deadline passed that expiry has not deleted yet.
pub fn dbsize(call: &mut Call<'_, '_>) -> CmdResult {
    let keys = call.ctx.key_count()?.keys;
    Ok(Reply::Int(i64::try_from(keys).unwrap_or(i64::MAX)))
}

/// SWAPDB index index: exchange two databases' contents (O(1): a swap in
/// the database map, see `storage::DbMap`). Clients stay on their indexes.
pub fn swapdb(call: &mut Call<'_, '_>) -> CmdResult {
    let index = |arg: &[u8], which: &str| -> CmdResult<i64> {
        super::args::int_arg(arg)
            .ok()
            .filter(|v| i32::try_from(*v).is_ok())
            .ok_or_else(|| CmdError::err(format!("invalid {which} DB index")))
    };
    let a = index(&call.args[1], "first")?;
    let b = index(&call.args[2], "second")?;
    let db = |v: i64| {
        u8::try_from(v)
            .ok()
            .filter(|&db| db < crate::storage::DATABASES)
    };
    let (Some(a), Some(b)) = (db(a), db(b)) else {
        return Err(CmdError::err("DB index is out of range"));
    };
    if a != b {
        call.ctx.swap_dbs(a, b);
    }
    Ok(Reply::OK)
}

/// FLUSHDB/FLUSHALL accept one optional ASYNC or SYNC (both flush at once).
fn flush_args(call: &Call<'_, '_>) -> CmdResult<()> {
    match &call.args[1..] {
        [] => Ok(()),
        [mode] if is(mode, "async") || is(mode, "sync") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

pub fn flushdb(call: &mut Call<'_, '_>) -> CmdResult {
    flush_args(call)?;
    call.ctx.flush_db();
    Ok(Reply::OK)
}

pub fn flushall(call: &mut Call<'_, '_>) -> CmdResult {
    flush_args(call)?;
    call.ctx.flush_all();
    Ok(Reply::OK)
}

// ---------------------------------------------------------------------------
// Expiry.

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: `relative` adds the current time,
/// `seconds` scales the argument.
fn expire_generic(call: &mut Call<'_, '_>, relative: bool, seconds: bool, cmd: &str) -> CmdResult {
    let args = call.args;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else {
            return Err(CmdError::err(format!(
                "Unsupported option {}",
                super::args::err_text(opt, usize::MAX)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CmdError::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    // Negative times are allowed (they delete the key); only overflow of the
    // unit conversion or of the addition of the current time is refused.
    let invalid = || CmdError::err(format!("invalid expire time in '{cmd}' command"));
    let mut when = int_arg(&args[2])?;
    if seconds {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    let now = i64::try_from(call.ctx.now_ms).unwrap_or(i64::MAX);
    if relative {
        when = when.checked_add(now).ok_or_else(invalid)?;
    }
    let key = &args[1];
    let Some(mut meta) = call.ctx.get_meta(key)? else {
        return Ok(Reply::Int(0));
    };
    let current = meta
        .expire_at_ms
        .map(|at| i64::try_from(at).unwrap_or(i64::MAX));
    // No TTL counts as an infinite one for GT and LT.
    let refused = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refused {
        return Ok(Reply::Int(0));
    }
    if when <= now {
        call.ctx.delete_key(key);
        call.ctx.notify(class::GENERIC, "del", key);
    } else {
        meta.expire_at_ms = Some(when as u64);
        call.ctx.put_meta(key, &meta);
        call.ctx.notify(class::GENERIC, "expire", key);
    }
    Ok(Reply::Int(1))
}

pub fn expire(call: &mut Call<'_, '_>) -> CmdResult {
    expire_generic(call, true, true, "expire")
}

pub fn pexpire(call: &mut Call<'_, '_>) -> CmdResult {
    expire_generic(call, true, false, "pexpire")
}

pub fn expireat(call: &mut Call<'_, '_>) -> CmdResult {
    expire_generic(call, false, true, "expireat")
}

pub fn pexpireat(call: &mut Call<'_, '_>) -> CmdResult {
    expire_generic(call, false, false, "pexpireat")
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 for a missing key, -1 without a
/// TTL; seconds are rounded to the nearest ((ms + 500) / 1000).
fn ttl_generic(call: &mut Call<'_, '_>, ms: bool, absolute: bool) -> CmdResult {
    let found = call.ctx.peek(&call.args[1])?;
    count_lookup(call, found.is_some(), &call.args[1]);
    let at = match found {
        None => return Ok(Reply::Int(-2)),
        Some((_, None)) => return Ok(Reply::Int(-1)),
        Some((_, Some(at))) => at,
    };
    let t = if absolute {
        at
    } else {
        at.saturating_sub(call.ctx.now_ms)
    };
    let t = if ms { t } else { t.saturating_add(500) / 1000 };
    Ok(Reply::Int(i64::try_from(t).unwrap_or(i64::MAX)))
}

pub fn ttl(call: &mut Call<'_, '_>) -> CmdResult {
    ttl_generic(call, false, false)
}

pub fn pttl(call: &mut Call<'_, '_>) -> CmdResult {
    ttl_generic(call, true, false)
}

pub fn expiretime(call: &mut Call<'_, '_>) -> CmdResult {
    ttl_generic(call, false, true)
}

pub fn pexpiretime(call: &mut Call<'_, '_>) -> CmdResult {
    ttl_generic(call, true, true)
}

pub fn persist(call: &mut Call<'_, '_>) -> CmdResult {
    let key = &call.args[1];
    match call.ctx.get_meta(key)? {
        Some(mut meta) if meta.expire_at_ms.is_some() => {
            meta.expire_at_ms = None;
            call.ctx.put_meta(key, &meta);
            call.ctx.notify(class::GENERIC, "persist", key);
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}
