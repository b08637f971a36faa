#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! How many keys each stored keyspace holds, and how many of them carry an
//! expiry: DBSIZE and INFO keyspace answer from these in constant time.
//!
//! Like Redis's `dictSize`, a count includes keys whose deadline passed
//! but that the expiry sweep has not deleted yet. Each commit adjusts the
//! counts in memory by comparing its meta records with the committed ones
//! (most of which the command read anyway). A clean close writes them
//! (`n ‖ space` in the replicated family: keys, then keys with an expiry,
//! both big-endian `u64`) and the next open takes and deletes them; a
//! directory without them (after a crash, a copied checkpoint, an older
//! Kiwi) or a Raft snapshot just installed is counted by one walk over its
//! keys. Writing them with every batch cost a quarter of SET's throughput.

use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::WriteBatch;

use super::{RaftCf, Result, Storage, StorageError, DATABASES};

const N: usize = DATABASES as usize;

/// The record of keyspace `space`.
pub(crate) fn record(space: u8) -> [u8; 2] {
    [b'n', space]
}

/// Whether a replicated-family key is a count record.
pub(super) fn is_record(key: &[u8]) -> bool {
    matches!(key, [b'n', space] if *space < DATABASES)
}

/// Keys and keys with an expiry in one keyspace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyCount {
    pub keys: u64,
    pub volatile: u64,
}

impl KeyCount {
    fn encode(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.keys.to_be_bytes());
        out.extend_from_slice(&self.volatile.to_be_bytes());
        out
    }

    pub(crate) fn decode(raw: &[u8]) -> Result<KeyCount> {
        let corrupt = || StorageError::Corrupt("key count record".into());
        let (keys, volatile) = raw.split_at_checked(8).ok_or_else(corrupt)?;
        Ok(KeyCount {
            keys: u64::from_be_bytes(keys.try_into().map_err(|_| corrupt())?),
            volatile: u64::from_be_bytes(volatile.try_into().map_err(|_| corrupt())?),
        })
    }

    /// This count after a key went from `old` to `new` (each `None` when
    /// absent, else whether it has an expiry).
    pub(crate) fn step(self, old: Option<bool>, new: Option<bool>) -> KeyCount {
        let keys = i64::from(new.is_some()) - i64::from(old.is_some());
        let volatile = i64::from(new == Some(true)) - i64::from(old == Some(true));
        KeyCount {
            keys: self.keys.saturating_add_signed(keys),
            volatile: self.volatile.saturating_add_signed(volatile),
        }
    }
}

/// How a commit changes one keyspace's count: a difference, not a new
/// total, because writers of different keys commit side by side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CountChange {
    /// The keyspace was emptied first (FLUSHDB, FLUSHALL).
    pub emptied: bool,
    pub keys: i64,
    pub volatile: i64,
}

impl CountChange {
    /// Note a key going from `old` to `new` (as [`KeyCount::step`]).
    pub(crate) fn step(&mut self, old: Option<bool>, new: Option<bool>) {
        self.keys += i64::from(new.is_some()) - i64::from(old.is_some());
        self.volatile += i64::from(new == Some(true)) - i64::from(old == Some(true));
    }

    /// `count` after this change; never below zero, whatever a damaged
    /// record said.
    pub(crate) fn applied_to(self, count: KeyCount) -> KeyCount {
        let base = if self.emptied {
            KeyCount::default()
        } else {
            count
        };
        KeyCount {
            keys: base.keys.saturating_add_signed(self.keys),
            volatile: base.volatile.saturating_add_signed(self.volatile),
        }
    }
}

/// The committed counts, read without the storage lock by DBSIZE/INFO.
#[derive(Debug, Default)]
pub(super) struct KeyCounts {
    keys: [AtomicU64; N],
    volatile: [AtomicU64; N],
}

impl KeyCounts {
    pub(super) fn get(&self, space: u8) -> KeyCount {
        let i = usize::from(space);
        match (self.keys.get(i), self.volatile.get(i)) {
            (Some(k), Some(v)) => KeyCount {
                keys: k.load(Ordering::Acquire),
                volatile: v.load(Ordering::Acquire),
            },
            _ => KeyCount::default(),
        }
    }

    /// Apply a commit's change. Each number moves atomically, so commits
    /// of different keys never lose each other's steps; an emptying
    /// commit holds the whole store, so nothing runs beside it.
    pub(super) fn apply(&self, space: u8, change: CountChange) {
        let i = usize::from(space);
        let (Some(k), Some(v)) = (self.keys.get(i), self.volatile.get(i)) else {
            return;
        };
        let step = |atomic: &AtomicU64, delta: i64| {
            let _ = atomic.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                let base = if change.emptied { 0 } else { n };
                Some(base.saturating_add_signed(delta))
            });
        };
        step(k, change.keys);
        step(v, change.volatile);
    }

    pub(super) fn set(&self, space: u8, count: KeyCount) {
        let i = usize::from(space);
        if let (Some(k), Some(v)) = (self.keys.get(i), self.volatile.get(i)) {
            k.store(count.keys, Ordering::Release);
            v.store(count.volatile, Ordering::Release);
        }
    }
}

/// Whether a stored meta record has an expiry (`None`: unreadable, counted
/// as a key without one).
pub(super) fn volatile(raw: &[u8]) -> bool {
    super::deadlines::deadline_of(raw).is_some()
}

impl Storage {
    /// Keys in stored keyspace `space`, as committed.
    pub fn key_count(&self, space: u8) -> KeyCount {
        self.counts.get(space)
    }

    /// Apply a commit's changes to the counts, once its batch is written.
    pub(super) fn publish_counts(&self, changes: &[(u8, CountChange)]) {
        for (space, change) in changes {
            self.counts.apply(*space, *change);
        }
    }

    /// Replace the counts of keyspaces (counted or loaded at open).
    fn set_counts(&self, counts: &[(u8, KeyCount)]) {
        for (space, count) in counts {
            self.counts.set(*space, *count);
        }
    }

    /// Take the counts a clean close left (deleting them: a crash from now
    /// on leaves none), else count the keyspaces. At open, and after a Raft
    /// snapshot replaced the keyspace.
    pub(crate) fn reload_counts(&self) -> Result<()> {
        let cf = self.raft_cf(RaftCf::Replicated);
        let mut loaded = Vec::with_capacity(N);
        for space in 0..DATABASES {
            match self.db.get_pinned_cf(cf, record(space))? {
                Some(raw) => loaded.push((space, KeyCount::decode(&raw)?)),
                None => break,
            }
        }
        let mut batch = WriteBatch::default();
        for space in 0..DATABASES {
            batch.delete_cf(cf, record(space));
        }
        self.write_batch(batch, true)?;
        if loaded.len() != N {
            loaded = self.count_by_scan()?;
        }
        self.set_counts(&loaded);
        Ok(())
    }

    /// Leave the counts for the next open (a clean close).
    pub(super) fn save_counts(&self) -> Result<()> {
        let cf = self.raft_cf(RaftCf::Replicated);
        let mut batch = WriteBatch::default();
        for space in 0..DATABASES {
            batch.put_cf(cf, record(space), self.counts.get(space).encode());
        }
        self.write_batch(batch, true)
    }

    /// Count every keyspace by walking the meta family.
    fn count_by_scan(&self) -> Result<Vec<(u8, KeyCount)>> {
        let mut counts = [KeyCount::default(); N];
        let mut iter = self.db.raw_iterator_cf(self.meta_cf());
        iter.seek_to_first();
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if let Some(count) = key.first().and_then(|s| counts.get_mut(usize::from(*s))) {
                *count = count.step(None, Some(volatile(value)));
            }
            iter.next();
        }
        iter.status()?;
        Ok((0..DATABASES).zip(counts).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_existence_and_expiry() {
        let c = KeyCount::default();
        let c = c.step(None, Some(false)).step(None, Some(true));
        assert_eq!(
            c,
            KeyCount {
                keys: 2,
                volatile: 1
            }
        );
        let c = c.step(Some(true), Some(false));
        assert_eq!(
            c,
            KeyCount {
                keys: 2,
                volatile: 0
            }
        );
        let c = c.step(Some(false), None).step(Some(false), Some(false));
        assert_eq!(
            c,
            KeyCount {
                keys: 1,
                volatile: 0
            }
        );
        // Never below zero, whatever a damaged record said.
        assert_eq!(
            KeyCount::default().step(Some(true), None),
            KeyCount::default()
        );
    }

    #[test]
    fn changes_add_up_and_an_emptying_one_starts_from_zero() {
        let counts = KeyCounts::default();
        counts.set(
            3,
            KeyCount {
                keys: 10,
                volatile: 2,
            },
        );
        let mut change = CountChange::default();
        change.step(None, Some(true));
        change.step(Some(false), None);
        change.step(Some(false), Some(true));
        counts.apply(3, change);
        counts.apply(3, change);
        assert_eq!(
            counts.get(3),
            KeyCount {
                keys: 10,
                volatile: 6
            }
        );
        let mut emptied = CountChange {
            emptied: true,
            ..CountChange::default()
        };
        emptied.step(None, Some(false));
        counts.apply(3, emptied);
        assert_eq!(
            counts.get(3),
            KeyCount {
                keys: 1,
                volatile: 0
            }
        );
        // Never below zero.
        let mut gone = CountChange::default();
        gone.step(Some(true), None);
        gone.step(Some(true), None);
        assert_eq!(gone.applied_to(KeyCount::default()), KeyCount::default());
    }

    #[test]
    fn records_round_trip_and_refuse_damage() {
        let c = KeyCount {
            keys: 7,
            volatile: 3,
        };
        assert_eq!(KeyCount::decode(&c.encode()).ok(), Some(c));
        assert!(KeyCount::decode(&[0; 15]).is_err());
        assert!(is_record(&record(15)));
        assert!(!is_record(&[b'n', 16]));
        assert!(!is_record(b"n"));
    }
}
