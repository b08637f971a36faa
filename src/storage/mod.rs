//! The RocksDB engine: column families, the command lock, and the
//! per-command write context.
//!
//! Every command runs inside a [`Ctx`]. Reads go straight to RocksDB; writes
//! collect in one `WriteBatch` that [`Ctx::commit`] applies at once, so a
//! command is atomic on disk. Isolation between commands comes from
//! [`Storage::lock`]: commands that write hold it exclusively for their whole
//! read-modify-write, commands that only read share it, so no reader ever
//! observes half of an MSET or of an EXEC.

mod encoding;
mod expiry;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::RwLock;
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch,
    WriteOptions, DB,
};
use thiserror::Error;

pub use encoding::{
    data_key, data_prefix, meta_key, split_data_key, CollectionMeta, Expiry, KeyType, Meta,
    MetaBody,
};
pub use expiry::SweepCursor;

/// Number of logical databases (SELECT 0..15).
pub const DATABASES: u8 = 16;

const CF_META: &str = "meta";
const CF_DATA: &str = "data";

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("storage error: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt {0}")]
    Corrupt(String),
    #[error("cannot open data directory {path}: {reason}")]
    Open { path: PathBuf, reason: String },
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
    db: DB,
    path: PathBuf,
    lock: RwLock<()>,
    last_version: AtomicU64,
    write_opts: WriteOptions,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("path", &self.path).finish()
    }
}

impl Storage {
    /// Open (creating if needed) the data directory at `path`. A directory
    /// already opened by another process is refused by RocksDB's lock file.
    pub fn open(path: impl AsRef<Path>) -> Result<Storage> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path).map_err(|e| StorageError::Open {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(4);
        opts.increase_parallelism(2);
        let cfs = [CF_META, CF_DATA].map(|name| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(name, cf_opts)
        });
        let db = DB::open_cf_descriptors(&opts, &path, cfs).map_err(|e| StorageError::Open {
            path: path.clone(),
            reason: e.into_string(),
        })?;
        let mut write_opts = WriteOptions::default();
        // Like Redis's default `appendfsync everysec` spirit: the WAL is
        // written on every command (a crashed process loses nothing); the OS
        // decides when it reaches the platter.
        write_opts.set_sync(false);
        Ok(Storage {
            db,
            path,
            lock: RwLock::new(()),
            last_version: AtomicU64::new(0),
            write_opts,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The command lock: shared for reads, exclusive for writes.
    pub fn lock(&self) -> &RwLock<()> {
        &self.lock
    }

    pub(crate) fn meta_cf(&self) -> &ColumnFamily {
        // Both families are created at open, so the lookup cannot fail.
        self.db
            .cf_handle(CF_META)
            .unwrap_or_else(|| unreachable!("meta column family exists"))
    }

    pub(crate) fn data_cf(&self) -> &ColumnFamily {
        self.db
            .cf_handle(CF_DATA)
            .unwrap_or_else(|| unreachable!("data column family exists"))
    }

    /// A fresh collection version, strictly increasing across the process
    /// and past restarts (it starts from the clock in microseconds).
    pub fn next_version(&self) -> u64 {
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
        Ctx {
            storage: self,
            db,
            now_ms,
            batch: None,
        }
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        self.db.write_opt(batch, &self.write_opts)?;
        Ok(())
    }

    /// Flush the memtables and the WAL to disk (clean shutdown).
    pub fn flush(&self) -> Result<()> {
        self.db.flush_wal(true)?;
        Ok(())
    }
}

/// One command's view of the storage: reads of database `db`, and a batch
/// of writes applied at [`Ctx::commit`].
pub struct Ctx<'a> {
    storage: &'a Storage,
    pub db: u8,
    pub now_ms: u64,
    /// Created on the first write, so read-only commands allocate nothing.
    batch: Option<WriteBatch>,
}

impl<'a> Ctx<'a> {
    pub fn storage(&self) -> &'a Storage {
        self.storage
    }

    /// The raw meta record of `key`, expired or not.
    pub fn get_raw_meta(&self, key: &[u8]) -> Result<Option<Meta>> {
        let cf = self.storage.meta_cf();
        match self.storage.db.get_pinned_cf(cf, meta_key(self.db, key))? {
            Some(raw) => Meta::decode(&raw).map(Some),
            None => Ok(None),
        }
    }

    /// The meta record of `key` if the key exists and has not expired.
    pub fn get_meta(&self, key: &[u8]) -> Result<Option<Meta>> {
        Ok(self
            .get_raw_meta(key)?
            .filter(|m| !m.is_expired(self.now_ms)))
    }

    /// Type and expiry of a live key without copying its value.
    pub fn peek(&self, key: &[u8]) -> Result<Option<(KeyType, Expiry)>> {
        let cf = self.storage.meta_cf();
        match self.storage.db.get_pinned_cf(cf, meta_key(self.db, key))? {
            Some(raw) => {
                let (kind, expire) =
                    Meta::peek(&raw).ok_or_else(|| StorageError::Corrupt("meta record".into()))?;
                Ok((!matches!(expire, Some(at) if at <= self.now_ms)).then_some((kind, expire)))
            }
            None => Ok(None),
        }
    }

    /// Meta records of many keys, read together (MGET, EXISTS).
    pub fn multi_get_meta<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k Bytes>,
    ) -> Result<Vec<Option<Meta>>> {
        let cf = self.storage.meta_cf();
        let encoded: Vec<Vec<u8>> = keys.into_iter().map(|k| meta_key(self.db, k)).collect();
        let results = self.storage.db.batched_multi_get_cf(cf, &encoded, false);
        results
            .into_iter()
            .map(|r| match r? {
                Some(raw) => Ok(Some(Meta::decode(&raw)?).filter(|m| !m.is_expired(self.now_ms))),
                None => Ok(None),
            })
            .collect()
    }

    fn batch(&mut self) -> &mut WriteBatch {
        self.batch.get_or_insert_with(WriteBatch::default)
    }

    pub fn put_meta(&mut self, key: &[u8], meta: &Meta) {
        let cf = self.storage.meta_cf();
        let raw_key = meta_key(self.db, key);
        self.batch().put_cf(cf, raw_key, meta.encode());
    }

    /// Remove `key` whatever its type: one meta delete; a collection's
    /// elements become unreachable and are reclaimed by compaction.
    pub fn delete_key(&mut self, key: &[u8]) {
        let cf = self.storage.meta_cf();
        let raw_key = meta_key(self.db, key);
        self.batch().delete_cf(cf, raw_key);
    }

    pub fn put_data(&mut self, raw_key: &[u8], value: &[u8]) {
        let cf = self.storage.data_cf();
        self.batch().put_cf(cf, raw_key, value);
    }

    pub fn delete_data(&mut self, raw_key: &[u8]) {
        let cf = self.storage.data_cf();
        self.batch().delete_cf(cf, raw_key);
    }

    pub fn get_data(&self, raw_key: &[u8]) -> Result<Option<Vec<u8>>> {
        let cf = self.storage.data_cf();
        Ok(self.storage.db.get_cf(cf, raw_key)?)
    }

    /// Every (sub-key, value) of one collection version, in sub-key order.
    pub fn scan_data(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let cf = self.storage.data_cf();
        let mut out = Vec::new();
        for item in self
            .storage
            .db
            .iterator_cf(cf, IteratorMode::From(prefix, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k[prefix.len()..].to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Visit live keys of this database in key order, starting at `from`
    /// (inclusive), until `visit` returns false.
    pub fn for_each_key(
        &self,
        from: &[u8],
        mut visit: impl FnMut(&[u8], KeyType, Expiry) -> bool,
    ) -> Result<()> {
        let cf = self.storage.meta_cf();
        let start = meta_key(self.db, from);
        for item in self
            .storage
            .db
            .iterator_cf(cf, IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item?;
            if k.first() != Some(&self.db) {
                break;
            }
            let Some((kind, expire)) = Meta::peek(&v) else {
                return Err(StorageError::Corrupt("meta record".into()));
            };
            if matches!(expire, Some(at) if at <= self.now_ms) {
                continue;
            }
            if !visit(&k[1..], kind, expire) {
                break;
            }
        }
        Ok(())
    }

    /// Remove every key of this database (FLUSHDB): two range deletions.
    pub fn flush_db(&mut self) {
        let db = self.db;
        let meta = self.storage.meta_cf();
        let data = self.storage.data_cf();
        let batch = self.batch();
        batch.delete_range_cf(meta, [db], [db + 1]);
        batch.delete_range_cf(data, [db], [db + 1]);
    }

    /// Apply the collected writes as one atomic batch.
    pub fn commit(&mut self) -> Result<()> {
        match self.batch.take() {
            Some(batch) if !batch.is_empty() => self.storage.write(batch),
            _ => Ok(()),
        }
    }

    /// Drop the collected writes (a command that failed half-way).
    pub fn rollback(&mut self) {
        self.batch = None;
    }
}
