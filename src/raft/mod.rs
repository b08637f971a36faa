//! Raft replication through openraft 0.9 (`storage-v2`): the type
//! configuration, the log store and the state machine, both on the node's
//! own RocksDB.
//!
//! - [`LogStore`] keeps the log in the `raft_log` column family (key: the
//!   big-endian `u64` index) and the vote, committed index and last purged
//!   log id in `raft_state`. Appends, votes, truncations and purges are
//!   synced to disk before openraft hears they are done.
//! - [`StateMachine`] applies entries through [`Engine`]'s command layer:
//!   one entry's writes and its `last_applied` (and membership) are one
//!   RocksDB batch, and the entry's clock and log index make apply
//!   deterministic. Snapshots stream the data families of a RocksDB
//!   snapshot.
//!
//! [`network`] is the TCP transport (with its fault table) and
//! [`RaftNode`] ties openraft, the transport and client traffic together
//! (batched proposals, forwarding, read barriers, `RAFT.*`).
//!
//! openraft's types stay inside this module; the rest of the crate sees
//! [`KiwiRequest`], [`KiwiResponse`] and the two stores.
//!
//! Serialization (log entries, raft state, snapshot meta) is postcard 1.x:
//! serde-based, compact (varints, no field names), actively maintained and
//! with a wire format its authors promise to keep stable for 1.x — what a
//! format stored on disk needs. bincode 1.x is no longer maintained, and
//! serde_json would store every byte of a value as a decimal number.

pub mod identity;
pub mod lease;
pub mod local;
mod log_store;
mod nesting;
pub mod network;
mod node;
mod state_machine;
mod types;

use std::io::Cursor;
use std::sync::Arc;

use openraft::{ErrorSubject, ErrorVerb, StorageError, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use local::{LocalCluster, NodeStatus};
pub use log_store::LogStore;
pub use network::{FaultTable, NetConfig, RaftSecret};
pub use node::{ClientError, RaftFigures, RaftNode, RaftNodeError, RaftOptions, RaftTiming};
pub(crate) use state_machine::{snapshot_records, TaggedRecord};
pub use state_machine::{SnapshotBuilder, StateMachine};
pub use types::{Exec, KiwiRequest, KiwiResponse, Op, Watched, WireReply, Work};

use crate::engine::Engine;
use crate::storage::{RaftCf, Storage};

/// Node ids in the cluster.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Kiwi's openraft type configuration.
    pub TypeConfig:
        D = KiwiRequest,
        R = KiwiResponse,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The log store and the state machine of a node whose data lives in
/// `engine`'s storage. Both share the one RocksDB database; cloning a
/// [`LogStore`] gives the reader openraft asks for.
pub fn open_stores(engine: Arc<Engine>) -> (LogStore, StateMachine) {
    (LogStore::new(engine.clone()), StateMachine::new(engine))
}

/// What can go wrong under the stores, before it becomes openraft's
/// [`StorageError`] (which shuts the Raft node down).
#[derive(Debug, thiserror::Error)]
pub enum RaftStoreError {
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("storage error: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("cannot encode or decode raft data: {0}")]
    Codec(#[from] postcard::Error),
    #[error("corrupt snapshot: {0}")]
    Snapshot(String),
    #[error("storage task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl RaftStoreError {
    /// openraft's error for this failure while `verb`ing `subject`.
    pub(crate) fn into_raft(
        self,
        subject: ErrorSubject<NodeId>,
        verb: ErrorVerb,
    ) -> StorageError<NodeId> {
        StorageIOError::new(subject, verb, &self).into()
    }
}

/// Names of the records in the `raft_state` column family.
pub(crate) mod state_key {
    pub const VOTE: &[u8] = b"vote";
    pub const COMMITTED: &[u8] = b"committed";
    pub const LAST_PURGED: &[u8] = b"last_purged";
    pub const LAST_APPLIED: &[u8] = b"last_applied";
    pub const MEMBERSHIP: &[u8] = b"membership";
    pub const SNAPSHOT_META: &[u8] = b"snapshot_meta";
    pub const SNAPSHOT_DATA: &[u8] = b"snapshot_data";
    /// This directory's node id and incarnation (see `identity`).
    pub const IDENTITY: &[u8] = b"identity";
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, RaftStoreError> {
    Ok(postcard::to_allocvec(value)?)
}

pub(crate) fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<T, RaftStoreError> {
    Ok(postcard::from_bytes(raw)?)
}

/// Run blocking RocksDB work (synced writes, snapshots) off the async
/// worker threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RaftStoreError> + Send + 'static,
) -> Result<T, RaftStoreError> {
    tokio::task::spawn_blocking(work).await?
}

/// A record of the `raft_state` family, decoded.
pub(crate) fn read_state<T: DeserializeOwned>(
    storage: &Storage,
    key: &[u8],
) -> Result<Option<T>, RaftStoreError> {
    let cf = storage.raft_cf(RaftCf::State);
    match storage.db().get_pinned_cf(cf, key)? {
        Some(raw) => Ok(Some(decode(&raw)?)),
        None => Ok(None),
    }
}
