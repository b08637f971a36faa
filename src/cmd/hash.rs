//! Hash commands: HSET/HMSET/HSETNX, HGET/HMGET, HDEL, HLEN, HSTRLEN,
//! HEXISTS, HKEYS/HVALS/HGETALL, HINCRBY/HINCRBYFLOAT, HRANDFIELD, HSCAN.
//!
//! A hash is a collection header (`len` = number of fields) plus one data
//! key per field: `data_key(db, key, version, field)` → value. Fields come
//! back in byte order of their names (Redis answers in its own internal
//! order, which no client may rely on).

use crate::storage::events::class::HASH;
use bytes::Bytes;

use super::sample::{distinct_positions, repeated_picks, repeated_positions, Picker};
use super::scan::{parse_cursor, resume_at, scan_done, scan_reply, ScanOptions};
use super::table::{commands, flags::*};
use super::{int_arg, is, parse_i64, Call, CmdError, CmdResult, Collection, CommandSpec};
use crate::num::{string2ld, LongDouble};
use crate::resp::{Protocol, Reply};
use crate::storage::{data_key, data_prefix, prefix_end, Cf, KeyType};

pub static COMMANDS: &[CommandSpec] = commands! {
    "hset", -4, WF, 1, 1, 1, hset;
    "hsetnx", 4, WF, 1, 1, 1, hsetnx;
    "hget", 3, RF, 1, 1, 1, hget;
    "hmget", -3, RF, 1, 1, 1, hmget;
    "hmset", -4, WF, 1, 1, 1, hmset;
    "hdel", -3, WDF, 1, 1, 1, hdel;
    "hlen", 2, RF, 1, 1, 1, hlen;
    "hstrlen", 3, RF, 1, 1, 1, hstrlen;
    "hexists", 3, RF, 1, 1, 1, hexists;
    "hkeys", 2, R, 1, 1, 1, hkeys;
    "hvals", 2, R, 1, 1, 1, hvals;
    "hgetall", 2, R, 1, 1, 1, hgetall;
    "hincrby", 4, WF, 1, 1, 1, hincrby;
    "hincrbyfloat", 4, WF, 1, 1, 1, hincrbyfloat;
    "hrandfield", -2, R, 1, 1, 1, hrandfield;
    "hscan", -3, R, 1, 1, 1, hscan;
};

/// Redis's hash-max-listpack-entries: hashes up to this size are small in
/// Redis, and HSCAN returns them whole in one call whatever COUNT says.
const SMALL_HASH: u64 = 128;

/// The data key of `field` in hash `coll` at `key`.
fn field_key(call: &Call<'_, '_>, key: &[u8], coll: &Collection, field: &[u8]) -> Vec<u8> {
    data_key(call.ctx.keyspace(), key, coll.version(), field)
}

/// The value of `field` in the hash `coll` at `key` (SORT's `key->field`).
pub(super) fn field_value(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &Collection,
    field: &[u8],
) -> CmdResult<Option<Bytes>> {
    Ok(call
        .ctx
        .get_data(&field_key(call, key, coll, field))?
        .map(Bytes::from))
}

/// Visit the hash's (field, value) pairs in field order, starting at field
/// `from`, until `visit` returns false.
fn for_each_field(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &Collection,
    from: &[u8],
    mut visit: impl FnMut(&[u8], Vec<u8>) -> bool,
) -> CmdResult<()> {
    let prefix = data_prefix(call.ctx.keyspace(), key, coll.version());
    let end = prefix_end(&prefix);
    let start = [&prefix[..], from].concat();
    for item in call.ctx.iter(Cf::Data, &start, end.as_deref(), false) {
        let (raw, value) = item?;
        if !visit(&raw[prefix.len()..], value) {
            break;
        }
    }
    Ok(())
}

/// Every (field, value) pair of the hash, in field order.
fn all_fields(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &Collection,
) -> CmdResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::with_capacity(usize::try_from(coll.len()).unwrap_or(0).min(1 << 16));
    for_each_field(call, key, coll, b"", |field, value| {
        out.push((field.to_vec(), value));
        true
    })?;
    Ok(out)
}

// ---------------------------------------------------------------------------
// Writing fields.

/// Every (field, value) pair of the hash at `key` (DUMP's input).
pub(super) fn fields_of(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &Collection,
) -> CmdResult<Vec<(Vec<u8>, Vec<u8>)>> {
    all_fields(call, key, coll)
}

/// A new hash (fresh version, no TTL, header not saved) holding `pairs`,
/// whose fields are distinct: RESTORE's value, saved by the caller.
pub(super) fn fill_new(
    call: &mut Call<'_, '_>,
    key: &[u8],
    pairs: &[(Vec<u8>, Vec<u8>)],
) -> Collection {
    let mut coll = call.new_collection(KeyType::Hash);
    for (field, value) in pairs {
        let raw = field_key(call, key, &coll, field);
        call.ctx.put_data(&raw, value);
    }
    coll.meta.len = pairs.len() as u64;
    coll
}

/// Set every field/value pair of `args[2..]`; answers how many fields are new.
fn set_pairs(call: &mut Call<'_, '_>, cmd: &str) -> CmdResult<i64> {
    let args = call.args;
    // name, key, then field/value pairs.
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::Arity(cmd.into()));
    }
    let key = &args[1];
    let mut coll = call.collection_or_new(key, KeyType::Hash)?;
    let mut created = 0u64;
    for pair in args[2..].chunks_exact(2) {
        let raw = field_key(call, key, &coll, &pair[0]);
        // Reads see this command's own writes: a field named twice is new once.
        if call.ctx.get_data(&raw)?.is_none() {
            created += 1;
        }
        call.ctx.put_data(&raw, &pair[1]);
    }
    coll.meta.len += created;
    call.notify_change(key, &coll, HASH, "hset");
    if created > 0 {
        call.save_collection(key, &coll);
    }
    Ok(created as i64)
}

pub fn hset(call: &mut Call<'_, '_>) -> CmdResult {
    set_pairs(call, "hset").map(Reply::Int)
}

pub fn hmset(call: &mut Call<'_, '_>) -> CmdResult {
    set_pairs(call, "hmset").map(|_| Reply::OK)
}

pub fn hsetnx(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let (key, field, value) = (&args[1], &args[2], &args[3]);
    let mut coll = call.collection_or_new(key, KeyType::Hash)?;
    let raw = field_key(call, key, &coll, field);
    if coll.existed && call.ctx.get_data(&raw)?.is_some() {
        return Ok(Reply::Int(0));
    }
    call.ctx.put_data(&raw, value);
    coll.meta.len += 1;
    call.notify_change(key, &coll, HASH, "hset");
    call.save_collection(key, &coll);
    Ok(Reply::Int(1))
}

pub fn hdel(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let Some(mut coll) = call.collection(key, KeyType::Hash)? else {
        return Ok(Reply::Int(0));
    };
    let removed = call.remove_elements(key, &mut coll, &args[2..], (HASH, "hdel"))?;
    Ok(Reply::Int(removed as i64))
}

/// The current value of a field for HINCRBY/HINCRBYFLOAT, the hash (new or
/// existing) and the field's data key.
fn incr_target(call: &Call<'_, '_>) -> CmdResult<(Collection, Vec<u8>, Option<Vec<u8>>)> {
    let args = call.args;
    let (key, field) = (&args[1], &args[2]);
    let coll = call.collection_or_new(key, KeyType::Hash)?;
    let raw = field_key(call, key, &coll, field);
    let current = if coll.existed {
        call.ctx.get_data(&raw)?
    } else {
        None
    };
    Ok((coll, raw, current))
}

/// Store the incremented value; a new field grows (or creates) the hash.
fn incr_store(
    call: &mut Call<'_, '_>,
    mut coll: Collection,
    raw: &[u8],
    value: &[u8],
    is_new: bool,
    event: &'static str,
) {
    call.ctx.put_data(raw, value);
    let key = &call.args[1];
    if is_new {
        coll.meta.len += 1;
    }
    call.notify_change(key, &coll, HASH, event);
    if is_new {
        call.save_collection(key, &coll);
    }
}

pub fn hincrby(call: &mut Call<'_, '_>) -> CmdResult {
    let incr = int_arg(&call.args[3])?;
    let (coll, raw, current) = incr_target(call)?;
    let old = match &current {
        // Only canonical integers count, as Redis's string2ll.
        Some(v) => parse_i64(v).ok_or_else(|| CmdError::err("hash value is not an integer"))?,
        None => 0,
    };
    let value = old.checked_add(incr).ok_or(CmdError::Overflow)?;
    let mut buf = itoa::Buffer::new();
    incr_store(
        call,
        coll,
        &raw,
        buf.format(value).as_bytes(),
        current.is_none(),
        "hincrby",
    );
    Ok(Reply::Int(value))
}

pub fn hincrbyfloat(call: &mut Call<'_, '_>) -> CmdResult {
    // Computed in x87 long double and printed like INCRBYFLOAT (strings.rs).
    let incr = string2ld(&call.args[3]).ok_or(CmdError::NotFloat)?;
    if !incr.is_finite() {
        return Err(CmdError::err("value is NaN or Infinity"));
    }
    let (coll, raw, current) = incr_target(call)?;
    let old = match &current {
        Some(v) => string2ld(v).ok_or_else(|| CmdError::err("hash value is not a float"))?,
        None => LongDouble::ZERO,
    };
    let sum = old + incr;
    if !sum.is_finite() {
        return Err(CmdError::err("increment would produce NaN or Infinity"));
    }
    let text = sum.to_human_string();
    incr_store(
        call,
        coll,
        &raw,
        text.as_bytes(),
        current.is_none(),
        "hincrbyfloat",
    );
    Ok(Reply::bulk(text))
}

// ---------------------------------------------------------------------------
// Reading fields.

pub fn hget(call: &mut Call<'_, '_>) -> CmdResult {
    let (key, field) = (&call.args[1], &call.args[2]);
    let Some(coll) = call.read_collection(key, KeyType::Hash)? else {
        return Ok(Reply::Nil);
    };
    let value = call.ctx.get_data(&field_key(call, key, &coll, field))?;
    Ok(Reply::bulk_opt(value))
}

pub fn hmget(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let fields = &args[2..];
    let Some(coll) = call.read_collection(key, KeyType::Hash)? else {
        return Ok(Reply::Array(vec![Reply::Nil; fields.len()]));
    };
    let mut out = Vec::with_capacity(fields.len());
    for field in fields {
        let value = call.ctx.get_data(&field_key(call, key, &coll, field))?;
        out.push(Reply::bulk_opt(value));
    }
    Ok(Reply::Array(out))
}

pub fn hlen(call: &mut Call<'_, '_>) -> CmdResult {
    let len = call
        .read_collection(&call.args[1], KeyType::Hash)?
        .map_or(0, |c| c.len());
    Ok(Reply::Int(i64::try_from(len).unwrap_or(i64::MAX)))
}

pub fn hstrlen(call: &mut Call<'_, '_>) -> CmdResult {
    let (key, field) = (&call.args[1], &call.args[2]);
    let Some(coll) = call.read_collection(key, KeyType::Hash)? else {
        return Ok(Reply::Int(0));
    };
    let value = call.ctx.get_data(&field_key(call, key, &coll, field))?;
    Ok(Reply::Int(value.map_or(0, |v| v.len() as i64)))
}

pub fn hexists(call: &mut Call<'_, '_>) -> CmdResult {
    let (key, field) = (&call.args[1], &call.args[2]);
    let Some(coll) = call.read_collection(key, KeyType::Hash)? else {
        return Ok(Reply::Int(0));
    };
    let found = call
        .ctx
        .get_data(&field_key(call, key, &coll, field))?
        .is_some();
    Ok(Reply::Int(i64::from(found)))
}

/// What HKEYS, HVALS and HGETALL answer.
#[derive(Clone, Copy)]
enum Part {
    Keys,
    Values,
    Both,
}

fn get_all(call: &mut Call<'_, '_>, part: Part) -> CmdResult {
    let key = &call.args[1];
    let pairs = match call.read_collection(key, KeyType::Hash)? {
        Some(coll) => all_fields(call, key, &coll)?,
        None => Vec::new(),
    };
    let pairs = pairs.into_iter();
    Ok(match part {
        Part::Keys => Reply::Array(pairs.map(|(f, _)| Reply::bulk(f)).collect()),
        Part::Values => Reply::Array(pairs.map(|(_, v)| Reply::bulk(v)).collect()),
        Part::Both => Reply::Map(
            pairs
                .map(|(f, v)| (Reply::bulk(f), Reply::bulk(v)))
                .collect(),
        ),
    })
}

pub fn hkeys(call: &mut Call<'_, '_>) -> CmdResult {
    get_all(call, Part::Keys)
}

pub fn hvals(call: &mut Call<'_, '_>) -> CmdResult {
    get_all(call, Part::Values)
}

pub fn hgetall(call: &mut Call<'_, '_>) -> CmdResult {
    get_all(call, Part::Both)
}

// ---------------------------------------------------------------------------
// HRANDFIELD.

/// HRANDFIELD's optional arguments: the count and WITHVALUES.
#[derive(Debug, PartialEq)]
struct RandArgs {
    count: i64,
    with_values: bool,
}

/// Parse `count [WITHVALUES]` (the arguments after the key) in Redis's
/// order of checks.
fn parse_rand_args(rest: &[Bytes]) -> CmdResult<Option<RandArgs>> {
    let Some(count) = rest.first() else {
        return Ok(None);
    };
    let count = int_arg(count)?;
    if count == i64::MIN {
        return Err(CmdError::err(format!(
            "value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    let with_values = match &rest[1..] {
        [] => false,
        [opt] if is(opt, "withvalues") => true,
        _ => return Err(CmdError::Syntax),
    };
    // Redis keeps count * 2 from overflowing.
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(CmdError::err("value is out of range"));
    }
    Ok(Some(RandArgs { count, with_values }))
}

/// One picked field for a reply: the field, and its value if wanted.
type Pick = (Bytes, Option<Bytes>);

/// The fields at `positions` (ascending, repeats allowed) from one pass
/// over the hash, in random order.
fn pick_fields(
    call: &Call<'_, '_>,
    key: &[u8],
    coll: &Collection,
    positions: &[u64],
    with_values: bool,
) -> CmdResult<Vec<Pick>> {
    let mut picker = Picker::new(positions);
    for_each_field(call, key, coll, b"", |field, value| {
        picker.offer(|| {
            (
                Bytes::copy_from_slice(field),
                with_values.then(|| Bytes::from(value)),
            )
        })
    })?;
    Ok(picker.finish_shuffled(&mut rand::rng()))
}

fn rand_reply(picks: Vec<Pick>, protocol: Protocol) -> Reply {
    let mut out = Vec::with_capacity(picks.len() * 2);
    for (field, value) in picks {
        match value {
            None => out.push(Reply::bulk(field)),
            // RESP3: one [field, value] array per pick; RESP2: flat.
            Some(value) if protocol == Protocol::Resp3 => {
                out.push(Reply::Array(vec![Reply::bulk(field), Reply::bulk(value)]));
            }
            Some(value) => {
                out.push(Reply::bulk(field));
                out.push(Reply::bulk(value));
            }
        }
    }
    Reply::Array(out)
}

pub fn hrandfield(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let Some(RandArgs { count, with_values }) = parse_rand_args(&args[2..])? else {
        // No count: one field as a bulk string, nil without a hash.
        let Some(coll) = call.read_collection(key, KeyType::Hash)? else {
            return Ok(Reply::Nil);
        };
        let target = rand::random_range(0..coll.len().max(1));
        let mut index = 0u64;
        let mut pick = None;
        for_each_field(call, key, &coll, b"", |field, _| {
            pick = Some(field.to_vec());
            index += 1;
            index <= target
        })?;
        return Ok(Reply::bulk_opt(pick));
    };
    let Some(coll) = call.read_collection(key, KeyType::Hash)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let protocol = call.session.protocol;
    let size = coll.len();
    let wanted = count.unsigned_abs();
    if wanted == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let picks = if count < 0 {
        let picks = repeated_picks(wanted)?;
        let positions = repeated_positions(&mut rand::rng(), size, picks);
        pick_fields(call, key, &coll, &positions, with_values)?
    } else if wanted >= size {
        all_fields(call, key, &coll)?
            .into_iter()
            .map(|(f, v)| (Bytes::from(f), with_values.then(|| Bytes::from(v))))
            .collect()
    } else {
        let positions = distinct_positions(&mut rand::rng(), size, wanted);
        pick_fields(call, key, &coll, &positions, with_values)?
    };
    Ok(rand_reply(picks, protocol))
}

// ---------------------------------------------------------------------------
// HSCAN.

pub fn hscan(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let key = &args[1];
    let cursor = parse_cursor(&args[2])?;
    // As in Redis, a missing key answers before the options are checked.
    let Some(coll) = call.read_collection(key, KeyType::Hash)? else {
        return Ok(scan_done(Vec::new()));
    };
    let mut options = ScanOptions::parse(args, 3, false)?;
    if coll.len() <= SMALL_HASH {
        options.count = usize::MAX;
    }
    let Some(start) = resume_at(call, cursor) else {
        return Ok(scan_done(Vec::new()));
    };
    let mut items = Vec::new();
    let mut examined = 0;
    let mut next = None;
    for_each_field(call, key, &coll, &start, |field, value| {
        if examined == options.count {
            next = Some(field.to_vec());
            return false;
        }
        examined += 1;
        if options.matches(field) {
            items.push(Reply::bulk(field.to_vec()));
            items.push(Reply::bulk(value));
        }
        true
    })?;
    Ok(scan_reply(call, next, items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::sample::MAX_REPEATED_PICKS;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn rand_args(words: &[&str]) -> Result<Option<RandArgs>, String> {
        parse_rand_args(&args(words)).map_err(|e| e.to_string())
    }

    #[test]
    fn hrandfield_arguments() {
        assert_eq!(rand_args(&[]), Ok(None));
        assert_eq!(
            rand_args(&["-5"]),
            Ok(Some(RandArgs {
                count: -5,
                with_values: false
            }))
        );
        assert_eq!(
            rand_args(&["3", "WithValues"]),
            Ok(Some(RandArgs {
                count: 3,
                with_values: true
            }))
        );
        assert_eq!(
            rand_args(&["x"]),
            Err("ERR value is not an integer or out of range".into())
        );
        assert_eq!(
            rand_args(&["-9223372036854775808"]),
            Err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807".into())
        );
        assert_eq!(rand_args(&["1", "foo"]), Err("ERR syntax error".into()));
        assert_eq!(
            rand_args(&["1", "withvalues", "x"]),
            Err("ERR syntax error".into())
        );
        // Count checked before the option, the option before the range.
        assert_eq!(
            rand_args(&["x", "foo"]),
            Err("ERR value is not an integer or out of range".into())
        );
        assert!(rand_args(&["4611686018427387903", "withvalues"]).is_ok());
        assert!(rand_args(&["-4611686018427387903", "withvalues"]).is_ok());
        assert_eq!(
            rand_args(&["4611686018427387904", "withvalues"]),
            Err("ERR value is out of range".into())
        );
        assert_eq!(
            rand_args(&["-4611686018427387904", "withvalues"]),
            Err("ERR value is out of range".into())
        );
        assert!(rand_args(&["9223372036854775807"]).is_ok());
    }

    /// Commands run through a real engine on a temporary directory.
    struct Db {
        engine: crate::Engine,
        session: crate::cmd::Session,
        _dir: tempfile::TempDir,
    }

    impl Db {
        fn new() -> Db {
            let dir = tempfile::tempdir().expect("temp dir");
            let engine =
                crate::Engine::open(crate::RuntimeConfig::new(dir.path())).expect("open engine");
            let session = engine.local_session();
            Db {
                engine,
                session,
                _dir: dir,
            }
        }

        fn run(&mut self, words: &[&str]) -> Reply {
            self.engine.execute_args(&mut self.session, words)
        }
    }

    #[test]
    fn huge_negative_counts_are_refused_not_allocated() {
        let mut db = Db::new();
        db.run(&["hset", "h", "a", "1"]);
        let beyond_cap = Reply::error(
            "ERR value is out of range, value must between -4194304 and 9223372036854775807",
        );
        assert_eq!(
            db.run(&["hrandfield", "h", "-9223372036854775807"]),
            beyond_cap
        );
        assert_eq!(
            db.run(&["hrandfield", "h", "-4611686018427387903", "withvalues"]),
            beyond_cap
        );
        // Past Redis's own bound for WITHVALUES, Redis's text.
        assert_eq!(
            db.run(&["hrandfield", "h", "-4611686018427387904", "withvalues"]),
            Reply::error("ERR value is out of range")
        );
        let at_cap = format!("-{MAX_REPEATED_PICKS}");
        match db.run(&["hrandfield", "h", &at_cap]) {
            Reply::Array(items) => assert_eq!(items.len() as u64, MAX_REPEATED_PICKS),
            other => panic!("unexpected {other:?}"),
        }
        // A huge positive count is just the whole hash.
        assert_eq!(
            db.run(&["hrandfield", "h", "9223372036854775807"]),
            Reply::Array(vec![Reply::bulk_str("a")])
        );
    }

    #[test]
    fn header_len_tracks_fields_and_empty_hash_goes() {
        let mut db = Db::new();
        assert_eq!(
            db.run(&["hset", "h", "a", "1", "b", "2", "a", "3"]),
            Reply::Int(2)
        );
        assert_eq!(db.run(&["hincrby", "h", "c", "1"]), Reply::Int(1));
        assert_eq!(
            db.run(&["hincrbyfloat", "h", "d", "1.5"]),
            Reply::bulk_str("1.5")
        );
        assert_eq!(db.run(&["hsetnx", "h", "e", "1"]), Reply::Int(1));
        assert_eq!(db.run(&["hlen", "h"]), Reply::Int(5));
        // Errors change nothing (the command is rolled back).
        assert!(db.run(&["hincrby", "h", "a", "x"]).is_error());
        assert!(db.run(&["hincrbyfloat", "h", "d", "inf"]).is_error());
        assert_eq!(db.run(&["hlen", "h"]), Reply::Int(5));
        assert_eq!(
            db.run(&["hdel", "h", "a", "b", "c", "d", "e", "zz"]),
            Reply::Int(5)
        );
        assert_eq!(db.run(&["exists", "h"]), Reply::Int(0));
        assert_eq!(db.run(&["hset", "h", "x", "1"]), Reply::Int(1));
        assert_eq!(
            db.run(&["hgetall", "h"]),
            Reply::Map(vec![(Reply::bulk_str("x"), Reply::bulk_str("1"))])
        );
    }

    #[test]
    fn hscan_walks_a_large_hash_in_steps() {
        let mut db = Db::new();
        let mut words = vec!["hset".to_string(), "h".to_string()];
        for i in 0..300 {
            words.push(format!("f{i:03}"));
            words.push(i.to_string());
        }
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_eq!(db.run(&words), Reply::Int(300));
        let mut cursor = "0".to_string();
        let mut fields = Vec::new();
        let mut calls = 0;
        loop {
            calls += 1;
            assert!(calls < 1000);
            let Reply::Array(parts) = db.run(&["hscan", "h", &cursor, "count", "7"]) else {
                panic!("not an array");
            };
            let (Reply::Bulk(next), Reply::Array(items)) = (&parts[0], &parts[1]) else {
                panic!("bad shape");
            };
            assert!(items.len() <= 14);
            fields.extend(items.iter().step_by(2).cloned());
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(calls, 300usize.div_ceil(7));
        let expected: Vec<Reply> = (0..300).map(|i| Reply::bulk(format!("f{i:03}"))).collect();
        assert_eq!(fields, expected);
    }
}
