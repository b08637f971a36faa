//! A strict RESP2/RESP3 reader for checking what Kiwi writes: it accepts
//! only well-formed frames (canonical lengths, CRLF after every line and
//! payload, no CR or LF inside a line, RESP3 types only in RESP3) and
//! reports anything else as an error.

/// One RESP value as a client reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    /// RESP2 `$-1`.
    NullBulk,
    /// RESP2 `*-1`.
    NullArray,
    /// RESP3 `_`.
    Null,
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    /// RESP3 `,`: the text as sent (compared as text, so -0 and NaN too).
    Double(Vec<u8>),
    Bool(bool),
    Verbatim(Vec<u8>, Vec<u8>),
}

/// Read exactly one value from `input`, which it must fill entirely.
pub fn parse_one(input: &[u8], resp3: bool) -> Result<Value, String> {
    let mut reader = Reader {
        input,
        pos: 0,
        resp3,
    };
    let value = reader.value(0)?;
    if reader.pos != input.len() {
        return Err(format!(
            "{} bytes after the value",
            input.len() - reader.pos
        ));
    }
    Ok(value)
}

/// Nesting this deep is a bug in what was written, not a reply.
const MAX_DEPTH: usize = 64;

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    resp3: bool,
}

impl Reader<'_> {
    /// The line at the current position (without its CRLF).
    fn line(&mut self) -> Result<&[u8], String> {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .ok_or("unterminated line")?;
        if rest.get(end..end + 2) != Some(b"\r\n") {
            return Err("a line holds a bare CR or LF".into());
        }
        self.pos += end + 2;
        Ok(rest.get(..end).unwrap_or_default())
    }

    fn int(&mut self) -> Result<i64, String> {
        let line = self.line()?;
        let text = std::str::from_utf8(line).map_err(|e| e.to_string())?;
        let n: i64 = text.parse().map_err(|_| format!("bad integer {text:?}"))?;
        if n.to_string() != text {
            return Err(format!("non-canonical integer {text:?}"));
        }
        Ok(n)
    }

    fn len(&mut self) -> Result<Option<usize>, String> {
        match self.int()? {
            -1 => Ok(None),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| format!("bad length {n}")),
        }
    }

    fn payload(&mut self, len: usize) -> Result<Vec<u8>, String> {
        let end = self.pos.checked_add(len).ok_or("length overflow")?;
        let data = self.input.get(self.pos..end).ok_or("truncated payload")?;
        if self.input.get(end..end + 2) != Some(b"\r\n") {
            return Err("payload without CRLF".into());
        }
        self.pos = end + 2;
        Ok(data.to_vec())
    }

    fn items(&mut self, n: usize, depth: usize) -> Result<Vec<Value>, String> {
        (0..n).map(|_| self.value(depth + 1)).collect()
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deep".into());
        }
        let &tag = self.input.get(self.pos).ok_or("no value")?;
        self.pos += 1;
        let resp3_only = matches!(tag, b'_' | b'%' | b'~' | b',' | b'#' | b'=');
        if resp3_only && !self.resp3 {
            return Err(format!("RESP3 type '{}' in RESP2", tag as char));
        }
        Ok(match tag {
            b'+' => Value::Simple(self.line()?.to_vec()),
            b'-' => Value::Error(self.line()?.to_vec()),
            b':' => Value::Int(self.int()?),
            b'$' => match self.len()? {
                None if self.resp3 => return Err("$-1 in RESP3".into()),
                None => Value::NullBulk,
                Some(n) => Value::Bulk(self.payload(n)?),
            },
            b'*' => match self.len()? {
                None if self.resp3 => return Err("*-1 in RESP3".into()),
                None => Value::NullArray,
                Some(n) => Value::Array(self.items(n, depth)?),
            },
            b'~' => match self.len()? {
                None => return Err("null set".into()),
                Some(n) => Value::Set(self.items(n, depth)?),
            },
            b'%' => match self.len()? {
                None => return Err("null map".into()),
                Some(n) => {
                    let mut pairs = Vec::new();
                    for _ in 0..n {
                        let k = self.value(depth + 1)?;
                        let v = self.value(depth + 1)?;
                        pairs.push((k, v));
                    }
                    Value::Map(pairs)
                }
            },
            b'_' => match self.line()? {
                b"" => Value::Null,
                _ => return Err("text after _".into()),
            },
            b'#' => match self.line()? {
                b"t" => Value::Bool(true),
                b"f" => Value::Bool(false),
                other => return Err(format!("bad boolean {other:?}")),
            },
            b',' => {
                let text = self.line()?.to_vec();
                let valid = std::str::from_utf8(&text)
                    .ok()
                    .is_some_and(|t| t.parse::<f64>().is_ok());
                if !valid {
                    return Err(format!("bad double {text:?}"));
                }
                Value::Double(text)
            }
            b'=' => {
                let n = self.len()?.ok_or("null verbatim")?;
                let data = self.payload(n)?;
                match (data.get(..3), data.get(3), data.get(4..)) {
                    (Some(format), Some(b':'), Some(text)) => {
                        Value::Verbatim(format.to_vec(), text.to_vec())
                    }
                    _ => return Err("verbatim without a format".into()),
                }
            }
            other => return Err(format!("unknown type byte {other:#x}")),
        })
    }
}
