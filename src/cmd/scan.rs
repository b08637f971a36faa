//! What SCAN, HSCAN, SSCAN and ZSCAN share: the cursor, the MATCH/COUNT
//! (and TYPE) options, where a cursor resumes, and the reply.
//!
//! A cursor is a number standing for the key (or element) the next call
//! resumes at, kept in the engine's cursor table; 0 starts and ends.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::{glob_match, int_arg, is, Call, CmdError, CmdResult};
use crate::resp::Reply;
use crate::storage::KeyType;

/// Cursor positions of SCAN calls in progress: a cursor number stands for
/// the key the next call resumes at. The engine keeps one table for all
/// clients, as Redis's cursors are valid on any connection.
#[derive(Debug, Default)]
pub struct ScanCursors {
    next_id: u64,
    positions: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
}

/// Most cursors remembered; the oldest is forgotten first.
const MAX_SCAN_CURSORS: usize = 16 * 1024;

impl ScanCursors {
    pub fn save(&mut self, position: Vec<u8>) -> u64 {
        if self.order.len() >= MAX_SCAN_CURSORS {
            if let Some(old) = self.order.pop_front() {
                self.positions.remove(&old);
            }
        }
        // Cursor numbers never repeat and are never 0 (0 = start/end).
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let id = self.next_id;
        self.positions.insert(id, position);
        self.order.push_back(id);
        id
    }

    pub fn get(&self, id: u64) -> Option<Vec<u8>> {
        self.positions.get(&id).cloned()
    }
}

/// A cursor argument, read like Redis's `strtoul`: an optional sign (a
/// minus wraps around), decimal digits, no leading space; "" is cursor 0.
/// strtoul reads a C string, so a NUL byte ends the text.
pub fn parse_cursor(arg: &[u8]) -> CmdResult<u64> {
    let invalid = || CmdError::err("invalid cursor");
    let arg = &arg[..memchr::memchr(0, arg).unwrap_or(arg.len())];
    let digits = match arg.first() {
        None => return Ok(0),
        Some(b'-' | b'+') => &arg[1..],
        Some(_) => arg,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let v = digits
        .iter()
        .try_fold(0u64, |v, d| {
            v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or_else(invalid)?;
    Ok(if arg[0] == b'-' { v.wrapping_neg() } else { v })
}

/// MATCH, COUNT and (SCAN only) TYPE.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub count: usize,
    pub pattern: Option<Bytes>,
    /// `Some(None)`: a TYPE no key can have, which filters out everything.
    pub kind: Option<Option<KeyType>>,
}

impl ScanOptions {
    /// Parse the options from `args[from..]`; TYPE only when `with_type`.
    pub fn parse(args: &[Bytes], from: usize, with_type: bool) -> CmdResult<ScanOptions> {
        let mut options = ScanOptions {
            count: 10,
            pattern: None,
            kind: None,
        };
        let mut i = from;
        while i < args.len() {
            let (opt, value) = (&args[i], args.get(i + 1));
            match value {
                Some(v) if is(opt, "count") => {
                    let n = int_arg(v)?;
                    if n < 1 {
                        return Err(CmdError::Syntax);
                    }
                    options.count = usize::try_from(n).unwrap_or(usize::MAX);
                }
                Some(v) if is(opt, "match") => {
                    options.pattern = (&v[..] != b"*").then(|| v.clone())
                }
                Some(v) if with_type && is(opt, "type") => {
                    options.kind = Some(KeyType::from_name(v))
                }
                _ => return Err(CmdError::Syntax),
            }
            i += 2;
        }
        Ok(options)
    }

    /// Whether `name` passes MATCH.
    pub fn matches(&self, name: &[u8]) -> bool {
        self.pattern.as_deref().is_none_or(|p| glob_match(p, name))
    }
}

/// Where a scan resumes: empty for cursor 0, `None` for a cursor this
/// server never handed out (or forgot) — that scan is over.
pub fn resume_at(call: &Call<'_, '_>, cursor: u64) -> Option<Vec<u8>> {
    if cursor == 0 {
        return Some(Vec::new());
    }
    call.engine.scan_cursors.lock().get(cursor)
}

/// The reply: the cursor for `next` (0 when the scan is complete) and the items.
pub fn scan_reply(call: &Call<'_, '_>, next: Option<Vec<u8>>, items: Vec<Reply>) -> Reply {
    let cursor = next.map_or(0, |position| call.engine.scan_cursors.lock().save(position));
    Reply::Array(vec![Reply::bulk(cursor.to_string()), Reply::Array(items)])
}

/// The reply of a scan that is over.
pub fn scan_done(items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(items)])
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b"").ok(), Some(0));
        assert_eq!(parse_cursor(b"0").ok(), Some(0));
        assert_eq!(parse_cursor(b"+17").ok(), Some(17));
        assert_eq!(parse_cursor(b"-1").ok(), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615").ok(), Some(u64::MAX));
        assert!(parse_cursor(b"18446744073709551616").is_err());
        assert!(parse_cursor(b" 1").is_err());
        assert!(parse_cursor(b"1x").is_err());
        assert!(parse_cursor(b"-").is_err());
    }
}
