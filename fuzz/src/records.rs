//! Every record a data directory holds (keyspace metadata and keys,
//! replicated stamps, the Raft log, vote and state, the directory's
//! identity): corrupt bytes are an error, never a panic, and decoding
//! allocates in proportion to the record.

use kiwi::decoders::{stored, Meta, StoredKind};

use crate::alloc::bounded;
use crate::wire::decode_limit;

/// Check `raw` as a record of `kind`.
pub fn check(kind: StoredKind, raw: &[u8]) {
    let _ = bounded("stored record", decode_limit(raw.len()), || {
        stored(kind, raw)
    });
    if kind == StoredKind::Meta {
        // What decodes re-encodes to a record that decodes the same.
        if let Ok(meta) = Meta::decode(raw) {
            assert_eq!(Meta::decode(&meta.encode()).ok(), Some(meta));
        }
    }
}

/// Fuzz entry: the first byte chooses the kind, the rest is the record.
pub fn fuzz(data: &[u8]) {
    let Some((&kind, raw)) = data.split_first() else {
        return;
    };
    let kinds = StoredKind::ALL;
    if let Some(&kind) = kinds.get(usize::from(kind) % kinds.len()) {
        check(kind, raw);
    }
}

/// The fuzz input for `raw` as a record of `kind`.
pub fn encode_input(kind: StoredKind, raw: &[u8]) -> Vec<u8> {
    let index = StoredKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    let mut out = vec![index as u8];
    out.extend_from_slice(raw);
    out
}
