//! RESP replies to Lua values and Lua values to replies, as Redis 7.0 does.
//!
//! Reply → Lua (what `redis.call` returns), by the protocol the script chose
//! with `redis.setresp`:
//!
//! | reply | RESP2 | RESP3 |
//! |---|---|---|
//! | integer | number | number |
//! | bulk | string | string |
//! | nil bulk / nil array | `false` | `nil` |
//! | status | `{ok=...}` | `{ok=...}` |
//! | error | `{err="CODE msg"}` | same |
//! | array | table | table (nils leave holes) |
//! | map | flat table | `{map={k=v,...}}` |
//! | set | table | `{set={member=true,...}}` |
//! | double | string (`%.17g`) | `{double=n}` |
//! | boolean | number 1/0 | boolean |
//! | verbatim | string | `{verbatim_string={format=,string=}}` |
//!
//! Lua → reply (what a script returns): number → integer (truncated),
//! string → bulk, `true` → 1 (RESP2) or `#t`, `false` → nil (RESP2) or `#f`,
//! a table with a string `err` → error, with a string `ok` → status, with
//! `double`, `big_number`, `verbatim_string`, `map`, `set` → those, any
//! other table → array up to its first nil; anything else → nil.
//!
//! Tables may be deep or reference themselves. The conversion walks them
//! with an explicit stack and reproduces Redis's bound: Redis converts
//! recursively and answers `ERR reached lua stack limit` where its Lua C
//! stack (8,000 slots) runs out, which this module counts the same way.

use bytes::Bytes;
use mlua::{Lua, RegistryKey, Table, Value};

use crate::num::LongDouble;
use crate::resp::{format_double, Protocol, Reply};

/// `LUAI_MAXCSTACK`: the slots a C function may use on the Lua stack.
const MAX_C_STACK: usize = 8000;
/// Slots in use when Redis converts a script's result: the error handler
/// and the result itself.
const ROOT_SLOTS: usize = 2;
/// How deep a host reply may nest (engine replies are a few levels).
const MAX_REPLY_DEPTH: usize = 64;

/// The error table `redis.call` raises and `redis.pcall` returns: the
/// reply's text split into code and message (`ERR` when there is no code),
/// with Redis's `ignore_error_stats_update` marker.
pub fn error_table(lua: &Lua, text: &[u8], from_reply: bool) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(error_text(text))?)?;
    if from_reply {
        t.raw_set("ignore_error_stats_update", true)?;
    }
    Ok(t)
}

/// `luaPushErrorBuff`: `-CODE msg` keeps its code, anything else gets `ERR`;
/// trailing CR/LF go.
pub fn error_text(text: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = match text.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&b| b == b' ') {
            Some(i) => (
                rest.get(..i).unwrap_or(b"ERR"),
                rest.get(i + 1..).unwrap_or(b""),
            ),
            None => (b"ERR", rest),
        },
        None => (b"ERR", text),
    };
    let mut msg = msg;
    while let Some(rest) = msg.strip_suffix(b"\n").or_else(|| msg.strip_suffix(b"\r")) {
        msg = rest;
    }
    while let Some(rest) = msg.strip_prefix(b"\n").or_else(|| msg.strip_prefix(b"\r")) {
        msg = rest;
    }
    // sdsnew/lua_pushstring stop at a NUL byte.
    let cut = |s: &[u8]| -> Vec<u8> { s.iter().copied().take_while(|&b| b != 0).collect() };
    let mut out = cut(code);
    out.push(b' ');
    out.extend(cut(msg));
    out
}

/// A command's reply as `redis.call` hands it to the script.
pub fn reply_to_lua(lua: &Lua, reply: &Reply, protocol: Protocol) -> mlua::Result<Value> {
    reply_to_lua_at(lua, reply, protocol, 0)
}

fn reply_to_lua_at(
    lua: &Lua,
    reply: &Reply,
    protocol: Protocol,
    depth: usize,
) -> mlua::Result<Value> {
    if depth > MAX_REPLY_DEPTH {
        return Ok(Value::Table(error_table(
            lua,
            b"-ERR reply nested too deep",
            true,
        )?));
    }
    let resp3 = protocol == Protocol::Resp3;
    let single = |field: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(field, v)?;
        Ok(Value::Table(t))
    };
    Ok(match reply {
        Reply::Status(s) => single("ok", Value::String(lua.create_string(s)?))?,
        Reply::StatusOwned(s) => single("ok", Value::String(lua.create_string(s)?))?,
        Reply::Error(e) => {
            let mut text = Vec::with_capacity(e.len() + 1);
            text.push(b'-');
            text.extend_from_slice(e.as_bytes());
            Value::Table(error_table(lua, &text, true)?)
        }
        Reply::Int(i) => Value::Number(*i as f64),
        Reply::Bulk(b) => Value::String(lua.create_string(b)?),
        Reply::Nil | Reply::NilArray if resp3 => Value::Nil,
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        Reply::Array(items) | Reply::Push(items) | Reply::Frames(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, reply_to_lua_at(lua, item, protocol, depth + 1)?)?;
            }
            Value::Table(t)
        }
        Reply::Set(items) if resp3 => {
            let set = lua.create_table()?;
            for item in items {
                let k = reply_to_lua_at(lua, item, protocol, depth + 1)?;
                if !k.is_nil() {
                    set.raw_set(k, true)?;
                }
            }
            single("set", Value::Table(set))?
        }
        Reply::Set(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, reply_to_lua_at(lua, item, protocol, depth + 1)?)?;
            }
            Value::Table(t)
        }
        Reply::Map(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                let k = reply_to_lua_at(lua, k, protocol, depth + 1)?;
                let v = reply_to_lua_at(lua, v, protocol, depth + 1)?;
                if !k.is_nil() {
                    map.raw_set(k, v)?;
                }
            }
            single("map", Value::Table(map))?
        }
        Reply::Map(pairs) => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            let mut i = 1;
            for (k, v) in pairs {
                t.raw_set(i, reply_to_lua_at(lua, k, protocol, depth + 1)?)?;
                t.raw_set(i + 1, reply_to_lua_at(lua, v, protocol, depth + 1)?)?;
                i += 2;
            }
            Value::Table(t)
        }
        Reply::Double(d) if resp3 => single("double", Value::Number(*d))?,
        Reply::Double(d) => Value::String(lua.create_string(format_double(*d))?),
        Reply::HumanDouble(d) if resp3 => single("double", Value::Number(*d))?,
        Reply::HumanDouble(d) => {
            Value::String(lua.create_string(LongDouble::from_f64(*d).to_human_string())?)
        }
        Reply::Bool(b) if resp3 => Value::Boolean(*b),
        Reply::Bool(b) => Value::Number(if *b { 1.0 } else { 0.0 }),
        Reply::Verbatim(text) if resp3 => {
            let inner = lua.create_table()?;
            inner.raw_set("string", lua.create_string(text)?)?;
            inner.raw_set("format", "txt")?;
            single("verbatim_string", Value::Table(inner))?
        }
        Reply::Verbatim(text) => Value::String(lua.create_string(text)?),
    })
}

/// `(long long)` of a double as x86-64 computes it: out of range and NaN
/// give the "integer indefinite" value, `i64::MIN`.
pub fn number_to_i64(n: f64) -> i64 {
    if n.is_nan() || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// Bytes up to the first NUL, CR and LF turned into spaces (status lines).
fn status_line(bytes: &[u8]) -> String {
    let cut: Vec<u8> = bytes
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect();
    String::from_utf8_lossy(&cut).into_owned()
}

/// A container being converted.
enum Frame {
    Array {
        table: RegistryKey,
        next: i64,
        items: Vec<Reply>,
        slots: usize,
    },
    Map {
        pairs: std::vec::IntoIter<(RegistryKey, RegistryKey)>,
        /// The value whose key is being converted.
        value: Option<RegistryKey>,
        /// The converted key whose value is being converted.
        key: Option<Reply>,
        items: Vec<(Reply, Reply)>,
        slots: usize,
    },
    Set {
        members: std::vec::IntoIter<RegistryKey>,
        items: Vec<Reply>,
        slots: usize,
    },
}

impl Frame {
    /// Take a converted child.
    fn accept(&mut self, reply: Reply) {
        match self {
            Frame::Array { items, .. } | Frame::Set { items, .. } => items.push(reply),
            Frame::Map {
                value, key, items, ..
            } => match key.take() {
                // A value finished: its key was waiting.
                Some(k) if value.is_none() => items.push((k, reply)),
                // A key finished: its value is next.
                _ => *key = Some(reply),
            },
        }
    }

    /// The next child to convert and the stack slots Redis would use for
    /// it (an array pushes the element; a map its table, key, value and a
    /// copy of the key; a set its table, member and a copy).
    fn next_child(&mut self, lua: &Lua) -> mlua::Result<Option<(Value, usize)>> {
        let get = |key: RegistryKey| -> mlua::Result<Value> {
            let v = lua.registry_value::<Value>(&key);
            lua.remove_registry_value(key)?;
            v
        };
        Ok(match self {
            Frame::Array {
                table, next, slots, ..
            } => {
                let table: Table = lua.registry_value(table)?;
                let v: Value = table.raw_get(*next)?;
                if v.is_nil() {
                    None
                } else {
                    *next += 1;
                    Some((v, *slots + 1))
                }
            }
            Frame::Map {
                pairs,
                value,
                key,
                slots,
                ..
            } => {
                if key.is_some() {
                    match value.take() {
                        Some(v) => Some((get(v)?, *slots + 3)),
                        None => None,
                    }
                } else {
                    match pairs.next() {
                        Some((k, v)) => {
                            *value = Some(v);
                            Some((get(k)?, *slots + 4))
                        }
                        None => None,
                    }
                }
            }
            Frame::Set { members, slots, .. } => match members.next() {
                Some(m) => Some((get(m)?, *slots + 3)),
                None => None,
            },
        })
    }

    fn finish(self) -> Reply {
        match self {
            Frame::Array { items, .. } => Reply::Array(items),
            Frame::Map { items, .. } => Reply::Map(items),
            Frame::Set { items, .. } => Reply::Set(items),
        }
    }
}

/// What converting one value gives: a finished reply or a new container.
enum Step {
    Done(Reply),
    Open(Frame),
}

/// A script's return value as the reply its caller gets. `script_protocol`
/// is the one the script chose with `redis.setresp` (booleans depend on it).
pub fn lua_to_reply(lua: &Lua, value: Value, script_protocol: Protocol) -> mlua::Result<Reply> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut step = open(lua, value, ROOT_SLOTS, script_protocol)?;
    loop {
        match step {
            Step::Open(frame) => stack.push(frame),
            Step::Done(reply) => match stack.last_mut() {
                Some(parent) => parent.accept(reply),
                None => return Ok(reply),
            },
        }
        // Descend into the innermost container's next child, closing the
        // containers that have none left.
        step = loop {
            let Some(frame) = stack.last_mut() else {
                return Ok(Reply::Nil);
            };
            if let Some((child, slots)) = frame.next_child(lua)? {
                break open(lua, child, slots, script_protocol)?;
            }
            let Some(frame) = stack.pop() else {
                return Ok(Reply::Nil);
            };
            let reply = frame.finish();
            match stack.last_mut() {
                Some(parent) => parent.accept(reply),
                None => return Ok(reply),
            }
        };
    }
}

/// Convert a leaf, or open a container, at `slots` Lua stack slots in use.
fn open(lua: &Lua, value: Value, slots: usize, protocol: Protocol) -> mlua::Result<Step> {
    if slots + 4 > MAX_C_STACK {
        return Ok(Step::Done(Reply::Error(
            "ERR reached lua stack limit".into(),
        )));
    }
    Ok(Step::Done(match value {
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if protocol == Protocol::Resp3 => Reply::Bool(b),
        Value::Boolean(true) => Reply::Int(1),
        Value::Boolean(false) => Reply::Nil,
        Value::Integer(i) => Reply::Int(i),
        Value::Number(n) => Reply::Int(number_to_i64(n)),
        Value::Table(t) => return open_table(lua, t, slots),
        _ => Reply::Nil,
    }))
}

fn open_table(lua: &Lua, t: Table, slots: usize) -> mlua::Result<Step> {
    if let Value::String(err) = t.raw_get::<Value>("err")? {
        let text = status_line(&err.as_bytes());
        return Ok(Step::Done(Reply::Error(text)));
    }
    if let Value::String(ok) = t.raw_get::<Value>("ok")? {
        return Ok(Step::Done(Reply::StatusOwned(status_line(&ok.as_bytes()))));
    }
    match t.raw_get::<Value>("double")? {
        Value::Number(d) => return Ok(Step::Done(Reply::Double(d))),
        Value::Integer(i) => return Ok(Step::Done(Reply::Double(i as f64))),
        _ => {}
    }
    if let Value::String(big) = t.raw_get::<Value>("big_number")? {
        // Reply has no big-number shape yet: its RESP2 form, a bulk string.
        let text: Vec<u8> = big
            .as_bytes()
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        return Ok(Step::Done(Reply::Bulk(Bytes::from(text))));
    }
    if let Value::Table(v) = t.raw_get::<Value>("verbatim_string")? {
        if let (Value::String(format), Value::String(text)) =
            (v.raw_get::<Value>("format")?, v.raw_get::<Value>("string")?)
        {
            let text = text.as_bytes().to_vec();
            return Ok(Step::Done(
                match (&*format.as_bytes(), String::from_utf8(text)) {
                    (b"txt", Ok(s)) => Reply::Verbatim(s),
                    (_, Ok(s)) => Reply::Bulk(Bytes::from(s)),
                    (_, Err(e)) => Reply::Bulk(Bytes::from(e.into_bytes())),
                },
            ));
        }
    }
    if let Value::Table(map) = t.raw_get::<Value>("map")? {
        let pairs: Vec<(RegistryKey, RegistryKey)> = map
            .pairs::<Value, Value>()
            .map(|p| {
                let (k, v) = p?;
                Ok((lua.create_registry_value(k)?, lua.create_registry_value(v)?))
            })
            .collect::<mlua::Result<_>>()?;
        return Ok(Step::Open(Frame::Map {
            pairs: pairs.into_iter(),
            value: None,
            key: None,
            items: Vec::new(),
            slots,
        }));
    }
    if let Value::Table(set) = t.raw_get::<Value>("set")? {
        let members: Vec<RegistryKey> = set
            .pairs::<Value, Value>()
            .map(|p| lua.create_registry_value(p?.0))
            .collect::<mlua::Result<_>>()?;
        return Ok(Step::Open(Frame::Set {
            members: members.into_iter(),
            items: Vec::new(),
            slots,
        }));
    }
    Ok(Step::Open(Frame::Array {
        table: lua.create_registry_value(t)?,
        next: 1,
        items: Vec::new(),
        slots,
    }))
}
