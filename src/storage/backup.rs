//! SAVE / BGSAVE's backups and MEMORY's figures: a consistent RocksDB
//! checkpoint of the whole database (every column family, Raft's too) in
//! `<dir>/checkpoint`, which `kiwi-server --dir` can start from once copied
//! elsewhere; and what RocksDB holds in memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::checkpoint::Checkpoint;
use rocksdb::DB;

use super::{Cf, Result, Storage, StorageError};

/// Where SAVE puts the checkpoint, inside the data directory.
pub const CHECKPOINT_DIR: &str = "checkpoint";

impl Storage {
    /// The directory the last SAVE / BGSAVE wrote.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.path.join(CHECKPOINT_DIR)
    }

    /// A checkpoint to take now or on another thread (BGSAVE).
    pub fn checkpoint_job(&self) -> CheckpointJob {
        CheckpointJob {
            db: Arc::clone(&self.db),
            dir: self.path.clone(),
        }
    }

    /// BGREWRITEAOF's equivalent: flush the memtables and compact every
    /// family, on whatever thread runs the job.
    pub fn compaction_job(&self) -> CompactionJob {
        CompactionJob {
            db: Arc::clone(&self.db),
        }
    }

    /// RocksDB's estimate of the number of keys (MEMORY STATS).
    pub fn estimated_keys(&self) -> u64 {
        self.db
            .cf_handle(Cf::Meta.name())
            .and_then(|cf| {
                self.db
                    .property_int_value_cf(&cf, "rocksdb.estimate-num-keys")
                    .ok()
                    .flatten()
            })
            .unwrap_or(0)
    }

    /// RocksDB's memory, summed over the column families: memtables, block
    /// cache, table readers; and the compaction debt and key estimate.
    pub fn memory_figures(&self) -> Vec<(&'static str, u64)> {
        let names: Vec<&'static str> = super::family_names().collect();
        let sum = |property: &str| -> u64 {
            names
                .iter()
                .filter_map(|name| self.db.cf_handle(name))
                .filter_map(|cf| self.db.property_int_value_cf(&cf, property).ok().flatten())
                .sum()
        };
        vec![
            ("rocksdb.memtables", sum("rocksdb.cur-size-all-mem-tables")),
            // One cache serves every family: its usage once, not per family.
            ("rocksdb.block-cache", self.memory_usage().0 as u64),
            (
                "rocksdb.table-readers",
                sum("rocksdb.estimate-table-readers-mem"),
            ),
            (
                "rocksdb.pending-compaction",
                sum("rocksdb.estimate-pending-compaction-bytes"),
            ),
            ("rocksdb.live-data", sum("rocksdb.estimate-live-data-size")),
        ]
    }
}

/// A full compaction, free of the storage's lifetime.
pub struct CompactionJob {
    db: Arc<DB>,
}

impl CompactionJob {
    pub fn run(self) {
        for name in super::family_names() {
            if let Some(cf) = self.db.cf_handle(name) {
                if let Err(e) = self.db.flush_cf(&cf) {
                    tracing::warn!(family = name, error = %e, "flush before compaction failed");
                }
                self.db.compact_range_cf(&cf, None::<&[u8]>, None::<&[u8]>);
            }
        }
    }
}

/// What taking a checkpoint needs, free of the storage's lifetime.
pub struct CheckpointJob {
    db: Arc<DB>,
    dir: PathBuf,
}

impl CheckpointJob {
    /// Take the checkpoint: written beside the previous one, then swapped
    /// in, so a crash midway leaves the previous checkpoint whole. Table
    /// files are hard links (no copy); the memtables are flushed first.
    pub fn run(self) -> Result<PathBuf> {
        let dest = self.dir.join(CHECKPOINT_DIR);
        let fresh = self.dir.join(format!("{CHECKPOINT_DIR}.new"));
        let old = self.dir.join(format!("{CHECKPOINT_DIR}.old"));
        for stale in [&fresh, &old] {
            remove_dir(stale)?;
        }
        Checkpoint::new(&self.db)?.create_checkpoint(&fresh)?;
        if dest.exists() {
            std::fs::rename(&dest, &old).map_err(io_error)?;
        }
        std::fs::rename(&fresh, &dest).map_err(io_error)?;
        remove_dir(&old)?;
        Ok(dest)
    }
}

fn remove_dir(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(e)),
        _ => Ok(()),
    }
}

fn io_error(e: std::io::Error) -> StorageError {
    StorageError::Backup(e.to_string())
}
