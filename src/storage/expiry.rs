//! The active expiry sweep: walks the meta column family a slice at a time
//! and deletes keys whose deadline passed, so a key that is never read
//! again still leaves the disk.

use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::{Meta, Result, Storage, Touched};

/// Where the sweep resumes; empty = from the start of the keyspace.
#[derive(Debug, Default, Clone)]
pub struct SweepCursor {
    /// The key the next step starts at (empty: the beginning).
    next: Vec<u8>,
    /// A key with an expiry was seen in this pass over the keyspace.
    volatile_now: bool,
    /// … in the last complete pass.
    volatile_before: bool,
}

impl SweepCursor {
    /// Whether the keyspace held keys with an expiry when last looked at.
    pub fn saw_volatile_keys(&self) -> bool {
        self.volatile_now || self.volatile_before
    }
}

impl Storage {
    /// Examine up to `budget` keys from `cursor`, deleting the expired ones.
    /// Returns the (database, key) pairs deleted. Takes the command lock
    /// exclusively; `on_deleted` runs under it (to wake WATCHers).
    pub fn sweep_expired(
        &self,
        cursor: &mut SweepCursor,
        budget: usize,
        now_ms: u64,
        on_deleted: impl FnOnce(&Touched),
    ) -> Result<usize> {
        let _guard = self.lock().write();
        let expired = self.collect_expired(cursor, budget, now_ms)?;
        self.remove_expired(expired, now_ms, on_deleted)
    }

    /// Delete those of `keys` (logical database, key) a lookup found
    /// expired and that still are, as Redis's lazy expiry deletes a key its
    /// lookup finds expired. Takes the command lock exclusively.
    pub fn delete_expired_keys(
        &self,
        keys: Vec<(u8, Vec<u8>)>,
        now_ms: u64,
        on_deleted: impl FnOnce(&Touched),
    ) -> Result<usize> {
        let _guard = self.lock().write();
        self.remove_expired(keys, now_ms, on_deleted)
    }

    /// Delete the keys whose records have expired by `now_ms`, with the
    /// lock held; `on_deleted` hears of those deleted.
    fn remove_expired(
        &self,
        mut keys: Vec<(u8, Vec<u8>)>,
        now_ms: u64,
        on_deleted: impl FnOnce(&Touched),
    ) -> Result<usize> {
        keys.sort_unstable();
        keys.dedup();
        let cf = self.meta_cf();
        let map = self.db_map();
        let mut batch = WriteBatch::default();
        let mut counts = std::collections::BTreeMap::new();
        let mut deleted = Vec::with_capacity(keys.len());
        for (db, key) in keys {
            let space = map.physical(db);
            let mk = super::meta_key(space, &key);
            let still = match self.db.get_pinned_cf(cf, &mk)? {
                Some(raw) => matches!(Meta::peek(&raw), Some((_, Some(at))) if at <= now_ms),
                None => false,
            };
            if !still {
                continue;
            }
            batch.delete_cf(cf, mk);
            let count = counts.entry(space).or_insert_with(|| self.key_count(space));
            *count = count.step(Some(true), None);
            deleted.push((db, key));
        }
        if deleted.is_empty() {
            return Ok(0);
        }
        let counts: Vec<_> = counts.into_iter().collect();
        self.write(batch)?;
        self.publish_counts(&counts);
        let touched = Touched {
            keys: deleted,
            flushed: super::Flushed::NOTHING,
            swapped: super::Flushed::NOTHING,
        };
        on_deleted(&touched);
        Ok(touched.keys.len())
    }

    /// Examine up to `budget` keys from `cursor` and list the expired ones
    /// as (logical database, key), deleting nothing: under Raft the leader
    /// proposes their deletion through the log instead.
    pub fn collect_expired(
        &self,
        cursor: &mut SweepCursor,
        budget: usize,
        now_ms: u64,
    ) -> Result<Vec<(u8, Vec<u8>)>> {
        let cf = self.meta_cf();
        let map = self.db_map();
        let mut expired = Vec::new();
        let mut next = None;
        let iter = self
            .db
            .iterator_cf(cf, IteratorMode::From(&cursor.next, Direction::Forward));
        for (examined, item) in iter.enumerate() {
            let (k, v) = item?;
            if examined == budget {
                next = Some(k.to_vec());
                break;
            }
            if let Some((_, Some(at))) = Meta::peek(&v) {
                cursor.volatile_now = true;
                if at <= now_ms {
                    if let Some((db, key)) = k.split_first() {
                        expired.push((map.logical(*db), key.to_vec()));
                    }
                }
            }
        }
        match next {
            Some(next) => cursor.next = next,
            None => {
                // The pass is complete: start the next one.
                cursor.next = Vec::new();
                cursor.volatile_before = std::mem::take(&mut cursor.volatile_now);
            }
        }
        Ok(expired)
    }
}
