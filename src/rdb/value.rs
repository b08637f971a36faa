#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! A key's value as DUMP writes it and RESTORE reads it: one RDB object
//! (type byte, then the value) in a sealed payload.
//!
//! Kiwi reads every encoding Redis 7.0 loads for the types Kiwi has
//! (strings; lists as plain, ziplist, quicklist and quicklist 2 with packed
//! and plain nodes; sets as plain and intset; hashes as plain, zipmap,
//! ziplist and listpack; sorted sets as plain with text or binary scores,
//! ziplist and listpack). It writes the plain encodings, and lists as
//! quicklist 2 of listpacks, all of which Redis 7.0 loads.
//!
//! Every count and length is checked against the bytes that are really
//! there before anything is allocated for it, so a forged payload costs at
//! most a small multiple of its own size.

use std::collections::HashSet;

use super::{intset, listpack, open, seal, write_length, write_string, RdbError, Reader};

const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_MODULE: u8 = 6;
const TYPE_MODULE_2: u8 = 7;
const TYPE_HASH_ZIPMAP: u8 = 9;
const TYPE_LIST_ZIPLIST: u8 = 10;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_ZSET_ZIPLIST: u8 = 12;
const TYPE_HASH_ZIPLIST: u8 = 13;
const TYPE_LIST_QUICKLIST: u8 = 14;
const TYPE_STREAM_LISTPACKS: u8 = 15;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
const TYPE_STREAM_LISTPACKS_2: u8 = 19;

/// Quicklist node containers (RDB_TYPE_LIST_QUICKLIST_2).
const NODE_PLAIN: u64 = 1;
const NODE_PACKED: u64 = 2;

/// How Kiwi cuts a list into listpack nodes when it dumps one.
const NODE_MAX_ENTRIES: usize = 128;
const NODE_MAX_BYTES: usize = 8 << 10;

/// A hash's (field, value) pairs.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A value of one of Kiwi's types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(Vec<u8>),
    /// Head first.
    List(Vec<Vec<u8>>),
    /// Distinct members.
    Set(Vec<Vec<u8>>),
    /// Distinct fields.
    Hash(Pairs),
    /// Distinct members, scores never NaN.
    ZSet(Vec<(Vec<u8>, f64)>),
    Stream(Box<super::stream::Stream>),
}

/// Decode a DUMP payload: its footer first (version and checksum), then
/// the value. As in Redis, the value is read from the whole payload, footer
/// included (a value may run into it), and bytes after it are ignored.
pub fn decode_payload(payload: &[u8]) -> Result<Value, RdbError> {
    open(payload)?;
    let mut r = Reader::new(payload);
    let kind = r.byte()?;
    decode_object(kind, &mut r)
}

/// A sealed DUMP payload of `value`.
pub fn encode_payload(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    match value {
        Value::String(s) => {
            out.push(TYPE_STRING);
            write_string(&mut out, s);
        }
        Value::List(items) => {
            out.push(TYPE_LIST_QUICKLIST_2);
            let nodes = list_nodes(items);
            write_length(&mut out, nodes.len() as u64);
            for node in nodes {
                write_length(&mut out, NODE_PACKED);
                write_string(&mut out, &listpack::encode(node));
            }
        }
        Value::Set(members) => {
            out.push(TYPE_SET);
            write_length(&mut out, members.len() as u64);
            for m in members {
                write_string(&mut out, m);
            }
        }
        Value::Hash(pairs) => {
            out.push(TYPE_HASH);
            write_length(&mut out, pairs.len() as u64);
            for (f, v) in pairs {
                write_string(&mut out, f);
                write_string(&mut out, v);
            }
        }
        Value::ZSet(items) => {
            out.push(TYPE_ZSET_2);
            write_length(&mut out, items.len() as u64);
            for (m, score) in items {
                write_string(&mut out, m);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        Value::Stream(stream) => {
            out.push(TYPE_STREAM_LISTPACKS_2);
            super::stream::encode(&mut out, stream);
        }
    }
    seal(out)
}

/// The list cut into nodes of at most NODE_MAX_ENTRIES entries and (unless
/// one entry alone is larger) NODE_MAX_BYTES bytes.
fn list_nodes(items: &[Vec<u8>]) -> Vec<&[Vec<u8>]> {
    let mut nodes = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, item) in items.iter().enumerate() {
        let full = i - start >= NODE_MAX_ENTRIES || bytes + item.len() > NODE_MAX_BYTES;
        if i > start && full {
            nodes.extend(items.get(start..i));
            start = i;
            bytes = 0;
        }
        bytes += item.len();
    }
    if start < items.len() {
        nodes.extend(items.get(start..));
    }
    nodes
}

fn decode_object(kind: u8, r: &mut Reader<'_>) -> Result<Value, RdbError> {
    let value = match kind {
        TYPE_STRING => Value::String(r.string()?),
        TYPE_LIST => Value::List(strings(r)?),
        TYPE_SET => Value::Set(strings(r)?),
        TYPE_HASH => {
            let flat = counted(r, 2, |r| r.string())?;
            Value::Hash(pairs(flat)?)
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let items = counted(r, 1, |r| {
                let member = r.string()?;
                let score = match kind {
                    TYPE_ZSET => text_double(r)?,
                    _ => binary_double(r)?,
                };
                Ok((member, score))
            })?;
            Value::ZSet(items)
        }
        TYPE_MODULE | TYPE_MODULE_2 => return Err(RdbError::Unsupported("module")),
        TYPE_STREAM_LISTPACKS_2 => Value::Stream(Box::new(super::stream::decode(r)?)),
        TYPE_STREAM_LISTPACKS => return Err(RdbError::Unsupported("pre-7.0 stream")),
        TYPE_HASH_ZIPMAP => Value::Hash(pairs(super::ziplist::decode_zipmap(&r.string()?)?)?),
        TYPE_LIST_ZIPLIST => Value::List(super::ziplist::decode(&r.string()?)?),
        TYPE_SET_INTSET => Value::Set(intset::decode(&r.string()?)?),
        TYPE_ZSET_ZIPLIST => Value::ZSet(scored(super::ziplist::decode(&r.string()?)?)?),
        TYPE_ZSET_LISTPACK => Value::ZSet(scored(listpack::decode(&r.string()?)?)?),
        TYPE_HASH_ZIPLIST => Value::Hash(pairs(super::ziplist::decode(&r.string()?)?)?),
        TYPE_HASH_LISTPACK => Value::Hash(pairs(listpack::decode(&r.string()?)?)?),
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => Value::List(quicklist(kind, r)?),
        _ => return Err(RdbError::Format),
    };
    check(value)
}

/// The checks Redis makes on every loaded value: not empty, no member or
/// field twice, no NaN score.
fn check(value: Value) -> Result<Value, RdbError> {
    fn distinct<'a>(names: impl Iterator<Item = &'a [u8]>) -> bool {
        let mut seen = HashSet::new();
        names.into_iter().all(|n| seen.insert(n))
    }
    let ok = match &value {
        Value::String(_) | Value::Stream(_) => true,
        Value::List(items) => !items.is_empty(),
        Value::Set(m) => !m.is_empty() && distinct(m.iter().map(Vec::as_slice)),
        Value::Hash(p) => !p.is_empty() && distinct(p.iter().map(|(f, _)| f.as_slice())),
        Value::ZSet(items) => {
            !items.is_empty()
                && items.iter().all(|(_, s)| !s.is_nan())
                && distinct(items.iter().map(|(m, _)| m.as_slice()))
        }
    };
    match ok {
        true => Ok(value),
        false => Err(RdbError::Format),
    }
}

/// A length-prefixed run of elements, `per` reads of `read` for each one
/// counted. Every read takes at least a byte, so a count past the bytes
/// left is refused at once; the vector grows only as elements decode.
fn counted<T>(
    r: &mut Reader<'_>,
    per: u64,
    mut read: impl FnMut(&mut Reader<'_>) -> Result<T, RdbError>,
) -> Result<Vec<T>, RdbError> {
    let len = r.length()?;
    let total = len.checked_mul(per).ok_or(RdbError::Format)?;
    if total > r.remaining() as u64 {
        return Err(RdbError::Format);
    }
    let mut out = Vec::new();
    for _ in 0..total {
        out.push(read(r)?);
    }
    Ok(out)
}

fn strings(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, RdbError> {
    counted(r, 1, |r| r.string())
}

/// Flattened field, value, field, value… into pairs.
fn pairs(flat: Vec<Vec<u8>>) -> Result<Pairs, RdbError> {
    if !flat.len().is_multiple_of(2) {
        return Err(RdbError::Format);
    }
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        out.push((f, v));
    }
    Ok(out)
}

/// Flattened member, score text, member, score text… into scored members.
fn scored(flat: Vec<Vec<u8>>) -> Result<Vec<(Vec<u8>, f64)>, RdbError> {
    pairs(flat)?
        .into_iter()
        .map(|(m, s)| Ok((m, parse_score(&s)?)))
        .collect()
}

fn parse_score(text: &[u8]) -> Result<f64, RdbError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|s| !s.is_nan())
        .ok_or(RdbError::Format)
}

/// RDB_TYPE_ZSET's score: a length byte, then that much text, or 253/254/255
/// for NaN/+inf/-inf.
fn text_double(r: &mut Reader<'_>) -> Result<f64, RdbError> {
    match r.byte()? {
        253 => Ok(f64::NAN),
        254 => Ok(f64::INFINITY),
        255 => Ok(f64::NEG_INFINITY),
        n => parse_score(r.bytes(u64::from(n))?),
    }
}

fn binary_double(r: &mut Reader<'_>) -> Result<f64, RdbError> {
    let raw: [u8; 8] = r.bytes(8)?.try_into().map_err(|_| RdbError::Format)?;
    Ok(f64::from_le_bytes(raw))
}

/// A quicklist: nodes, each a ziplist (RDB_TYPE_LIST_QUICKLIST), or a
/// container kind then a listpack or a single plain element (…_2). Empty
/// packed nodes are skipped, as Redis skips them.
fn quicklist(kind: u8, r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, RdbError> {
    let nodes = r.length()?;
    if nodes > r.remaining() as u64 {
        return Err(RdbError::Format);
    }
    let mut out = Vec::new();
    for _ in 0..nodes {
        let container = match kind {
            TYPE_LIST_QUICKLIST_2 => r.length()?,
            _ => NODE_PACKED,
        };
        let data = r.string()?;
        if data.is_empty() {
            return Err(RdbError::Format);
        }
        match container {
            NODE_PLAIN => out.push(data),
            NODE_PACKED if kind == TYPE_LIST_QUICKLIST_2 => out.extend(listpack::decode(&data)?),
            NODE_PACKED => out.extend(super::ziplist::decode(&data)?),
            _ => return Err(RdbError::Format),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "value_tests.rs"]
mod tests;
