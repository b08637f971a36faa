#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Who a data directory belongs to, so it is never served as someone else.
//!
//! A directory that first runs as a Raft node records, in `raft_state`,
//! its node id and a random *incarnation* ([`DirIdentity`]). The node that
//! initialises a cluster draws a random cluster id; every member registers
//! itself through the log (`KIWI.IDENTITY`, applied by
//! [`apply_registration`]), so the replicated state holds the cluster id
//! and, for each member, the incarnation it joined with. Snapshots carry
//! these records; a member removed from the cluster loses its record, so
//! it may join again afresh.
//!
//! What that refuses:
//! - a standalone directory holding data, started as a Raft node (its data
//!   never went through the log);
//! - a Raft directory started standalone (writes would bypass the log);
//! - a Raft directory started under another node id;
//! - a directory wiped (or swapped) and started under its old id: it lost
//!   its vote and its log, so it must not vote or acknowledge entries. Every
//!   RPC carries the sender's incarnation and the one the sender has on
//!   record for the target; a node refuses an RPC from, or addressed to, an
//!   incarnation other than the one the cluster recorded.
//!
//! A frame's cluster id must match the receiver's when both know one, so a
//! node of one cluster never takes part in another.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use rocksdb::{ReadOptions, WriteBatch};
use serde::{Deserialize, Serialize};

use super::network::Stamp;
use super::{decode, encode, read_state, state_key, NodeId, RaftStoreError};
use crate::engine::Engine;
use crate::resp::Reply;
use crate::storage::{Cf, Ctx, RaftCf, Storage, StorageError};

/// The internal command a member proposes to register itself:
/// `KIWI.IDENTITY <node id> <incarnation> <cluster id or "">` (ids in hex).
/// Not in the command table: clients cannot send it.
pub const IDENTITY_COMMAND: &[u8] = b"kiwi.identity";

/// Prefix of the replicated records in `raft_state` (carried by snapshots).
pub(crate) const SHARED_PREFIX: &[u8] = b"shared.";
const SHARED_CLUSTER: &[u8] = b"shared.cluster";
const SHARED_INCARNATION: &[u8] = b"shared.incarnation.";

/// A `raft_state` record: (key, value).
type Record = (Vec<u8>, Vec<u8>);

/// A write to one of Raft's families, for an entry's batch.
type RaftWrite = (RaftCf, Vec<u8>, Vec<u8>);

/// This directory's own identity (the `identity` record; never replicated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirIdentity {
    pub node_id: NodeId,
    /// Drawn when the directory first became a Raft node: a wiped
    /// directory gets a new one.
    pub incarnation: u128,
    /// The cluster it belongs to, once it initialised or joined one.
    pub cluster: Option<u128>,
}

/// Why a directory may not be served as asked.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "data directory {0} holds data of a standalone server; a raft node must start \
         on an empty directory or on its own raft directory"
    )]
    StandaloneData(String),
    #[error(
        "data directory {0} belongs to raft node {1}; start it with --node-id {1} \
         (or use another directory for a standalone server)"
    )]
    RaftDirectory(String, NodeId),
    #[error(
        "data directory {0} holds raft state; start it as its raft node \
         (or use another directory for a standalone server)"
    )]
    RaftState(String),
    #[error("data directory {0} belongs to raft node {1}, not to node {2}")]
    OtherNode(String, NodeId, NodeId),
    #[error("cannot read the identity of the data directory: {0}")]
    Store(#[from] RaftStoreError),
}

fn dir_name(storage: &Storage) -> String {
    storage.path().display().to_string()
}

/// The identity recorded in the directory, if any.
pub fn recorded(storage: &Storage) -> Result<Option<DirIdentity>, RaftStoreError> {
    read_state(storage, state_key::IDENTITY)
}

fn family_is_empty(storage: &Storage, cf: &rocksdb::ColumnFamily) -> Result<bool, RaftStoreError> {
    let mut iter = storage.db().raw_iterator_cf(cf);
    iter.seek_to_first();
    let empty = !iter.valid();
    iter.status()?;
    Ok(empty)
}

/// Whether any Raft record (log, vote, applied state…) is in the directory.
/// FUNCTION libraries (`l‖name` in the replicated family) are data that a
/// standalone server keeps too.
fn has_raft_state(storage: &Storage) -> Result<bool, RaftStoreError> {
    for cf in [RaftCf::Log, RaftCf::State] {
        if !family_is_empty(storage, storage.raft_cf(cf))? {
            return Ok(true);
        }
    }
    // A standalone server writes some replicated records too (FUNCTION
    // libraries, the SWAPDB map): any other one is Raft's.
    let mut iter = storage
        .db()
        .raw_iterator_cf(storage.raft_cf(RaftCf::Replicated));
    iter.seek_to_first();
    while let Some(key) = iter.key() {
        if !crate::storage::replicated::standalone_record(key) {
            return Ok(true);
        }
        iter.next();
    }
    iter.status()?;
    Ok(false)
}

/// Whether the keyspace holds anything.
fn has_data(storage: &Storage) -> Result<bool, RaftStoreError> {
    Ok(!family_is_empty(storage, storage.cf(Cf::Meta))?)
}

/// Refuse to open a Raft node's directory as a standalone server.
pub fn check_standalone(storage: &Storage) -> Result<(), IdentityError> {
    if let Some(identity) = recorded(storage)? {
        return Err(IdentityError::RaftDirectory(
            dir_name(storage),
            identity.node_id,
        ));
    }
    if has_raft_state(storage)? {
        return Err(IdentityError::RaftState(dir_name(storage)));
    }
    Ok(())
}

/// The identity of the directory as node `id`: the recorded one, or a new
/// one for an empty directory (written before anything else happens).
pub(crate) fn claim(storage: &Storage, id: NodeId) -> Result<DirIdentity, IdentityError> {
    if let Some(identity) = recorded(storage)? {
        if identity.node_id != id {
            return Err(IdentityError::OtherNode(
                dir_name(storage),
                identity.node_id,
                id,
            ));
        }
        return Ok(identity);
    }
    if has_raft_state(storage)? {
        // Written before identities existed: its id cannot be checked.
        tracing::warn!(node = id, dir = %dir_name(storage), "raft directory without an identity; recording one");
    } else if has_data(storage)? {
        return Err(IdentityError::StandaloneData(dir_name(storage)));
    }
    let identity = DirIdentity {
        node_id: id,
        incarnation: rand::random(),
        cluster: None,
    };
    save(storage, &identity)?;
    Ok(identity)
}

/// Record `identity` (synced: it must outlive any vote the node casts).
pub(crate) fn save(storage: &Storage, identity: &DirIdentity) -> Result<(), RaftStoreError> {
    let mut batch = WriteBatch::default();
    batch.put_cf(
        storage.raft_cf(RaftCf::State),
        state_key::IDENTITY,
        encode(identity)?,
    );
    Ok(storage.write_batch(batch, true)?)
}

fn incarnation_key(id: NodeId) -> Vec<u8> {
    let mut key = SHARED_INCARNATION.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The cluster id in the replicated state.
pub(crate) fn replicated_cluster(storage: &Storage) -> Result<Option<u128>, RaftStoreError> {
    read_state(storage, SHARED_CLUSTER)
}

/// The incarnation the cluster recorded for node `id`.
pub(crate) fn replicated_incarnation(
    storage: &Storage,
    id: NodeId,
) -> Result<Option<u128>, RaftStoreError> {
    // A member removed from the cluster keeps a cleared record (`None`).
    Ok(read_state::<Option<u128>>(storage, &incarnation_key(id))?.flatten())
}

/// Every replicated record as (key, value), read from `snapshot` (for a
/// Raft snapshot) or the live database.
pub(crate) fn shared_records(
    storage: &Storage,
    snapshot: Option<&rocksdb::Snapshot<'_>>,
) -> Result<Vec<Record>, RaftStoreError> {
    let mut opts = ReadOptions::default();
    if let Some(snapshot) = snapshot {
        opts.set_snapshot(snapshot);
    }
    opts.set_iterate_lower_bound(SHARED_PREFIX.to_vec());
    let mut upper = SHARED_PREFIX.to_vec();
    if let Some(last) = upper.last_mut() {
        *last += 1;
    }
    opts.set_iterate_upper_bound(upper);
    let mut iter = storage
        .db()
        .raw_iterator_cf_opt(storage.raft_cf(RaftCf::State), opts);
    iter.seek_to_first();
    let mut out = Vec::new();
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        out.push((key.to_vec(), value.to_vec()));
        iter.next();
    }
    iter.status()?;
    Ok(out)
}

/// The members whose incarnation the replicated state records, by id.
pub(crate) fn registered(storage: &Storage) -> Result<Vec<NodeId>, RaftStoreError> {
    let mut ids = Vec::new();
    for (key, value) in shared_records(storage, None)? {
        if let Some(id) = incarnation_id(&key) {
            if decode::<Option<u128>>(&value)?.is_some() {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// The node id of an incarnation record's key.
fn incarnation_id(key: &[u8]) -> Option<NodeId> {
    key.strip_prefix(SHARED_INCARNATION)
        .and_then(|id| <[u8; 8]>::try_from(id).ok())
        .map(u64::from_be_bytes)
}

/// The writes clearing the records of nodes that are no longer members,
/// for the batch applying a membership entry.
pub(crate) fn clear_departed(
    storage: &Storage,
    members: &std::collections::BTreeSet<NodeId>,
) -> Result<Vec<RaftWrite>, RaftStoreError> {
    let mut writes = Vec::new();
    for (key, value) in shared_records(storage, None)? {
        let Some(id) = incarnation_id(&key) else {
            continue;
        };
        let recorded: Option<u128> = decode(&value)?;
        if recorded.is_some() && !members.contains(&id) {
            writes.push((RaftCf::State, key, encode(&None::<u128>)?));
        }
    }
    Ok(writes)
}

/// The command a member proposes to register `identity`.
pub(crate) fn registration(identity: &DirIdentity) -> Vec<Vec<u8>> {
    vec![
        IDENTITY_COMMAND.to_vec(),
        identity.node_id.to_string().into_bytes(),
        format!("{:x}", identity.incarnation).into_bytes(),
        identity
            .cluster
            .map(|c| format!("{c:x}"))
            .unwrap_or_default()
            .into_bytes(),
    ]
}

fn store_err(e: RaftStoreError) -> StorageError {
    match e {
        RaftStoreError::Storage(e) => e,
        RaftStoreError::Rocks(e) => StorageError::Rocks(e),
        other => StorageError::Corrupt(other.to_string()),
    }
}

/// The node id, incarnation and cluster id of a registration's arguments.
fn parse_registration(args: &[Bytes]) -> Option<(NodeId, u128, Option<u128>)> {
    let [node, incarnation, cluster] = args else {
        return None;
    };
    let hex = |raw: &[u8]| u128::from_str_radix(std::str::from_utf8(raw).ok()?, 16).ok();
    let node = std::str::from_utf8(node).ok()?.parse().ok()?;
    let cluster = match &cluster[..] {
        b"" => None,
        raw => Some(hex(raw)?),
    };
    Some((node, hex(incarnation)?, cluster))
}

/// Apply `KIWI.IDENTITY node incarnation cluster` (the arguments after the
/// name) as part of a replicated entry: record the cluster id if none is,
/// and the node's incarnation if it is a member without one. The answer
/// is `:1` when something was recorded, `:0` when it already was, an error
/// when the cluster or the node is recorded otherwise. Reads only the
/// replicated state, so every node decides alike.
pub(crate) fn apply_registration(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result<Reply, StorageError> {
    let storage = ctx.storage();
    let Some((node, incarnation, cluster)) = parse_registration(args) else {
        return Ok(Reply::error("ERR malformed identity registration"));
    };
    let mut recorded = false;
    if let Some(cluster) = cluster {
        match replicated_cluster(storage).map_err(store_err)? {
            None => {
                ctx.put_raft(
                    RaftCf::State,
                    SHARED_CLUSTER,
                    encode(&cluster).map_err(store_err)?,
                );
                recorded = true;
            }
            Some(known) if known == cluster => {}
            Some(known) => {
                return Ok(Reply::Error(format!(
                    "ERR this is cluster {known:x}, not {cluster:x}"
                )))
            }
        }
    }
    let membership: openraft::StoredMembership<NodeId, openraft::BasicNode> =
        read_state(storage, state_key::MEMBERSHIP)
            .map_err(store_err)?
            .unwrap_or_default();
    if membership.membership().get_node(&node).is_none() {
        return Ok(Reply::Error(format!("ERR node {node} is not a member")));
    }
    match replicated_incarnation(storage, node).map_err(store_err)? {
        None => {
            ctx.put_raft(
                RaftCf::State,
                &incarnation_key(node),
                encode(&Some(incarnation)).map_err(store_err)?,
            );
            recorded = true;
        }
        Some(known) if known == incarnation => {}
        Some(_) => {
            return Ok(Reply::Error(format!(
                "ERR node {node} joined with another data directory"
            )))
        }
    }
    Ok(Reply::Int(i64::from(recorded)))
}

/// Why this directory may not serve as `own` although its identity
/// matches: its own replicated state records its id with another
/// incarnation, or the cluster under another id.
pub(crate) fn conflict(storage: &Storage, own: &DirIdentity) -> Option<String> {
    if let Ok(Some(recorded)) = replicated_incarnation(storage, own.node_id) {
        if recorded != own.incarnation {
            return Some(wiped_message(own.node_id));
        }
    }
    match (own.cluster, replicated_cluster(storage).ok().flatten()) {
        (Some(mine), Some(known)) if mine != known => Some(format!(
            "raft node {} belongs to cluster {mine:x}, its data to cluster {known:x}",
            own.node_id
        )),
        _ => None,
    }
}

/// The message a refused node or its clients get.
pub(crate) fn wiped_message(id: NodeId) -> String {
    format!(
        "raft node {id} refused: the cluster knows node {id} with another data directory \
         (this one was wiped or replaced, and lost the vote and log it had); \
         remove the node (RAFT.NODE REMOVE) and add it again to rejoin"
    )
}

/// A running node's identity as its transport uses it: it stamps every
/// outgoing frame and admits or refuses every incoming one.
pub struct Credentials {
    engine: Arc<Engine>,
    own: Mutex<DirIdentity>,
    /// Why the node refuses to serve: the cluster knows its id with
    /// another incarnation (see [`wiped_message`]).
    refused: Mutex<Option<String>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("own", &*self.own.lock())
            .finish()
    }
}

impl Credentials {
    pub(crate) fn new(engine: Arc<Engine>, own: DirIdentity) -> Credentials {
        Credentials {
            engine,
            own: Mutex::new(own),
            refused: Mutex::new(None),
        }
    }

    pub fn own(&self) -> DirIdentity {
        *self.own.lock()
    }

    fn storage(&self) -> &Storage {
        self.engine.storage()
    }

    /// Record the cluster this node now belongs to (or, with `None`, none:
    /// an initialisation that failed).
    pub(crate) fn set_cluster(&self, cluster: Option<u128>) -> Result<(), RaftStoreError> {
        let mut own = self.own.lock();
        if own.cluster != cluster {
            let updated = DirIdentity { cluster, ..*own };
            save(self.storage(), &updated)?;
            *own = updated;
        }
        Ok(())
    }

    /// The cluster id this node knows: its own record, else the replicated one.
    pub fn cluster(&self) -> Option<u128> {
        let own = self.own.lock().cluster;
        own.or_else(|| replicated_cluster(self.storage()).ok().flatten())
    }

    /// Why the node refuses clients, if it does.
    pub fn refused(&self) -> Option<String> {
        self.refused.lock().clone()
    }

    pub(crate) fn refuse(&self, why: String) {
        let mut refused = self.refused.lock();
        if refused.is_none() {
            tracing::error!(node = self.own().node_id, "{why}");
        }
        *refused = Some(why);
    }

    /// What a frame to `target` carries about sender and target.
    pub(crate) fn stamp(&self, target: NodeId) -> Stamp {
        Stamp {
            cluster: self.cluster(),
            incarnation: self.own().incarnation,
            target_incarnation: replicated_incarnation(self.storage(), target)
                .ok()
                .flatten(),
        }
    }

    /// Whether a frame from `from` stamped `stamp` may be served; the
    /// refusal names why.
    pub(crate) fn admit(&self, from: NodeId, stamp: &Stamp) -> Result<(), String> {
        let own = self.own();
        if let (Some(mine), Some(theirs)) = (self.cluster(), stamp.cluster) {
            if mine != theirs {
                return Err(format!(
                    "node {} belongs to cluster {mine:x}, node {from} to cluster {theirs:x}",
                    own.node_id
                ));
            }
        }
        match stamp.target_incarnation {
            Some(expected) if expected != own.incarnation => {
                // The sender's replicated state knows this id with another
                // directory: this one must neither vote nor acknowledge.
                self.refuse(wiped_message(own.node_id));
                return Err(wiped_message(own.node_id));
            }
            _ => {
                // Not taken for another directory (any more: a node removed
                // and added again may be addressed under its old record for
                // a moment), unless its own replicated state says so.
                let conflict = replicated_incarnation(self.storage(), own.node_id)
                    .ok()
                    .flatten()
                    .is_some_and(|r| r != own.incarnation);
                if !conflict {
                    *self.refused.lock() = None;
                }
            }
        }
        if let Ok(Some(known)) = replicated_incarnation(self.storage(), from) {
            if known != stamp.incarnation {
                return Err(format!(
                    "node {from} joined with another data directory; its messages are refused"
                ));
            }
        }
        Ok(())
    }
}
