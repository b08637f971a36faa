//! The reply encoder: any reply tree, encoded for RESP2 and for RESP3,
//! reads back through a strict RESP reader ([`crate::resp_value`]) as the
//! value a client must see, and doubles print as C's `%.17g` (Redis 7.0).

use arbitrary::Unstructured;
use bytes::{Bytes, BytesMut};
use kiwi::decoders::{Protocol, Reply};
use kiwi::resp::format_double;

use crate::resp_value::{parse_one, Value};

/// Deepest tree generated (Kiwi's own replies nest at most a few levels).
pub const MAX_DEPTH: usize = 5;
/// Most nodes in one generated tree.
const MAX_NODES: usize = 400;

/// Status texts as commands write them (`Reply::Status` takes only
/// `&'static str`); generated text goes into `StatusOwned`.
const STATUSES: &[&str] = &["OK", "QUEUED", "PONG", "string", "none", "a\r\nb", ""];

/// Error and status lines cannot carry CR or LF: they become spaces.
fn one_line(text: &str) -> Vec<u8> {
    text.replace(['\r', '\n'], " ").into_bytes()
}

/// The value a client reads for `reply` in `protocol`.
pub fn expected(reply: &Reply, protocol: Protocol) -> Value {
    let resp3 = protocol == Protocol::Resp3;
    let all = |items: &[Reply]| items.iter().map(|r| expected(r, protocol)).collect();
    match reply {
        Reply::Status(s) => Value::Simple(one_line(s)),
        Reply::StatusOwned(s) => Value::Simple(one_line(s)),
        Reply::Error(e) => Value::Error(one_line(e)),
        Reply::Int(i) => Value::Int(*i),
        Reply::Bulk(b) => Value::Bulk(b.to_vec()),
        Reply::Nil | Reply::NilArray if resp3 => Value::Null,
        Reply::Nil => Value::NullBulk,
        Reply::NilArray => Value::NullArray,
        Reply::Array(items) => Value::Array(all(items)),
        Reply::Set(items) if resp3 => Value::Set(all(items)),
        Reply::Set(items) => Value::Array(all(items)),
        Reply::Map(pairs) if resp3 => Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (expected(k, protocol), expected(v, protocol)))
                .collect(),
        ),
        Reply::Map(pairs) => Value::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [expected(k, protocol), expected(v, protocol)])
                .collect(),
        ),
        Reply::Double(d) if resp3 => Value::Double(format_double(*d).into_bytes()),
        Reply::Double(d) => Value::Bulk(format_double(*d).into_bytes()),
        // GEOPOS's coordinates (not generated here): Kiwi's long double text.
        Reply::HumanDouble(d) if resp3 => Value::Double(human(*d)),
        Reply::HumanDouble(d) => Value::Bulk(human(*d)),
        Reply::Bool(b) if resp3 => Value::Bool(*b),
        Reply::Bool(b) => Value::Int(i64::from(*b)),
        Reply::Verbatim(t) if resp3 => Value::Verbatim(b"txt".to_vec(), t.as_bytes().to_vec()),
        Reply::Verbatim(t) => Value::Bulk(t.as_bytes().to_vec()),
        // Pub/sub's pushes and reply sequences are not generated (the
        // reader takes one value, and no RESP3 push).
        Reply::Push(items) | Reply::Frames(items) => Value::Array(all(items)),
    }
}

fn human(d: f64) -> Vec<u8> {
    kiwi::num::LongDouble::from_f64(d)
        .to_human_string()
        .into_bytes()
}

/// C's `printf("%.17g", d)`, the reference for finite doubles.
fn c_g17(d: f64) -> String {
    extern "C" {
        fn snprintf(
            buf: *mut std::ffi::c_char,
            n: usize,
            fmt: *const std::ffi::c_char,
            ...
        ) -> std::ffi::c_int;
    }
    let mut buf = [0u8; 64];
    // SAFETY: the buffer is 64 bytes and its length is passed; %.17g of a
    // double needs at most 24; the format string is NUL-terminated.
    let n = unsafe { snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.17g".as_ptr(), d) };
    let n = usize::try_from(n).unwrap_or(0).min(buf.len());
    String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned()
}

/// Check that `d` prints as Redis prints it.
pub fn check_double(d: f64) {
    let ours = format_double(d);
    if d.is_nan() {
        assert_eq!(ours, "nan");
    } else if d.is_infinite() {
        assert_eq!(ours, if d > 0.0 { "inf" } else { "-inf" });
    } else {
        assert_eq!(ours, c_g17(d), "%.17g of {d:e} ({:#x})", d.to_bits());
        let back: f64 = ours.parse().unwrap_or(f64::NAN);
        assert_eq!(back.to_bits(), d.to_bits(), "{ours} does not read back");
    }
}

/// Check one reply tree in both protocols.
pub fn check(reply: &Reply) {
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let mut out = BytesMut::new();
        reply.encode(protocol, &mut out);
        assert_eq!(out.as_ref(), reply.to_bytes(protocol).as_ref());
        let read = parse_one(&out, protocol == Protocol::Resp3);
        assert_eq!(
            read,
            Ok(expected(reply, protocol)),
            "{protocol:?} encoding of {reply:?}: {out:?}"
        );
    }
}

fn text(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    // Mostly short, often with the characters a line cannot carry.
    let mut s: String = u.arbitrary()?;
    if u.ratio(1, 4)? {
        let at = s
            .char_indices()
            .map(|(i, _)| i)
            .nth(u.arbitrary::<u8>()? as usize);
        s.insert_str(
            at.unwrap_or(s.len()),
            if u.arbitrary()? { "\r\n" } else { "\n" },
        );
    }
    Ok(s)
}

fn double(u: &mut Unstructured<'_>) -> arbitrary::Result<f64> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => f64::from_bits(u.arbitrary()?),
        1 => f64::from(u.arbitrary::<i32>()?) / 1000.0,
        2 => f64::from(u.arbitrary::<i16>()?),
        3 => *u.choose(&[
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e-5,
            1e17,
            1e16,
        ])?,
        _ => u.arbitrary()?,
    })
}

/// A reply tree from fuzz bytes.
pub fn arbitrary_reply(
    u: &mut Unstructured<'_>,
    depth: usize,
    nodes: &mut usize,
) -> arbitrary::Result<Reply> {
    *nodes += 1;
    let leaf = depth >= MAX_DEPTH || *nodes >= MAX_NODES;
    let kind = u.int_in_range(0u8..=if leaf { 10 } else { 14 })?;
    let mut children = |u: &mut Unstructured<'_>| -> arbitrary::Result<Vec<Reply>> {
        let n = u.int_in_range(0u8..=6)?;
        (0..n)
            .map(|_| arbitrary_reply(u, depth + 1, nodes))
            .collect()
    };
    Ok(match kind {
        0 => Reply::Status(u.choose(STATUSES)?),
        1 => Reply::StatusOwned(text(u)?),
        2 => Reply::Error(text(u)?),
        3 => Reply::Int(u.arbitrary()?),
        4 => Reply::Bulk(Bytes::from(u.arbitrary::<Vec<u8>>()?)),
        5 => Reply::Nil,
        6 => Reply::NilArray,
        7 => Reply::Double(double(u)?),
        8 => Reply::Bool(u.arbitrary()?),
        9 => Reply::Verbatim(text(u)?),
        10 => Reply::bulk_str(&text(u)?),
        11 | 12 => Reply::Array(children(u)?),
        13 => Reply::Set(children(u)?),
        _ => {
            let items = children(u)?;
            let mut pairs = Vec::new();
            let mut items = items.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                pairs.push((k, v));
            }
            Reply::Map(pairs)
        }
    })
}

/// Fuzz entry: the bytes choose a reply tree (and a double to print).
pub fn fuzz(data: &[u8]) {
    let mut u = Unstructured::new(data);
    if let Ok(d) = double(&mut u) {
        check_double(d);
    }
    let mut nodes = 0;
    if let Ok(reply) = arbitrary_reply(&mut u, 0, &mut nodes) {
        check(&reply);
    }
}
