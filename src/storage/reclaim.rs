//! Background reclamation of collection elements.
//!
//! Deleting or overwriting a collection only rewrites its meta record; its
//! elements stay under the old version. RocksDB's compaction filter drops
//! an element when its key's meta record is gone, is no longer a
//! collection, or carries another version — so the request path never
//! scans a collection to delete it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::RwLock;
use rocksdb::compaction_filter::Decision;
use rocksdb::{Options, DB};

use super::{meta_key, split_data_key, Cf, Meta, MetaBody};

/// A weak path from the compaction filter (owned by RocksDB's options) to
/// the database. Compactions hold the read side while they look at a meta
/// record; closing takes the write side, so the database is never dropped
/// from inside a compaction thread.
#[derive(Clone, Default)]
pub(super) struct ReclaimHandle(Arc<Shared>);

#[derive(Default)]
pub(super) struct Shared {
    db: RwLock<Option<Weak<DB>>>,
    /// Readers that need a snapshot's elements kept (see
    /// `Storage::with_stable_snapshot`): while non-zero, nothing is dropped.
    paused: AtomicUsize,
}

/// Keeps the filter paused until dropped.
pub(super) struct Pause(Arc<Shared>);

impl Drop for Pause {
    fn drop(&mut self) {
        self.0.paused.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ReclaimHandle {
    pub(super) fn install(&self, cf_opts: &mut Options) {
        let handle = self.clone();
        cf_opts.set_compaction_filter(
            "kiwi-stale-versions",
            move |_level: u32, key: &[u8], _value: &[u8]| handle.decide(key),
        );
    }

    pub(super) fn attach(&self, db: &Arc<DB>) {
        *self.0.db.write() = Some(Arc::downgrade(db));
    }

    pub(super) fn detach(&self) {
        *self.0.db.write() = None;
    }

    /// Stop dropping elements until the returned guard is dropped. A
    /// decision taken before the pause is still right afterwards: versions
    /// are never reused, so an element stale once stays stale.
    pub(super) fn pause(&self) -> Pause {
        self.0.paused.fetch_add(1, Ordering::AcqRel);
        // Wait out decisions in flight: they may have looked at the counter
        // before it moved, and must be done before the caller's snapshot.
        drop(self.0.db.write());
        Pause(self.0.clone())
    }

    fn decide(&self, key: &[u8]) -> Decision {
        let guard = self.0.db.read();
        if self.0.paused.load(Ordering::Acquire) > 0 {
            return Decision::Keep;
        }
        let Some(db) = guard.as_ref().and_then(Weak::upgrade) else {
            return Decision::Keep;
        };
        let Some((db_index, user_key, version, _)) = split_data_key(key) else {
            return Decision::Keep;
        };
        let Some(meta_cf) = db.cf_handle(Cf::Meta.name()) else {
            return Decision::Keep;
        };
        let decision = match db.get_pinned_cf(meta_cf, meta_key(db_index, user_key)) {
            Ok(None) => Decision::Remove,
            Ok(Some(raw)) => match Meta::decode(&raw) {
                Ok(Meta {
                    body: MetaBody::Collection(c),
                    ..
                }) if c.version == version => Decision::Keep,
                Ok(_) => Decision::Remove,
                // Unreadable meta: keep the data rather than guess.
                Err(_) => Decision::Keep,
            },
            Err(_) => Decision::Keep,
        };
        drop(db);
        decision
    }
}
