#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! The state machine: Kiwi's keyspace, changed only by applying committed
//! entries through the engine's command layer.
//!
//! Apply is deterministic: an entry's commands run as of the clock reading
//! the leader put in it, and the collection versions they create derive
//! from the entry's log index. One entry's writes, its `last_applied` and
//! (for a membership entry) the membership are a single RocksDB batch, so
//! after a crash the keyspace and `last_applied` always agree.
//!
//! Snapshots are the data column families (meta, data, zscore) and the
//! replicated identity records (`identity`) read from one RocksDB
//! snapshot, `last_applied` and membership read from the same snapshot;
//! installing one replaces the families and those records in one batch. The current snapshot (meta and bytes) is kept in `raft_state`.

use std::fmt::Debug;
use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder,
    Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use parking_lot::Mutex;
use rocksdb::{ReadOptions, WriteBatch};

use super::{
    blocking, decode, encode, identity, read_state, state_key, KiwiResponse, NodeId,
    RaftStoreError, TypeConfig, WireReply,
};
use crate::engine::Engine;
use crate::storage::{now_ms, Cf, RaftCf, Storage, Touched};

type Membership = StoredMembership<NodeId, openraft::BasicNode>;
type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// The state machine. Clones share the database.
#[derive(Clone)]
pub struct StateMachine {
    engine: Arc<Engine>,
    /// Serializes replacing the current snapshot (a build finishing while
    /// another, or an install, runs), so an older one never wins.
    current: Arc<Mutex<()>>,
}

impl Debug for StateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine")
            .field("path", &self.engine.storage().path())
            .finish()
    }
}

/// Builds snapshots of the state machine (see [`RaftSnapshotBuilder`]).
pub struct SnapshotBuilder {
    sm: StateMachine,
}

fn sm_err(verb: ErrorVerb) -> impl Fn(RaftStoreError) -> StorageError<NodeId> {
    move |e| e.into_raft(ErrorSubject::StateMachine, verb)
}

fn snapshot_err(verb: ErrorVerb) -> impl Fn(RaftStoreError) -> StorageError<NodeId> {
    move |e| e.into_raft(ErrorSubject::Snapshot(None), verb)
}

impl StateMachine {
    pub fn new(engine: Arc<Engine>) -> StateMachine {
        StateMachine {
            engine,
            current: Arc::new(Mutex::new(())),
        }
    }

    fn storage(&self) -> &Storage {
        self.engine.storage()
    }

    /// Record `meta`/`data` as the current snapshot unless a newer one is
    /// already recorded; `batch` may carry other writes that must land
    /// with it (an install's keyspace).
    fn save_current(
        &self,
        mut batch: WriteBatch,
        meta: &Meta,
        data: &[u8],
    ) -> Result<bool, RaftStoreError> {
        let _current = self.current.lock();
        let storage = self.storage();
        let newer = match read_state::<Meta>(storage, state_key::SNAPSHOT_META)? {
            Some(saved) => saved.last_log_id <= meta.last_log_id,
            None => true,
        };
        if newer {
            let cf = storage.raft_cf(RaftCf::State);
            batch.put_cf(cf, state_key::SNAPSHOT_META, encode(meta)?);
            batch.put_cf(cf, state_key::SNAPSHOT_DATA, data);
        }
        storage.write_batch(batch, true)?;
        Ok(newer)
    }

    /// Apply entries in order; one batch each (see the module docs). A
    /// failure names the entry it stopped at.
    fn apply_entries(
        &self,
        entries: Vec<Entry<TypeConfig>>,
    ) -> Result<Vec<KiwiResponse>, (LogId<NodeId>, RaftStoreError)> {
        let mut responses = Vec::with_capacity(entries.len());
        for entry in entries {
            let log_id = entry.log_id;
            let apply_err = |e: RaftStoreError| (log_id, e);
            let mut raft_writes = vec![(
                RaftCf::State,
                state_key::LAST_APPLIED.to_vec(),
                encode(&log_id).map_err(apply_err)?,
            )];
            let (now_ms, ops) = match entry.payload {
                EntryPayload::Blank => (0, Vec::new()),
                EntryPayload::Normal(request) => (request.now_ms, request.ops),
                EntryPayload::Membership(membership) => {
                    // A node that leaves may join again with a new directory.
                    let members = membership.nodes().map(|(id, _)| *id).collect();
                    raft_writes.extend(
                        identity::clear_departed(self.storage(), &members).map_err(apply_err)?,
                    );
                    let stored = Membership::new(Some(log_id), membership);
                    raft_writes.push((
                        RaftCf::State,
                        state_key::MEMBERSHIP.to_vec(),
                        encode(&stored).map_err(apply_err)?,
                    ));
                    (0, Vec::new())
                }
            };
            // A script may run long: the worker's other tasks move meanwhile.
            let scripted = ops.iter().any(|op| op.runs_script());
            let apply = || {
                self.engine
                    .apply_replicated(now_ms, log_id.index, ops, raft_writes)
            };
            let replies = match scripted {
                true => crate::engine::long_running(apply),
                false => apply(),
            }
            .map_err(|e| apply_err(e.into()))?;
            responses.push(KiwiResponse {
                replies: replies
                    .into_iter()
                    .map(|op| op.into_iter().map(WireReply::from).collect())
                    .collect(),
            });
        }
        Ok(responses)
    }

    /// Build a snapshot of what is applied now.
    fn build(&self) -> Result<Snapshot<TypeConfig>, RaftStoreError> {
        let storage = self.storage();
        let (last_log_id, last_membership, data) = storage.with_stable_snapshot(|snap| {
            let state = storage.raft_cf(RaftCf::State);
            let last_applied: Option<LogId<NodeId>> = snap
                .get_cf(state, state_key::LAST_APPLIED)?
                .map(|raw| decode(&raw))
                .transpose()?;
            let membership: Membership = snap
                .get_cf(state, state_key::MEMBERSHIP)?
                .map(|raw| decode(&raw))
                .transpose()?
                .unwrap_or_default();
            let mut out = SnapshotWriter::new();
            for (key, value) in identity::shared_records(storage, Some(snap))? {
                out.record_shared(&key, &value)?;
            }
            for family in FAMILIES {
                let mut opts = ReadOptions::default();
                opts.set_snapshot(snap);
                let mut iter = storage
                    .db()
                    .raw_iterator_cf_opt(family.handle(storage), opts);
                iter.seek_to_first();
                while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
                    out.record(family, key, value)?;
                    iter.next();
                }
                iter.status()?;
            }
            Ok::<_, RaftStoreError>((last_applied, membership, out.finish()))
        })?;
        let snapshot_id = match &last_log_id {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, now_ms()),
            None => format!("none-{}", now_ms()),
        };
        let meta = Meta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        self.save_current(WriteBatch::default(), &meta, &data)?;
        tracing::info!(snapshot = %meta, bytes = data.len(), "built a snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }

    /// Replace the keyspace with the snapshot's, in one batch.
    fn install(&self, meta: &Meta, data: Vec<u8>) -> Result<(), RaftStoreError> {
        let (records, shared) = parse_snapshot(&data)?;
        let engine = &self.engine;
        let storage = engine.storage();
        // Exclusive: no command sees the keyspace between old and new.
        let _guard = storage.locks().everything();
        let mut batch = WriteBatch::default();
        for family in FAMILIES {
            clear_family(storage, family, &mut batch)?;
        }
        for (family, key, value) in records {
            batch.put_cf(family.handle(storage), key, value);
        }
        let state = storage.raft_cf(RaftCf::State);
        for (key, _) in identity::shared_records(storage, None)? {
            batch.delete_cf(state, key);
        }
        for (key, value) in shared {
            batch.put_cf(state, key, value);
        }
        match &meta.last_log_id {
            Some(id) => batch.put_cf(state, state_key::LAST_APPLIED, encode(id)?),
            None => batch.delete_cf(state, state_key::LAST_APPLIED),
        }
        batch.put_cf(state, state_key::MEMBERSHIP, encode(&meta.last_membership)?);
        storage.mark_expiry_index_stale(&mut batch);
        if !self.save_current(batch, meta, &data)? {
            // Keyspace installed; a newer snapshot stays the current one.
            tracing::warn!(snapshot = %meta, "installed a snapshot older than the current one");
        }
        engine.set_applied(
            meta.last_log_id.map(|l| l.index),
            storage.replicated_clock()?,
        );
        engine.waiters.touch(&Touched {
            keys: Vec::new(),
            flushed: crate::storage::Flushed::ALL,
            swapped: crate::storage::Flushed::NOTHING,
        });
        // SWAPDBs and key counts came with the snapshot too.
        storage.reload_db_map()?;
        storage.reload_counts()?;
        // The expiry index is this node's own: built for the new keyspace.
        storage.rebuild_expiry_index()?;
        // The FUNCTION libraries came with the snapshot: load them anew.
        engine.scripts.reload_functions();
        tracing::info!(snapshot = %meta, bytes = data.len(), "installed a snapshot");
        Ok(())
    }

    fn current_snapshot(&self) -> Result<Option<Snapshot<TypeConfig>>, RaftStoreError> {
        let storage = self.storage();
        let snap = storage.db().snapshot();
        let state = storage.raft_cf(RaftCf::State);
        let Some(meta) = snap.get_cf(state, state_key::SNAPSHOT_META)? else {
            return Ok(None);
        };
        let meta: Meta = decode(&meta)?;
        let data = snap
            .get_cf(state, state_key::SNAPSHOT_DATA)?
            .ok_or_else(|| RaftStoreError::Snapshot("meta recorded without data".into()))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// Delete every entry of `family` in `batch`. Keys start with a database
/// byte below 16 (or a letter, in the replicated family), so one range
/// tombstone covers them; anything at or past `0xff` (there should be
/// none) is deleted one by one.
fn clear_family(
    storage: &Storage,
    family: Family,
    batch: &mut WriteBatch,
) -> Result<(), RaftStoreError> {
    let handle = family.handle(storage);
    batch.delete_range_cf(handle, &[][..], &[0xff][..]);
    let mut opts = ReadOptions::default();
    opts.set_iterate_lower_bound(vec![0xff]);
    let mut iter = storage.db().raw_iterator_cf_opt(handle, opts);
    iter.seek_to_first();
    while let Some(key) = iter.key() {
        batch.delete_cf(handle, key);
        iter.next();
    }
    iter.status()?;
    Ok(())
}

// ------------------------------------------------------------- snapshot format
//
// magic "KIWISNAP" ‖ format version (1 byte) ‖ records ‖ end tag (0)
// record: family tag (1 byte) ‖ key length (u32 BE) ‖ key ‖ value length (u32 BE) ‖ value
//
// Version 2 adds tag 4: a replicated record of `raft_state` (cluster id,
// members' incarnations, see `identity`), and tag 5: the `raft_replicated`
// family (last writer of each key, replicated clock). Version 1 snapshots
// still load.

const MAGIC: &[u8] = b"KIWISNAP";
const FORMAT_VERSION: u8 = 2;
const END: u8 = 0;
const SHARED_TAG: u8 = 4;

/// A column family a snapshot carries: the keyspace's, and the replicated
/// records beyond it (write stamps, clock). A snapshot written before the
/// replicated family existed simply has no records of tag 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Data(Cf),
    Replicated,
}

const FAMILIES: [Family; 4] = [
    Family::Data(Cf::Meta),
    Family::Data(Cf::Data),
    Family::Data(Cf::ZScore),
    Family::Replicated,
];

impl Family {
    fn tag(self) -> u8 {
        match self {
            Family::Data(Cf::Meta) => 1,
            Family::Data(Cf::Data) => 2,
            Family::Data(Cf::ZScore) => 3,
            Family::Replicated => 5,
        }
    }

    fn of(tag: u8) -> Option<Family> {
        FAMILIES.into_iter().find(|f| f.tag() == tag)
    }

    fn handle(self, storage: &Storage) -> &rocksdb::ColumnFamily {
        match self {
            Family::Data(cf) => storage.cf(cf),
            Family::Replicated => storage.raft_cf(RaftCf::Replicated),
        }
    }
}

/// One entry of a snapshot: (family, key, value).
type Record<'a> = (Family, &'a [u8], &'a [u8]);

struct SnapshotWriter(Vec<u8>);

impl SnapshotWriter {
    fn new() -> SnapshotWriter {
        let mut out = MAGIC.to_vec();
        out.push(FORMAT_VERSION);
        SnapshotWriter(out)
    }

    fn record(&mut self, family: Family, key: &[u8], value: &[u8]) -> Result<(), RaftStoreError> {
        self.tagged(family.tag(), key, value)
    }

    fn record_shared(&mut self, key: &[u8], value: &[u8]) -> Result<(), RaftStoreError> {
        self.tagged(SHARED_TAG, key, value)
    }

    fn tagged(&mut self, tag: u8, key: &[u8], value: &[u8]) -> Result<(), RaftStoreError> {
        let too_long = |what: &str| RaftStoreError::Snapshot(format!("{what} longer than 4 GiB"));
        let key_len = u32::try_from(key.len()).map_err(|_| too_long("key"))?;
        let value_len = u32::try_from(value.len()).map_err(|_| too_long("value"))?;
        self.0.push(tag);
        self.0.extend_from_slice(&key_len.to_be_bytes());
        self.0.extend_from_slice(key);
        self.0.extend_from_slice(&value_len.to_be_bytes());
        self.0.extend_from_slice(value);
        Ok(())
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.push(END);
        self.0
    }
}

/// A replicated `raft_state` record of a snapshot: (key, value).
type Shared<'a> = (&'a [u8], &'a [u8]);

/// Every record of a snapshot, checked whole before anything is written:
/// the data families' and the replicated `raft_state` ones.
fn parse_snapshot(data: &[u8]) -> Result<(Vec<Record<'_>>, Vec<Shared<'_>>), RaftStoreError> {
    let corrupt = |what: &str| RaftStoreError::Snapshot(what.to_string());
    let rest = data
        .strip_prefix(MAGIC)
        .ok_or_else(|| corrupt("not a Kiwi snapshot"))?;
    let (&version, mut rest) = rest
        .split_first()
        .ok_or_else(|| corrupt("missing format version"))?;
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(corrupt(&format!("unknown format version {version}")));
    }
    let mut records = Vec::new();
    let mut shared = Vec::new();
    loop {
        let (&tag, after) = rest
            .split_first()
            .ok_or_else(|| corrupt("truncated (no end marker)"))?;
        if tag == END {
            if !after.is_empty() {
                return Err(corrupt("bytes after the end marker"));
            }
            return Ok((records, shared));
        }
        let family = match tag {
            SHARED_TAG if version >= 2 => None,
            tag => {
                Some(Family::of(tag).ok_or_else(|| corrupt(&format!("unknown family tag {tag}")))?)
            }
        };
        let (key, after) = take_field(after).ok_or_else(|| corrupt("truncated key"))?;
        let (value, after) = take_field(after).ok_or_else(|| corrupt("truncated value"))?;
        match family {
            Some(cf) => records.push((cf, key, value)),
            None if key.starts_with(identity::SHARED_PREFIX) => shared.push((key, value)),
            None => return Err(corrupt("a raft record outside the replicated ones")),
        }
        rest = after;
    }
}

/// A snapshot record as it is written: (family tag, key, value).
pub(crate) type TaggedRecord<'a> = (u8, &'a [u8], &'a [u8]);

/// Every record of a snapshot as (family tag, key, value), the replicated
/// `raft_state` ones under their tag: what [`parse_snapshot`] accepts, for
/// the fuzz targets.
pub(crate) fn snapshot_records(data: &[u8]) -> Result<Vec<TaggedRecord<'_>>, RaftStoreError> {
    let (records, shared) = parse_snapshot(data)?;
    Ok(shared
        .into_iter()
        .map(|(key, value)| (SHARED_TAG, key, value))
        .chain(records.into_iter().map(|(f, k, v)| (f.tag(), k, v)))
        .collect())
}

/// A u32-BE-length-prefixed field and what follows it.
fn take_field(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = input.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

// ------------------------------------------------------------ openraft traits

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let sm = self.sm.clone();
        blocking(move || sm.build())
            .await
            .map_err(snapshot_err(ErrorVerb::Write))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        let read = sm_err(ErrorVerb::Read);
        let last_applied: Option<LogId<NodeId>> =
            read_state(self.storage(), state_key::LAST_APPLIED).map_err(&read)?;
        let clock = self
            .storage()
            .replicated_clock()
            .map_err(|e| read(e.into()))?;
        self.engine
            .set_applied(last_applied.map(|l| l.index), clock);
        let membership = read_state(self.storage(), state_key::MEMBERSHIP)
            .map_err(&read)?
            .unwrap_or_default();
        Ok((last_applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<KiwiResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let sm = self.clone();
        tokio::task::spawn_blocking(move || sm.apply_entries(entries))
            .await
            .map_err(|e| sm_err(ErrorVerb::Write)(e.into()))?
            .map_err(|(log_id, e)| StorageIOError::apply(log_id, &e).into())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { sm: self.clone() }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let sm = self.clone();
        let owned = meta.clone();
        let data = snapshot.into_inner();
        blocking(move || sm.install(&owned, data))
            .await
            .map_err(|e| {
                e.into_raft(
                    ErrorSubject::Snapshot(Some(meta.signature())),
                    ErrorVerb::Write,
                )
            })
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        self.current_snapshot()
            .map_err(snapshot_err(ErrorVerb::Read))
    }
}
