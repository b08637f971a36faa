#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Redis's RDB serialization primitives, for the payloads DUMP / RESTORE
//! and FUNCTION DUMP / RESTORE exchange with redis-server 7.0.
//!
//! A payload is RDB-encoded values followed by a footer: the RDB version
//! (2 bytes, little endian; 10 for Redis 7.0) and a CRC-64 (Jones, Redis's
//! `crc64`; 8 bytes, little endian) of everything before it. Strings carry
//! RDB's length prefix and may be LZF-compressed or integer-encoded (Redis
//! compresses strings longer than 20 bytes when that saves space); Kiwi
//! writes them plain, which Redis reads.

use crc::{Crc, CRC_64_REDIS};

pub mod intset;
pub mod listpack;
pub mod stream;
pub mod value;
pub mod ziplist;

/// The RDB version Redis 7.0 writes and Kiwi's payloads declare.
pub const RDB_VERSION: u16 = 10;

/// `RDB_OPCODE_FUNCTION2`: a function library follows.
pub const OPCODE_FUNCTION2: u8 = 245;
/// `RDB_OPCODE_FUNCTION`: Redis 7.0's pre-release library format.
pub const OPCODE_FUNCTION_PRE_GA: u8 = 246;

const CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_REDIS);

/// Longest string a payload may declare (Redis's `proto-max-bulk-len`
/// ceiling): a forged length must not make us allocate without bound.
const MAX_STRING: u64 = 512 << 20;

/// Why a payload does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdbError {
    /// Footer missing, newer version, or checksum mismatch (Redis's text).
    #[error("DUMP payload version or checksum are wrong")]
    Footer,
    #[error("Bad data format")]
    Format,
    /// A well-formed value of a type Kiwi does not have (stream, module).
    #[error("Bad data format: Kiwi has no {0} type, so it cannot restore this value")]
    Unsupported(&'static str),
}

/// Redis's `crc64(0, data)`.
pub fn crc64(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

/// Append the version and checksum footer.
pub fn seal(mut payload: Vec<u8>) -> Vec<u8> {
    payload.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

/// The body of a sealed payload once its footer checks out.
pub fn open(payload: &[u8]) -> Result<&[u8], RdbError> {
    let Some(split) = payload.len().checked_sub(10) else {
        return Err(RdbError::Footer);
    };
    let (body, footer) = payload.split_at(split);
    let (version, crc) = footer.split_at(2);
    let version = u16::from_le_bytes(version.try_into().map_err(|_| RdbError::Footer)?);
    let crc = u64::from_le_bytes(crc.try_into().map_err(|_| RdbError::Footer)?);
    if version > RDB_VERSION {
        return Err(RdbError::Footer);
    }
    let covered = payload.get(..split + 2).ok_or(RdbError::Footer)?;
    if crc64(covered) != crc {
        return Err(RdbError::Footer);
    }
    Ok(body)
}

/// RDB's length prefix.
pub fn write_length(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if let Ok(len32) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&len32.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// An RDB string, written plain.
pub fn write_string(out: &mut Vec<u8>, data: &[u8]) {
    write_length(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// A cursor over an RDB body.
#[derive(Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
}

/// A length prefix: a length, or one of the special string encodings.
enum Length {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// How many bytes are left: an upper bound on how many more elements
    /// can follow (each takes at least one), so no declared count is
    /// believed past it.
    pub fn remaining(&self) -> usize {
        self.data.len()
    }

    pub fn byte(&mut self) -> Result<u8, RdbError> {
        let (&b, rest) = self.data.split_first().ok_or(RdbError::Format)?;
        self.data = rest;
        Ok(b)
    }

    /// The next `n` raw bytes.
    pub fn bytes(&mut self, n: u64) -> Result<&'a [u8], RdbError> {
        let n = usize::try_from(n).map_err(|_| RdbError::Format)?;
        if n > self.data.len() {
            return Err(RdbError::Format);
        }
        let (taken, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(taken)
    }

    fn length_or_encoding(&mut self) -> Result<Length, RdbError> {
        let first = self.byte()?;
        Ok(match first >> 6 {
            0 => Length::Plain(u64::from(first & 0x3f)),
            1 => Length::Plain(u64::from(first & 0x3f) << 8 | u64::from(self.byte()?)),
            3 => Length::Encoded(first & 0x3f),
            _ => match first {
                0x80 => {
                    let b: [u8; 4] = self.bytes(4)?.try_into().map_err(|_| RdbError::Format)?;
                    Length::Plain(u64::from(u32::from_be_bytes(b)))
                }
                0x81 => {
                    let b: [u8; 8] = self.bytes(8)?.try_into().map_err(|_| RdbError::Format)?;
                    Length::Plain(u64::from_be_bytes(b))
                }
                _ => return Err(RdbError::Format),
            },
        })
    }

    /// A plain length (not a string encoding).
    pub fn length(&mut self) -> Result<u64, RdbError> {
        match self.length_or_encoding()? {
            Length::Plain(n) => Ok(n),
            Length::Encoded(_) => Err(RdbError::Format),
        }
    }

    /// An RDB string: plain, integer-encoded or LZF-compressed.
    pub fn string(&mut self) -> Result<Vec<u8>, RdbError> {
        match self.length_or_encoding()? {
            Length::Plain(n) if n <= MAX_STRING => Ok(self.bytes(n)?.to_vec()),
            Length::Plain(_) => Err(RdbError::Format),
            Length::Encoded(0) => Ok((self.byte()? as i8).to_string().into_bytes()),
            Length::Encoded(1) => {
                let b: [u8; 2] = self.bytes(2)?.try_into().map_err(|_| RdbError::Format)?;
                Ok(i16::from_le_bytes(b).to_string().into_bytes())
            }
            Length::Encoded(2) => {
                let b: [u8; 4] = self.bytes(4)?.try_into().map_err(|_| RdbError::Format)?;
                Ok(i32::from_le_bytes(b).to_string().into_bytes())
            }
            Length::Encoded(3) => {
                let compressed_len = self.length()?;
                let len = self.length()?;
                // LZF expands at most ~88 times; a larger claim is forged.
                if len > MAX_STRING || len > compressed_len.saturating_mul(90) {
                    return Err(RdbError::Format);
                }
                let compressed = self.bytes(compressed_len)?;
                // Redis takes a zero length as an empty string whatever the
                // compressed bytes are (its decompressor returns 0 too).
                if len == 0 {
                    return Ok(Vec::new());
                }
                let len = usize::try_from(len).map_err(|_| RdbError::Format)?;
                let out = lzf::decompress(compressed, len).map_err(|_| RdbError::Format)?;
                match out.len() == len {
                    true => Ok(out),
                    false => Err(RdbError::Format),
                }
            }
            Length::Encoded(_) => Err(RdbError::Format),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_redis() {
        // Redis's own crc64 test vector.
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn a_redis_function_dump_opens() {
        // FUNCTION DUMP of redis-server 7.0.15 for one small library.
        let payload = b"\xf5@B#!lua name=d\nredis.register_function('d', function() return 1 end)\n\x004k'9\x90f/\\";
        let body = open(payload).map_err(|e| e.to_string());
        let mut reader = Reader::new(body.as_deref().unwrap_or_default());
        assert_eq!(reader.byte(), Ok(OPCODE_FUNCTION2));
        assert_eq!(
            reader.string().map(String::from_utf8),
            Ok(Ok(
                "#!lua name=d\nredis.register_function('d', function() return 1 end)".into()
            ))
        );
        assert!(reader.is_empty());
        let mut flipped = payload.to_vec();
        if let Some(b) = flipped.get_mut(5) {
            *b ^= 1;
        }
        assert_eq!(open(&flipped), Err(RdbError::Footer));
        assert_eq!(open(b"short"), Err(RdbError::Footer));
    }

    #[test]
    fn lengths_and_strings_round_trip() {
        for len in [0usize, 1, 63, 64, 16383, 16384, 70000] {
            let data = vec![b'x'; len];
            let mut out = Vec::new();
            write_string(&mut out, &data);
            let sealed = seal(out);
            let body = open(&sealed).unwrap_or_default();
            assert_eq!(Reader::new(body).string(), Ok(data));
        }
    }

    #[test]
    fn encoded_strings_decode() {
        assert_eq!(Reader::new(&[0xc0, 0xfe]).string(), Ok(b"-2".to_vec()));
        assert_eq!(
            Reader::new(&[0xc1, 0x39, 0x30]).string(),
            Ok(b"12345".to_vec())
        );
        let text = b"abcabcabcabcabcabcabcabcabcabcabcabc".to_vec();
        let compressed = lzf::compress(&text).unwrap_or_default();
        let mut lzf_string = vec![0xc3];
        write_length(&mut lzf_string, compressed.len() as u64);
        write_length(&mut lzf_string, text.len() as u64);
        lzf_string.extend_from_slice(&compressed);
        assert_eq!(Reader::new(&lzf_string).string(), Ok(text));
        // A forged length is refused, not allocated.
        assert_eq!(
            Reader::new(&[0x81, 0xff, 0, 0, 0, 0, 0, 0, 0]).string(),
            Err(RdbError::Format)
        );
    }
}
