//! When writes reach the disk, and what happens when they cannot.
//!
//! Every write goes to RocksDB's write-ahead log (WAL) before its command
//! answers, so a crashed *process* loses nothing acknowledged whatever the
//! policy. [`Appendfsync`] (redis.conf's `appendfsync`) decides when the WAL
//! is also synced to the device, which is what a power loss or a kernel
//! crash needs: on every write (`always`), once a second by the
//! [`Syncer`] thread (`everysec`, the default), or when the OS decides
//! (`no`). The Raft log is synced before an entry counts toward a quorum
//! whatever the policy says (see `Storage::write_batch`).
//!
//! A write that fails in the file system (a full disk, an I/O error) puts
//! the storage in the [`DiskState`] "failed" state: RocksDB stops accepting
//! writes until it recovers, and Kiwi answers every write command with
//! Redis's `MISCONF` error meanwhile, while reads keep working. RocksDB
//! recovers by itself once the disk has room again (its `SstFileManager`
//! polls the free space every few seconds and resumes the database);
//! [`DiskState::check`] notices with an empty write and lets writes through.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rocksdb::{WriteBatch, WriteOptions, DB};

/// redis.conf's `appendfsync`: when the write-ahead log is synced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Appendfsync {
    /// Before each write is acknowledged (RocksDB's group commit shares one
    /// sync among writers that arrive together).
    Always,
    /// Once a second, by a background thread.
    #[default]
    EverySec,
    /// When the operating system writes its dirty pages back.
    No,
}

impl Appendfsync {
    /// Redis's error text for any other value.
    pub const INVALID: &'static str =
        "argument(s) must be one of the following: everysec, always, no";

    /// Parse redis.conf's value (any case).
    pub fn parse(value: &str) -> Option<Appendfsync> {
        match value.to_ascii_lowercase().as_str() {
            "always" => Some(Appendfsync::Always),
            "everysec" => Some(Appendfsync::EverySec),
            "no" => Some(Appendfsync::No),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Appendfsync::Always => "always",
            Appendfsync::EverySec => "everysec",
            Appendfsync::No => "no",
        }
    }

    fn from_u8(v: u8) -> Appendfsync {
        match v {
            0 => Appendfsync::Always,
            2 => Appendfsync::No,
            _ => Appendfsync::EverySec,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Appendfsync::Always => 0,
            Appendfsync::EverySec => 1,
            Appendfsync::No => 2,
        }
    }
}

/// The policy in force and whether writes since the last sync are pending,
/// shared by the writers and the [`Syncer`].
#[derive(Debug, Default)]
pub(crate) struct SyncPolicy {
    policy: AtomicU8,
    unsynced: AtomicBool,
}

impl SyncPolicy {
    pub fn get(&self) -> Appendfsync {
        Appendfsync::from_u8(self.policy.load(Ordering::Relaxed))
    }

    pub fn set(&self, policy: Appendfsync) {
        self.policy.store(policy.to_u8(), Ordering::Relaxed);
    }

    /// The write options for a write now, noting that the WAL has unsynced
    /// data unless the write syncs it.
    pub fn options<'a>(
        &self,
        plain: &'a WriteOptions,
        synced: &'a WriteOptions,
    ) -> &'a WriteOptions {
        if self.get() == Appendfsync::Always {
            synced
        } else {
            // Only store when it changes: writers would fight over the line.
            if !self.unsynced.load(Ordering::Relaxed) {
                self.unsynced.store(true, Ordering::Relaxed);
            }
            plain
        }
    }
}

/// The thread that syncs the WAL once a second under `everysec`. Dropping
/// it stops the thread and waits for it.
pub(crate) struct Syncer {
    stop: Option<mpsc::Sender<()>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    pub fn start(
        db: Arc<DB>,
        policy: Arc<SyncPolicy>,
        disk: Arc<DiskState>,
    ) -> std::io::Result<Syncer> {
        let (stop, stopped) = mpsc::channel::<()>();
        let worker = std::thread::Builder::new()
            .name("kiwi-fsync".into())
            .spawn(move || loop {
                match stopped.recv_timeout(Duration::from_secs(1)) {
                    Err(RecvTimeoutError::Timeout) => {}
                    // A message or a dropped sender: the storage is closing.
                    _ => return,
                }
                if policy.get() != Appendfsync::EverySec
                    || !policy.unsynced.swap(false, Ordering::Relaxed)
                {
                    continue;
                }
                if let Err(e) = sync_wal(&db) {
                    // Try again next second; writes meanwhile say why.
                    policy.unsynced.store(true, Ordering::Relaxed);
                    disk.failed(&e);
                }
            })?;
        Ok(Syncer {
            stop: Some(stop),
            worker: Some(worker),
        })
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Sync the WAL: an empty write that waits for the sync, which covers every
/// write before it. Not `DB::flush_wal(true)`: after a failed WAL append
/// that reports the WAL writer's old error as a new one, which RocksDB
/// takes as fatal and never recovers from; a write is refused up front
/// while the database is stopped, and otherwise queues behind other
/// writers like any write.
pub(crate) fn sync_wal(db: &DB) -> Result<(), rocksdb::Error> {
    let mut synced = WriteOptions::default();
    synced.set_sync(true);
    db.write_opt(WriteBatch::default(), &synced)
}

/// Whether the last write failed in the file system, and why.
#[derive(Debug, Default)]
pub(crate) struct DiskState {
    failed: AtomicBool,
    reason: Mutex<String>,
}

impl DiskState {
    /// Whether writes are refused (a cheap check for hot paths).
    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Record a failed write. Returns the reason when it is a file-system
    /// failure (the storage then refuses writes until [`DiskState::check`]
    /// sees RocksDB take them again), `None` for any other error.
    pub fn failed(&self, e: &rocksdb::Error) -> Option<String> {
        let reason = disk_failure(e)?;
        let mut current = self.reason.lock();
        if !self.failed.swap(true, Ordering::AcqRel) || *current != reason {
            tracing::error!(
                error = %e,
                "writes to the data directory fail: refusing writes until RocksDB \
                 recovers (it retries by itself once the disk has room)"
            );
        }
        *current = reason.clone();
        Some(reason)
    }

    /// `Err(reason)` while writes are refused. When they are, an empty
    /// write asks RocksDB whether it has recovered meanwhile.
    pub fn check(&self, db: &DB, opts: &WriteOptions) -> Result<(), String> {
        if !self.is_failed() {
            return Ok(());
        }
        match db.write_opt(WriteBatch::default(), opts) {
            Ok(()) => {
                let mut reason = self.reason.lock();
                if self.failed.swap(false, Ordering::AcqRel) {
                    tracing::warn!(was = %reason, "writes to the data directory work again");
                }
                reason.clear();
                Ok(())
            }
            Err(e) => Err(self.failed(&e).unwrap_or_else(|| e.into_string())),
        }
    }
}

/// The `strerror` text of a write that failed in the file system, or
/// `None` when the error is of another kind.
pub(crate) fn disk_failure(e: &rocksdb::Error) -> Option<String> {
    failure_reason(e.as_ref())
}

/// RocksDB ends a file-system error with the `strerror` text: `IO error: No
/// space left on device: While appending to file: …/000012.log: No space
/// left on device`; a write refused while the database is stopped carries
/// the same text, sometimes behind `Operation failed. Try again.: `.
fn failure_reason(text: &str) -> Option<String> {
    if !text.contains("IO error") {
        return None;
    }
    if text.contains("No space left on device") {
        return Some("No space left on device".into());
    }
    let last = text.rsplit(": ").next().unwrap_or(text).trim();
    Some(if last.is_empty() { text } else { last }.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appendfsync_names_round_trip() {
        for policy in [Appendfsync::Always, Appendfsync::EverySec, Appendfsync::No] {
            assert_eq!(Appendfsync::parse(policy.name()), Some(policy));
            assert_eq!(Appendfsync::from_u8(policy.to_u8()), policy);
        }
        assert_eq!(Appendfsync::parse("EVERYSEC"), Some(Appendfsync::EverySec));
        assert_eq!(Appendfsync::parse("sometimes"), None);
        assert_eq!(Appendfsync::default(), Appendfsync::EverySec);
    }

    #[test]
    fn file_system_failures_give_their_strerror() {
        let full = "IO error: No space left on device: While appending to file: \
                    /d/000012.log: No space left on device";
        assert_eq!(
            failure_reason(full).as_deref(),
            Some("No space left on device")
        );
        let stalled = format!("Operation failed. Try again.: {full}");
        assert_eq!(
            failure_reason(&stalled).as_deref(),
            Some("No space left on device")
        );
        let eio = "IO error: While appending to file: /d/000012.log: Input/output error";
        assert_eq!(failure_reason(eio).as_deref(), Some("Input/output error"));
        assert_eq!(failure_reason("Corruption: block checksum mismatch"), None);
        assert_eq!(
            failure_reason("Invalid argument: Column family not found"),
            None
        );
    }
}
