#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! The encodings Redis used before listpacks, which Redis 7.0 still loads
//! from older payloads: the ziplist (lists, hashes, sorted sets up to 6.2)
//! and the zipmap (hashes up to 2.4).
//!
//! Ziplist: total size (u32 LE), offset of the last entry (u32 LE), count
//! (u16 LE, 65535 when unknown), entries, 0xFF. An entry is the previous
//! entry's size (1 byte, or 0xFE and a u32 LE), an encoding (string with a
//! 6-, 14- or 32-bit big-endian length, or an integer of 8, 16, 24, 32 or
//! 64 bits, or 0..12 in the encoding byte itself), then its data.
//!
//! Zipmap: a count byte, then key/value pairs, each a length (1 byte, or
//! 254 and a u32 LE), the key, a length, a count of free bytes, the value
//! and the free bytes; 0xFF ends it.

use super::RdbError;

const END: u8 = 0xff;

/// Every entry of a ziplist, integers as their decimal text.
pub fn decode(blob: &[u8]) -> Result<Vec<Vec<u8>>, RdbError> {
    let bad = || RdbError::Format;
    let u32_at = |at: usize| -> Result<usize, RdbError> {
        let raw: [u8; 4] = blob
            .get(at..at + 4)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?;
        usize::try_from(u32::from_le_bytes(raw)).map_err(|_| bad())
    };
    if u32_at(0)? != blob.len() || blob.len() < 11 {
        return Err(bad());
    }
    let tail = u32_at(4)?;
    let count_raw: [u8; 2] = blob
        .get(8..10)
        .ok_or_else(bad)?
        .try_into()
        .map_err(|_| bad())?;
    let count = u16::from_le_bytes(count_raw);
    let mut entries = Vec::new();
    let mut at = 10;
    let mut prev_size = 0usize;
    let mut last = at;
    loop {
        let first = *blob.get(at).ok_or_else(bad)?;
        if first == END {
            break;
        }
        last = at;
        let (declared_prev, prev_len) = if first < 254 {
            (usize::from(first), 1)
        } else if first == 254 {
            (u32_at(at + 1)?, 5)
        } else {
            return Err(bad());
        };
        if declared_prev != prev_size {
            return Err(bad());
        }
        let (value, size) = entry(blob.get(at + prev_len..).ok_or_else(bad)?)?;
        entries.push(value);
        prev_size = prev_len + size;
        at += prev_size;
    }
    let count_ok = count == u16::MAX || usize::from(count) == entries.len();
    let tail_ok = entries.is_empty() && tail == 10 || tail == last;
    if at + 1 != blob.len() || !count_ok || !tail_ok {
        return Err(bad());
    }
    Ok(entries)
}

/// One entry's encoding and data at the start of `p`: its value and size.
fn entry(p: &[u8]) -> Result<(Vec<u8>, usize), RdbError> {
    let bad = || RdbError::Format;
    let first = *p.first().ok_or_else(bad)?;
    let take = |start: usize, len: usize| -> Result<&[u8], RdbError> {
        p.get(start..start.checked_add(len).ok_or_else(bad)?)
            .ok_or_else(bad)
    };
    let string = |start: usize, len: usize| Ok((take(start, len)?.to_vec(), start + len));
    let le_int = |n: usize| -> Result<(Vec<u8>, usize), RdbError> {
        let v = take(1, n)?
            .iter()
            .rev()
            .fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        let shift = 64 - 8 * n as u32;
        let v = ((v << shift) as i64) >> shift;
        Ok((v.to_string().into_bytes(), 1 + n))
    };
    match first >> 6 {
        0 => string(1, usize::from(first & 0x3f)),
        1 => {
            let second = *take(1, 1)?.first().ok_or_else(bad)?;
            string(2, usize::from(first & 0x3f) << 8 | usize::from(second))
        }
        2 if first == 0x80 => {
            let raw: [u8; 4] = take(1, 4)?.try_into().map_err(|_| bad())?;
            string(
                5,
                usize::try_from(u32::from_be_bytes(raw)).map_err(|_| bad())?,
            )
        }
        2 => Err(bad()),
        _ => match first {
            0xc0 => le_int(2),
            0xd0 => le_int(4),
            0xe0 => le_int(8),
            0xf0 => le_int(3),
            0xfe => le_int(1),
            0xf1..=0xfd => Ok(((first - 0xf1).to_string().into_bytes(), 1)),
            _ => Err(bad()),
        },
    }
}

/// The key/value pairs of a zipmap, flattened (key, value, key, value…).
pub fn decode_zipmap(blob: &[u8]) -> Result<Vec<Vec<u8>>, RdbError> {
    let bad = || RdbError::Format;
    let mut at = 1usize;
    let mut out = Vec::new();
    let length = |at: &mut usize| -> Result<Option<usize>, RdbError> {
        let first = *blob.get(*at).ok_or_else(bad)?;
        *at += 1;
        match first {
            END => Ok(None),
            254 => {
                let raw: [u8; 4] = blob
                    .get(*at..*at + 4)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?;
                *at += 4;
                Ok(Some(
                    usize::try_from(u32::from_le_bytes(raw)).map_err(|_| bad())?,
                ))
            }
            253 => Err(bad()),
            n => Ok(Some(usize::from(n))),
        }
    };
    let take = |at: &mut usize, len: usize| -> Result<Vec<u8>, RdbError> {
        let end = at.checked_add(len).ok_or_else(bad)?;
        let data = blob.get(*at..end).ok_or_else(bad)?.to_vec();
        *at = end;
        Ok(data)
    };
    while let Some(key_len) = length(&mut at)? {
        out.push(take(&mut at, key_len)?);
        let value_len = length(&mut at)?.ok_or_else(bad)?;
        let free = usize::from(*blob.get(at).ok_or_else(bad)?);
        at += 1;
        out.push(take(&mut at, value_len)?);
        take(&mut at, free)?;
    }
    if at != blob.len() {
        return Err(bad());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    /// A ziplist as Redis 6 writes one, built by hand from the format.
    fn ziplist(entries: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![0u8; 10];
        let mut prev = 0usize;
        let mut last = 10usize;
        for e in entries {
            last = out.len();
            let start = out.len();
            if prev < 254 {
                out.push(prev as u8);
            } else {
                out.push(254);
                out.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            match std::str::from_utf8(e)
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
            {
                Some(v @ 0..=12) => out.push(0xf1 + v as u8),
                Some(v) if i16::try_from(v).is_ok() => {
                    out.push(0xc0);
                    out.extend_from_slice(&(v as i16).to_le_bytes());
                }
                Some(v) => {
                    out.push(0xe0);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                None if e.len() < 64 => {
                    out.push(e.len() as u8);
                    out.extend_from_slice(e);
                }
                None => {
                    out.push(0x40 | (e.len() >> 8) as u8);
                    out.push(e.len() as u8);
                    out.extend_from_slice(e);
                }
            }
            prev = out.len() - start;
        }
        out.push(END);
        let total = out.len() as u32;
        out.splice(0..4, total.to_le_bytes());
        out.splice(4..8, (last as u32).to_le_bytes());
        out.splice(8..10, (entries.len() as u16).to_le_bytes());
        out
    }

    #[test]
    fn reads_every_encoding() {
        let long = vec![b'q'; 300];
        let entries: Vec<&[u8]> = vec![b"a", b"7", b"-300", b"9999999999", b"", &long, b"x"];
        let blob = ziplist(&entries);
        let got = decode(&blob).unwrap_or_default();
        assert_eq!(got, entries.iter().map(|e| e.to_vec()).collect::<Vec<_>>());
        for cut in 0..blob.len() {
            assert_eq!(
                decode(blob.get(..cut).unwrap_or_default()),
                Err(RdbError::Format)
            );
        }
        let mut wrong_prev = blob.clone();
        wrong_prev[13] = 9; // the second entry's previous-entry size
        assert_eq!(decode(&wrong_prev), Err(RdbError::Format));
    }

    #[test]
    fn reads_a_zipmap() {
        // Two pairs: "a" → "1" (2 free bytes) and "bc" → "".
        let blob = b"\x02\x01a\x01\x021xx\x02bc\x00\x00\xff";
        let want: Vec<Vec<u8>> = vec![b"a".to_vec(), b"1".to_vec(), b"bc".to_vec(), vec![]];
        assert_eq!(decode_zipmap(blob), Ok(want));
        for cut in 0..blob.len() {
            assert_eq!(
                decode_zipmap(blob.get(..cut).unwrap_or_default()),
                Err(RdbError::Format)
            );
        }
    }
}
