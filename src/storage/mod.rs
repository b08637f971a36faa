//! The RocksDB engine: column families, the command locks, and the
//! per-command write context.
//!
//! Every command runs inside a [`Ctx`]. Reads go straight to RocksDB; writes
//! collect in one `WriteBatch` that [`Ctx::commit`] applies at once, so a
//! command is atomic on disk. Isolation between commands comes from
//! [`Storage::locks`]: a command holds its keys' locks (exclusively to write
//! them) for its whole read-modify-write, and one that may touch any key
//! holds the whole store, so no reader ever observes half of an MSET or of
//! an EXEC (see [`locks`]).

mod backup;
pub(crate) mod counts;
pub(crate) mod dbmap;
pub(crate) mod deadlines;
pub(crate) mod directory;
mod durability;
mod encoding;
pub mod events;
pub use backup::{CheckpointJob, CompactionJob, CHECKPOINT_DIR};
mod expiry;
pub(crate) mod format;
pub mod locks;
pub mod memory;
mod random;
mod reclaim;
pub(crate) mod replicated;
mod txn;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};
use thiserror::Error;

pub use counts::KeyCount;
pub use dbmap::DbMap;
pub use durability::Appendfsync;
pub use encoding::{
    data_key, data_prefix, decode_score, encode_score, meta_key, prefix_end, split_data_key,
    CollectionMeta, Expiry, KeyType, Meta, MetaBody, StreamId, StreamMeta, LIST_START_INDEX,
};
pub use expiry::SweepCursor;
pub use format::DISK_FORMAT;
pub use random::CommandRng;
pub use txn::{log_versions, Ctx, Flushed, RangeIter, Touched, VERSIONS_PER_ENTRY};

/// Largest memtable per column family. Every write lands in a skiplist
/// whose insert cost grows with its size (cache misses per level): with
/// RocksDB's 64 MB default, random-key writes spent over half their time in
/// `FindSpliceForLevel`. Smaller memtables flush more often but insert
/// faster. A small `memtable-budget` makes them smaller still
/// ([`memory::family_buffer`]).
pub(crate) const WRITE_BUFFER_BYTES: usize = 8 << 20;

/// Number of logical databases (SELECT 0..15).
pub const DATABASES: u8 = 16;

/// The column families Kiwi keeps its data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cf {
    /// `db ‖ key` → [`Meta`].
    Meta,
    /// `db ‖ keylen ‖ key ‖ version ‖ sub-key` → element value.
    Data,
    /// `db ‖ keylen ‖ key ‖ version ‖ score ‖ member` → empty: sorted-set order.
    ZScore,
}

impl Cf {
    pub const ALL: [Cf; 3] = [Cf::Meta, Cf::Data, Cf::ZScore];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Cf::Meta => "meta",
            Cf::Data => "data",
            Cf::ZScore => "zscore",
        }
    }
}

/// The column families Raft keeps its own state in. They live in the same
/// database as the data, so applying an entry and recording `last_applied`
/// is one batch, but they are deliberately not in [`Cf::ALL`]: FLUSHDB,
/// FLUSHALL, RENAME/COPY and the compaction filter never see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum RaftCf {
    /// Big-endian `u64` log index → serialized log entry.
    Log,
    /// Named records: vote, committed, last purged, last applied,
    /// membership, current snapshot.
    State,
    /// Replicated state beyond the keyspace, written by applied entries
    /// and carried in snapshots: the log index that last wrote each key
    /// (WATCH checks it at apply) and the replicated clock.
    Replicated,
}

impl RaftCf {
    pub const ALL: [RaftCf; 3] = [RaftCf::Log, RaftCf::State, RaftCf::Replicated];

    pub(crate) fn name(self) -> &'static str {
        match self {
            RaftCf::Log => "raft_log",
            RaftCf::State => "raft_state",
            RaftCf::Replicated => "raft_replicated",
        }
    }
}

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("storage error: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt {0}")]
    Corrupt(String),
    #[error("cannot open data directory {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    /// A write failed in the file system (full disk, I/O error): the text
    /// is the `strerror` of the cause. Writes are refused until RocksDB
    /// takes them again (see [`durability`]).
    #[error("cannot write to the data directory: {0}")]
    Disk(String),
    /// SAVE could not write its checkpoint.
    #[error("cannot write the checkpoint: {0}")]
    Backup(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The opened data directory.
pub struct Storage {
    db: Arc<DB>,
    /// What the compaction filter reads meta records through; cleared
    /// before the database closes (see [`reclaim`]).
    reclaim: reclaim::ReclaimHandle,
    path: PathBuf,
    locks: locks::KeyLocks,
    /// The block cache and memtable budget (`memory.rs`).
    memory: memory::MemoryBudget,
    /// Keys commands touched outside the locks they held (see
    /// [`Ctx::limit_to`]); 0 unless a command's declared keys are wrong.
    scope_misses: AtomicU64,
    last_version: AtomicU64,
    write_opts: WriteOptions,
    /// [`Storage::write_opts`] with the WAL synced before returning.
    sync_opts: WriteOptions,
    /// `appendfsync`, read on every write.
    sync_policy: Arc<durability::SyncPolicy>,
    /// Whether writes fail in the file system (full disk).
    disk: Arc<durability::DiskState>,
    /// Syncs the WAL once a second under `everysec`; stops when dropped.
    syncer: Option<durability::Syncer>,
    flusher: Arc<parking_lot::Mutex<FlushState>>,
    /// `notify-keyspace-events`: the classes contexts record.
    notify: events::NotifyMask,
    /// The committed database map; changed only under the exclusive lock.
    db_map: parking_lot::Mutex<DbMap>,
    /// Keys per stored keyspace (see [`counts`]).
    counts: counts::KeyCounts,
}

/// The background memtable flush that follows range deletions.
#[derive(Default)]
struct FlushState {
    requested: bool,
    running: bool,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("path", &self.path).finish()
    }
}

/// Every column family Kiwi creates besides the default one: the data,
/// Raft's, and the expiry index.
pub(crate) fn family_names() -> impl Iterator<Item = &'static str> {
    Cf::ALL
        .iter()
        .map(|cf| cf.name())
        .chain(RaftCf::ALL.iter().map(|cf| cf.name()))
        .chain([deadlines::FAMILY])
}

impl Storage {
    /// Open (creating if needed) the data directory at `path` with the
    /// default `appendfsync everysec`.
    pub fn open(path: impl AsRef<Path>) -> Result<Storage> {
        Storage::open_with(path, Appendfsync::default())
    }

    /// Open (creating if needed) the data directory at `path`, syncing the
    /// WAL as `appendfsync` says. A directory already opened by another
    /// process is refused by RocksDB's lock file; one that is corrupt or
    /// holds another program's database is refused with the reason.
    pub fn open_with(path: impl AsRef<Path>, appendfsync: Appendfsync) -> Result<Storage> {
        Storage::open_sized(path, appendfsync, memory::MemoryConfig::default())
    }

    /// [`Storage::open_with`], with RocksDB's memory sized as `sizes` says
    /// (see [`memory`]).
    pub fn open_sized(
        path: impl AsRef<Path>,
        appendfsync: Appendfsync,
        sizes: memory::MemoryConfig,
    ) -> Result<Storage> {
        let path = path.as_ref().to_path_buf();
        let open_err = |reason: String| StorageError::Open {
            path: path.clone(),
            reason,
        };
        directory::prepare(&path).map_err(open_err)?;
        // Before anything is written: a newer format is refused untouched.
        let recorded = format::read_before_open(&path).map_err(open_err)?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(4);
        opts.increase_parallelism(2);
        let budget = memory::MemoryBudget::new(sizes);
        budget.apply_to_db(&mut opts);
        let family_buffer = memory::family_buffer(sizes.memtables);
        let reclaim = reclaim::ReclaimHandle::default();
        let mut cfs: Vec<ColumnFamilyDescriptor> = Cf::ALL
            .map(|cf| {
                let mut cf_opts = Options::default();
                cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
                cf_opts.set_write_buffer_size(family_buffer);
                budget.apply_to_family(&mut cf_opts);
                if cf != Cf::Meta {
                    reclaim.install(&mut cf_opts);
                }
                ColumnFamilyDescriptor::new(cf.name(), cf_opts)
            })
            .into();
        // Raft's families and the expiry index: no compaction filter, they
        // hold no collection elements.
        let names = RaftCf::ALL.map(RaftCf::name).into_iter();
        cfs.extend(names.chain([deadlines::FAMILY]).map(|name| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            cf_opts.set_write_buffer_size(family_buffer);
            budget.apply_to_family(&mut cf_opts);
            ColumnFamilyDescriptor::new(name, cf_opts)
        }));
        // The default family holds nothing, but the largest memtable size
        // of all families is the free space RocksDB waits for before it
        // resumes writes after a full disk: left out, it would get
        // RocksDB's 64 MB default and hold writes back long after the disk
        // had room for Kiwi's.
        let mut default_opts = Options::default();
        default_opts.set_write_buffer_size(family_buffer);
        budget.apply_to_family(&mut default_opts);
        cfs.push(ColumnFamilyDescriptor::new(
            rocksdb::DEFAULT_COLUMN_FAMILY_NAME,
            default_opts,
        ));
        let db = Arc::new(
            DB::open_cf_descriptors(&opts, &path, cfs)
                .map_err(|e| open_err(directory::explain(e.into_string())))?,
        );
        reclaim.attach(&db);
        format::settle(&db, recorded).map_err(open_err)?;
        // The WAL is written on every command, so a crashed process loses
        // nothing; `appendfsync` decides when it reaches the disk.
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(false);
        let mut sync_opts = WriteOptions::default();
        sync_opts.set_sync(true);
        let sync_policy = Arc::new(durability::SyncPolicy::default());
        sync_policy.set(appendfsync);
        let disk = Arc::new(durability::DiskState::default());
        let syncer = durability::Syncer::start(db.clone(), sync_policy.clone(), disk.clone())
            .map_err(|e| open_err(format!("cannot start the WAL sync thread: {e}")))?;
        Ok(Storage {
            db,
            reclaim,
            path,
            locks: locks::KeyLocks::default(),
            memory: budget,
            scope_misses: AtomicU64::new(0),
            last_version: AtomicU64::new(0),
            write_opts,
            sync_opts,
            sync_policy,
            disk,
            syncer: Some(syncer),
            flusher: Arc::default(),
            notify: events::NotifyMask::default(),
            db_map: parking_lot::Mutex::new(DbMap::IDENTITY),
            counts: counts::KeyCounts::default(),
        })
        .and_then(|storage| {
            storage.reload_db_map()?;
            storage.reload_counts()?;
            storage.rebuild_expiry_index_if_stale()?;
            Ok(storage)
        })
    }

    /// Which keyspace each logical database names (see [`DbMap`]).
    pub fn db_map(&self) -> DbMap {
        *self.db_map.lock()
    }

    /// Read the database map from its record again (at open, and after a
    /// Raft snapshot replaced the replicated state).
    pub(crate) fn reload_db_map(&self) -> Result<()> {
        let cf = self.raft_cf(RaftCf::Replicated);
        let map = match self.db.get_pinned_cf(cf, dbmap::RECORD)? {
            Some(raw) => DbMap::decode(&raw)?,
            None => DbMap::IDENTITY,
        };
        *self.db_map.lock() = map;
        Ok(())
    }

    /// The `appendfsync` policy in force.
    pub fn appendfsync(&self) -> Appendfsync {
        self.sync_policy.get()
    }

    /// Change the `appendfsync` policy (CONFIG SET): the next write follows it.
    pub fn set_appendfsync(&self, policy: Appendfsync) {
        self.sync_policy.set(policy);
    }

    /// `Err(StorageError::Disk)` while writes fail in the file system (a
    /// full disk): write commands are refused with it, as Redis refuses
    /// them after a failed AOF write. It asks RocksDB again on every call,
    /// so writes resume as soon as RocksDB has recovered.
    pub fn check_writable(&self) -> Result<()> {
        self.disk
            .check(&self.db, &self.write_opts)
            .map_err(StorageError::Disk)
    }

    /// Whether the last write failed in the file system (cheap; see
    /// [`Storage::check_writable`]).
    pub fn write_failed(&self) -> bool {
        self.disk.is_failed()
    }

    /// Turn a failed write's error into [`StorageError::Disk`] when the
    /// file system failed, recording it.
    fn write_error(&self, e: rocksdb::Error) -> StorageError {
        match self.disk.failed(&e) {
            Some(reason) => StorageError::Disk(reason),
            None => StorageError::Rocks(e),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The command locks (see [`locks`]).
    pub fn locks(&self) -> &locks::KeyLocks {
        &self.locks
    }

    /// Resize the block cache and the memtable budget (CONFIG SET).
    pub fn set_memory(&self, sizes: memory::MemoryConfig) {
        self.memory.resize(sizes);
        let size = memory::family_buffer(sizes.memtables).to_string();
        for name in family_names().chain([rocksdb::DEFAULT_COLUMN_FAMILY_NAME]) {
            if let Some(handle) = self.db.cf_handle(name) {
                if let Err(e) = self
                    .db
                    .set_options_cf(handle, &[("write_buffer_size", size.as_str())])
                {
                    tracing::warn!(family = name, error = %e, "cannot resize the memtable");
                }
            }
        }
    }

    /// Bytes RocksDB holds now: (block cache, memtables).
    pub fn memory_usage(&self) -> (usize, usize) {
        self.memory.usage()
    }

    /// How many times a command touched a key it did not lock.
    pub fn scope_misses(&self) -> u64 {
        self.scope_misses.load(Ordering::Relaxed)
    }

    pub(crate) fn cf(&self, cf: Cf) -> &ColumnFamily {
        // Every family is created at open, so the lookup cannot fail.
        self.db
            .cf_handle(cf.name())
            .unwrap_or_else(|| unreachable!("column family {} exists", cf.name()))
    }

    /// One of Raft's column families (see [`RaftCf`]).
    pub(crate) fn raft_cf(&self, cf: RaftCf) -> &ColumnFamily {
        self.db
            .cf_handle(cf.name())
            .unwrap_or_else(|| unreachable!("column family {} exists", cf.name()))
    }

    /// The database itself, for the Raft log store and state machine,
    /// which read and write their own families and build snapshots.
    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    /// Write a batch, syncing the WAL to disk before returning when `sync`
    /// whatever `appendfsync` says (the Raft log and vote must be durable
    /// before openraft is told so); otherwise as `appendfsync` says.
    pub(crate) fn write_batch(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        if sync {
            self.db
                .write_opt(batch, &self.sync_opts)
                .map_err(|e| self.write_error(e))
        } else {
            self.write(batch)
        }
    }

    /// Run `read` on a RocksDB snapshot whose collection elements stay
    /// complete while it runs. The compaction filter judges elements by
    /// the *current* meta records and RocksDB applies it even to entries a
    /// snapshot still sees, so it is paused for the duration: elements
    /// that go stale meanwhile are reclaimed by a later compaction.
    pub(crate) fn with_stable_snapshot<R>(
        &self,
        read: impl FnOnce(&rocksdb::Snapshot<'_>) -> R,
    ) -> R {
        let _pause = self.reclaim.pause();
        let snapshot = self.db.snapshot();
        read(&snapshot)
    }

    pub(crate) fn meta_cf(&self) -> &ColumnFamily {
        self.cf(Cf::Meta)
    }

    /// A fresh collection version from the clock, strictly increasing
    /// across the process and past restarts (microseconds). Private on
    /// purpose: commands take versions through [`Ctx::next_version`], which
    /// draws them from the log index when applying a Raft entry.
    fn clock_version(&self) -> u64 {
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let mut last = self.last_version.load(Ordering::Relaxed);
        loop {
            let next = now_us.max(last + 1);
            match self.last_version.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// A context for one command against database `db` at time `now_ms`.
    /// The caller holds [`Storage::lock`] as the command requires.
    pub fn ctx(&self, db: u8, now_ms: u64) -> Ctx<'_> {
        Ctx::new(self, db, now_ms)
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        let opts = self.sync_policy.options(&self.write_opts, &self.sync_opts);
        self.db
            .write_opt(batch, opts)
            .map_err(|e| self.write_error(e))
    }

    /// The keyspace-notification classes switched on.
    pub fn notify_mask(&self) -> &events::NotifyMask {
        &self.notify
    }

    /// Sync the WAL to disk (clean shutdown).
    pub fn flush(&self) -> Result<()> {
        durability::sync_wal(&self.db).map_err(|e| self.write_error(e))
    }

    /// Compact everything now: reclaims the elements of deleted or
    /// overwritten collections (tests and maintenance).
    pub fn compact_all(&self) {
        for cf in Cf::ALL {
            self.db
                .compact_range_cf(self.cf(cf), None::<&[u8]>, None::<&[u8]>);
        }
    }

    /// Number of raw entries in a column family (tests and diagnostics).
    pub fn count_raw(&self, cf: Cf) -> Result<usize> {
        let mut n = 0;
        for item in self
            .db
            .iterator_cf(self.cf(cf), rocksdb::IteratorMode::Start)
        {
            item?;
            n += 1;
        }
        Ok(n)
    }
}

impl Storage {
    /// FLUSHDB/FLUSHALL write range deletions. While one sits in the
    /// memtable, every iteration that crosses the deleted range steps over
    /// each deleted entry one by one (seen: SMEMBERS of 3 members taking
    /// 19 ms after a test suite's FLUSHALLs). Flushing the memtable drops
    /// the covered entries; it runs on a background thread so the command
    /// returns at once, and requests arriving meanwhile fold into one more
    /// round.
    pub(crate) fn flush_range_deletions_soon(&self) {
        let mut state = self.flusher.lock();
        state.requested = true;
        if state.running {
            return;
        }
        if let Some(done) = state.worker.take() {
            let _ = done.join();
        }
        state.running = true;
        let db = self.db.clone();
        let shared = self.flusher.clone();
        let spawned = std::thread::Builder::new()
            .name("kiwi-flush".into())
            .spawn(move || loop {
                {
                    let mut state = shared.lock();
                    if !state.requested {
                        state.running = false;
                        return;
                    }
                    state.requested = false;
                }
                // Raft's families and the expiry index too: a WAL file is
                // only deleted once every family with data in it was
                // flushed, and each flush starts a new one, so leaving
                // raft_log (or the index's range deletion) out kept one WAL
                // file per FLUSHALL on a cluster node.
                for name in family_names() {
                    if let Some(handle) = db.cf_handle(name) {
                        if let Err(e) = db.flush_cf(handle) {
                            tracing::warn!(error = %e, "flushing range deletions failed");
                        }
                    }
                }
            });
        match spawned {
            Ok(worker) => state.worker = Some(worker),
            Err(e) => {
                state.running = false;
                tracing::warn!(error = %e, "cannot start the flush thread");
            }
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        // Nothing writes any more: the counts are exact, keep them.
        if let Err(e) = self.save_counts() {
            tracing::warn!(error = %e, "saving key counts at close failed; the next open counts");
        }
        // The sync thread holds the database too: stop it first.
        drop(self.syncer.take());
        // The flush thread holds the database: let it finish first.
        let worker = self.flusher.lock().worker.take();
        if let Some(worker) = worker {
            let _ = worker.join();
        }
        // Stop the compaction filter from reaching the database before it closes.
        self.reclaim.detach();
    }
}
