#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Byte layout of keys and metadata in RocksDB.
//!
//! - `meta` column family: `db ‖ user key` → [`Meta`]
//! - `data` column family: `db ‖ key length (u32 BE) ‖ user key ‖ version (u64 BE) ‖ sub-key` → value
//!
//! Strings keep their value inline in the meta record. Collections keep a
//! version there; their elements live in `data` under that version, so
//! deleting or overwriting a collection is one meta write, and elements of
//! an older version are invisible to the new key and reclaimed later.

use bytes::Bytes;

use super::StorageError;

/// The type of value a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum KeyType {
    String = 1,
    Hash = 2,
    List = 3,
    Set = 4,
    ZSet = 5,
    Stream = 6,
}

impl KeyType {
    fn from_byte(b: u8) -> Option<KeyType> {
        Some(match b {
            1 => KeyType::String,
            2 => KeyType::Hash,
            3 => KeyType::List,
            4 => KeyType::Set,
            5 => KeyType::ZSet,
            6 => KeyType::Stream,
            _ => return None,
        })
    }

    /// The name TYPE answers and SCAN TYPE matches.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Hash => "hash",
            KeyType::List => "list",
            KeyType::Set => "set",
            KeyType::ZSet => "zset",
            KeyType::Stream => "stream",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<KeyType> {
        Some(match name.to_ascii_lowercase().as_slice() {
            b"string" => KeyType::String,
            b"hash" => KeyType::Hash,
            b"list" => KeyType::List,
            b"set" => KeyType::Set,
            b"zset" => KeyType::ZSet,
            b"stream" => KeyType::Stream,
            _ => return None,
        })
    }
}

/// Absolute expiry in milliseconds since the Unix epoch; `None` = persistent.
pub type Expiry = Option<u64>;

/// What the meta column family holds for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub expire_at_ms: Expiry,
    pub body: MetaBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaBody {
    String(Bytes),
    Collection(CollectionMeta),
}

/// Header of a collection: its type, the version its elements are stored
/// under, its element count, and (for lists) the index window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectionMeta {
    pub kind: KeyType,
    pub version: u64,
    pub len: u64,
    /// Lists only: index of the first element and one past the last.
    pub head: u64,
    pub tail: u64,
    /// Sets only: the members are numbered `0..len` in the ZScore family
    /// (see `cmd/positions.rs`), so a random pick is one lookup. Sets
    /// written before Kiwi kept the numbers lack them until their next write.
    pub indexed: bool,
    /// Streams only: the IDs and counters Redis keeps in a stream's header.
    pub stream: StreamMeta,
}

/// A stream entry ID: milliseconds and sequence number, ordered as Redis
/// orders them (by `ms`, then `seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// Big-endian bytes, which sort as the IDs do.
    pub fn to_bytes(self) -> [u8; 16] {
        let (ms, seq) = (self.ms.to_be_bytes(), self.seq.to_be_bytes());
        let mut out = [0u8; 16];
        for (slot, byte) in out.iter_mut().zip(ms.iter().chain(seq.iter())) {
            *slot = *byte;
        }
        out
    }

    /// The ID at the start of `input`, which moves past it.
    pub fn take(input: &mut &[u8]) -> Option<StreamId> {
        let ms = take_u64(input)?;
        let seq = take_u64(input)?;
        Some(StreamId { ms, seq })
    }

    /// The next ID (`None` past the last one).
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
        }
    }

    /// The previous ID (`None` before the first one).
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self
                .ms
                .checked_sub(1)
                .map(|ms| StreamId { ms, seq: u64::MAX }),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// What a stream's header holds besides its length: the last ID handed
/// out, the first entry's ID, the greatest deleted ID and the count of
/// entries ever added (Redis 7.0's `last_id`, `first_id`,
/// `max_deleted_entry_id`, `entries_added`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamMeta {
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
}

const HEADER_LEN: usize = 1 + 8;
const COLLECTION_LEN: usize = HEADER_LEN + 8 + 8;
/// The byte after a set's length when its members are numbered.
const INDEXED: u8 = 1;
const STREAM_LEN: usize = COLLECTION_LEN + 56;

impl Meta {
    pub fn string(value: Bytes, expire_at_ms: Expiry) -> Meta {
        Meta {
            expire_at_ms,
            body: MetaBody::String(value),
        }
    }

    pub fn kind(&self) -> KeyType {
        match &self.body {
            MetaBody::String(_) => KeyType::String,
            MetaBody::Collection(c) => c.kind,
        }
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        matches!(self.expire_at_ms, Some(at) if at <= now_ms)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(match &self.body {
            MetaBody::String(v) => HEADER_LEN + v.len(),
            MetaBody::Collection(_) => STREAM_LEN,
        });
        out.push(self.kind() as u8);
        out.extend_from_slice(&self.expire_at_ms.unwrap_or(0).to_be_bytes());
        match &self.body {
            MetaBody::String(v) => out.extend_from_slice(v),
            MetaBody::Collection(c) => {
                out.extend_from_slice(&c.version.to_be_bytes());
                out.extend_from_slice(&c.len.to_be_bytes());
                if c.kind == KeyType::List {
                    out.extend_from_slice(&c.head.to_be_bytes());
                    out.extend_from_slice(&c.tail.to_be_bytes());
                } else if c.indexed && c.kind == KeyType::Set {
                    out.push(INDEXED);
                }
                if c.kind == KeyType::Stream {
                    let s = &c.stream;
                    for id in [s.last_id, s.first_id, s.max_deleted] {
                        out.extend_from_slice(&id.to_bytes());
                    }
                    out.extend_from_slice(&s.entries_added.to_be_bytes());
                }
            }
        }
        out
    }

    pub fn decode(raw: &[u8]) -> Result<Meta, StorageError> {
        let corrupt = || StorageError::Corrupt("meta record".into());
        let (kind, expire_at_ms, mut rest) = header(raw).ok_or_else(corrupt)?;
        let body = if kind == KeyType::String {
            MetaBody::String(Bytes::copy_from_slice(rest))
        } else {
            let version = take_u64(&mut rest).ok_or_else(corrupt)?;
            let len = take_u64(&mut rest).ok_or_else(corrupt)?;
            let indexed = kind == KeyType::Set && rest.first() == Some(&INDEXED);
            let (head, tail) = if kind == KeyType::List {
                let head = take_u64(&mut rest).ok_or_else(corrupt)?;
                let tail = take_u64(&mut rest).ok_or_else(corrupt)?;
                // Lists keep their length equal to their index window;
                // list commands count on it (tail - head, head + offset).
                if tail.checked_sub(head) != Some(len) {
                    return Err(corrupt());
                }
                (head, tail)
            } else {
                (0, 0)
            };
            let stream = if kind == KeyType::Stream {
                let mut id = || StreamId::take(&mut rest).ok_or_else(corrupt);
                let (last_id, first_id, max_deleted) = (id()?, id()?, id()?);
                let entries_added = take_u64(&mut rest).ok_or_else(corrupt)?;
                StreamMeta {
                    last_id,
                    first_id,
                    max_deleted,
                    entries_added,
                }
            } else {
                StreamMeta::default()
            };
            MetaBody::Collection(CollectionMeta {
                kind,
                version,
                len,
                head,
                tail,
                indexed,
                stream,
            })
        };
        Ok(Meta { expire_at_ms, body })
    }

    /// Type and expiry from a raw record without copying a string's value.
    pub fn peek(raw: &[u8]) -> Option<(KeyType, Expiry)> {
        header(raw).map(|(kind, expiry, _)| (kind, expiry))
    }
}

/// The type and expiry of a meta record, and the bytes after them.
fn header(raw: &[u8]) -> Option<(KeyType, Expiry, &[u8])> {
    let (&kind, mut rest) = raw.split_first()?;
    let kind = KeyType::from_byte(kind)?;
    let expire = take_u64(&mut rest)?;
    Some((kind, (expire != 0).then_some(expire), rest))
}

/// The big-endian u64 at the start of `input`, which moves past it.
fn take_u64(input: &mut &[u8]) -> Option<u64> {
    let (value, rest) = input.split_first_chunk::<8>()?;
    *input = rest;
    Some(u64::from_be_bytes(*value))
}

/// Meta column family key of `key` in database `db`.
pub fn meta_key(db: u8, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(db);
    out.extend_from_slice(key);
    out
}

/// Prefix shared by every element of one version of a collection.
pub fn data_prefix(db: u8, key: &[u8], version: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 4 + key.len() + 8);
    out.push(db);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&version.to_be_bytes());
    out
}

/// Data column family key of one element.
pub fn data_key(db: u8, key: &[u8], version: u64, sub_key: &[u8]) -> Vec<u8> {
    let mut out = data_prefix(db, key, version);
    out.extend_from_slice(sub_key);
    out
}

/// Split a data key into (db, user key, version, sub-key).
pub fn split_data_key(raw: &[u8]) -> Option<(u8, &[u8], u64, &[u8])> {
    let (&db, rest) = raw.split_first()?;
    let (key_len, rest) = rest.split_first_chunk::<4>()?;
    let key_len = usize::try_from(u32::from_be_bytes(*key_len)).ok()?;
    let key = rest.get(..key_len)?;
    let mut rest = rest.get(key_len..)?;
    let version = take_u64(&mut rest)?;
    Some((db, key, version, rest))
}

/// The smallest key greater than every key starting with `prefix`
/// (exclusive upper bound of a prefix scan); `None` if there is none.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Order-preserving encoding of a score: the big-endian bytes of the result
/// sort exactly as the doubles do (-inf < … < -0 = 0 < … < inf).
pub fn encode_score(score: f64) -> [u8; 8] {
    // -0.0 and 0.0 are the same score.
    let score = if score == 0.0 { 0.0 } else { score };
    let bits = score.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    ordered.to_be_bytes()
}

pub fn decode_score(raw: [u8; 8]) -> f64 {
    let ordered = u64::from_be_bytes(raw);
    let bits = if ordered >> 63 == 1 {
        ordered & !(1 << 63)
    } else {
        !ordered
    };
    f64::from_bits(bits)
}

/// List elements are keyed by a u64 index; a new list starts in the middle
/// so it can grow 2^63 elements at either end.
pub const LIST_START_INDEX: u64 = 1 << 63;
