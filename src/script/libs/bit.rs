//! LuaBitOp (`bit`), as Redis ships it: 32-bit operations on numbers.
//!
//! Arguments are normalised as LuaBitOp does on a double-number build: the
//! number plus 2^52+2^51 taken modulo 2^32, i.e. rounded to the nearest
//! integer and wrapped to 32 bits; results are signed 32-bit numbers.

use mlua::{Lua, MultiValue, Table, Value};

use super::check_number;
use crate::script::raw::{self, Outcome, Raise};

/// LuaBitOp's `barg`: round to nearest (ties to even, as the FPU add does)
/// and keep the low 32 bits.
fn tobit(n: f64) -> i32 {
    let r = n + 6_755_399_441_055_744.0; // 2^52 + 2^51
    r.to_bits() as u32 as i32
}

fn arg(args: &MultiValue, n: usize) -> Result<i32, Raise> {
    check_number(args, n).map(tobit)
}

fn num(v: i32) -> mlua::Result<Outcome> {
    Ok(Ok(MultiValue::from_vec(vec![Value::Number(f64::from(v))])))
}

/// The `bit` table.
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let unary = |f: fn(i32) -> i32| {
        move |_: &Lua, args: MultiValue| -> mlua::Result<Outcome> {
            match arg(&args, 1) {
                Ok(x) => num(f(x)),
                Err(e) => Ok(Err(e)),
            }
        }
    };
    t.raw_set("tobit", raw::function(lua, unary(|x| x))?)?;
    t.raw_set("bnot", raw::function(lua, unary(|x| !x))?)?;
    t.raw_set("bswap", raw::function(lua, unary(|x| x.swap_bytes()))?)?;
    let fold = |f: fn(i32, i32) -> i32| {
        move |_: &Lua, args: MultiValue| -> mlua::Result<Outcome> {
            let mut acc = match arg(&args, 1) {
                Ok(x) => x,
                Err(e) => return Ok(Err(e)),
            };
            for i in 2..=args.len() {
                match arg(&args, i) {
                    Ok(x) => acc = f(acc, x),
                    Err(e) => return Ok(Err(e)),
                }
            }
            num(acc)
        }
    };
    t.raw_set("band", raw::function(lua, fold(|a, b| a & b))?)?;
    t.raw_set("bor", raw::function(lua, fold(|a, b| a | b))?)?;
    t.raw_set("bxor", raw::function(lua, fold(|a, b| a ^ b))?)?;
    let shift = |f: fn(i32, u32) -> i32| {
        move |_: &Lua, args: MultiValue| -> mlua::Result<Outcome> {
            match (arg(&args, 1), arg(&args, 2)) {
                (Ok(x), Ok(n)) => num(f(x, (n & 31) as u32)),
                (Err(e), _) | (_, Err(e)) => Ok(Err(e)),
            }
        }
    };
    t.raw_set(
        "lshift",
        raw::function(lua, shift(|x, n| ((x as u32) << n) as i32))?,
    )?;
    t.raw_set(
        "rshift",
        raw::function(lua, shift(|x, n| ((x as u32) >> n) as i32))?,
    )?;
    t.raw_set("arshift", raw::function(lua, shift(|x, n| x >> n))?)?;
    t.raw_set(
        "rol",
        raw::function(lua, shift(|x, n| (x as u32).rotate_left(n) as i32))?,
    )?;
    t.raw_set(
        "ror",
        raw::function(lua, shift(|x, n| (x as u32).rotate_right(n) as i32))?,
    )?;
    t.raw_set(
        "tohex",
        raw::function(lua, |lua, args| {
            let x = match arg(&args, 1) {
                Ok(x) => x,
                Err(e) => return Ok(Err(e)),
            };
            let mut n = match args.get(1) {
                None | Some(Value::Nil) => 8,
                _ => match arg(&args, 2) {
                    Ok(n) => n,
                    Err(e) => return Ok(Err(e)),
                },
            };
            let upper = n < 0;
            if upper {
                n = n.wrapping_neg();
            }
            let n = n.clamp(1, 8) as usize;
            let digits = if upper {
                format!("{:08X}", x as u32)
            } else {
                format!("{:08x}", x as u32)
            };
            let s = digits.get(8 - n..).unwrap_or(&digits).to_string();
            Ok(Ok(MultiValue::from_vec(vec![Value::String(
                lua.create_string(s)?,
            )])))
        })?,
    )?;
    Ok(t)
}
