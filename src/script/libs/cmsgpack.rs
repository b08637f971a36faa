//! lua-cmsgpack 0.4.0 (`cmsgpack`) as Redis ships it: MessagePack for Lua
//! 5.1 values. `pack` encodes each argument and concatenates; `unpack`
//! decodes everything, `unpack_one` / `unpack_limit` a bounded number of
//! values and return the next offset first.
//!
//! The encoding choices follow lua-cmsgpack: a number that converts to an
//! int64 and back unchanged is an integer (smallest fitting type), other
//! numbers are a float when a float holds them exactly, else a double; a
//! table whose keys are exactly 1..n is an array, anything else a map;
//! tables nested 16 deep encode as nil. Decoding has no depth limit of its
//! own but Lua's 8,000-slot C stack, which is emulated here (an explicit
//! stack, not recursion) with the same error.

use mlua::{Lua, MultiValue, Table, Value};

use super::{c_int, c_long, check_integer, check_integer_opt, check_string, number};
use crate::script::raw::{self, Outcome, Raise};

const MAX_NESTING: usize = 16;
/// `LUAI_MAXCSTACK`: slots a C function may use.
const MAX_C_STACK: usize = 8000;

fn lua_err(e: mlua::Error) -> Raise {
    Raise::msg(e.to_string())
}

fn encode_double(out: &mut Vec<u8>, d: f64) {
    let f = d as f32;
    if d == f64::from(f) {
        out.push(0xca);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&d.to_be_bytes());
    }
}

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_len(out: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) {
    if n <= 15 {
        out.push(fix | (n as u8 & 0xf));
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// lua-cmsgpack's rule: every key a positive integral number and the
/// largest equal to the count.
fn is_array(t: &Table) -> Result<bool, Raise> {
    let (mut count, mut max) = (0i32, 0i32);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(lua_err)?;
        let n = match &k {
            Value::Number(_) | Value::Integer(_) => number(&k).unwrap_or(0.0),
            _ => return Ok(false),
        };
        if n <= 0.0 || n.is_infinite() || f64::from(c_int(n)) != n {
            return Ok(false);
        }
        max = max.max(c_int(n));
        count = count.wrapping_add(1);
    }
    Ok(max == count)
}

/// Depth is bounded by [`MAX_NESTING`], so plain recursion is safe here.
fn encode(out: &mut Vec<u8>, v: &Value, level: usize) -> Result<(), Raise> {
    match v {
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(_) | Value::Number(_) => {
            let n = number(v).unwrap_or(0.0);
            if !n.is_infinite() && c_long(n) as f64 == n {
                encode_int(out, c_long(n));
            } else {
                encode_double(out, n);
            }
        }
        Value::Table(t) if level < MAX_NESTING => {
            if is_array(t)? {
                let len = t.raw_len();
                encode_len(out, len, 0x90, 0xdc, 0xdd);
                for j in 1..=len {
                    let item: Value = t.get(j).map_err(lua_err)?;
                    encode(out, &item, level + 1)?;
                }
            } else {
                // Stream the pairs: a big table must not pin a Lua
                // reference per entry.
                let mut count = 0usize;
                for pair in t.pairs::<Value, Value>() {
                    pair.map_err(lua_err)?;
                    count += 1;
                }
                encode_len(out, count, 0x80, 0xde, 0xdf);
                for pair in t.pairs::<Value, Value>() {
                    let (k, item) = pair.map_err(lua_err)?;
                    encode(out, &k, level + 1)?;
                    encode(out, &item, level + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

fn pack(lua: &Lua, args: MultiValue) -> Result<Value, Raise> {
    if args.is_empty() {
        return Err(Raise::Arg(0, "MessagePack pack needs input.".into()));
    }
    let mut out = Vec::new();
    for v in args.iter() {
        encode(&mut out, v, 0)?;
    }
    Ok(Value::String(lua.create_string(&out).map_err(lua_err)?))
}

enum Fail {
    Eof,
    BadFormat,
    Raise(Raise),
}

impl From<Raise> for Fail {
    fn from(r: Raise) -> Fail {
        Fail::Raise(r)
    }
}

/// A container being filled.
struct Frame {
    table: Table,
    remaining: usize,
    /// Arrays: the next index. Maps: unused.
    index: usize,
    is_map: bool,
    key: Option<Value>,
}

impl Frame {
    /// Lua stack slots this level holds while decoding its next item.
    fn slots(&self) -> usize {
        if self.is_map {
            1 + usize::from(self.key.is_some())
        } else {
            2
        }
    }
}

enum Item {
    Value(Value),
    Open { len: usize, is_map: bool },
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn need(&self, n: usize) -> Result<&[u8], Fail> {
        self.data
            .get(self.pos..)
            .and_then(|rest| rest.get(..n))
            .ok_or(Fail::Eof)
    }

    fn be(&self, n: usize) -> Result<u64, Fail> {
        let b = self.need(1 + n)?;
        Ok(b.iter()
            .skip(1)
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    fn string(&mut self, lua: &Lua, header: usize, len: usize) -> Result<Item, Fail> {
        let b = self.need(header.saturating_add(len))?;
        let s = lua
            .create_string(b.get(header..).unwrap_or(&[]))
            .map_err(|e| Fail::Raise(lua_err(e)))?;
        self.pos += header + len;
        Ok(Item::Value(Value::String(s)))
    }

    fn item(&mut self, lua: &Lua) -> Result<Item, Fail> {
        let first = *self.need(1)?.first().ok_or(Fail::Eof)?;
        let num = |v: f64| Ok(Item::Value(Value::Number(v)));
        let open = |len: u64, is_map: bool| Item::Open {
            len: len as usize,
            is_map,
        };
        let (item, size) = match first {
            0xcc => return self.fixed(2, |v| num(v as f64)),
            0xd0 => return self.fixed(2, |v| num(f64::from(v as u8 as i8))),
            0xcd => return self.fixed(3, |v| num(v as f64)),
            0xd1 => return self.fixed(3, |v| num(f64::from(v as u16 as i16))),
            0xce => return self.fixed(5, |v| num(v as f64)),
            0xd2 => return self.fixed(5, |v| num(f64::from(v as u32 as i32))),
            0xcf | 0xd3 => return self.fixed(9, |v| num(v as i64 as f64)),
            0xc0 => (Item::Value(Value::Nil), 1),
            0xc3 => (Item::Value(Value::Boolean(true)), 1),
            0xc2 => (Item::Value(Value::Boolean(false)), 1),
            0xca => return self.fixed(5, |v| num(f64::from(f32::from_bits(v as u32)))),
            0xcb => return self.fixed(9, |v| num(f64::from_bits(v))),
            0xd9 => {
                let l = self.be(1)? as usize;
                return self.string(lua, 2, l);
            }
            0xda => {
                let l = self.be(2)? as usize;
                return self.string(lua, 3, l);
            }
            0xdb => {
                let l = self.be(4)? as usize;
                return self.string(lua, 5, l);
            }
            0xdc => (open(self.be(2)?, false), 3),
            0xdd => (open(self.be(4)?, false), 5),
            0xde => (open(self.be(2)?, true), 3),
            0xdf => (open(self.be(4)?, true), 5),
            b if b & 0x80 == 0 => (Item::Value(Value::Number(f64::from(b))), 1),
            b if b & 0xe0 == 0xe0 => (Item::Value(Value::Number(f64::from(b as i8))), 1),
            b if b & 0xe0 == 0xa0 => return self.string(lua, 1, usize::from(b & 0x1f)),
            b if b & 0xf0 == 0x90 => (open(u64::from(b & 0xf), false), 1),
            b if b & 0xf0 == 0x80 => (open(u64::from(b & 0xf), true), 1),
            _ => return Err(Fail::BadFormat),
        };
        self.pos += size;
        Ok(item)
    }

    fn fixed(&mut self, size: usize, f: impl Fn(u64) -> Result<Item, Fail>) -> Result<Item, Fail> {
        let v = self.be(size - 1)?;
        self.pos += size;
        f(v)
    }
}

fn stack_overflow(what: &str) -> Fail {
    Fail::Raise(Raise::msg(format!("stack overflow ({what})")))
}

/// Decode one value starting at the cursor; `base` is the number of Lua
/// stack slots in use (arguments and earlier results).
fn decode_one(lua: &Lua, c: &mut Cursor, base: usize) -> Result<Value, Fail> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut used = base;
    loop {
        if used + 1 > MAX_C_STACK {
            return Err(stack_overflow(
                "too many return values at once; use unpack_one or unpack_limit instead.",
            ));
        }
        let mut value = match c.item(lua)? {
            Item::Value(v) => v,
            Item::Open { len, is_map } => {
                let table = lua.create_table().map_err(|e| Fail::Raise(lua_err(e)))?;
                if !is_map && used + 2 > MAX_C_STACK {
                    return Err(stack_overflow("in function mp_decode_to_lua_array"));
                }
                if len == 0 {
                    Value::Table(table)
                } else {
                    let frame = Frame {
                        table,
                        remaining: len,
                        index: 1,
                        is_map,
                        key: None,
                    };
                    used += frame.slots();
                    stack.push(frame);
                    continue;
                }
            }
        };
        // Hand the value to the open containers, closing the full ones.
        loop {
            let Some(top) = stack.last_mut() else {
                return Ok(value);
            };
            used -= top.slots();
            if top.is_map && top.key.is_none() {
                top.key = Some(value);
                used += top.slots();
                break;
            }
            let key = if top.is_map {
                top.key.take().unwrap_or(Value::Nil)
            } else {
                top.index += 1;
                Value::Number((top.index - 1) as f64)
            };
            top.table
                .set(key, value)
                .map_err(|e| Fail::Raise(lua_err(e)))?;
            top.remaining -= 1;
            if top.remaining > 0 {
                used += top.slots();
                break;
            }
            value = match stack.pop() {
                Some(done) => Value::Table(done.table),
                None => Value::Nil,
            };
        }
    }
}

fn unpack_full(
    lua: &Lua,
    args: &MultiValue,
    limit: i64,
    offset: i64,
    base: usize,
) -> Result<Vec<Value>, Raise> {
    let data = check_string(args, 1)?;
    let len = data.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Err(Raise::msg(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        )));
    } else if offset as u64 > len as u64 {
        return Err(Raise::msg(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        )));
    }
    let limit = if decode_all {
        i64::from(i32::MAX)
    } else {
        limit
    };
    let mut c = Cursor {
        data: &data,
        pos: offset as usize,
    };
    let mut out = Vec::new();
    while c.pos < len && (out.len() as i64) < limit {
        match decode_one(lua, &mut c, base + out.len()) {
            Ok(v) => out.push(v),
            Err(Fail::Eof) => return Err(Raise::msg("Missing bytes in input.")),
            Err(Fail::BadFormat) => return Err(Raise::msg("Bad data format in input.")),
            Err(Fail::Raise(r)) => return Err(r),
        }
    }
    if !decode_all {
        let next = if c.pos >= len { -1.0 } else { c.pos as f64 };
        out.insert(0, Value::Number(next));
    }
    Ok(out)
}

/// The `cmsgpack` table.
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        raw::function(lua, |lua, args| -> mlua::Result<Outcome> {
            Ok(pack(lua, args).map(|v| MultiValue::from_vec(vec![v])))
        })?,
    )?;
    t.raw_set(
        "unpack",
        raw::function(lua, |lua, args| -> mlua::Result<Outcome> {
            let base = args.len();
            Ok(unpack_full(lua, &args, 0, 0, base).map(MultiValue::from_vec))
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        raw::function(lua, |lua, args| -> mlua::Result<Outcome> {
            let r = check_integer_opt(&args, 2, 0)
                .and_then(|offset| unpack_full(lua, &first_only(&args), 1, offset, 1));
            Ok(r.map(MultiValue::from_vec))
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        raw::function(lua, |lua, args| -> mlua::Result<Outcome> {
            let r = check_integer(&args, 2).and_then(|limit| {
                let offset = check_integer_opt(&args, 3, 0)?;
                unpack_full(lua, &first_only(&args), limit, offset, 1)
            });
            Ok(r.map(MultiValue::from_vec))
        })?,
    )?;
    for (k, v) in [
        ("_NAME", "cmsgpack"),
        ("_VERSION", "lua-cmsgpack 0.4.0"),
        ("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo"),
        ("_DESCRIPTION", "MessagePack C implementation for Lua"),
    ] {
        t.raw_set(k, v)?;
    }
    Ok(t)
}

fn first_only(args: &MultiValue) -> MultiValue {
    MultiValue::from_vec(args.iter().take(1).cloned().collect())
}
