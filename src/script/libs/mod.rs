//! The C libraries Redis links into its Lua, rewritten in Rust on mlua:
//! `bit` (LuaBitOp). `cjson`, `cmsgpack` and `struct` are not written yet:
//! their globals exist (so scripts see Redis's set of globals) but calling
//! a function raises `<lib>.<fn> is not supported by Kiwi yet`.

pub mod bit;

use mlua::{Lua, MultiValue, Table, Value};

use super::raw::{self, Raise};

/// Put the libraries into the (still writable) globals.
pub fn install(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    globals.raw_set("bit", bit::library(lua)?)?;
    for (lib, names) in [
        (
            "cjson",
            &[
                "encode",
                "decode",
                "encode_keep_buffer",
                "encode_max_depth",
                "decode_max_depth",
                "encode_number_precision",
                "encode_sparse_array",
                "encode_invalid_numbers",
                "decode_invalid_numbers",
                "new",
            ][..],
        ),
        (
            "cmsgpack",
            &["pack", "unpack", "unpack_one", "unpack_limit"][..],
        ),
        ("struct", &["pack", "unpack", "size"][..]),
    ] {
        let t = lua.create_table()?;
        for name in names {
            let text = format!("{lib}.{name} is not supported by Kiwi yet");
            t.raw_set(
                *name,
                raw::function(lua, move |_, _: MultiValue| {
                    Ok(Err(Raise::msg(text.clone())))
                })?,
            )?;
        }
        if lib == "cjson" {
            t.raw_set("null", raw::null())?;
        }
        globals.raw_set(lib, t)?;
    }
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

/// C's `%.<precision>g`.
pub fn format_g(d: f64, precision: usize) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let precision = precision.max(1);
    let sci = format!("{:.*e}", precision - 1, d);
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i64 = exp.parse().unwrap_or(0);
    if exp >= -4 && exp < precision as i64 {
        let decimals = (precision as i64 - 1 - exp).max(0) as usize;
        let fixed = format!("{:.*}", decimals, d);
        trim_fraction(&fixed).to_string()
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", trim_fraction(mantissa), sign, exp.abs())
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

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

/// The number a library argument holds, Lua-style (numbers and numeric
/// strings), or the `luaL_checknumber` error.
pub fn check_number(args: &MultiValue, n: usize) -> Result<f64, Raise> {
    let v = args.get(n - 1).cloned().unwrap_or(Value::Nil);
    let num = match &v {
        Value::Number(x) => Some(*x),
        Value::Integer(i) => Some(*i as f64),
        Value::String(s) => str_to_number(&s.as_bytes()),
        _ => None,
    };
    num.ok_or_else(|| {
        Raise::Arg(
            n as i32,
            format!("number expected, got {}", super::vm::type_name(&v)),
        )
    })
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
