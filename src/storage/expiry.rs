//! The active expiry sweep: takes the keys whose deadline passed from
//! the expiry index (`deadlines.rs`) and deletes them, so a key that is
//! never read again still leaves the disk; and lazy expiry, which deletes
//! the keys a command's lookups found expired.

use rocksdb::WriteBatch;

use super::deadlines::{self, Due};
use super::locks::LockRequest;
use super::{Result, Storage, Touched};

/// A key in a logical database.
type DbKey = (u8, Vec<u8>);

/// What the sweep learnt of the keyspace on its last step.
#[derive(Debug, Default, Clone)]
pub struct SweepCursor {
    /// Some key had a deadline.
    volatile: bool,
}

impl SweepCursor {
    /// Whether the keyspace held keys with an expiry when last looked at.
    pub fn saw_volatile_keys(&self) -> bool {
        self.volatile
    }
}

impl Storage {
    /// Delete up to `budget` of the keys whose deadline passed by
    /// `now_ms`, each under its own key lock. Returns how many were
    /// deleted; `on_deleted` hears of them, under the locks (to wake
    /// WATCHers).
    pub fn sweep_expired(
        &self,
        cursor: &mut SweepCursor,
        budget: usize,
        now_ms: u64,
        on_deleted: impl FnOnce(&Touched),
    ) -> Result<usize> {
        let due = self.due_noting(cursor, budget, now_ms)?;
        if due.is_empty() {
            return Ok(0);
        }
        let _held = self
            .locks()
            .take(LockRequest::writing(due.iter().map(|d| &d.key[..])));
        let (keys, stale) = self.sort_due(due)?;
        self.delete_entries(stale)?;
        self.remove_expired(keys, now_ms, on_deleted)
    }

    /// Delete those of `keys` (logical database, key) a lookup found
    /// expired and that still are, as Redis's lazy expiry deletes a key its
    /// lookup finds expired. Takes those keys' locks exclusively.
    pub fn delete_expired_keys(
        &self,
        keys: Vec<(u8, Vec<u8>)>,
        now_ms: u64,
        on_deleted: impl FnOnce(&Touched),
    ) -> Result<usize> {
        let _held = self
            .locks()
            .take(LockRequest::writing(keys.iter().map(|(_, k)| &k[..])));
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
            let deadline = match self.db.get_pinned_cf(cf, &mk)? {
                Some(raw) => deadlines::deadline_of(&raw),
                None => None,
            };
            let Some(at) = deadline.filter(|at| *at <= now_ms) else {
                continue;
            };
            batch.delete_cf(self.expiry_cf(), deadlines::entry(&mk, at));
            batch.delete_cf(cf, mk);
            counts
                .entry(space)
                .or_insert_with(super::counts::CountChange::default)
                .step(Some(true), None);
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

    /// List up to `budget` keys whose deadline passed by `now_ms` as
    /// (logical database, key), deleting nothing: under Raft the leader
    /// proposes their deletion through the log instead.
    pub fn collect_expired(
        &self,
        cursor: &mut SweepCursor,
        budget: usize,
        now_ms: u64,
    ) -> Result<Vec<(u8, Vec<u8>)>> {
        let due = self.due_noting(cursor, budget, now_ms)?;
        let (expired, stale) = self.sort_due(due)?;
        self.drop_stale_entries(stale)?;
        Ok(expired)
    }

    /// [`Storage::due`], noting in `cursor` whether any key has a deadline.
    fn due_noting(&self, cursor: &mut SweepCursor, budget: usize, now_ms: u64) -> Result<Vec<Due>> {
        let due = self.due(budget, now_ms)?;
        cursor.volatile = !due.is_empty() || self.has_deadlines()?;
        Ok(due)
    }

    /// The listed keys whose record still has the listed deadline, as
    /// (logical database, key); and the entries that no longer match
    /// (the key changed since it was listed, or an entry out of step).
    fn sort_due(&self, due: Vec<Due>) -> Result<(Vec<DbKey>, Vec<Due>)> {
        let map = self.db_map();
        let (mut expired, mut stale) = (Vec::with_capacity(due.len()), Vec::new());
        for d in due {
            match self.db.get_pinned_cf(self.meta_cf(), d.meta_key())? {
                Some(raw) if deadlines::deadline_of(&raw) == Some(d.deadline) => {
                    expired.push((map.logical(d.space), d.key));
                }
                _ => stale.push(d),
            }
        }
        Ok((expired, stale))
    }

    /// Delete index entries that no longer match their key's record, as
    /// found again under each key's lock (so a commit setting that deadline
    /// again meanwhile is not undone). The index is this node's own: no log
    /// entry is needed.
    fn drop_stale_entries(&self, stale: Vec<Due>) -> Result<()> {
        if stale.is_empty() {
            return Ok(());
        }
        let _held = self
            .locks()
            .take(LockRequest::writing(stale.iter().map(|d| &d.key[..])));
        let (_, still_stale) = self.sort_due(stale)?;
        self.delete_entries(still_stale)
    }

    /// Delete these index entries (found stale with the keys' locks held).
    fn delete_entries(&self, stale: Vec<Due>) -> Result<()> {
        if stale.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        for d in stale {
            batch.delete_cf(self.expiry_cf(), d.entry());
        }
        self.write(batch)
    }
}
