#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! The Raft log and vote on RocksDB (`raft_log`, `raft_state` families).
//!
//! Durability: every append, vote, truncation and purge is written with a
//! synced WAL before openraft is told it happened; in particular the append
//! callback fires only once the entries are on disk. The committed index is
//! written without a sync of its own: losing its latest value in a crash
//! only makes the node re-learn it from the leader, and the next synced
//! write (any append or vote) carries it to disk anyway.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, ErrorSubject, ErrorVerb, LogId, LogState, OptionalSend, RaftLogReader, StorageError,
    Vote,
};
use rocksdb::{ReadOptions, WriteBatch};

use super::{blocking, decode, encode, read_state, state_key, NodeId, RaftStoreError, TypeConfig};
use crate::engine::Engine;
use crate::storage::{RaftCf, Storage};

/// The log store. Clones share the database; a clone is also the reader
/// replication tasks use.
#[derive(Clone)]
pub struct LogStore {
    engine: Arc<Engine>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("path", &self.engine.storage().path())
            .finish()
    }
}

/// The key of the log entry at `index`: big-endian, so keys sort by index.
fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn read_err(e: RaftStoreError) -> StorageError<NodeId> {
    e.into_raft(ErrorSubject::Logs, ErrorVerb::Read)
}

fn write_err(e: RaftStoreError) -> StorageError<NodeId> {
    e.into_raft(ErrorSubject::Logs, ErrorVerb::Write)
}

impl LogStore {
    pub fn new(engine: Arc<Engine>) -> LogStore {
        LogStore { engine }
    }

    fn storage(&self) -> &Storage {
        self.engine.storage()
    }

    /// Entries with `start <= index < end` (`end = None`: to the last).
    fn entries(
        &self,
        start: u64,
        end: Option<u64>,
    ) -> Result<Vec<Entry<TypeConfig>>, RaftStoreError> {
        let storage = self.storage();
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(log_key(start).to_vec());
        if let Some(end) = end {
            if end <= start {
                return Ok(Vec::new());
            }
            opts.set_iterate_upper_bound(log_key(end).to_vec());
        }
        let mut iter = storage
            .db()
            .raw_iterator_cf_opt(storage.raft_cf(RaftCf::Log), opts);
        iter.seek_to_first();
        let mut out = Vec::new();
        while let Some(raw) = iter.value() {
            out.push(decode(raw)?);
            iter.next();
        }
        iter.status()?;
        Ok(out)
    }

    /// The id of the last entry in the log, if any.
    fn last_log_id(&self) -> Result<Option<LogId<NodeId>>, RaftStoreError> {
        let storage = self.storage();
        let mut iter = storage.db().raw_iterator_cf(storage.raft_cf(RaftCf::Log));
        iter.seek_to_last();
        match iter.value() {
            Some(raw) => {
                let entry: Entry<TypeConfig> = decode(raw)?;
                Ok(Some(entry.log_id))
            }
            None => {
                iter.status()?;
                Ok(None)
            }
        }
    }

    /// Write `batch` with a synced WAL, off the async threads.
    async fn write_synced(&self, batch: WriteBatch) -> Result<(), RaftStoreError> {
        let engine = self.engine.clone();
        blocking(move || Ok(engine.storage().write_batch(batch, true)?)).await
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => match i.checked_add(1) {
                Some(i) => i,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i.checked_add(1),
            Bound::Excluded(&i) => Some(i),
            Bound::Unbounded => None,
        };
        self.entries(start, end).map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id: Option<LogId<NodeId>> =
            read_state(self.storage(), state_key::LAST_PURGED).map_err(read_err)?;
        let last_log_id = self.last_log_id().map_err(read_err)?;
        Ok(LogState {
            last_log_id: last_log_id.or(last_purged_log_id),
            last_purged_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let vote_err = |e: RaftStoreError| e.into_raft(ErrorSubject::Vote, ErrorVerb::Write);
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.storage().raft_cf(RaftCf::State),
            state_key::VOTE,
            encode(vote).map_err(vote_err)?,
        );
        self.write_synced(batch).await.map_err(vote_err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        read_state(self.storage(), state_key::VOTE)
            .map_err(|e| e.into_raft(ErrorSubject::Vote, ErrorVerb::Read))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        let storage = self.storage();
        let mut batch = WriteBatch::default();
        batch.put_cf(
            storage.raft_cf(RaftCf::State),
            state_key::COMMITTED,
            encode(&committed).map_err(write_err)?,
        );
        storage
            .write_batch(batch, false)
            .map_err(|e| write_err(e.into()))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let committed: Option<Option<LogId<NodeId>>> =
            read_state(self.storage(), state_key::COMMITTED).map_err(read_err)?;
        Ok(committed.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = self.storage().raft_cf(RaftCf::Log);
        let mut batch = WriteBatch::default();
        for entry in entries {
            let raw = encode(&entry)
                .map_err(|e| e.into_raft(ErrorSubject::Log(entry.log_id), ErrorVerb::Write))?;
            batch.put_cf(cf, log_key(entry.log_id.index), raw);
        }
        // Synced before the callback: openraft counts an entry toward the
        // quorum once told it is flushed, so it must survive a crash.
        match self.write_synced(batch).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        tracing::debug!(%log_id, "truncating the raft log");
        let cf = self.storage().raft_cf(RaftCf::Log);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf, log_key(log_id.index), log_key(u64::MAX));
        batch.delete_cf(cf, log_key(u64::MAX));
        self.write_synced(batch).await.map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        tracing::debug!(%log_id, "purging the raft log");
        let storage = self.storage();
        let cf = storage.raft_cf(RaftCf::Log);
        let mut batch = WriteBatch::default();
        // The purge point and the deletion land together: the log state
        // never shows a hole below a surviving entry.
        batch.put_cf(
            storage.raft_cf(RaftCf::State),
            state_key::LAST_PURGED,
            encode(&log_id).map_err(write_err)?,
        );
        match log_id.index.checked_add(1) {
            Some(end) => batch.delete_range_cf(cf, log_key(0), log_key(end)),
            None => {
                batch.delete_range_cf(cf, log_key(0), log_key(u64::MAX));
                batch.delete_cf(cf, log_key(u64::MAX));
            }
        }
        self.write_synced(batch).await.map_err(write_err)
    }
}
