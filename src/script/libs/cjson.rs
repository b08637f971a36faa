//! lua-cjson 2.1.0 (`cjson`) as Redis ships it: `encode`, `decode`, the
//! configuration functions and `new` (a second module with its own
//! configuration). Encoding and decoding walk with explicit stacks, so the
//! nesting limits (1,000 by default, settable) cost heap, not native stack;
//! Lua's 8,000-slot C-stack limit, which the original also hits when a
//! limit is raised, is emulated with the original's error.

use std::sync::{Arc, Mutex};

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::{c_int, check_integer, check_string, format_g, number};
use crate::script::raw::{self, Outcome, Raise};
use crate::script::vm::type_name;

/// `LUAI_MAXCSTACK`: slots a C function may use.
pub(super) const MAX_C_STACK: usize = 8000;

/// One module's settings (`json_config_t`).
#[derive(Debug, Clone)]
pub(super) struct Config {
    sparse_convert: i32,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    pub(super) decode_max_depth: i32,
    /// 0 refuse, 1 allow (`nan`/`inf`), 2 encode as `null`.
    encode_invalid_numbers: i32,
    pub(super) decode_invalid_numbers: i32,
    keep_buffer: i32,
    precision: i32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sparse_convert: 0,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: 1,
            keep_buffer: 1,
            precision: 14,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

fn lua_err(e: mlua::Error) -> Raise {
    Raise::msg(e.to_string())
}

fn config(shared: &Shared) -> Config {
    match shared.lock() {
        Ok(c) => c.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn update(shared: &Shared, f: impl FnOnce(&mut Config)) {
    match shared.lock() {
        Ok(mut c) => f(&mut c),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

fn cannot(what: &str, reason: &str) -> Raise {
    Raise::msg(format!("Cannot serialise {what}: {reason}"))
}

fn append_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn append_number(out: &mut Vec<u8>, cfg: &Config, n: f64) -> Result<(), Raise> {
    match cfg.encode_invalid_numbers {
        0 if !n.is_finite() => return Err(cannot("number", "must not be NaN or Inf")),
        0 => {}
        1 if n.is_nan() => {
            out.extend_from_slice(b"nan");
            return Ok(());
        }
        1 => {}
        _ if !n.is_finite() => {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        _ => {}
    }
    out.extend_from_slice(format_g(n, cfg.precision.max(1) as usize).as_bytes());
    Ok(())
}

/// `lua_array_length`: the array size, or None for an object.
fn array_length(cfg: &Config, t: &Table) -> Result<Option<i32>, Raise> {
    let (mut max, mut items) = (0i32, 0i32);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(lua_err)?;
        let k = match k {
            Value::Number(_) | Value::Integer(_) => number(&k).unwrap_or(0.0),
            _ => return Ok(None),
        };
        if k == 0.0 || k.floor() != k || k < 1.0 {
            return Ok(None);
        }
        if k > f64::from(max) {
            max = c_int(k);
        }
        items = items.wrapping_add(1);
    }
    if cfg.sparse_ratio > 0 && max > items.wrapping_mul(cfg.sparse_ratio) && max > cfg.sparse_safe {
        if cfg.sparse_convert == 0 {
            return Err(cannot("table", "excessively sparse array"));
        }
        return Ok(None);
    }
    Ok(Some(max))
}

/// A table being written. The table itself lives in the encode's holder
/// table at the frame's depth: one Lua reference for the whole walk, not
/// one a level (mlua's reference stack shares Lua's 8,000-slot cap).
enum Frame {
    Array {
        len: i32,
        next: i32,
    },
    Object {
        /// The last key written (nil before the first).
        key: Value,
    },
}

impl Frame {
    /// Lua stack slots this level holds while its items are written.
    fn slots(&self) -> usize {
        match self {
            Frame::Array { .. } => 1,
            Frame::Object { .. } => 2,
        }
    }
}

/// Write a scalar, or open a table (returned as a frame to walk).
fn append_value(
    out: &mut Vec<u8>,
    cfg: &Config,
    v: &Value,
    depth: usize,
    used: usize,
) -> Result<Option<(Frame, Table)>, Raise> {
    match v {
        Value::String(s) => append_string(out, &s.as_bytes()),
        Value::Number(_) | Value::Integer(_) => append_number(out, cfg, number(v).unwrap_or(0.0))?,
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth.max(0) as usize || used + 3 > MAX_C_STACK {
                return Err(Raise::msg(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth as i32
                )));
            }
            let frame = match array_length(cfg, t)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    Frame::Array { len, next: 1 }
                }
                _ => {
                    out.push(b'{');
                    Frame::Object { key: Value::Nil }
                }
            };
            return Ok(Some((frame, t.clone())));
        }
        other => return Err(cannot(type_name(other), "type not supported")),
    }
    Ok(None)
}

fn encode(lua: &Lua, cfg: &Config, next_fn: &Function, v: &Value) -> Result<Vec<u8>, Raise> {
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let holder = lua.create_table().map_err(lua_err)?;
    // The argument itself takes one slot.
    let mut used = 1;
    if let Some((frame, table)) = append_value(&mut out, cfg, v, 0, used)? {
        used += frame.slots();
        stack.push(frame);
        holder.raw_set(stack.len(), table).map_err(lua_err)?;
    }
    while !stack.is_empty() {
        let table: Table = holder.raw_get(stack.len()).map_err(lua_err)?;
        let Some(top) = stack.last_mut() else {
            break;
        };
        let item = match top {
            Frame::Array { len, next } => {
                if *next > *len {
                    out.push(b']');
                    None
                } else {
                    if *next > 1 {
                        out.push(b',');
                    }
                    let item: Value = table.raw_get(*next).map_err(lua_err)?;
                    *next += 1;
                    Some(item)
                }
            }
            Frame::Object { key } => {
                // `next` one step at a time, so a frame pins two references
                // however big its table.
                let (k, item): (Value, Value) =
                    next_fn.call((table, key.clone())).map_err(lua_err)?;
                if k.is_nil() {
                    out.push(b'}');
                    None
                } else {
                    if !key.is_nil() {
                        out.push(b',');
                    }
                    match &k {
                        Value::Number(_) | Value::Integer(_) => {
                            out.push(b'"');
                            append_number(&mut out, cfg, number(&k).unwrap_or(0.0))?;
                            out.extend_from_slice(b"\":");
                        }
                        Value::String(s) => {
                            append_string(&mut out, &s.as_bytes());
                            out.push(b':');
                        }
                        other => {
                            return Err(cannot(
                                type_name(other),
                                "table key must be a number or string",
                            ))
                        }
                    }
                    *key = k;
                    Some(item)
                }
            }
        };
        match item {
            None => {
                holder.raw_set(stack.len(), Value::Nil).map_err(lua_err)?;
                if let Some(done) = stack.pop() {
                    used -= done.slots();
                }
            }
            Some(item) => {
                let depth = stack.len();
                if let Some((frame, table)) = append_value(&mut out, cfg, &item, depth, used)? {
                    used += frame.slots();
                    stack.push(frame);
                    holder.raw_set(stack.len(), table).map_err(lua_err)?;
                }
            }
        }
    }
    Ok(out)
}

fn too_many(args: &MultiValue, max: usize) -> Result<(), Raise> {
    if args.len() > max {
        return Err(Raise::Arg(
            max as i32 + 1,
            "found too many arguments".into(),
        ));
    }
    Ok(())
}

fn is_nil(args: &MultiValue, n: usize) -> bool {
    matches!(args.get(n - 1), None | Some(Value::Nil))
}

/// `json_integer_option`.
fn integer_option(args: &MultiValue, n: usize, min: i32, max: i32) -> Result<Option<i32>, Raise> {
    if is_nil(args, n) {
        return Ok(None);
    }
    let value = check_integer(args, n)? as i32;
    if value < min || value > max {
        return Err(Raise::Arg(
            1,
            format!("expected integer between {min} and {max}"),
        ));
    }
    Ok(Some(value))
}

/// `json_enum_option` with `bool_true` 1: booleans, or one of `options`.
fn enum_option(args: &MultiValue, n: usize, options: &[&str]) -> Result<Option<i32>, Raise> {
    match args.get(n - 1) {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(i32::from(*b))),
        Some(_) => {
            let s = check_string(args, n)?;
            match options.iter().position(|o| o.as_bytes() == s.as_slice()) {
                Some(i) => Ok(Some(i as i32)),
                None => Err(Raise::Arg(
                    n as i32,
                    format!("invalid option '{}'", String::from_utf8_lossy(&s)),
                )),
            }
        }
    }
}

fn enum_value(lua: &Lua, setting: i32, options: &[&str]) -> mlua::Result<Value> {
    if setting == 0 || setting == 1 {
        Ok(Value::Boolean(setting == 1))
    } else {
        let s = options.get(setting as usize).copied().unwrap_or("");
        Ok(Value::String(lua.create_string(s)?))
    }
}

const BOOL_OPTIONS: &[&str] = &["off", "on"];
const INVALID_NUMBER_OPTIONS: &[&str] = &["off", "on", "null"];

fn one(v: Value) -> Outcome {
    Ok(MultiValue::from_vec(vec![v]))
}

/// An integer setting function (`encode_max_depth`, ...).
fn int_setting(
    lua: &Lua,
    shared: &Shared,
    get: fn(&mut Config) -> &mut i32,
    min: i32,
    max: i32,
) -> mlua::Result<mlua::Function> {
    let shared = shared.clone();
    raw::function(lua, move |_, args| {
        if let Err(e) = too_many(&args, 1) {
            return Ok(Err(e));
        }
        match integer_option(&args, 1, min, max) {
            Err(e) => Ok(Err(e)),
            Ok(set) => {
                let mut now = 0;
                update(&shared, |c| {
                    let field = get(c);
                    if let Some(v) = set {
                        *field = v;
                    }
                    now = *field;
                });
                Ok(one(Value::Number(f64::from(now))))
            }
        }
    })
}

/// An enum setting function (`encode_keep_buffer`, ...).
fn enum_setting(
    lua: &Lua,
    shared: &Shared,
    get: fn(&mut Config) -> &mut i32,
    options: &'static [&'static str],
) -> mlua::Result<mlua::Function> {
    let shared = shared.clone();
    raw::function(lua, move |lua, args| {
        if let Err(e) = too_many(&args, 1) {
            return Ok(Err(e));
        }
        match enum_option(&args, 1, options) {
            Err(e) => Ok(Err(e)),
            Ok(set) => {
                let mut now = 0;
                update(&shared, |c| {
                    let field = get(c);
                    if let Some(v) = set {
                        *field = v;
                    }
                    now = *field;
                });
                Ok(one(enum_value(lua, now, options)?))
            }
        }
    })
}

/// A `cjson` module table with a fresh configuration (`cjson.new`).
/// `next_fn` is the base library's `next`, taken before any script runs.
pub fn library(lua: &Lua, next_fn: Function) -> mlua::Result<Table> {
    let shared: Shared = Arc::new(Mutex::new(Config::default()));
    let t = lua.create_table()?;
    let cfg = shared.clone();
    let next_for_new = next_fn.clone();
    t.raw_set(
        "encode",
        raw::function(lua, move |lua, args| -> mlua::Result<Outcome> {
            if args.len() != 1 {
                return Ok(Err(Raise::Arg(1, "expected 1 argument".into())));
            }
            let v = args.front().cloned().unwrap_or(Value::Nil);
            Ok(match encode(lua, &config(&cfg), &next_fn, &v) {
                Ok(bytes) => one(Value::String(lua.create_string(&bytes)?)),
                Err(e) => Err(e),
            })
        })?,
    )?;
    let cfg = shared.clone();
    t.raw_set(
        "decode",
        raw::function(lua, move |lua, args| -> mlua::Result<Outcome> {
            if args.len() != 1 {
                return Ok(Err(Raise::Arg(1, "expected 1 argument".into())));
            }
            let text = match check_string(&args, 1) {
                Ok(t) => t,
                Err(e) => return Ok(Err(e)),
            };
            Ok(super::cjson_decode::decode(lua, &config(&cfg), &text).and_then(one))
        })?,
    )?;
    let cfg = shared.clone();
    t.raw_set(
        "encode_sparse_array",
        raw::function(lua, move |_, args| -> mlua::Result<Outcome> {
            if let Err(e) = too_many(&args, 3) {
                return Ok(Err(e));
            }
            let convert = match enum_option(&args, 1, BOOL_OPTIONS) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            if let Some(v) = convert {
                update(&cfg, |c| c.sparse_convert = v);
            }
            let ratio = match integer_option(&args, 2, 0, i32::MAX) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            if let Some(v) = ratio {
                update(&cfg, |c| c.sparse_ratio = v);
            }
            let safe = match integer_option(&args, 3, 0, i32::MAX) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            if let Some(v) = safe {
                update(&cfg, |c| c.sparse_safe = v);
            }
            let c = config(&cfg);
            Ok(Ok(MultiValue::from_vec(vec![
                Value::Boolean(c.sparse_convert != 0),
                Value::Number(f64::from(c.sparse_ratio)),
                Value::Number(f64::from(c.sparse_safe)),
            ])))
        })?,
    )?;
    t.raw_set(
        "encode_max_depth",
        int_setting(lua, &shared, |c| &mut c.encode_max_depth, 1, i32::MAX)?,
    )?;
    t.raw_set(
        "decode_max_depth",
        int_setting(lua, &shared, |c| &mut c.decode_max_depth, 1, i32::MAX)?,
    )?;
    t.raw_set(
        "encode_number_precision",
        int_setting(lua, &shared, |c| &mut c.precision, 1, 14)?,
    )?;
    t.raw_set(
        "encode_keep_buffer",
        enum_setting(lua, &shared, |c| &mut c.keep_buffer, BOOL_OPTIONS)?,
    )?;
    t.raw_set(
        "encode_invalid_numbers",
        enum_setting(
            lua,
            &shared,
            |c| &mut c.encode_invalid_numbers,
            INVALID_NUMBER_OPTIONS,
        )?,
    )?;
    t.raw_set(
        "decode_invalid_numbers",
        enum_setting(
            lua,
            &shared,
            |c| &mut c.decode_invalid_numbers,
            BOOL_OPTIONS,
        )?,
    )?;
    t.raw_set(
        "new",
        raw::function(lua, move |lua, _| -> mlua::Result<Outcome> {
            Ok(one(Value::Table(library(lua, next_for_new.clone())?)))
        })?,
    )?;
    t.raw_set("null", raw::null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}
