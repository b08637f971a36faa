//! Key lookups of read commands and the keyspace statistics they feed.
//!
//! Redis counts every lookup a read command makes (`lookupKeyRead`) in
//! INFO's `keyspace_hits` / `keyspace_misses`, before it checks the type:
//! a key of another type is a hit, then WRONGTYPE. Writes count nothing.

use super::{Call, CmdError, CmdResult, Collection};
use crate::storage::KeyType;

/// Count a read lookup of `key` in INFO's `keyspace_hits` /
/// `keyspace_misses`; a miss raises the `keymiss` keyspace event.
pub(super) fn count_lookup(call: &Call<'_, '_>, hit: bool, key: &[u8]) {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = &call.engine.stats;
    if hit {
        stats.keyspace_hits.fetch_add(1, Relaxed);
    } else {
        stats.keyspace_misses.fetch_add(1, Relaxed);
        call.ctx
            .notify(crate::storage::events::class::KEY_MISS, "keymiss", key);
    }
}

impl Call<'_, '_> {
    /// The live collection of type `kind` at `key` for a command that
    /// reads: [`Call::collection`], counted as Redis's lookupKeyRead counts
    /// it (a key of another type is a hit, then WRONGTYPE; a storage error
    /// is not a lookup).
    pub fn read_collection(&self, key: &[u8], kind: KeyType) -> CmdResult<Option<Collection>> {
        let found = self.collection(key, kind);
        match &found {
            Ok(Some(_)) | Err(CmdError::WrongType) => count_lookup(self, true, key),
            Ok(None) => count_lookup(self, false, key),
            Err(_) => {}
        }
        found
    }
}
