#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Replicated state beyond the keyspace, in the `raft_replicated` family:
//! written by applied entries in the same batch as their data and carried
//! in snapshots, so every node holds the same.
//!
//! - `k ‖ db ‖ key` → the log index of the last entry that wrote the key
//!   (`f ‖ db`: its last FLUSHDB, `a`: the last FLUSHALL, `s ‖ db`: the
//!   last SWAPDB that exchanged it; databases are logical numbers).
//! - `dbmap` → which stored keyspace each database names (see `dbmap.rs`).
//! - `n ‖ space` → how many keys the keyspace holds (see `counts.rs`). A transaction's
//!   WATCH is checked against these at apply, on every node alike.
//! - `clock` → the replicated clock: the latest entry time applied. Apply
//!   never runs an entry at an earlier time, so time never goes backwards
//!   when a leader with a slower clock takes over.
//! - `l ‖ name` → a FUNCTION library's code (standalone too: libraries are
//!   part of the data, as in Redis's RDB). An empty value is a deleted one.

use super::{RaftCf, Result, Storage, StorageError, Touched};

const CLOCK: &[u8] = b"clock";
const FLUSHALL: &[u8] = b"a";

fn key_record(db: u8, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + key.len());
    out.push(b'k');
    out.push(db);
    out.extend_from_slice(key);
    out
}

fn flushdb_record(db: u8) -> [u8; 2] {
    [b'f', db]
}

fn swapdb_record(db: u8) -> [u8; 2] {
    [b's', db]
}

pub(crate) fn decode_u64(raw: &[u8], what: &str) -> Result<u64> {
    let bytes: [u8; 8] = raw
        .try_into()
        .map_err(|_| StorageError::Corrupt(format!("replicated {what} record")))?;
    Ok(u64::from_be_bytes(bytes))
}

impl Storage {
    fn replicated_u64(&self, record: &[u8], what: &str) -> Result<Option<u64>> {
        let cf = self.raft_cf(RaftCf::Replicated);
        match self.db().get_pinned_cf(cf, record)? {
            Some(raw) => decode_u64(&raw, what).map(Some),
            None => Ok(None),
        }
    }

    /// The log index of the last applied entry that wrote `key` of `db`
    /// (`None`: none did).
    pub(crate) fn last_written(&self, db: u8, key: &[u8]) -> Result<Option<u64>> {
        self.replicated_u64(&key_record(db, key), "write")
    }

    /// The log index of the last applied entry that flushed `db` (FLUSHDB
    /// or FLUSHALL; `None`: none did).
    pub(crate) fn last_flushed(&self, db: u8) -> Result<Option<u64>> {
        let by_db = self.replicated_u64(&flushdb_record(db), "flush")?;
        let by_all = self.replicated_u64(FLUSHALL, "flush")?;
        Ok(by_db.max(by_all))
    }

    /// The log index of the last applied entry whose SWAPDB exchanged `db`
    /// with another database (`None`: none did).
    pub(crate) fn last_swapped(&self, db: u8) -> Result<Option<u64>> {
        self.replicated_u64(&swapdb_record(db), "swap")
    }

    /// The replicated clock: the latest entry time applied (0: none).
    pub(crate) fn replicated_clock(&self) -> Result<u64> {
        Ok(self.replicated_u64(CLOCK, "clock")?.unwrap_or(0))
    }
}

/// Whether a record of this family is one a standalone server writes too
/// (a FUNCTION library, the database map), rather than Raft's alone.
pub(crate) fn standalone_record(key: &[u8]) -> bool {
    key.first() == Some(&b'l') || key == super::dbmap::RECORD || super::counts::is_record(key)
}

fn library_record(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + name.len());
    out.push(b'l');
    out.extend_from_slice(name.as_bytes());
    out
}

impl Storage {
    /// The code of every stored FUNCTION library.
    pub fn function_libraries(&self) -> Result<Vec<Vec<u8>>> {
        let cf = self.raft_cf(RaftCf::Replicated);
        let mut out = Vec::new();
        let iter = self.db().iterator_cf(
            cf,
            rocksdb::IteratorMode::From(b"l", rocksdb::Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            if key.first() != Some(&b'l') {
                break;
            }
            if !value.is_empty() {
                out.push(value.to_vec());
            }
        }
        Ok(out)
    }
}

impl super::Ctx<'_> {
    /// Store a FUNCTION library's code with this context's batch.
    pub fn put_library(&mut self, name: &str, code: &[u8]) {
        self.put_raft(RaftCf::Replicated, &library_record(name), code.to_vec());
    }

    /// Forget a stored library.
    pub fn delete_library(&mut self, name: &str) {
        self.put_raft(RaftCf::Replicated, &library_record(name), Vec::new());
    }
}

/// The records an entry at `index` writes for what it `touched`, and the
/// clock it ran at.
pub(crate) fn entry_records(
    touched: &Touched,
    index: u64,
    clock_ms: u64,
) -> Vec<(RaftCf, Vec<u8>, Vec<u8>)> {
    let stamp = index.to_be_bytes().to_vec();
    let mut out = Vec::with_capacity(touched.keys.len() + 2);
    out.push((
        RaftCf::Replicated,
        CLOCK.to_vec(),
        clock_ms.to_be_bytes().to_vec(),
    ));
    if touched.flushed == super::Flushed::ALL {
        out.push((RaftCf::Replicated, FLUSHALL.to_vec(), stamp.clone()));
    } else {
        for db in touched.flushed.dbs() {
            out.push((
                RaftCf::Replicated,
                flushdb_record(db).to_vec(),
                stamp.clone(),
            ));
        }
    }
    for db in touched.swapped.dbs() {
        out.push((
            RaftCf::Replicated,
            swapdb_record(db).to_vec(),
            stamp.clone(),
        ));
    }
    for (db, key) in &touched.keys {
        out.push((RaftCf::Replicated, key_record(*db, key), stamp.clone()));
    }
    out
}
