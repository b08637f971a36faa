#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! The expiry index: every key that has a deadline, in deadline order
//! (`space ‖ deadline ‖ key` → empty, in the `expiry` column family), so
//! the active expiry finds the keys that are due without walking the
//! keyspace (with 10 million keys, a walk of 5,000 keys a second took half
//! an hour to reach one).
//!
//! Exact, not a list of hints: a commit that gives a key a deadline,
//! changes it or removes the key writes the entries in the same batch
//! (`Ctx::commit` compares each written meta record with the committed one
//! anyway, for the key counts); FLUSHDB and FLUSHALL range-delete a
//! keyspace's entries with its keys. It is derived data and never
//! replicated: every node keeps its own through its own commits and
//! applies; an installed Raft snapshot, and a directory of disk format 1,
//! rebuild it with one walk over the meta records.

use rocksdb::{ColumnFamily, IteratorMode, ReadOptions, WriteBatch, DB};

use super::{Meta, Result, Storage, StorageError, DATABASES};

/// The column family's name.
pub(crate) const FAMILY: &str = "expiry";

/// In Raft's state family while the index may not match the keyspace: a
/// snapshot was installed and the index not yet rebuilt. The next open
/// rebuilds it if a crash came in between.
const STALE: &[u8] = b"expiry_index_stale";

/// Entries written per batch when the index is rebuilt.
const REBUILD_BATCH: usize = 10_000;

/// The deadline a raw meta record carries (`None`: none, or unreadable).
pub(crate) fn deadline_of(raw: &[u8]) -> Option<u64> {
    Meta::peek(raw).and_then(|(_, at)| at)
}

/// The entry of the key whose meta key is `meta_key` (`space ‖ key`).
pub(crate) fn entry(meta_key: &[u8], deadline: u64) -> Vec<u8> {
    let (space, key) = meta_key.split_first().unwrap_or((&0, &[]));
    let mut out = Vec::with_capacity(meta_key.len() + 8);
    out.push(*space);
    out.extend_from_slice(&deadline.to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// A key whose deadline has passed, as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Due {
    /// The stored keyspace.
    pub space: u8,
    pub deadline: u64,
    pub key: Vec<u8>,
}

impl Due {
    fn parse(entry: &[u8]) -> Option<Due> {
        let (&space, rest) = entry.split_first()?;
        let (at, key) = rest.split_at_checked(8)?;
        Some(Due {
            space,
            deadline: u64::from_be_bytes(at.try_into().ok()?),
            key: key.to_vec(),
        })
    }

    pub(crate) fn meta_key(&self) -> Vec<u8> {
        super::meta_key(self.space, &self.key)
    }

    pub(crate) fn entry(&self) -> Vec<u8> {
        entry(&self.meta_key(), self.deadline)
    }
}

impl Storage {
    pub(crate) fn expiry_cf(&self) -> &ColumnFamily {
        // Created at open with the others, so the lookup cannot fail.
        self.db
            .cf_handle(FAMILY)
            .unwrap_or_else(|| unreachable!("column family {FAMILY} exists"))
    }

    /// Up to `budget` keys whose deadline is at or before `now_ms`, the
    /// earliest of each keyspace first.
    pub(crate) fn due(&self, budget: usize, now_ms: u64) -> Result<Vec<Due>> {
        let mut due = Vec::new();
        for space in 0..DATABASES {
            if due.len() >= budget {
                break;
            }
            let mut opts = ReadOptions::default();
            opts.set_iterate_upper_bound(entry(&[space], now_ms.saturating_add(1)));
            let mut iter = self.db.raw_iterator_cf_opt(self.expiry_cf(), opts);
            iter.seek([space]);
            while let Some(raw) = iter.key() {
                if due.len() >= budget {
                    break;
                }
                match Due::parse(raw) {
                    Some(d) => due.push(d),
                    None => return Err(StorageError::Corrupt("expiry index entry".into())),
                }
                iter.next();
            }
            iter.status()?;
        }
        Ok(due)
    }

    /// Whether any key has a deadline.
    pub fn has_deadlines(&self) -> Result<bool> {
        let mut iter = self.db.raw_iterator_cf(self.expiry_cf());
        iter.seek_to_first();
        iter.status()?;
        Ok(iter.valid())
    }

    /// Where the index and the meta records disagree: each entry without a
    /// key of that deadline, each deadline without its entry (tests and
    /// checks; walks both).
    pub fn expiry_index_problems(&self) -> Result<Vec<String>> {
        let mut expected = std::collections::BTreeSet::new();
        for item in self.db.iterator_cf(self.meta_cf(), IteratorMode::Start) {
            let (key, value) = item?;
            if let Some(at) = deadline_of(&value) {
                expected.insert(entry(&key, at));
            }
        }
        Ok(differences(
            &self.db,
            self.expiry_cf(),
            ReadOptions::default(),
            expected,
        ))
    }

    /// Note in `batch`, which replaces the keyspace, that the index no
    /// longer matches it until [`Storage::rebuild_expiry_index`].
    pub(crate) fn mark_expiry_index_stale(&self, batch: &mut WriteBatch) {
        batch.put_cf(self.raft_cf(super::RaftCf::State), STALE, []);
    }

    /// Replace the index by one built from the meta records (after a Raft
    /// snapshot replaced them).
    pub(crate) fn rebuild_expiry_index(&self) -> Result<()> {
        rebuild(&self.db).map_err(StorageError::Corrupt)?;
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.raft_cf(super::RaftCf::State), STALE);
        self.write_batch(batch, true)
    }

    /// At open: finish a rebuild a crash interrupted.
    pub(crate) fn rebuild_expiry_index_if_stale(&self) -> Result<()> {
        let state = self.raft_cf(super::RaftCf::State);
        match self.db.get_pinned_cf(state, STALE)? {
            Some(_) => self.rebuild_expiry_index(),
            None => Ok(()),
        }
    }
}

/// How the index in `cf` differs from the `expected` entries (those the
/// meta records' deadlines call for): one text per difference, a read
/// error among them, for tests and `--check-dir`.
pub(crate) fn differences(
    db: &DB,
    cf: &ColumnFamily,
    opts: ReadOptions,
    mut expected: std::collections::BTreeSet<Vec<u8>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut iter = db.raw_iterator_cf_opt(cf, opts);
    iter.seek_to_first();
    while let Some(entry) = iter.key() {
        if !expected.remove(entry) {
            problems.push(format!(
                "entry \"{}\" has no key of that deadline",
                entry.escape_ascii()
            ));
        }
        iter.next();
    }
    if let Err(e) = iter.status() {
        problems.push(format!("the walk stopped: {e}"));
    }
    for missing in expected {
        problems.push(format!(
            "no entry \"{}\" for a key's deadline",
            missing.escape_ascii()
        ));
    }
    problems
}

/// Build the index from the meta records, replacing what it held: the
/// upgrade from disk format 1, and after a snapshot is installed. Safe to
/// run again if interrupted.
pub(crate) fn rebuild(db: &DB) -> Result<(), String> {
    let failed = |e: rocksdb::Error| format!("cannot build the expiry index: {e}");
    let (Some(index), Some(meta)) = (db.cf_handle(FAMILY), db.cf_handle(super::Cf::Meta.name()))
    else {
        return Err("cannot build the expiry index: a column family is missing".into());
    };
    let mut batch = WriteBatch::default();
    batch.delete_range_cf(index, [0u8], [u8::MAX]);
    let mut pending = 0;
    for item in db.iterator_cf(meta, IteratorMode::Start) {
        let (key, value) = item.map_err(failed)?;
        if let Some(at) = deadline_of(&value) {
            batch.put_cf(index, entry(&key, at), []);
            pending += 1;
        }
        if pending == REBUILD_BATCH {
            db.write(std::mem::take(&mut batch)).map_err(failed)?;
            pending = 0;
        }
    }
    db.write(batch).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_sort_by_keyspace_then_deadline_and_parse_back() {
        let a = entry(&super::super::meta_key(1, b"zzz"), 5);
        let b = entry(&super::super::meta_key(1, b"aaa"), 6);
        let c = entry(&super::super::meta_key(2, b"aaa"), 1);
        assert!(a < b && b < c);
        assert_eq!(
            Due::parse(&b),
            Some(Due {
                space: 1,
                deadline: 6,
                key: b"aaa".to_vec()
            })
        );
        assert_eq!(Due::parse(b.get(..5).unwrap_or_default()), None);
        let due = Due::parse(&c).unwrap_or(Due {
            space: 0,
            deadline: 0,
            key: Vec::new(),
        });
        assert_eq!(due.entry(), c);
    }
}
