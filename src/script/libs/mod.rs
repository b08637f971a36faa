//! The C libraries Redis links into its Lua, rewritten in Rust on mlua:
//! `bit` (LuaBitOp), `cjson` (lua-cjson 2.1.0), `cmsgpack` (lua-cmsgpack
//! 0.4.0) and `struct`. Each keeps the original's results and error texts,
//! including its C-level quirks where a script can observe them.

pub mod bit;
pub mod cjson;
mod cjson_decode;
pub mod cmsgpack;
pub mod structlib;

use mlua::{Lua, MultiValue, Table, Value};

use super::raw::Raise;

/// Put the libraries into the (still writable) globals.
pub fn install(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    globals.raw_set("bit", bit::library(lua)?)?;
    let next_fn: mlua::Function = globals.raw_get("next")?;
    globals.raw_set("cjson", cjson::library(lua, next_fn)?)?;
    globals.raw_set("cmsgpack", cmsgpack::library(lua)?)?;
    globals.raw_set("struct", structlib::library(lua)?)?;
    Ok(())
}

/// A Lua number (mlua hands integral ones over as integers).
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

pub use crate::num::format_g;

/// `lua_tonumber` of a string (`luaO_str2d`): decimal or `0x` hex, spaces
/// around allowed, nothing else.
pub fn str_to_number(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if t.is_empty() {
        return None;
    }
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        let v = u64::from_str_radix(hex, 16).ok()? as f64;
        return Some(if neg { -v } else { v });
    }
    // Rust accepts "inf"/"nan" words that strtod also takes; Lua 5.1 does too.
    let v: f64 = body.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// C's `(long)d` on x86-64: truncation, or the "integer indefinite" value
/// (i64::MIN) when out of range or NaN.
pub fn c_long(d: f64) -> i64 {
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&d) {
        d as i64
    } else {
        i64::MIN
    }
}

/// C's `(int)d` on x86-64 (INT_MIN when out of range or NaN).
pub fn c_int(d: f64) -> i32 {
    if (-2_147_483_648.0..2_147_483_648.0).contains(&d) {
        d as i32
    } else {
        i32::MIN
    }
}

/// `luaL_typename` of argument `n` (1-based): "no value" past the end.
pub fn arg_type_name(args: &MultiValue, n: usize) -> &'static str {
    match args.get(n.wrapping_sub(1)) {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(v) => super::vm::type_name(v),
    }
}

fn arg_number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(x) => Some(*x),
        Value::Integer(i) => Some(*i as f64),
        Value::String(s) => str_to_number(&s.as_bytes()),
        _ => None,
    }
}

/// The number a library argument holds, Lua-style (numbers and numeric
/// strings), or the `luaL_checknumber` error.
pub fn check_number(args: &MultiValue, n: usize) -> Result<f64, Raise> {
    arg_number(args.get(n.wrapping_sub(1))).ok_or_else(|| {
        Raise::Arg(
            n as i32,
            format!("number expected, got {}", arg_type_name(args, n)),
        )
    })
}

/// `luaL_checkinteger`: the number truncated as C's `(ptrdiff_t)d` does.
pub fn check_integer(args: &MultiValue, n: usize) -> Result<i64, Raise> {
    check_number(args, n).map(c_long)
}

/// `luaL_optinteger`: `default` for a missing or nil argument.
pub fn check_integer_opt(args: &MultiValue, n: usize, default: i64) -> Result<i64, Raise> {
    match args.get(n.wrapping_sub(1)) {
        None | Some(Value::Nil) => Ok(default),
        Some(_) => check_integer(args, n),
    }
}

/// `luaL_checklstring`: strings, and numbers as Lua formats them (`%.14g`).
pub fn check_string(args: &MultiValue, n: usize) -> Result<Vec<u8>, Raise> {
    match args.get(n.wrapping_sub(1)) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Number(x)) => Ok(format_g(*x, 14).into_bytes()),
        Some(Value::Integer(i)) => Ok(format_g(*i as f64, 14).into_bytes()),
        _ => Err(Raise::Arg(
            n as i32,
            format!("string expected, got {}", arg_type_name(args, n)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_formats() {
        assert_eq!(format_g(0.1, 14), "0.1");
        assert_eq!(format_g(1e15, 14), "1e+15");
        assert_eq!(format_g(123456789012345.0, 14), "1.2345678901234e+14");
        assert_eq!(format_g(3.0, 14), "3");
        assert_eq!(format_g(0.0001, 14), "0.0001");
        assert_eq!(format_g(0.00001, 14), "1e-05");
        assert_eq!(format_g(-2.5, 17), "-2.5");
    }
}
