#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! The on-disk format version of a data directory.
//!
//! One record, `kiwi.format` → the version in ASCII decimal, in RocksDB's
//! default column family: both standalone and Raft directories have that
//! family, and nothing else reads or writes it (the identity checks, FLUSHALL,
//! RENAME, the compaction filter and Raft snapshots never see it), so the
//! record neither makes a directory look like a Raft node's nor is replaced
//! by an installed snapshot. Checkpoints (SAVE) carry it.
//!
//! The version covers everything stored: key and metadata layout
//! (`encoding.rs` and the per-type sub-keys), the replicated records, the
//! Raft log entries, vote and state records (postcard) and the stored
//! snapshot (whose own header also carries `state_machine::FORMAT_VERSION`).
//!
//! Opening a directory:
//! 1. before RocksDB opens it for writing, [`read_before_open`] reads the
//!    record read-only and refuses a directory of a newer format, so a
//!    binary never changes what it does not understand;
//! 2. once open, [`settle`] brings an older directory up to
//!    [`DISK_FORMAT`] one step at a time ([`STEPS`]: the one place a
//!    format change adds its migration) and records the version. A
//!    directory without the record but with Kiwi's data was written before
//!    the record existed: it is format 1.

use std::path::Path;

use rocksdb::{WriteBatch, WriteOptions, DB};

/// The format this binary writes, and the newest it reads.
pub const DISK_FORMAT: u32 = 2;

/// The record's key in the default column family.
pub(crate) const RECORD: &[u8] = b"kiwi.format";

/// The format of directories written before the record existed.
const UNRECORDED: u32 = 1;

/// Upgrades a directory by one format: `STEPS[i]` takes format `i + 1` to
/// `i + 2`. A format change bumps [`DISK_FORMAT`] and appends its step here
/// (the array's length makes the compiler insist on both). The version is
/// recorded after each step, so a step must be one atomic batch or safe to
/// run again after a crash. A change to what Raft nodes exchange (log
/// entries, snapshots) must also let a mixed cluster run during a rolling
/// upgrade, or say it cannot (the snapshot carries its own version).
type Step = fn(&DB) -> Result<(), String>;
const STEPS: [Step; (DISK_FORMAT - 1) as usize] = [
    // 1 → 2: the expiry index (`deadlines.rs`), built from the meta records.
    super::deadlines::rebuild,
];

/// What a directory records before it is opened for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// No database yet: it is created at [`DISK_FORMAT`].
    New,
    /// A database without the record: written before it existed.
    Unrecorded,
    Version(u32),
}

impl Recorded {
    /// The format the directory's data is in (a new one: the current).
    pub(crate) fn version(self) -> u32 {
        match self {
            Recorded::New => DISK_FORMAT,
            Recorded::Unrecorded => UNRECORDED,
            Recorded::Version(v) => v,
        }
    }
}

/// The stored value of the record for `version`.
pub(crate) fn encode(version: u32) -> Vec<u8> {
    version.to_string().into_bytes()
}

/// The version a stored record names (`None`: not a version).
pub(crate) fn decode(raw: &[u8]) -> Option<u32> {
    std::str::from_utf8(raw)
        .ok()?
        .parse()
        .ok()
        .filter(|v| *v >= 1)
}

/// The refusal of a directory written in `found`, newer than this binary reads.
pub(crate) fn newer_message(found: u32) -> String {
    format!(
        "it was written by a newer Kiwi (disk format {found}); this binary reads formats \
         up to {DISK_FORMAT}: upgrade kiwi-server (the directory was not changed)"
    )
}

/// The version `raw` records, refusing one this binary cannot read.
pub(crate) fn accept(raw: Option<&[u8]>) -> Result<Recorded, String> {
    let Some(raw) = raw else {
        return Ok(Recorded::Unrecorded);
    };
    match decode(raw) {
        Some(v) if v > DISK_FORMAT => Err(newer_message(v)),
        Some(v) => Ok(Recorded::Version(v)),
        None => Err(format!(
            "its format record ({}) is damaged: restore the directory from a backup",
            raw.escape_ascii()
        )),
    }
}

/// Read the directory's format without writing anything (RocksDB opened
/// read-only, the default family only), refusing a newer one.
pub(crate) fn read_before_open(path: &Path) -> Result<Recorded, String> {
    if !path.join("CURRENT").exists() {
        return Ok(Recorded::New);
    }
    let db = DB::open_for_read_only(&super::directory::read_only_options(), path, false)
        .map_err(|e| super::directory::explain(e.into_string()))?;
    let raw = db
        .get_pinned(RECORD)
        .map_err(|e| super::directory::explain(e.into_string()))?;
    accept(raw.as_deref())
}

/// Bring the opened directory from `recorded` to [`DISK_FORMAT`] and record it.
pub(crate) fn settle(db: &DB, recorded: Recorded) -> Result<(), String> {
    let mut version = recorded.version();
    // Recorded after each step: a crash mid-upgrade resumes at the next one.
    let mut written = recorded == Recorded::Version(version);
    while version < DISK_FORMAT {
        let step = usize::try_from(version - 1)
            .ok()
            .and_then(|i| STEPS.get(i))
            .ok_or_else(|| format!("no upgrade from disk format {version}"))?;
        tracing::info!(
            from = version,
            to = version + 1,
            "upgrading the data directory"
        );
        step(db)?;
        version += 1;
        write_record(db, version)?;
        written = true;
    }
    match written {
        true => Ok(()),
        false => write_record(db, version),
    }
}

/// Record `version`, durably and without keeping a WAL file alive for it.
fn write_record(db: &DB, version: u32) -> Result<(), String> {
    let mut batch = WriteBatch::default();
    batch.put(RECORD, encode(version));
    let mut sync = WriteOptions::default();
    sync.set_sync(true);
    let failed = |e: rocksdb::Error| format!("cannot record the disk format: {e}");
    db.write_opt(batch, &sync).map_err(failed)?;
    // The default family receives nothing else: left in its memtable, the
    // record would pin every WAL file written from now on.
    db.flush().map_err(failed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_refuse_newer_or_damaged() {
        assert_eq!(decode(&encode(DISK_FORMAT)), Some(DISK_FORMAT));
        assert_eq!(accept(None), Ok(Recorded::Unrecorded));
        assert_eq!(Recorded::Unrecorded.version(), 1);
        assert_eq!(
            accept(Some(&encode(DISK_FORMAT))),
            Ok(Recorded::Version(DISK_FORMAT))
        );
        let newer = accept(Some(&encode(DISK_FORMAT + 1))).unwrap_err();
        assert!(newer.contains(&format!("newer Kiwi (disk format {})", DISK_FORMAT + 1)));
        assert!(newer.contains(&format!(
            "reads formats up to {DISK_FORMAT}: upgrade kiwi-server"
        )));
        for damaged in [&b""[..], b"0", b"x", b"-1", b"1.5"] {
            assert!(accept(Some(damaged)).unwrap_err().contains("damaged"));
        }
    }
}
