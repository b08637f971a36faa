#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Redis's listpack, the blob Redis 7.0 keeps small hashes, sorted sets and
//! list nodes in (and writes as such into RDB payloads).
//!
//! Layout: total size (u32 LE), entry count (u16 LE, 65535 when unknown),
//! the entries, then 0xFF. Each entry is an encoding byte (integer of 7, 13,
//! 16, 24, 32 or 64 bits, or a string with a 6-, 12- or 32-bit length),
//! its data, then a "backlen": the entry's size in 1 to 5 bytes of 7 bits,
//! so the blob can be walked backwards. Kiwi reads every encoding and checks
//! each backlen; it writes every entry as a string, which Redis reads.

use super::RdbError;

const HEADER: usize = 6;
const END: u8 = 0xff;
const UNKNOWN_COUNT: u16 = u16::MAX;

/// Every entry of a listpack, integers as their decimal text.
pub fn decode(blob: &[u8]) -> Result<Vec<Vec<u8>>, RdbError> {
    let bad = || RdbError::Format;
    let total = blob.get(..4).ok_or_else(bad)?;
    let total = u32::from_le_bytes(total.try_into().map_err(|_| bad())?);
    if usize::try_from(total).map_err(|_| bad())? != blob.len() || blob.len() < HEADER + 1 {
        return Err(bad());
    }
    let count = blob.get(4..6).ok_or_else(bad)?;
    let count = u16::from_le_bytes(count.try_into().map_err(|_| bad())?);
    let mut entries = Vec::new();
    let mut at = HEADER;
    loop {
        let first = *blob.get(at).ok_or_else(bad)?;
        if first == END {
            break;
        }
        let (value, size) = entry(blob.get(at..).ok_or_else(bad)?)?;
        let back = backlen_size(size);
        let stored = blob.get(at + size..at + size + back).ok_or_else(bad)?;
        if decode_backlen(stored) != Some(size as u64) {
            return Err(bad());
        }
        entries.push(value);
        at += size + back;
    }
    // The terminator is the last byte, and the count (when known) is right.
    if at + 1 != blob.len() || (count != UNKNOWN_COUNT && usize::from(count) != entries.len()) {
        return Err(bad());
    }
    Ok(entries)
}

/// One entry at the start of `p`: its value and its size without backlen.
fn entry(p: &[u8]) -> Result<(Vec<u8>, usize), RdbError> {
    let bad = || RdbError::Format;
    let first = *p.first().ok_or_else(bad)?;
    let byte = |i: usize| p.get(i).copied().ok_or_else(bad);
    let int = |v: i64, size: usize| Ok((v.to_string().into_bytes(), size));
    let string = |start: usize, len: usize| {
        let data = p.get(start..start.checked_add(len).ok_or_else(bad)?);
        Ok((data.ok_or_else(bad)?.to_vec(), start + len))
    };
    let le = |n: usize| -> Result<u64, RdbError> {
        let raw = p.get(1..1 + n).ok_or_else(bad)?;
        Ok(raw
            .iter()
            .rev()
            .fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
    };
    if first & 0x80 == 0 {
        return int(i64::from(first & 0x7f), 1);
    }
    if first & 0xc0 == 0x80 {
        return string(1, usize::from(first & 0x3f));
    }
    if first & 0xe0 == 0xc0 {
        let raw = i64::from(first & 0x1f) << 8 | i64::from(byte(1)?);
        let v = if raw >= 1 << 12 { raw - (1 << 13) } else { raw };
        return int(v, 2);
    }
    if first & 0xf0 == 0xe0 {
        return string(2, usize::from(first & 0x0f) << 8 | usize::from(byte(1)?));
    }
    match first {
        0xf0 => string(5, usize::try_from(le(4)?).map_err(|_| bad())?),
        0xf1 => int(i64::from(le(2)? as u16 as i16), 3),
        0xf2 => int(sign_extend(le(3)?, 24), 4),
        0xf3 => int(i64::from(le(4)? as u32 as i32), 5),
        0xf4 => int(le(8)? as i64, 9),
        _ => Err(bad()),
    }
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// How many bytes the backlen of an entry of `size` bytes takes.
fn backlen_size(size: usize) -> usize {
    match size {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// The backlen bytes (first to last as stored): the most significant 7
/// bits first, every byte but the first flagged with 0x80.
fn encode_backlen(out: &mut Vec<u8>, size: usize) {
    let n = backlen_size(size);
    for i in (0..n).rev() {
        let part = ((size >> (7 * i)) & 0x7f) as u8;
        out.push(if i + 1 == n { part } else { part | 0x80 });
    }
}

fn decode_backlen(stored: &[u8]) -> Option<u64> {
    let (first, rest) = stored.split_first()?;
    if first & 0x80 != 0 || rest.iter().any(|b| b & 0x80 == 0) {
        return None;
    }
    Some(
        stored
            .iter()
            .fold(0u64, |acc, &b| acc << 7 | u64::from(b & 0x7f)),
    )
}

/// One listpack element as Redis writes it: an integer in its smallest
/// encoding, or a string. Redis stores a string that reads as an integer
/// (lpStringToInt64, its string2ll) as that integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl<'a> Element<'a> {
    /// The element Redis's lpAppend makes of `s`.
    pub fn of(s: &'a [u8]) -> Element<'a> {
        match crate::num::parse_i64(s) {
            Some(v) => Element::Int(v),
            None => Element::Str(s),
        }
    }

    /// Encoding byte(s) and data, without the backlen.
    fn encode_body(self, out: &mut Vec<u8>) {
        match self {
            Element::Int(v @ 0..=127) => out.push(v as u8),
            Element::Int(v @ -4096..=4095) => {
                let u = (v as u16) & 0x1fff;
                out.push(0xc0 | (u >> 8) as u8);
                out.push(u as u8);
            }
            Element::Int(v) if i16::try_from(v).is_ok() => {
                out.push(0xf1);
                out.extend_from_slice(&(v as i16).to_le_bytes());
            }
            Element::Int(v @ -8_388_608..=8_388_607) => {
                out.push(0xf2);
                out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            Element::Int(v) if i32::try_from(v).is_ok() => {
                out.push(0xf3);
                out.extend_from_slice(&(v as i32).to_le_bytes());
            }
            Element::Int(v) => {
                out.push(0xf4);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Element::Str(e) => {
                let len = e.len();
                if len < 64 {
                    out.push(0x80 | len as u8);
                } else if len < 4096 {
                    out.push(0xe0 | (len >> 8) as u8);
                    out.push(len as u8);
                } else {
                    out.push(0xf0);
                    out.extend_from_slice(&(len as u32).to_le_bytes());
                }
                out.extend_from_slice(e);
            }
        }
    }

    /// Bytes the element takes in a listpack, backlen included.
    pub fn size(self) -> usize {
        let body = match self {
            Element::Int(0..=127) => 1,
            Element::Int(-4096..=4095) => 2,
            Element::Int(v) if i16::try_from(v).is_ok() => 3,
            Element::Int(-8_388_608..=8_388_607) => 4,
            Element::Int(v) if i32::try_from(v).is_ok() => 5,
            Element::Int(_) => 9,
            Element::Str(e) if e.len() < 64 => 1 + e.len(),
            Element::Str(e) if e.len() < 4096 => 2 + e.len(),
            Element::Str(e) => 5 + e.len(),
        };
        body + backlen_size(body)
    }
}

/// Bytes of an empty listpack (header and terminator).
pub const EMPTY_SIZE: usize = HEADER + 1;

/// A listpack of `elements`, as Redis writes them.
pub fn encode_elements(elements: &[Element<'_>]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER];
    for e in elements {
        let start = out.len();
        e.encode_body(&mut out);
        let size = out.len() - start;
        encode_backlen(&mut out, size);
    }
    out.push(END);
    let total = (out.len() as u32).to_le_bytes();
    let count = u16::try_from(elements.len())
        .unwrap_or(UNKNOWN_COUNT)
        .to_le_bytes();
    for (slot, b) in out.iter_mut().zip(total.iter().chain(count.iter())) {
        *slot = *b;
    }
    out
}

/// A listpack of `entries`, each written as a string.
pub fn encode<T: AsRef<[u8]>>(entries: &[T]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER];
    for e in entries {
        let e = e.as_ref();
        let start = out.len();
        let len = e.len();
        if len < 64 {
            out.push(0x80 | len as u8);
        } else if len < 4096 {
            out.push(0xe0 | (len >> 8) as u8);
            out.push(len as u8);
        } else {
            out.push(0xf0);
            out.extend_from_slice(&(len as u32).to_le_bytes());
        }
        out.extend_from_slice(e);
        let size = out.len() - start;
        encode_backlen(&mut out, size);
    }
    out.push(END);
    let total = (out.len() as u32).to_le_bytes();
    let count = u16::try_from(entries.len())
        .unwrap_or(UNKNOWN_COUNT)
        .to_le_bytes();
    for (slot, b) in out.iter_mut().zip(total.iter().chain(count.iter())) {
        *slot = *b;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn round_trips() {
        let long = vec![b'z'; 5000];
        let mid = vec![b'y'; 300];
        let entries: Vec<&[u8]> = vec![b"", b"a", b"123", &mid, &long, b"\x00\xff"];
        let blob = encode(&entries);
        let back = decode(&blob).unwrap_or_default();
        assert_eq!(back, entries.iter().map(|e| e.to_vec()).collect::<Vec<_>>());
    }

    #[test]
    fn elements_encode_as_redis_writes_them() {
        // The same bytes as in reads_redis_integers, written by Kiwi.
        let fields: Vec<&[u8]> = vec![
            b"a",
            b"1",
            b"b",
            b"-300",
            b"c",
            b"70000",
            b"d",
            b"-5000000000",
            b"e",
            b"5000",
            b"f",
            b"x",
        ];
        let elements: Vec<Element<'_>> = fields.iter().map(|f| Element::of(f)).collect();
        let blob = encode_elements(&elements);
        assert_eq!(&blob[..], &b"4\x00\x00\x00\x0c\x00\x81a\x02\x01\x01\x81b\x02\xde\xd4\x02\x81c\x02\xf2p\x11\x01\x04\x81d\x02\xf4\x00\x0e\xfa\xd5\xfe\xff\xff\xff\t\x81e\x02\xf1\x88\x13\x03\x81f\x02\x81x\x02\xff"[..]);
        assert_eq!(
            blob.len(),
            EMPTY_SIZE + elements.iter().map(|e| e.size()).sum::<usize>()
        );
        for v in [
            0i64,
            127,
            128,
            -1,
            4095,
            -4096,
            4096,
            32767,
            -32769,
            8_388_607,
            8_388_608,
            i64::from(i32::MIN),
            i64::MIN,
        ] {
            let blob = encode_elements(&[Element::Int(v)]);
            assert_eq!(
                decode(&blob).unwrap_or_default(),
                vec![v.to_string().into_bytes()]
            );
            assert_eq!(blob.len(), EMPTY_SIZE + Element::Int(v).size());
        }
    }

    #[test]
    fn reads_redis_integers() {
        // The listpack of DUMP h after HSET h a 1 b -300 c 70000
        // d -5000000000 e 5000 f x on redis-server 7.0.15: 7-, 13-, 16-,
        // 24- and 64-bit integers and strings.
        let blob = b"4\x00\x00\x00\x0c\x00\x81a\x02\x01\x01\x81b\x02\xde\xd4\x02\x81c\x02\xf2p\x11\x01\x04\x81d\x02\xf4\x00\x0e\xfa\xd5\xfe\xff\xff\xff\t\x81e\x02\xf1\x88\x13\x03\x81f\x02\x81x\x02\xff";
        let got = decode(blob).unwrap_or_default();
        let want: Vec<&[u8]> = vec![
            b"a",
            b"1",
            b"b",
            b"-300",
            b"c",
            b"70000",
            b"d",
            b"-5000000000",
            b"e",
            b"5000",
            b"f",
            b"x",
        ];
        assert_eq!(got, want.iter().map(|e| e.to_vec()).collect::<Vec<_>>());
    }

    #[test]
    fn corrupt_blobs_are_refused() {
        let blob = encode(&[b"hello".as_slice(), b"world"]);
        for cut in 0..blob.len() {
            assert_eq!(
                decode(blob.get(..cut).unwrap_or_default()),
                Err(RdbError::Format)
            );
        }
        let mut wrong_count = blob.clone();
        wrong_count[4] = 3;
        assert_eq!(decode(&wrong_count), Err(RdbError::Format));
        let mut wrong_backlen = blob.clone();
        wrong_backlen[12] = 9;
        assert_eq!(decode(&wrong_backlen), Err(RdbError::Format));
        // A string length past the end.
        let mut long = blob;
        long[6] = 0xbf;
        assert_eq!(decode(&long), Err(RdbError::Format));
    }
}
