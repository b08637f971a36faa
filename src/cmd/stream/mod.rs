//! Stream commands: the X* family as Redis 7.0 answers it.
//!
//! [`store`] keeps a stream's entries, nodes, groups, consumers and
//! pending entries as versioned sub-keys of one collection; [`add`] has
//! XADD, XTRIM, XDEL, XLEN, XRANGE/XREVRANGE and XSETID; [`read`] XREAD
//! and XREADGROUP (blocking like BLPOP); [`group`] XGROUP, XACK and
//! XPENDING; [`claim`] XCLAIM and XAUTOCLAIM; [`info`] XINFO. This file
//! parses IDs as Redis does and builds the replies they share.

mod add;
mod claim;
mod group;
mod info;
pub(crate) mod persist;
mod read;
pub(crate) mod store;

use bytes::Bytes;

use super::table::{commands, flags::*};
use super::{Call, CmdError, CmdResult, CommandSpec};
use crate::resp::Reply;
use crate::storage::{KeyType, StreamId};
use store::{Entry, Stream};

pub use read::stream_keys;

/// Whether a call of a blocking command may wait: XREAD and XREADGROUP
/// only with BLOCK (without it they answer at once, an empty reply
/// included); the others always.
pub fn may_block(spec: &CommandSpec, args: &[Bytes]) -> bool {
    match spec.name {
        "xread" | "xreadgroup" => read::has_block(args),
        _ => true,
    }
}

pub static COMMANDS: &[CommandSpec] = commands! {
    "xadd", -5, WF, 1, 1, 1, add::xadd;
    "xrange", -4, R, 1, 1, 1, add::xrange;
    "xrevrange", -4, R, 1, 1, 1, add::xrevrange;
    "xlen", 2, RF, 1, 1, 1, add::xlen;
    "xdel", -3, WDF, 1, 1, 1, add::xdel;
    "xtrim", -4, WD, 1, 1, 1, add::xtrim;
    "xsetid", -3, WF, 1, 1, 1, add::xsetid;
    "xread", -4, blocking(R), 0, 0, 0, read::xread;
    "xreadgroup", -7, blocking(W), 0, 0, 0, read::xreadgroup;
    "xgroup", -2, W, 2, 2, 1, group::xgroup;
    "xack", -4, WF, 1, 1, 1, group::xack;
    "xpending", -3, R, 1, 1, 1, group::xpending;
    "xclaim", -6, WF, 1, 1, 1, claim::xclaim;
    "xautoclaim", -6, WF, 1, 1, 1, claim::xautoclaim;
    "xinfo", -2, R, 2, 2, 1, info::xinfo;
};

const INVALID_ID: &str = "Invalid stream ID specified as stream command argument";

fn invalid_id() -> CmdError {
    CmdError::err(INVALID_ID)
}

/// Redis's string2ull: a string2ll that is not negative, else what C's
/// strtoull reads whole (leading spaces and a sign allowed, a minus
/// negating modulo 2^64; overflow refused).
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = super::parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let mut rest = s;
    while let Some((c, tail)) = rest.split_first() {
        if crate::num::is_c_space(*c) {
            rest = tail;
        } else {
            break;
        }
    }
    let neg = match rest.first() {
        Some(b'-') => {
            rest = rest.get(1..)?;
            true
        }
        Some(b'+') => {
            rest = rest.get(1..)?;
            false
        }
        _ => false,
    };
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for d in rest {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// What an ID argument says: the ID, and whether its sequence was given
/// (`false` for XADD's `<ms>-*`).
#[derive(Debug, Clone, Copy)]
pub struct ParsedId {
    pub id: StreamId,
    pub seq_given: bool,
}

/// Redis's streamGenericParseIDOrReply: `-`/`+` (refused when `strict`),
/// `<ms>` (sequence `missing_seq`), `<ms>-<seq>`, and `<ms>-*` where
/// `allow_auto_seq`.
fn parse_id_generic(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_auto_seq: bool,
) -> CmdResult<ParsedId> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    // Redis copies the argument into a C string: it ends at a NUL.
    let arg = match memchr::memchr(0, arg) {
        Some(at) => arg.get(..at).unwrap_or(&[]),
        None => arg,
    };
    if strict && (arg == b"-" || arg == b"+") {
        return Err(invalid_id());
    }
    if arg == b"-" {
        return Ok(ParsedId {
            id: StreamId::MIN,
            seq_given: true,
        });
    }
    if arg == b"+" {
        return Ok(ParsedId {
            id: StreamId::MAX,
            seq_given: true,
        });
    }
    let (ms_part, seq_part) = match memchr::memchr(b'-', arg) {
        Some(at) => (
            arg.get(..at).unwrap_or(&[]),
            Some(arg.get(at + 1..).unwrap_or(&[])),
        ),
        None => (arg, None),
    };
    let ms = string2ull(ms_part).ok_or_else(invalid_id)?;
    let (seq, seq_given) = match seq_part {
        Some(b"*") if allow_auto_seq => (0, false),
        Some(s) => (string2ull(s).ok_or_else(invalid_id)?, true),
        None => (missing_seq, true),
    };
    Ok(ParsedId {
        id: StreamId::new(ms, seq),
        seq_given,
    })
}

/// An ID where `-` and `+` mean the least and greatest.
pub fn parse_id(arg: &[u8], missing_seq: u64) -> CmdResult<StreamId> {
    Ok(parse_id_generic(arg, missing_seq, false, false)?.id)
}

/// An ID where `-` and `+` are refused.
pub fn parse_strict_id(arg: &[u8], missing_seq: u64) -> CmdResult<StreamId> {
    Ok(parse_id_generic(arg, missing_seq, true, false)?.id)
}

/// XADD's ID: strict, `<ms>-*` allowed.
pub fn parse_add_id(arg: &[u8]) -> CmdResult<ParsedId> {
    parse_id_generic(arg, 0, true, true)
}

/// A range bound: `(` makes it exclusive (and strict): the ID and whether
/// it is exclusive.
pub fn parse_interval_id(arg: &[u8], missing_seq: u64) -> CmdResult<(StreamId, bool)> {
    if arg.len() > 1 && arg.first() == Some(&b'(') {
        Ok((
            parse_strict_id(arg.get(1..).unwrap_or(&[]), missing_seq)?,
            true,
        ))
    } else {
        Ok((parse_id(arg, missing_seq)?, false))
    }
}

/// A range's first ID: inclusive, or (after `(`) the one after it.
pub fn range_start(arg: &[u8]) -> CmdResult<StreamId> {
    match parse_interval_id(arg, 0)? {
        (id, false) => Ok(id),
        (id, true) => id
            .next()
            .ok_or_else(|| CmdError::err("invalid start ID for the interval")),
    }
}

/// A range's last ID: inclusive (a bare `<ms>` ends at its greatest
/// sequence), or (after `(`) the one before it.
pub fn range_end(arg: &[u8]) -> CmdResult<StreamId> {
    match parse_interval_id(arg, u64::MAX)? {
        (id, false) => Ok(id),
        (id, true) => id
            .prev()
            .ok_or_else(|| CmdError::err("invalid end ID for the interval")),
    }
}

/// NOGROUP for a missing key or group (XPENDING, XCLAIM, XAUTOCLAIM).
pub fn nogroup(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Raw(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        super::args::err_text(key, usize::MAX),
        super::args::err_text(group, usize::MAX)
    ))
}

pub fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(Bytes::from(id.to_string()))
}

/// One entry as Redis replies it: `[id, [field, value, ...]]`.
pub fn entry_reply((id, fields): Entry) -> Reply {
    Reply::Array(vec![
        id_reply(id),
        Reply::Array(fields.into_iter().map(Reply::Bulk).collect()),
    ])
}

pub fn entries_reply(entries: Vec<Entry>) -> Reply {
    Reply::Array(entries.into_iter().map(entry_reply).collect())
}

impl Call<'_, '_> {
    /// The stream at `key` for a write (no keyspace statistics).
    pub(crate) fn stream<'k>(&self, key: &'k [u8]) -> CmdResult<Option<Stream<'k>>> {
        Ok(self
            .collection(key, KeyType::Stream)?
            .map(|coll| Stream { key, coll }))
    }

    /// The stream at `key` for a read (counted as Redis's lookupKeyRead).
    fn read_stream<'k>(&self, key: &'k [u8]) -> CmdResult<Option<Stream<'k>>> {
        Ok(self
            .read_collection(key, KeyType::Stream)?
            .map(|coll| Stream { key, coll }))
    }

    /// A new, empty stream at `key`.
    fn new_stream<'k>(&self, key: &'k [u8]) -> Stream<'k> {
        Stream {
            key,
            coll: self.new_collection(KeyType::Stream),
        }
    }
}

/// Redis's streamEstimateDistanceFromFirstEverEntry: the logical read
/// counter of `id`, or -1 when it cannot be known.
pub fn estimate_distance(s: &Stream<'_>, id: StreamId) -> i64 {
    let m = &s.coll.meta.stream;
    let len = s.len();
    if m.entries_added == 0 {
        return 0;
    }
    if len == 0 && id <= m.last_id {
        return m.entries_added as i64;
    }
    match id.cmp(&m.last_id) {
        std::cmp::Ordering::Equal => return m.entries_added as i64,
        std::cmp::Ordering::Greater => return -1,
        std::cmp::Ordering::Less => {}
    }
    if m.max_deleted == StreamId::MIN || m.max_deleted < m.first_id {
        match id.cmp(&m.first_id) {
            std::cmp::Ordering::Less => return m.entries_added.wrapping_sub(len) as i64,
            std::cmp::Ordering::Equal => {
                return m.entries_added.wrapping_sub(len).wrapping_add(1) as i64
            }
            std::cmp::Ordering::Greater => {}
        }
    }
    -1
}

/// Redis's streamRangeHasTombstones from `start` to the end.
pub fn has_tombstones_from(s: &Stream<'_>, start: StreamId) -> bool {
    let m = &s.coll.meta.stream;
    if s.len() == 0 || m.max_deleted == StreamId::MIN {
        return false;
    }
    if m.first_id > m.max_deleted {
        return false;
    }
    start <= m.max_deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis_parses_them() {
        let id = |s: &str| parse_id(s.as_bytes(), 0).ok();
        assert_eq!(id("-"), Some(StreamId::MIN));
        assert_eq!(id("+"), Some(StreamId::MAX));
        assert_eq!(id("5"), Some(StreamId::new(5, 0)));
        assert_eq!(id("5-3"), Some(StreamId::new(5, 3)));
        assert_eq!(id("+5-3"), Some(StreamId::new(5, 3)));
        assert_eq!(id(" 5"), Some(StreamId::new(5, 0)));
        assert_eq!(id("5-"), None);
        assert_eq!(id("-5"), None);
        assert_eq!(id("5--1"), None);
        assert_eq!(id("a"), None);
        assert_eq!(
            id("18446744073709551615-18446744073709551615"),
            Some(StreamId::MAX)
        );
        assert_eq!(id("18446744073709551616"), None);
        assert!(parse_strict_id(b"-", 0).is_err());
        assert!(parse_add_id(b"5-*").is_ok_and(|p| !p.seq_given));
        assert!(parse_id(b"5-*", 0).is_err());
        assert_eq!(
            parse_interval_id(b"(5", 0).ok(),
            Some((StreamId::new(5, 0), true))
        );
        assert!(parse_interval_id(b"(-", 0).is_err());
        assert_eq!(parse_interval_id(b"(", 0).ok().map(|p| p.1), None);
    }
}
