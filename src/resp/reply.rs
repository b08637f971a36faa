#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Replies and their encoding for RESP2 and RESP3.
//!
//! Commands build a [`Reply`] once; the connection encodes it for the
//! protocol it negotiated (HELLO), so RESP3-only shapes (maps, sets,
//! doubles, booleans, nulls) fall back to their RESP2 forms automatically.

use bytes::{BufMut, Bytes, BytesMut};

use crate::num::{format_double, LongDouble};

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

impl Protocol {
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// One reply, independent of the wire protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`-style status line.
    Status(&'static str),
    /// A status line built at run time.
    StatusOwned(String),
    /// A full error line without the leading `-`, e.g. `ERR syntax error`.
    Error(String),
    Int(i64),
    Bulk(Bytes),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Nil,
    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3.
    NilArray,
    Array(Vec<Reply>),
    /// Key/value pairs: a map in RESP3, a flat array in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// An unordered collection: a set in RESP3, an array in RESP2.
    Set(Vec<Reply>),
    /// A double: `,` in RESP3, a bulk string in RESP2.
    Double(f64),
    /// A double printed as Redis's addReplyHumanLongDouble prints it
    /// (`%.17Lf`, trailing zeros cut; GEOPOS coordinates): `,` in RESP3,
    /// a bulk string in RESP2.
    HumanDouble(f64),
    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    Bool(bool),
    /// Text meant for humans (INFO): verbatim `=txt:` in RESP3, bulk in RESP2.
    Verbatim(String),
    /// Out-of-band data (pub/sub messages and confirmations): a push `>`
    /// in RESP3, an array in RESP2.
    Push(Vec<Reply>),
    /// Several replies in a row, for the commands that answer more than
    /// one (SUBSCRIBE and friends: one confirmation per channel).
    Frames(Vec<Reply>),
}

impl Reply {
    pub const OK: Reply = Reply::Status("OK");

    pub fn error(msg: impl Into<String>) -> Reply {
        Reply::Error(msg.into())
    }

    pub fn bulk(data: impl Into<Bytes>) -> Reply {
        Reply::Bulk(data.into())
    }

    pub fn bulk_opt(data: Option<impl Into<Bytes>>) -> Reply {
        match data {
            Some(d) => Reply::Bulk(d.into()),
            None => Reply::Nil,
        }
    }

    pub fn bulk_str(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Encode this reply for `protocol`, appending to `out`.
    pub fn encode(&self, protocol: Protocol, out: &mut BytesMut) {
        let resp3 = protocol == Protocol::Resp3;
        match self {
            Reply::Status(s) => line(out, b'+', sanitize_line(s).as_bytes()),
            Reply::StatusOwned(s) => line(out, b'+', sanitize_line(s).as_bytes()),
            Reply::Error(e) => line(out, b'-', sanitize_line(e).as_bytes()),
            Reply::Int(i) => int_line(out, b':', *i),
            Reply::Bulk(b) => bulk(out, b),
            Reply::Nil if resp3 => out.put_slice(b"_\r\n"),
            Reply::Nil => out.put_slice(b"$-1\r\n"),
            Reply::NilArray if resp3 => out.put_slice(b"_\r\n"),
            Reply::NilArray => out.put_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                int_line(out, b'*', items.len() as i64);
                for item in items {
                    item.encode(protocol, out);
                }
            }
            Reply::Set(items) => {
                int_line(out, if resp3 { b'~' } else { b'*' }, items.len() as i64);
                for item in items {
                    item.encode(protocol, out);
                }
            }
            Reply::Map(pairs) => {
                if resp3 {
                    int_line(out, b'%', pairs.len() as i64);
                } else {
                    int_line(out, b'*', 2 * pairs.len() as i64);
                }
                for (k, v) in pairs {
                    k.encode(protocol, out);
                    v.encode(protocol, out);
                }
            }
            Reply::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::HumanDouble(d) => {
                let text = LongDouble::from_f64(*d).to_human_string();
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::Bool(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Reply::Bool(b) => int_line(out, b':', i64::from(*b)),
            Reply::Verbatim(text) if resp3 => {
                int_line(out, b'=', text.len() as i64 + 4);
                out.put_slice(b"txt:");
                out.put_slice(text.as_bytes());
                out.put_slice(b"\r\n");
            }
            Reply::Verbatim(text) => bulk(out, text.as_bytes()),
            Reply::Push(items) => {
                int_line(out, if resp3 { b'>' } else { b'*' }, items.len() as i64);
                for item in items {
                    item.encode(protocol, out);
                }
            }
            Reply::Frames(replies) => {
                for reply in replies {
                    reply.encode(protocol, out);
                }
            }
        }
    }

    /// Encode into a fresh buffer (tests and the embedded API use this).
    pub fn to_bytes(&self, protocol: Protocol) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(protocol, &mut out);
        out.freeze()
    }
}

fn line(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(tag);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, tag: u8, n: i64) {
    let mut buf = itoa::Buffer::new();
    line(out, tag, buf.format(n).as_bytes());
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    let mut buf = itoa::Buffer::new();
    let len = buf.format(data.len());
    out.reserve(data.len() + len.len() + 5);
    out.put_u8(b'$');
    out.put_slice(len.as_bytes());
    out.put_slice(b"\r\n");
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Error and status lines cannot carry CR or LF; Redis replaces them with
/// spaces (a status can come from a peer, see `WireReply`).
fn sanitize_line(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\r', '\n']) {
        std::borrow::Cow::Owned(s.replace(['\r', '\n'], " "))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}
