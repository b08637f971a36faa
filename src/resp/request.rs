//! Request framing: the RESP multibulk form clients send (`*N\r\n$len\r\n…`)
//! and the inline form people type (`SET k v\r\n`), with Redis's limits and
//! error texts.
//!
//! The decoder is incremental: it keeps its position inside a partially
//! received multibulk between calls, so a large request arriving in many small
//! reads is parsed once, and a header announcing a million arguments with no
//! data behind it allocates nothing in proportion to that number.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;
use tokio_util::codec::Decoder;

/// Longest inline request or header line Redis accepts (PROTO_INLINE_MAX_SIZE).
pub const MAX_INLINE_SIZE: usize = 64 * 1024;
/// Most arguments one request may announce (Redis: INT_MAX; we keep its spirit
/// and refuse absurd headers the same way).
pub const MAX_MULTIBULK_LEN: i64 = i32::MAX as i64;
/// Default `proto-max-bulk-len`.
pub const DEFAULT_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// Arguments pre-allocated per request at most, whatever the header says.
const PREALLOC_ARGS: usize = 1024;
/// Before AUTH, Redis refuses requests larger than these, so an
/// unauthenticated peer cannot make the server buffer much.
const UNAUTHENTICATED_MAX_ARGS: i64 = 10;
const UNAUTHENTICATED_MAX_BULK: usize = 16 * 1024;

/// A malformed request. The text follows `-ERR Protocol error: `.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(msg: impl Into<String>) -> Self {
        ProtocolError(msg.into())
    }
}

impl From<std::io::Error> for ProtocolError {
    fn from(e: std::io::Error) -> Self {
        ProtocolError(e.to_string())
    }
}

/// Incremental request decoder; one per connection.
#[derive(Debug)]
pub struct RequestDecoder {
    max_bulk_len: usize,
    authenticated: bool,
    /// Arguments still expected by the multibulk being read (0 = none open).
    pending: usize,
    args: Vec<Bytes>,
}

impl Default for RequestDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BULK_LEN)
    }
}

impl RequestDecoder {
    pub fn new(max_bulk_len: usize) -> Self {
        RequestDecoder {
            max_bulk_len,
            authenticated: true,
            pending: 0,
            args: Vec::new(),
        }
    }

    pub fn set_max_bulk_len(&mut self, max: usize) {
        self.max_bulk_len = max;
    }

    /// Whether the peer has authenticated; before that, requests are
    /// limited to a few small arguments.
    pub fn set_authenticated(&mut self, authenticated: bool) {
        self.authenticated = authenticated;
    }

    /// Parse the next whole request from `buf`. `Ok(None)` means more bytes
    /// are needed; an empty request (blank inline line, `*0`) yields
    /// `Some(vec![])`, which the caller ignores as Redis does.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.pending == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            if buf[0] != b'*' {
                return parse_inline(buf);
            }
            let Some(line_end) = find_crlf(buf, 1) else {
                if buf.len() > MAX_INLINE_SIZE {
                    return Err(ProtocolError::new("too big mbulk count string"));
                }
                return Ok(None);
            };
            let count = parse_int(&buf[1..line_end])
                .filter(|n| *n <= MAX_MULTIBULK_LEN)
                .ok_or_else(|| ProtocolError::new("invalid multibulk length"))?;
            if !self.authenticated && count > UNAUTHENTICATED_MAX_ARGS {
                return Err(ProtocolError::new("unauthenticated multibulk length"));
            }
            buf.advance(line_end + 2);
            if count <= 0 {
                return Ok(Some(Vec::new()));
            }
            self.pending = count as usize;
            self.args = Vec::with_capacity(self.pending.min(PREALLOC_ARGS));
        }
        while self.pending > 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            if buf[0] != b'$' {
                return Err(ProtocolError(format!(
                    "expected '$', got '{}'",
                    char::from(buf[0])
                )));
            }
            let Some(line_end) = find_crlf(buf, 1) else {
                if buf.len() > MAX_INLINE_SIZE {
                    return Err(ProtocolError::new("too big bulk count string"));
                }
                return Ok(None);
            };
            let len = parse_int(&buf[1..line_end])
                .filter(|n| *n >= 0 && (*n as u64) <= self.max_bulk_len as u64)
                .ok_or_else(|| ProtocolError::new("invalid bulk length"))?
                as usize;
            if !self.authenticated && len > UNAUTHENTICATED_MAX_BULK {
                return Err(ProtocolError::new("unauthenticated bulk length"));
            }
            let needed = line_end + 2 + len + 2;
            if buf.len() < needed {
                // Make room once for a large argument instead of growing in steps.
                buf.reserve(needed - buf.len());
                return Ok(None);
            }
            buf.advance(line_end + 2);
            let data = buf.split_to(len).freeze();
            buf.advance(2);
            self.args.push(data);
            self.pending -= 1;
        }
        Ok(Some(std::mem::take(&mut self.args)))
    }
}

impl Decoder for RequestDecoder {
    type Item = Vec<Bytes>;
    type Error = ProtocolError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        self.parse(buf)
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let limit = buf.len().min(MAX_INLINE_SIZE + from + 2);
    memchr_cr(&buf[from..limit]).and_then(|i| {
        let pos = from + i;
        if buf.get(pos + 1) == Some(&b'\n') {
            Some(pos)
        } else if pos + 1 >= buf.len() {
            None
        } else {
            // A lone CR inside a header line: keep looking after it.
            find_crlf(buf, pos + 1)
        }
    })
}

fn memchr_cr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\r')
}

/// Strict decimal parse as Redis's string2ll: optional '-', digits, no
/// spaces, no '+', no leading zeros.
fn parse_int(s: &[u8]) -> Option<i64> {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits[0] == b'0' && s.len() > 1)
    {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse::<i64>().ok()
}

fn parse_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_INLINE_SIZE {
            return Err(ProtocolError::new("too big inline request"));
        }
        return Ok(None);
    };
    let line = buf.split_to(nl + 1);
    let mut body = &line[..nl];
    if body.last() == Some(&b'\r') {
        body = &body[..body.len() - 1];
    }
    split_args(body)
        .map(Some)
        .ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))
}

/// Split an inline request like Redis's sdssplitargs: whitespace separates
/// arguments; double quotes allow `\n`, `\xHH`-style escapes; single quotes
/// allow only `\'`. A closing quote must be followed by whitespace or the end.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && is_hex(line[i + 2])
                    && is_hex(line[i + 3])
                {
                    current.push(hex_val(line[i + 2]) * 16 + hex_val(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    current.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else if in_single {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    c => current.push(c),
                }
            }
            i += 1;
        }
        args.push(Bytes::from(current));
    }
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}
