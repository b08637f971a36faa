//! `cjson.decode`: lua-cjson's tokenizer and parser, with an explicit stack.
//!
//! The input is read as the C code reads a NUL-terminated string: a NUL
//! byte ends it. Numbers go through a `strtod` equivalent, so with
//! `decode_invalid_numbers` on (the default) hex, `inf`, `nan` and a
//! leading `+` are accepted as lua-cjson accepts them.

use mlua::{Lua, Table, Value};

use super::cjson::{Config, MAX_C_STACK};
use crate::script::raw::{self, Raise};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    String,
    Number,
    Boolean,
    Null,
    Colon,
    Comma,
    End,
    Error,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::ObjBegin => "T_OBJ_BEGIN",
            Kind::ObjEnd => "T_OBJ_END",
            Kind::ArrBegin => "T_ARR_BEGIN",
            Kind::ArrEnd => "T_ARR_END",
            Kind::String => "T_STRING",
            Kind::Number => "T_NUMBER",
            Kind::Boolean => "T_BOOLEAN",
            Kind::Null => "T_NULL",
            Kind::Colon => "T_COLON",
            Kind::Comma => "T_COMMA",
            Kind::End => "T_END",
            Kind::Error => "T_ERROR",
        }
    }
}

struct Token {
    kind: Kind,
    index: usize,
    string: Vec<u8>,
    number: f64,
    boolean: bool,
    error: &'static str,
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    cfg: &'a Config,
}

fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for i in 0..4 {
        let d = char::from(*b.get(i)?).to_digit(16)?;
        v = (v << 4) | d;
    }
    Some(v)
}

fn utf8(cp: u32, out: &mut Vec<u8>) -> bool {
    if cp <= 0x7f {
        out.push(cp as u8);
    } else if cp <= 0x7ff {
        out.extend_from_slice(&[(cp >> 6) as u8 | 0xc0, (cp & 0x3f) as u8 | 0x80]);
    } else if cp <= 0xffff {
        out.extend_from_slice(&[
            (cp >> 12) as u8 | 0xe0,
            ((cp >> 6) & 0x3f) as u8 | 0x80,
            (cp & 0x3f) as u8 | 0x80,
        ]);
    } else if cp <= 0x1f_ffff {
        out.extend_from_slice(&[
            (cp >> 18) as u8 | 0xf0,
            ((cp >> 12) & 0x3f) as u8 | 0x80,
            ((cp >> 6) & 0x3f) as u8 | 0x80,
            (cp & 0x3f) as u8 | 0x80,
        ]);
    } else {
        return false;
    }
    true
}

/// `strtod` on the longest prefix of number-ish characters, as
/// `fpconv_strtod` hands it over. Returns the value and bytes used (0: none).
pub(super) fn strtod(s: &[u8]) -> (f64, usize) {
    let valid = |c: u8| {
        c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.') || (b'a'..=b'y').contains(&(c | 0x20))
    };
    let len = s.iter().take_while(|&&c| valid(c)).count();
    let s = s.get(..len).unwrap_or(&[]);
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut i = 0;
    let neg = match at(0) {
        b'-' => {
            i = 1;
            true
        }
        b'+' => {
            i = 1;
            false
        }
        _ => false,
    };
    let sign = |v: f64| if neg { -v } else { v };
    let rest = s.get(i..).unwrap_or(&[]);
    let lower: Vec<u8> = rest.iter().map(|c| c.to_ascii_lowercase()).collect();
    if lower.starts_with(b"inf") {
        let used = if lower.starts_with(b"infinity") { 8 } else { 3 };
        return (sign(f64::INFINITY), i + used);
    }
    if lower.starts_with(b"nan") {
        return (sign(f64::NAN), i + 3);
    }
    if at(i) == b'0' && (at(i + 1) | 0x20) == b'x' {
        let start = i + 2;
        let is_hex = |c: u8| c.is_ascii_hexdigit();
        if is_hex(at(start)) || (at(start) == b'.' && is_hex(at(start + 1))) {
            let mut j = start;
            let mut mant = 0f64;
            let mut exp: i64 = 0;
            while is_hex(at(j)) {
                mant = mant * 16.0 + f64::from(char::from(at(j)).to_digit(16).unwrap_or(0));
                j += 1;
            }
            if at(j) == b'.' {
                j += 1;
                while is_hex(at(j)) {
                    mant = mant * 16.0 + f64::from(char::from(at(j)).to_digit(16).unwrap_or(0));
                    exp -= 4;
                    j += 1;
                }
            }
            if (at(j) | 0x20) == b'p' {
                let mut k = j + 1;
                let eneg = at(k) == b'-';
                if matches!(at(k), b'-' | b'+') {
                    k += 1;
                }
                if at(k).is_ascii_digit() {
                    let mut e: i64 = 0;
                    while at(k).is_ascii_digit() {
                        e = (e * 10 + i64::from(at(k) - b'0')).min(100_000);
                        k += 1;
                    }
                    exp += if eneg { -e } else { e };
                    j = k;
                }
            }
            let v = mant * 2f64.powi(exp.clamp(-2000, 2000) as i32);
            return (sign(v), j);
        }
        return (sign(0.0), i + 1);
    }
    let mut j = i;
    let mut digits = 0;
    while at(j).is_ascii_digit() {
        j += 1;
        digits += 1;
    }
    if at(j) == b'.' {
        j += 1;
        while at(j).is_ascii_digit() {
            j += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return (0.0, 0);
    }
    if (at(j) | 0x20) == b'e' {
        let mut k = j + 1;
        if matches!(at(k), b'-' | b'+') {
            k += 1;
        }
        if at(k).is_ascii_digit() {
            while at(k).is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let text = std::str::from_utf8(s.get(..j).unwrap_or(&[])).unwrap_or("0");
    (text.parse::<f64>().unwrap_or(0.0), j)
}

impl Parser<'_> {
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn error(&self, index: usize, what: &'static str) -> Token {
        Token {
            kind: Kind::Error,
            index,
            string: Vec::new(),
            number: 0.0,
            boolean: false,
            error: what,
        }
    }

    fn simple(kind: Kind, index: usize) -> Token {
        Token {
            kind,
            index,
            string: Vec::new(),
            number: 0.0,
            boolean: false,
            error: "",
        }
    }

    /// lua-cjson's `json_is_invalid_number`.
    fn invalid_number(&self) -> bool {
        let mut p = self.pos;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        if self.at(p) == b'0' {
            let c = self.at(p + 1);
            return (c | 0x20) == b'x' || c.is_ascii_digit();
        } else if self.at(p) <= b'9' {
            return false;
        }
        let word: Vec<u8> = (0..3)
            .map(|i| self.at(p + i).to_ascii_lowercase())
            .collect();
        word == b"inf" || word == b"nan"
    }

    fn number(&mut self) -> Token {
        let (v, used) = strtod(self.data.get(self.pos..).unwrap_or(&[]));
        if used == 0 {
            return self.error(self.pos, "invalid number");
        }
        let mut t = Parser::simple(Kind::Number, self.pos);
        t.number = v;
        self.pos += used;
        t
    }

    fn string(&mut self, index: usize) -> Token {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let ch = self.at(self.pos);
            if ch == b'"' {
                break;
            }
            if ch == 0 {
                return self.error(self.pos, "unexpected end of string");
            }
            if ch == b'\\' {
                let esc = match self.at(self.pos + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 8,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 12,
                    b'r' => b'\r',
                    b'u' => {
                        if self.unicode(&mut out) {
                            continue;
                        }
                        return self.error(self.pos, "invalid unicode escape code");
                    }
                    _ => return self.error(self.pos, "invalid escape code"),
                };
                out.push(esc);
                self.pos += 2;
                continue;
            }
            out.push(ch);
            self.pos += 1;
        }
        self.pos += 1;
        let mut t = Parser::simple(Kind::String, index);
        t.string = out;
        t
    }

    fn unicode(&mut self, out: &mut Vec<u8>) -> bool {
        let hex = |p: usize| {
            let b: Vec<u8> = (0..4).map(|i| self.at(p + i)).collect();
            hex4(&b)
        };
        let Some(mut cp) = hex(self.pos + 2) else {
            return false;
        };
        let mut len = 6;
        if cp & 0xf800 == 0xd800 {
            if cp & 0x400 != 0 {
                return false;
            }
            if self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return false;
            }
            let Some(low) = hex(self.pos + 8) else {
                return false;
            };
            if low & 0xfc00 != 0xdc00 {
                return false;
            }
            cp = (((cp & 0x3ff) << 10) | (low & 0x3ff)) + 0x10000;
            len = 12;
        }
        if !utf8(cp, out) {
            return false;
        }
        self.pos += len;
        true
    }

    fn next(&mut self) -> Token {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let index = self.pos;
        let ch = self.at(self.pos);
        let kind = match ch {
            b'{' => Kind::ObjBegin,
            b'}' => Kind::ObjEnd,
            b'[' => Kind::ArrBegin,
            b']' => Kind::ArrEnd,
            b',' => Kind::Comma,
            b':' => Kind::Colon,
            0 => return Parser::simple(Kind::End, index),
            b'"' => return self.string(index),
            b'-' | b'0'..=b'9' => {
                if self.cfg.decode_invalid_numbers == 0 && self.invalid_number() {
                    return self.error(index, "invalid number");
                }
                return self.number();
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {
                let rest = self.data.get(self.pos..).unwrap_or(&[]);
                let word = |w: &[u8]| rest.starts_with(w);
                let mut t = Parser::simple(Kind::Boolean, index);
                if word(b"true") {
                    t.boolean = true;
                    self.pos += 4;
                } else if word(b"false") {
                    self.pos += 5;
                } else if word(b"null") {
                    t.kind = Kind::Null;
                    self.pos += 4;
                } else if self.cfg.decode_invalid_numbers != 0 && self.invalid_number() {
                    return self.number();
                } else {
                    return self.error(index, "invalid token");
                }
                return t;
            }
            _ => return self.error(index, "invalid token"),
        };
        self.pos += 1;
        Parser::simple(kind, index)
    }
}

fn expected(what: &str, t: &Token) -> Raise {
    let found = if t.kind == Kind::Error {
        t.error
    } else {
        t.kind.name()
    };
    Raise::msg(format!(
        "Expected {what} but found {found} at character {}",
        t.index + 1
    ))
}

fn lua_err(e: mlua::Error) -> Raise {
    Raise::msg(e.to_string())
}

/// An open container; its table lives in the parse's holder table at the
/// frame's depth (one Lua reference for the whole parse, not one a level:
/// mlua's reference stack shares Lua's 8,000-slot cap).
enum Frame {
    Array { next: i64 },
    Object { key: Vec<u8> },
}

/// Decode `text` with the settings of its module.
pub(super) fn decode(lua: &Lua, cfg: &Config, text: &[u8]) -> Result<Value, Raise> {
    if text.len() >= 2 && (text.first() == Some(&0) || text.get(1) == Some(&0)) {
        return Err(Raise::msg("JSON parser does not support UTF-16 or UTF-32"));
    }
    let mut p = Parser {
        data: text,
        pos: 0,
        cfg,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let holder = lua.create_table().map_err(lua_err)?;
    // The argument's slot, plus each open level's (table, and key).
    let mut used = 1usize;
    let mut token = p.next();
    let result = 'parse: loop {
        // Here `token` starts a value.
        let mut value = match token.kind {
            Kind::String => Value::String(lua.create_string(&token.string).map_err(lua_err)?),
            Kind::Number => Value::Number(token.number),
            Kind::Boolean => Value::Boolean(token.boolean),
            Kind::Null => raw::null(),
            Kind::ObjBegin | Kind::ArrBegin => {
                let is_obj = token.kind == Kind::ObjBegin;
                let depth = stack.len() + 1;
                let slots = if is_obj { 3 } else { 2 };
                if depth > cfg.decode_max_depth.max(0) as usize || used + slots > MAX_C_STACK {
                    return Err(Raise::msg(format!(
                        "Found too many nested data structures ({}) at character {}",
                        depth as i32, p.pos
                    )));
                }
                let table = lua.create_table().map_err(lua_err)?;
                token = p.next();
                let end = if is_obj { Kind::ObjEnd } else { Kind::ArrEnd };
                if token.kind == end {
                    Value::Table(table)
                } else if is_obj {
                    let key = object_key(&mut p, token)?;
                    token = p.next();
                    holder.raw_set(depth, table).map_err(lua_err)?;
                    stack.push(Frame::Object { key });
                    used += 2;
                    continue 'parse;
                } else {
                    holder.raw_set(depth, table).map_err(lua_err)?;
                    stack.push(Frame::Array { next: 1 });
                    used += 1;
                    continue 'parse;
                }
            }
            _ => return Err(expected("value", &token)),
        };
        // Store the value in its container; close containers that end.
        loop {
            if stack.is_empty() {
                break 'parse value;
            }
            let table: Table = holder.raw_get(stack.len()).map_err(lua_err)?;
            let Some(top) = stack.last_mut() else {
                break 'parse value;
            };
            let (end, what) = match top {
                Frame::Array { next } => {
                    table.raw_set(*next, value).map_err(lua_err)?;
                    *next += 1;
                    (Kind::ArrEnd, "comma or array end")
                }
                Frame::Object { key } => {
                    let k = lua.create_string(&*key).map_err(lua_err)?;
                    table.raw_set(k, value).map_err(lua_err)?;
                    (Kind::ObjEnd, "comma or object end")
                }
            };
            token = p.next();
            if token.kind == end {
                holder.raw_set(stack.len(), Value::Nil).map_err(lua_err)?;
                used -= match stack.pop() {
                    Some(Frame::Object { .. }) => 2,
                    _ => 1,
                };
                value = Value::Table(table);
                continue;
            }
            if token.kind != Kind::Comma {
                return Err(expected(what, &token));
            }
            token = p.next();
            if let Some(Frame::Object { key, .. }) = stack.last_mut() {
                *key = object_key(&mut p, token)?;
                token = p.next();
            }
            continue 'parse;
        }
    };
    let t = p.next();
    if t.kind != Kind::End {
        return Err(expected("the end", &t));
    }
    Ok(result)
}

/// An object's key token, then its colon.
fn object_key(p: &mut Parser, token: Token) -> Result<Vec<u8>, Raise> {
    if token.kind != Kind::String {
        return Err(expected("object key string", &token));
    }
    let colon = p.next();
    if colon.kind != Kind::Colon {
        return Err(expected("colon", &colon));
    }
    Ok(token.string)
}
