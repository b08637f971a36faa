#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

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

use crate::num::is_c_space;

/// Longest inline request or header line Redis accepts (PROTO_INLINE_MAX_SIZE).
pub const MAX_INLINE_SIZE: usize = 64 * 1024;
/// Most arguments one request may announce (Redis: INT_MAX; we keep its spirit
/// and refuse absurd headers the same way).
pub const MAX_MULTIBULK_LEN: i64 = i32::MAX as i64;
/// Default `proto-max-bulk-len`.
pub const DEFAULT_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// Bytes reserved ahead for an argument at most, whatever its header says;
/// beyond that the buffer grows (doubling) as the bytes arrive.
const MAX_PREALLOC_BULK: usize = 1024 * 1024;
/// Arguments pre-allocated per request at most, whatever the header says.
const PREALLOC_ARGS: usize = 1024;
/// Before AUTH, Redis refuses requests larger than these, so an
/// unauthenticated peer cannot make the server buffer much.
const UNAUTHENTICATED_MAX_ARGS: i64 = 10;
const UNAUTHENTICATED_MAX_BULK: usize = 16 * 1024;

/// A malformed request: the bytes that follow `-ERR Protocol error: ` (raw,
/// because Redis echoes the offending byte as it came).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("Protocol error: {}", String::from_utf8_lossy(.0))]
pub struct ProtocolError(pub Vec<u8>);

impl ProtocolError {
    fn new(msg: &str) -> Self {
        ProtocolError(msg.as_bytes().to_vec())
    }

    /// The whole error line as Redis sends it, CR and LF turned into spaces.
    pub fn reply_line(&self) -> Vec<u8> {
        let mut line = b"-ERR Protocol error: ".to_vec();
        line.extend(
            self.0
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        line.extend_from_slice(b"\r\n");
        line
    }
}

impl From<std::io::Error> for ProtocolError {
    fn from(e: std::io::Error) -> Self {
        ProtocolError(e.to_string().into_bytes())
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
    /// Bytes of the arguments in `args` (counted against the client's
    /// query buffer limit, as Redis counts them).
    args_bytes: usize,
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
            args_bytes: 0,
        }
    }

    pub fn set_max_bulk_len(&mut self, max: usize) {
        self.max_bulk_len = max;
    }

    /// Bytes taken from the buffer into the request still being read.
    pub fn held_bytes(&self) -> usize {
        self.args_bytes
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
            match buf.first() {
                None => return Ok(None),
                Some(b'*') => {}
                Some(_) => return parse_inline(buf),
            }
            let Some(line_end) = header_end(buf) else {
                if buf.len() > MAX_INLINE_SIZE {
                    return Err(ProtocolError::new("too big mbulk count string"));
                }
                return Ok(None);
            };
            let count = buf
                .get(1..line_end)
                .and_then(parse_int)
                .filter(|n| *n <= MAX_MULTIBULK_LEN)
                .ok_or_else(|| ProtocolError::new("invalid multibulk length"))?;
            if !self.authenticated && count > UNAUTHENTICATED_MAX_ARGS {
                return Err(ProtocolError::new("unauthenticated multibulk length"));
            }
            buf.advance(line_end + 2);
            if count <= 0 {
                return Ok(Some(Vec::new()));
            }
            self.pending = usize::try_from(count).unwrap_or(usize::MAX);
            self.args = Vec::with_capacity(self.pending.min(PREALLOC_ARGS));
        }
        while self.pending > 0 {
            // Like Redis, look at the first byte only once the line is whole.
            let Some(line_end) = header_end(buf) else {
                if buf.len() > MAX_INLINE_SIZE {
                    return Err(ProtocolError::new("too big bulk count string"));
                }
                return Ok(None);
            };
            match buf.first() {
                Some(b'$') => {}
                other => {
                    let mut msg = b"expected '$', got '".to_vec();
                    msg.extend(other);
                    msg.push(b'\'');
                    return Err(ProtocolError(msg));
                }
            }
            let len = buf
                .get(1..line_end)
                .and_then(parse_int)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n <= self.max_bulk_len)
                .ok_or_else(|| ProtocolError::new("invalid bulk length"))?;
            if !self.authenticated && len > UNAUTHENTICATED_MAX_BULK {
                return Err(ProtocolError::new("unauthenticated bulk length"));
            }
            let needed = line_end + 2 + len + 2;
            if buf.len() < needed {
                // Make room for a large argument in few steps, but never on
                // a header's word alone: a 20-byte request claiming 512 MB
                // must not make the server allocate it.
                buf.reserve((needed - buf.len()).min(MAX_PREALLOC_BULK));
                return Ok(None);
            }
            buf.advance(line_end + 2);
            let data = buf.split_to(len).freeze();
            // Redis does not look at the two bytes after an argument either.
            buf.advance(2);
            self.args_bytes += data.len();
            self.args.push(data);
            self.pending -= 1;
        }
        self.args_bytes = 0;
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

/// Where a `*count` or `$len` header line ends, as Redis finds it: at the
/// first CR, provided one more byte (taken to be its LF) has arrived. A lone
/// CR is not skipped over; the number before it is then simply invalid.
fn header_end(buf: &[u8]) -> Option<usize> {
    let cr = memchr::memchr(b'\r', buf)?;
    (cr + 1 < buf.len()).then_some(cr)
}

/// Strict decimal parse as Redis's string2ll: optional '-', digits, no
/// spaces, no '+', no leading zeros.
fn parse_int(s: &[u8]) -> Option<i64> {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.first() == Some(&b'0') && s.len() > 1)
    {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse::<i64>().ok()
}

fn parse_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    // Redis looks for the newline with strchr, which stops at a NUL byte: a
    // line with a NUL before its newline is never complete, and the
    // connection waits until the inline limit is passed, as Redis's does.
    let end = memchr::memchr2(b'\n', 0, buf);
    let Some(nl) = end.filter(|&i| buf.get(i) == Some(&b'\n')) else {
        if buf.len() > MAX_INLINE_SIZE {
            return Err(ProtocolError::new("too big inline request"));
        }
        return Ok(None);
    };
    let line = buf.split_to(nl + 1);
    let body = line.get(..nl).unwrap_or_default();
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    split_args(body)
        .map(Some)
        .ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))
}

/// Split an inline request like Redis's sdssplitargs: whitespace separates
/// arguments; double quotes allow `\n`, `\xHH`-style escapes; single quotes
/// allow only `\'`. A closing quote must be followed by whitespace or the end.
/// Like the C original, the line ends at its first NUL byte.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let line = memchr::memchr(0, line).map_or(line, |nul| line.get(..nul).unwrap_or_default());
    // Past the end reads as NUL, as it would in a C string.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while at(i) != 0 && is_c_space(at(i)) {
            i += 1;
        }
        if at(i) == 0 {
            return Some(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let c = at(i);
            if in_double {
                if c == b'\\' && at(i + 1) == b'x' && is_hex(at(i + 2)) && is_hex(at(i + 3)) {
                    current.push(hex_val(at(i + 2)) * 16 + hex_val(at(i + 3)));
                    i += 3;
                } else if c == b'\\' && at(i + 1) != 0 {
                    i += 1;
                    current.push(match at(i) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(i + 1) != 0 && !is_c_space(at(i + 1)) {
                        return None;
                    }
                    i += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(i + 1) == b'\'' {
                    i += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if at(i + 1) != 0 && !is_c_space(at(i + 1)) {
                        return None;
                    }
                    i += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else {
                match c {
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
