#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Every decoder of bytes Kiwi did not produce itself, in one place: what a
//! client sends (RESP requests), what a peer sends (Raft frames, their
//! answers, snapshots) and what a data directory holds (stored records).
//!
//! The fuzz targets in `fuzz/` drive exactly these functions, which call
//! the decoders the server runs. Each answers an error for bad input; a
//! panic, an endless loop, deep recursion or an allocation out of
//! proportion to the input is a bug.

use openraft::{Entry, LogId, SnapshotMeta, StoredMembership, Vote};

use crate::raft::identity::DirIdentity;
use crate::raft::{decode, NodeId, RaftStoreError, TypeConfig};

pub use crate::raft::network::{decode_frame, decode_reply, Frame, RpcReply};
pub use crate::resp::{split_args, Protocol, ProtocolError, Reply, RequestDecoder};
pub use crate::storage::{split_data_key, Meta};

/// One record of a snapshot: its family tag, key and value.
pub type SnapshotRecord<'a> = crate::raft::TaggedRecord<'a>;

/// Every record of a snapshot (format v1 or v2), checked whole, as a
/// follower reads one before installing it.
pub fn snapshot(data: &[u8]) -> Result<Vec<SnapshotRecord<'_>>, RaftStoreError> {
    crate::raft::snapshot_records(data)
}

/// The kinds of record a data directory holds, by where they live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredKind {
    /// `meta` family value: a key's type, expiry and string or header.
    Meta,
    /// `data` family key: db, user key, version, sub-key.
    DataKey,
    /// `raft_replicated` family value: a log index or the clock.
    Replicated,
    /// `raft_log` family value: one log entry.
    LogEntry,
    /// `raft_state` `vote`.
    Vote,
    /// `raft_state` `last_applied` and `last_purged`.
    LogId,
    /// `raft_state` `committed`.
    Committed,
    /// `raft_state` `membership`.
    Membership,
    /// `raft_state` `snapshot_meta`.
    SnapshotMeta,
    /// `raft_state` `identity`.
    Identity,
    /// `raft_state` `shared.cluster`.
    SharedCluster,
    /// `raft_state` `shared.incarnation.<id>`.
    SharedIncarnation,
    /// `data` family record of a stream: its sub-key's length (one byte),
    /// the sub-key, then the value (entries, nodes, groups, consumers,
    /// pending entries).
    StreamRecord,
}

impl StoredKind {
    pub const ALL: [StoredKind; 13] = [
        StoredKind::Meta,
        StoredKind::DataKey,
        StoredKind::Replicated,
        StoredKind::LogEntry,
        StoredKind::Vote,
        StoredKind::LogId,
        StoredKind::Committed,
        StoredKind::Membership,
        StoredKind::SnapshotMeta,
        StoredKind::Identity,
        StoredKind::SharedCluster,
        StoredKind::SharedIncarnation,
        StoredKind::StreamRecord,
    ];
}

/// Decode `raw` as a record of `kind`, with the decoder (and the type) the
/// stores read it with; the error says why it is corrupt.
pub fn stored(kind: StoredKind, raw: &[u8]) -> Result<(), String> {
    fn typed<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<(), String> {
        decode::<T>(raw).map(drop).map_err(|e| e.to_string())
    }
    match kind {
        StoredKind::Meta => Meta::decode(raw).map(drop).map_err(|e| e.to_string()),
        StoredKind::DataKey => split_data_key(raw)
            .map(drop)
            .ok_or_else(|| "not a data key".to_string()),
        StoredKind::Replicated => crate::storage::replicated::decode_u64(raw, "fuzzed")
            .map(drop)
            .map_err(|e| e.to_string()),
        StoredKind::LogEntry => typed::<Entry<TypeConfig>>(raw),
        StoredKind::Vote => typed::<Vote<NodeId>>(raw),
        StoredKind::LogId => typed::<LogId<NodeId>>(raw),
        StoredKind::Committed => typed::<Option<LogId<NodeId>>>(raw),
        StoredKind::Membership => typed::<StoredMembership<NodeId, openraft::BasicNode>>(raw),
        StoredKind::SnapshotMeta => typed::<SnapshotMeta<NodeId, openraft::BasicNode>>(raw),
        StoredKind::Identity => typed::<DirIdentity>(raw),
        StoredKind::SharedCluster => typed::<u128>(raw),
        StoredKind::SharedIncarnation => typed::<Option<u128>>(raw),
        StoredKind::StreamRecord => {
            let (&len, rest) = raw.split_first().ok_or("empty stream record")?;
            let sub = rest.get(..usize::from(len)).ok_or("short stream sub-key")?;
            let value = rest.get(usize::from(len)..).unwrap_or(&[]);
            match crate::cmd::stream_record_ok(sub, value) {
                true => Ok(()),
                false => Err("corrupt stream record".to_string()),
            }
        }
    }
}

/// Well-formed stream records, as [`StoredKind::StreamRecord`] frames them
/// (fuzz seeds).
pub fn stream_record_seeds() -> Vec<Vec<u8>> {
    crate::cmd::stream_record_seeds()
        .into_iter()
        .map(|(sub, value)| {
            let mut out = vec![sub.len() as u8];
            out.extend_from_slice(&sub);
            out.extend_from_slice(&value);
            out
        })
        .collect()
}

/// What FUNCTION RESTORE decodes from a client's
/// payload before any Lua runs: the footer, then opcode-tagged RDB strings.
pub fn rdb_payload(payload: &[u8]) -> Result<Vec<Vec<u8>>, crate::rdb::RdbError> {
    let body = crate::rdb::open(payload)?;
    let mut reader = crate::rdb::Reader::new(body);
    let mut out = Vec::new();
    while !reader.is_empty() {
        reader.byte()?;
        out.push(reader.string()?);
    }
    Ok(out)
}

/// What the HyperLogLog commands read of a string value, which a client
/// may have SET to any bytes starting with `HYLL`: the value checked,
/// counted, merged into registers, described (PFDEBUG DECODE), turned
/// dense, and `elements` elements added under a sparse limit of
/// `sparse_max_bytes`. Answers the count after the adds.
pub fn hll_value(
    value: &[u8],
    sparse_max_bytes: u64,
    elements: u8,
) -> Result<u64, crate::hll::HllError> {
    use crate::hll;
    hll::encoding(value)?;
    let _ = hll::count(value);
    let mut registers = Box::new([0u8; hll::REGISTERS]);
    let _ = hll::merge_into(&mut registers, value);
    let _ = hll::decode_sparse(value);
    let _ = hll::to_dense(&mut value.to_vec());
    let mut edit = hll::Edit::new(value.to_vec());
    for i in 0..elements {
        edit.add(&[i], sparse_max_bytes)?;
    }
    hll::count(edit.bytes())
}

/// What RESTORE decodes from a client's payload: the footer, then one RDB
/// object of any encoding Redis 7.0 writes, nested blobs included.
pub fn dump_payload(payload: &[u8]) -> Result<crate::rdb::value::Value, crate::rdb::RdbError> {
    crate::rdb::value::decode_payload(payload)
}
