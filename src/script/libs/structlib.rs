//! Roberto Ierusalimschy's `struct` library as Redis ships it: `pack`,
//! `unpack` and `size` over a format language of endianness (`<`, `>`),
//! alignment (`!n`) and items (`b B h H l L T i I in f d s c cn x`),
//! sized as on x86-64 Linux (long and size_t are 8 bytes, int is 4).

use mlua::{Lua, MultiValue, Table, Value};

use super::{c_long, check_integer_opt, check_number, check_string};
use crate::script::raw::{self, Outcome, Raise};

/// Largest integer item, in bytes.
const MAXINTSIZE: usize = 32;
/// Default of `!` (the alignment of a double on x86-64).
const MAXALIGN: usize = 8;

#[derive(Clone, Copy)]
struct Header {
    little: bool,
    align: usize,
}

const DEFAULT: Header = Header {
    little: true,
    align: 1,
};

/// Reads the format string byte by byte as the C code does.
struct Format<'a> {
    fmt: &'a [u8],
    pos: usize,
}

impl Format<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = self.fmt.get(self.pos).copied()?;
        // The C loop stops at the first NUL.
        if c == 0 {
            return None;
        }
        self.pos += 1;
        Some(c)
    }

    fn num(&mut self, default: usize) -> Result<usize, Raise> {
        let mut a: usize = 0;
        let mut any = false;
        while let Some(&d) = self.fmt.get(self.pos).filter(|d| d.is_ascii_digit()) {
            let d = usize::from(d - b'0');
            if a > (i32::MAX as usize) / 10 || a * 10 > (i32::MAX as usize) - d {
                return Err(Raise::msg("integral size overflow"));
            }
            a = a * 10 + d;
            self.pos += 1;
            any = true;
        }
        Ok(if any { a } else { default })
    }

    fn size(&mut self, opt: u8) -> Result<usize, Raise> {
        Ok(match opt {
            b'B' | b'b' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'x' => 1,
            b'c' => self.num(1)?,
            b'i' | b'I' => {
                let sz = self.num(4)?;
                if sz > MAXINTSIZE {
                    return Err(Raise::msg(format!(
                        "integral size {sz} is larger than limit of {MAXINTSIZE}"
                    )));
                }
                sz
            }
            _ => 0,
        })
    }

    fn control(&mut self, opt: u8, h: &mut Header) -> Result<(), Raise> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'!' => {
                let a = self.num(MAXALIGN)?;
                if a == 0 || a & (a - 1) != 0 {
                    return Err(Raise::msg(format!("alignment {a} is not a power of 2")));
                }
                h.align = a;
            }
            _ => {
                return Err(Raise::Arg(
                    1,
                    format!("invalid format option '{}'", opt as char),
                ))
            }
        }
        Ok(())
    }
}

fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    // The C code assumes a power of two here; keep its arithmetic.
    (size.wrapping_sub(len & size.wrapping_sub(1))) & size.wrapping_sub(1)
}

/// C's `(unsigned long)(long)n` / `(unsigned long)n` on x86-64.
fn to_bits(n: f64) -> u64 {
    if n < 0.0 {
        c_long(n) as u64
    } else if n < 18_446_744_073_709_551_616.0 {
        n as u64
    } else {
        // cvttsd2si of (n - 2^63) overflows to 2^63, then the xor with 2^63.
        0
    }
}

fn put_integer(out: &mut Vec<u8>, n: f64, little: bool, size: usize) {
    let mut value = to_bits(n);
    let mut buf = [0u8; MAXINTSIZE];
    let size = size.min(MAXINTSIZE);
    for i in 0..size {
        let idx = if little { i } else { size - 1 - i };
        if let Some(b) = buf.get_mut(idx) {
            *b = (value & 0xff) as u8;
        }
        value >>= 8;
    }
    out.extend_from_slice(buf.get(..size).unwrap_or(&[]));
}

fn get_integer(data: &[u8], little: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let size = data.len();
    let bytes: Box<dyn Iterator<Item = &u8>> = if little {
        Box::new(data.iter().rev())
    } else {
        Box::new(data.iter())
    };
    for b in bytes {
        l = (l << 8) | u64::from(*b);
    }
    if !signed {
        return l as f64;
    }
    // x86 masks the shift count to 6 bits, as the C code's shift does.
    let shift = ((size * 8).wrapping_sub(1) & 63) as u32;
    let mask = u64::MAX << shift;
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

fn pack(lua: &Lua, mut args: MultiValue) -> Result<Value, Raise> {
    let fmt = check_string(&args, 1)?;
    // The C code pushes a nil mark after the arguments: a missing first
    // value is reported as "got nil".
    args.push_back(Value::Nil);
    let mut f = Format { fmt: &fmt, pos: 0 };
    let mut h = DEFAULT;
    let mut arg = 2;
    let mut out: Vec<u8> = Vec::new();
    while let Some(opt) = f.next() {
        let mut size = f.size(opt)?;
        let toalign = to_align(out.len(), &h, opt, size);
        out.resize(out.len() + toalign, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = check_number(&args, arg)?;
                arg += 1;
                put_integer(&mut out, n, h.little, size);
            }
            b'x' => out.push(0),
            b'f' => {
                let v = check_number(&args, arg)? as f32;
                arg += 1;
                if h.little {
                    out.extend_from_slice(&v.to_le_bytes());
                } else {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
            b'd' => {
                let v = check_number(&args, arg)?;
                arg += 1;
                if h.little {
                    out.extend_from_slice(&v.to_le_bytes());
                } else {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
            b'c' | b's' => {
                let s = check_string(&args, arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(Raise::Arg(arg as i32, "string too short".into()));
                }
                out.extend_from_slice(s.get(..size).unwrap_or(&s));
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => f.control(opt, &mut h)?,
        }
    }
    Ok(Value::String(lua.create_string(&out).map_err(lua_err)?))
}

fn lua_err(e: mlua::Error) -> Raise {
    Raise::msg(e.to_string())
}

fn unpack(lua: &Lua, args: MultiValue) -> Result<Vec<Value>, Raise> {
    let fmt = check_string(&args, 1)?;
    let data = check_string(&args, 2)?;
    let ld = data.len();
    let pos = check_integer_opt(&args, 3, 1)?;
    if pos == 0 {
        return Err(Raise::Arg(3, "offset must be 1 or greater".into()));
    }
    // size_t arithmetic: a negative offset wraps to a huge one.
    let mut pos = (pos as u64).wrapping_sub(1) as usize;
    let mut f = Format { fmt: &fmt, pos: 0 };
    let mut h = DEFAULT;
    let mut out: Vec<Value> = Vec::new();
    let too_short = || Raise::Arg(2, "data string too short".into());
    while let Some(opt) = f.next() {
        let mut size = f.size(opt)?;
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if !(size <= ld && pos <= ld - size) {
            return Err(too_short());
        }
        // luaL_checkstack(L, 2, ...): the arguments, the results so far.
        if args.len() + out.len() + 2 > 8000 {
            return Err(Raise::msg("stack overflow (too many results)"));
        }
        let item = data.get(pos..pos + size).unwrap_or(&[]);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                out.push(Value::Number(get_integer(
                    item,
                    h.little,
                    opt.is_ascii_lowercase(),
                )));
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = item.try_into().map_err(|_| too_short())?;
                let v = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                out.push(Value::Number(f64::from(v)));
            }
            b'd' => {
                let b: [u8; 8] = item.try_into().map_err(|_| too_short())?;
                let v = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                out.push(Value::Number(v));
            }
            b'c' => {
                if size == 0 {
                    let prev = match out.last() {
                        Some(Value::Number(n)) => Some(*n),
                        Some(Value::Integer(i)) => Some(*i as f64),
                        Some(Value::String(s)) => super::str_to_number(&s.as_bytes()),
                        _ => None,
                    };
                    let Some(n) = prev else {
                        return Err(Raise::msg("format 'c0' needs a previous size"));
                    };
                    out.pop();
                    size = if n < 0.0 {
                        c_long(n) as usize
                    } else {
                        n as usize
                    };
                    if !(size <= ld && pos <= ld - size) {
                        return Err(too_short());
                    }
                }
                let s = data.get(pos..pos + size).unwrap_or(&[]);
                out.push(Value::String(lua.create_string(s).map_err(lua_err)?));
            }
            b's' => {
                let rest = data.get(pos..).unwrap_or(&[]);
                let Some(end) = rest.iter().position(|&b| b == 0) else {
                    return Err(Raise::msg("unfinished string in data"));
                };
                size = end + 1;
                let s = rest.get(..end).unwrap_or(&[]);
                out.push(Value::String(lua.create_string(s).map_err(lua_err)?));
            }
            _ => f.control(opt, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    out.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(out)
}

fn size(args: MultiValue) -> Result<Value, Raise> {
    let fmt = check_string(&args, 1)?;
    let mut f = Format { fmt: &fmt, pos: 0 };
    let mut h = DEFAULT;
    let mut pos: usize = 0;
    while let Some(opt) = f.next() {
        let size = f.size(opt)?;
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if opt == b's' {
            return Err(Raise::Arg(1, "option 's' has no fixed size".into()));
        } else if opt == b'c' && size == 0 {
            return Err(Raise::Arg(1, "option 'c0' has no fixed size".into()));
        }
        if !opt.is_ascii_alphanumeric() {
            f.control(opt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(Value::Number(pos as i64 as f64))
}

/// The `struct` table.
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
            Ok(unpack(lua, args).map(MultiValue::from_vec))
        })?,
    )?;
    t.raw_set(
        "size",
        raw::function(lua, |_, args| -> mlua::Result<Outcome> {
            Ok(size(args).map(|v| MultiValue::from_vec(vec![v])))
        })?,
    )?;
    Ok(t)
}
