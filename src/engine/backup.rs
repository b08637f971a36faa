//! SAVE and BGSAVE: a checkpoint of the database (see
//! `storage/backup.rs`), what LASTSAVE and INFO persistence report about
//! the last one, and the count of changes since.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::Shared;
use crate::storage::{now_ms, CheckpointJob, StorageError};

pub struct Saves {
    /// Unix seconds of the last successful save (the start time before one).
    pub last_save_s: AtomicU64,
    pub in_progress: AtomicBool,
    pub last_ok: AtomicBool,
    /// Seconds the last save took (-1: none yet).
    pub last_duration_s: AtomicI64,
    /// Writes committed since the start, and as of the last save.
    pub dirty: AtomicU64,
    dirty_at_save: AtomicU64,
}

impl Default for Saves {
    fn default() -> Self {
        Saves {
            last_save_s: AtomicU64::new(now_ms() / 1000),
            in_progress: AtomicBool::new(false),
            last_ok: AtomicBool::new(true),
            last_duration_s: AtomicI64::new(-1),
            dirty: AtomicU64::new(0),
            dirty_at_save: AtomicU64::new(0),
        }
    }
}

impl Saves {
    /// Writes since the last save (INFO's rdb_changes_since_last_save).
    pub fn changes_since_save(&self) -> u64 {
        self.dirty
            .load(Relaxed)
            .saturating_sub(self.dirty_at_save.load(Relaxed))
    }

    fn run(&self, job: CheckpointJob) -> Result<(), StorageError> {
        let dirty = self.dirty.load(Relaxed);
        let started = std::time::Instant::now();
        let result = job.run().map(|_| ());
        self.last_ok.store(result.is_ok(), Relaxed);
        if result.is_ok() {
            self.last_save_s.store(now_ms() / 1000, Relaxed);
            self.dirty_at_save.store(dirty, Relaxed);
        }
        self.last_duration_s
            .store(started.elapsed().as_secs() as i64, Relaxed);
        result
    }
}

impl Shared {
    /// SAVE: take the checkpoint now.
    pub fn save(&self) -> Result<(), StorageError> {
        self.saves.run(self.storage().checkpoint_job())
    }

    /// BGSAVE: take it on a thread of its own; false when one is running.
    pub fn bgsave(&self) -> bool {
        if self.saves.in_progress.swap(true, Relaxed) {
            return false;
        }
        let saves = Arc::clone(&self.saves);
        let job = self.storage().checkpoint_job();
        std::thread::spawn(move || {
            if let Err(e) = saves.run(job) {
                tracing::warn!(error = %e, "Background saving error");
            }
            saves.in_progress.store(false, Relaxed);
        });
        true
    }
}
