//! [`Ctx`]: one command's view of the storage.
//!
//! Writes collect in an ordered overlay and reach RocksDB as one
//! `WriteBatch` at [`Ctx::commit`], so a command is atomic on disk. Reads
//! see the command's own pending writes (read-your-writes), so a command
//! may read, change and re-read without caring what is committed yet.

use std::cell::{Cell, RefCell, RefMut};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use rocksdb::{DBRawIterator, ReadOptions, WriteBatch};

use super::counts::CountChange;
use super::deadlines::{self, deadline_of};
use super::{
    data_prefix, meta_key, Cf, CommandRng, DbMap, Expiry, KeyCount, KeyType, Meta, RaftCf, Result,
    Storage, StorageError,
};

type Overlay = BTreeMap<(Cf, Vec<u8>), Option<Vec<u8>>>;

/// Collection versions of a replicated entry: every node derives the same
/// ones from the entry's log index (see [`log_versions`]).
struct LogVersions {
    next: Cell<u64>,
    end: u64,
}

/// Set in every version drawn from the Raft log and in none drawn from the
/// clock (microseconds since 1970 stay below 2^63 for 290,000 years), so the
/// two kinds never collide on one data directory.
const LOG_VERSION_BIT: u64 = 1 << 63;
/// Versions one log entry may hand out: the low bits of a log version.
pub const VERSIONS_PER_ENTRY: u64 = 1 << 20;

/// The range of collection versions the entry at `log_index` hands out:
/// `2^63 | log_index << 20` and the 2^20 after it. Fails from index
/// 2^43 - 1 on, where a range would reach past `u64::MAX` (2^43 entries
/// last 2.8 years at 100,000 entries a second).
pub fn log_versions(log_index: u64) -> Result<(u64, u64)> {
    if log_index >= (1 << 43) - 1 {
        return Err(StorageError::Corrupt(format!(
            "log index {log_index} is past the range collection versions can derive from"
        )));
    }
    let first = LOG_VERSION_BIT | (log_index << 20);
    Ok((first, first + VERSIONS_PER_ENTRY))
}

/// What undoes one change to the overlay (see [`Ctx::savepoint`]).
enum Undo {
    /// Put the key back to this overlay state (`None`: not in the overlay).
    Key((Cf, Vec<u8>), Option<Option<Vec<u8>>>),
    Flushed(Flushed),
    /// The whole overlay as it was before FLUSHALL cleared it.
    Overlay(Overlay),
    /// The database map and swapped set before a SWAPDB.
    Map(DbMap, Flushed),
}

pub struct Ctx<'a> {
    storage: &'a Storage,
    /// The logical database commands address (SELECT's index).
    db: u8,
    /// Logical → stored keyspace, SWAPDBs of this context included.
    map: DbMap,
    /// The map as committed; the record is written when `map` differs.
    base_map: DbMap,
    /// Logical databases a SWAPDB of this context exchanged.
    swapped: Flushed,
    pub now_ms: u64,
    /// The client whose command writes (0: none, e.g. a replicated entry):
    /// CLIENT TRACKING's NOLOOP spares it its own invalidations.
    pub writer: u64,
    /// Pending writes: `Some` = put, `None` = delete.
    pending: Overlay,
    /// FLUSHDB/FLUSHALL ran in this command: which committed entries are hidden.
    flushed: Flushed,
    /// Keys written in this context before a flush dropped the writes: they
    /// were modified all the same (a WATCH on them fails).
    written_then_flushed: std::collections::BTreeSet<(u8, Vec<u8>)>,
    /// Drawing versions from the Raft log instead of the clock.
    log_versions: Option<LogVersions>,
    /// Raft state written in the same batch as the data (last applied…).
    raft_writes: Vec<(RaftCf, Vec<u8>, Vec<u8>)>,
    /// Recording since [`Ctx::savepoint`]: how to undo each change.
    undo: Option<Vec<Undo>>,
    /// Where random picks come from (seeded from the log under Raft).
    rng: RefCell<CommandRng>,
    /// Keyspace events raised so far, published once committed.
    /// (Behind a cell: read lookups raise `keymiss` through `&self`.)
    events: RefCell<Vec<super::events::KeyEvent>>,
    /// How many of `events` were raised before the last savepoint.
    events_mark: usize,
    /// Committed meta records this context read: whether each existed and
    /// its deadline, so that counting keys and indexing deadlines at
    /// commit looks up only those written blind (a plain SET).
    committed_meta: RefCell<std::collections::HashMap<Vec<u8>, Option<Option<u64>>>>,
    /// See [`Ctx::take_expired_seen`].
    expired_seen: RefCell<Vec<(u8, Vec<u8>)>>,
    /// The lock stripes held for this context's command (sorted); `None`
    /// when it holds every key. See [`Ctx::limit_to`].
    scope: Option<super::locks::Stripes>,
}

/// The databases pending FLUSHDBs/FLUSHALLs empty (bit `db` set). A set,
/// not one database: a replicated entry may carry the FLUSHDBs of clients
/// on different databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flushed(u16);

impl Flushed {
    pub const NOTHING: Flushed = Flushed(0);
    pub const ALL: Flushed = Flushed(u16::MAX);

    pub fn db(db: u8) -> Flushed {
        Flushed(1u16.checked_shl(u32::from(db)).unwrap_or(0))
    }

    pub fn contains(self, db: u8) -> bool {
        self.0 & Flushed::db(db).0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn with(self, other: Flushed) -> Flushed {
        Flushed(self.0 | other.0)
    }

    /// The flushed databases, in order.
    pub fn dbs(self) -> impl Iterator<Item = u8> {
        (0..super::DATABASES).filter(move |db| self.contains(*db))
    }

    fn hides(self, key: &[u8]) -> bool {
        key.first().is_some_and(|db| self.contains(*db))
    }
}

/// The keys a command changed, for WATCH and blocked clients.
#[derive(Debug, Default)]
pub struct Touched {
    pub keys: Vec<(u8, Vec<u8>)>,
    /// Databases emptied as a whole.
    pub flushed: Flushed,
    /// Databases SWAPDB exchanged (logical numbers): every key in them may
    /// now hold another value.
    pub swapped: Flushed,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(storage: &'a Storage, db: u8, now_ms: u64) -> Ctx<'a> {
        let map = storage.db_map();
        Ctx {
            storage,
            db,
            map,
            base_map: map,
            swapped: Flushed::NOTHING,
            now_ms,
            writer: 0,
            pending: BTreeMap::new(),
            flushed: Flushed::NOTHING,
            written_then_flushed: std::collections::BTreeSet::new(),
            log_versions: None,
            raft_writes: Vec::new(),
            undo: None,
            rng: RefCell::new(CommandRng::Thread),
            events: RefCell::new(Vec::new()),
            events_mark: 0,
            committed_meta: RefCell::new(std::collections::HashMap::new()),
            expired_seen: RefCell::new(Vec::new()),
            scope: None,
        }
    }

    /// The command holds only these lock stripes (`None`: every key). A
    /// key touched outside them is counted in [`Storage::scope_misses`]: a
    /// command whose declared keys miss one it uses, which tests check
    /// never happens.
    pub fn limit_to(&mut self, stripes: Option<&[u16]>) {
        self.scope = stripes.map(super::locks::Stripes::from_slice);
    }

    /// Count `key` if it lies outside the locks held.
    fn check_scope(&self, key: &[u8]) {
        let Some(scope) = &self.scope else { return };
        if scope.binary_search(&super::locks::stripe_of(key)).is_err() {
            self.scope_miss(&String::from_utf8_lossy(key));
        }
    }

    /// Count a walk over the keyspace unless every key is held.
    fn check_whole_scope(&self) {
        if self.scope.is_some() {
            self.scope_miss("(the whole keyspace)");
        }
    }

    /// Count a key touched outside the locks held; log the first.
    fn scope_miss(&self, what: &str) {
        let before = self.storage.scope_misses.fetch_add(1, Ordering::Relaxed);
        if before == 0 {
            tracing::error!(
                key = what,
                "a command touched a key it did not lock (further misses are only counted)"
            );
        }
    }

    /// Hand out collection versions from `first..end` (a replicated entry's
    /// range, [`log_versions`]) instead of the clock.
    /// Random picks then come from a generator seeded by the same range,
    /// so every node draws alike.
    pub(crate) fn use_log_versions(&mut self, (first, end): (u64, u64)) {
        self.rng = RefCell::new(CommandRng::seeded(first));
        self.log_versions = Some(LogVersions {
            next: Cell::new(first),
            end,
        });
    }

    /// A fresh collection version: from the log index when applying a
    /// replicated entry (the same on every node), else from the clock.
    pub fn next_version(&self) -> u64 {
        match &self.log_versions {
            Some(range) => {
                let v = range.next.get();
                if v + 1 < range.end {
                    range.next.set(v + 1);
                } else {
                    // The apply loop stops commands well before this
                    // (`versions_left`); repeating the last one beats
                    // wrapping into the next entry's range.
                    tracing::error!("replicated entry ran out of collection versions");
                }
                v
            }
            None => self.storage.clock_version(),
        }
    }

    /// The generator for this command's random picks (SPOP, SRANDMEMBER…).
    pub fn rng(&self) -> RefMut<'_, CommandRng> {
        self.rng.borrow_mut()
    }

    /// Whether this context applies a replicated entry: what it writes may
    /// then depend only on the entry and the replicated state, never on
    /// this node's configuration.
    pub fn applies_log_entry(&self) -> bool {
        self.log_versions.is_some()
    }

    /// Versions left in the entry's range (`u64::MAX` when versions come
    /// from the clock).
    pub(crate) fn versions_left(&self) -> u64 {
        match &self.log_versions {
            Some(range) => range.end - range.next.get(),
            None => u64::MAX,
        }
    }

    /// Add a write to one of Raft's families to this context's batch, so it
    /// lands atomically with the data.
    pub(crate) fn put_raft(&mut self, cf: RaftCf, key: &[u8], value: Vec<u8>) {
        self.raft_writes.push((cf, key.to_vec(), value));
    }

    /// Start recording from here: [`Ctx::rollback`] now undoes only what
    /// changed since, so several commands can share one context (one batch)
    /// and a failing one drops just its own writes.
    pub fn savepoint(&mut self) {
        self.undo = Some(Vec::new());
        self.events_mark = self.events.get_mut().len();
    }

    /// Raise keyspace event `event` (of `class`, see [`super::events`]) for
    /// `key` of this context's database, if anyone may hear of it.
    pub fn notify(&self, event_class: u32, event: &'static str, key: &[u8]) {
        if self.storage.notify_mask().wants(event_class) {
            self.events.borrow_mut().push(super::events::KeyEvent {
                event,
                db: self.db,
                key: key.to_vec(),
            });
        }
    }

    /// Whether events of `event_class` are recorded (to skip work that
    /// only finds out what to notify).
    pub fn wants(&self, event_class: u32) -> bool {
        self.storage.notify_mask().wants(event_class)
    }

    /// The events of what was committed, to publish.
    pub fn take_events(&mut self) -> Vec<super::events::KeyEvent> {
        self.events_mark = 0;
        std::mem::take(self.events.get_mut())
    }

    fn set_pending(&mut self, key: (Cf, Vec<u8>), value: Option<Vec<u8>>) {
        match &mut self.undo {
            Some(undo) => {
                let prev = self.pending.insert(key.clone(), value);
                undo.push(Undo::Key(key, prev));
            }
            None => {
                self.pending.insert(key, value);
            }
        }
    }

    fn set_flushed(&mut self, flushed: Flushed) {
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::Flushed(self.flushed));
        }
        self.flushed = flushed;
    }

    pub fn storage(&self) -> &'a Storage {
        self.storage
    }

    /// The logical database this context's commands address.
    pub fn db(&self) -> u8 {
        self.db
    }

    /// Address logical database `db` from now on (SELECT, MOVE, a
    /// replicated command of another client).
    pub fn set_db(&mut self, db: u8) {
        self.db = db;
    }

    /// The stored keyspace of the addressed database: the first byte of
    /// every storage key a command builds.
    pub fn keyspace(&self) -> u8 {
        self.map.physical(self.db)
    }

    /// The stored keyspace of logical database `db`.
    pub fn keyspace_of(&self, db: u8) -> u8 {
        self.map.physical(db)
    }

    /// SWAPDB: from now on `a` names what `b` named and the other way
    /// round; committed as one record with this context's batch.
    pub fn swap_dbs(&mut self, a: u8, b: u8) {
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::Map(self.map, self.swapped));
        }
        self.map.swap(a, b);
        self.swapped = self.swapped.with(Flushed::db(a)).with(Flushed::db(b));
    }

    // ------------------------------------------------------- generic access

    /// The value at `key` in `cf`, pending writes included.
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.pending.get(&(cf, key.to_vec())) {
            return Ok(v.clone());
        }
        if self.flushed.hides(key) {
            return Ok(None);
        }
        let value = self.storage.db.get_cf(self.storage.cf(cf), key)?;
        if cf == Cf::Meta {
            let seen = value.as_deref().map(deadline_of);
            self.committed_meta.borrow_mut().insert(key.to_vec(), seen);
        }
        Ok(value)
    }

    pub fn put(&mut self, cf: Cf, key: &[u8], value: &[u8]) {
        self.set_pending((cf, key.to_vec()), Some(value.to_vec()));
    }

    pub fn delete(&mut self, cf: Cf, key: &[u8]) {
        self.set_pending((cf, key.to_vec()), None);
    }

    /// Entries of `cf` with `lower <= key < upper` (`upper = None`: no end),
    /// ascending or descending, pending writes merged in.
    pub fn iter(&self, cf: Cf, lower: &[u8], upper: Option<&[u8]>, reverse: bool) -> RangeIter<'_> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(lower.to_vec());
        if let Some(upper) = upper {
            opts.set_iterate_upper_bound(upper.to_vec());
        }
        let mut raw = self
            .storage
            .db
            .raw_iterator_cf_opt(self.storage.cf(cf), opts);
        if reverse {
            raw.seek_to_last();
        } else {
            raw.seek_to_first();
        }
        let start = (cf, lower.to_vec());
        let overlay_range = match upper {
            Some(u) => self
                .pending
                .range((Bound::Included(start), Bound::Excluded((cf, u.to_vec())))),
            None => self
                .pending
                .range((Bound::Included(start), Bound::Unbounded)),
        };
        let mut overlay: Vec<(Vec<u8>, Option<Vec<u8>>)> = overlay_range
            .filter(|((c, _), _)| *c == cf)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        if !reverse {
            overlay.reverse(); // popped from the end
        }
        RangeIter {
            raw,
            overlay,
            reverse,
            hidden: self.flushed,
            failed: false,
        }
    }

    /// Every (sub-key, value) under `prefix` in the data family, in order.
    pub fn scan_data(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = super::prefix_end(prefix);
        self.iter(Cf::Data, prefix, end.as_deref(), false)
            .map(|item| item.map(|(k, v)| (k[prefix.len()..].to_vec(), v)))
            .collect()
    }

    // --------------------------------------------------------- meta records

    /// The raw meta record of `key`, expired or not.
    pub fn get_raw_meta(&self, key: &[u8]) -> Result<Option<Meta>> {
        self.check_scope(key);
        let mk = meta_key(self.keyspace(), key);
        if let Some(v) = self.pending.get(&(Cf::Meta, mk.clone())) {
            return v.as_deref().map(Meta::decode).transpose();
        }
        if self.flushed.hides(&mk) {
            return Ok(None);
        }
        match self.committed_meta_record(mk)? {
            Some(raw) => Meta::decode(&raw).map(Some),
            None => Ok(None),
        }
    }

    /// A committed meta record, noting what key counting and lazy expiry
    /// need to know of it (see `committed_meta` and `expired_seen`).
    fn committed_meta_record(&self, mk: Vec<u8>) -> Result<Option<rocksdb::DBPinnableSlice<'_>>> {
        let raw = self.storage.db.get_pinned_cf(self.storage.meta_cf(), &mk)?;
        let peeked = raw.as_deref().and_then(Meta::peek);
        if let Some((_, Some(at))) = peeked {
            if at <= self.now_ms {
                if let Some((&space, key)) = mk.split_first() {
                    self.expired_seen.borrow_mut().push((space, key.to_vec()));
                }
            }
        }
        let seen = raw.as_deref().map(deadline_of);
        self.committed_meta.borrow_mut().insert(mk, seen);
        Ok(raw)
    }

    /// The keys this context found expired in committed records: (logical
    /// database, key). Redis deletes a key its lookup finds expired; the
    /// engine does so once the command's lock is released.
    pub fn take_expired_seen(&mut self) -> Vec<(u8, Vec<u8>)> {
        // Recorded by stored keyspace; told by logical database.
        let map = self.map;
        let mut seen = std::mem::take(self.expired_seen.get_mut());
        for (space, _) in &mut seen {
            *space = map.logical(*space);
        }
        seen
    }

    /// The meta record of `key` if the key exists and has not expired.
    pub fn get_meta(&self, key: &[u8]) -> Result<Option<Meta>> {
        Ok(self
            .get_raw_meta(key)?
            .filter(|m| !m.is_expired(self.now_ms)))
    }

    /// Type and expiry of a live key without copying its value.
    pub fn peek(&self, key: &[u8]) -> Result<Option<(KeyType, Expiry)>> {
        self.check_scope(key);
        let mk = meta_key(self.keyspace(), key);
        let found = match self.pending.get(&(Cf::Meta, mk.clone())) {
            Some(v) => v.as_deref().map(peek_raw).transpose()?,
            None if self.flushed.hides(&mk) => None,
            None => match self.committed_meta_record(mk)? {
                Some(raw) => Some(peek_raw(&raw)?),
                None => None,
            },
        };
        Ok(found.filter(|(_, expire)| !matches!(expire, Some(at) if *at <= self.now_ms)))
    }

    /// Meta records of many keys, read together (MGET).
    pub fn multi_get_meta<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k Bytes>,
    ) -> Result<Vec<Option<Meta>>> {
        if !self.pending.is_empty() || !self.flushed.is_empty() {
            return keys.into_iter().map(|k| self.get_meta(k)).collect();
        }
        let encoded: Vec<Vec<u8>> = keys
            .into_iter()
            .map(|k| {
                self.check_scope(k);
                meta_key(self.keyspace(), k)
            })
            .collect();
        let results = self
            .storage
            .db
            .batched_multi_get_cf(self.storage.meta_cf(), &encoded, false);
        results
            .into_iter()
            .zip(&encoded)
            .map(|(r, mk)| match r? {
                Some(raw) => {
                    let meta = Meta::decode(&raw)?;
                    if meta.is_expired(self.now_ms) {
                        if let Some((&space, key)) = mk.split_first() {
                            self.expired_seen.borrow_mut().push((space, key.to_vec()));
                        }
                        return Ok(None);
                    }
                    Ok(Some(meta))
                }
                None => Ok(None),
            })
            .collect()
    }

    pub fn put_meta(&mut self, key: &[u8], meta: &Meta) {
        self.check_scope(key);
        let mk = meta_key(self.keyspace(), key);
        self.set_pending((Cf::Meta, mk), Some(meta.encode()));
    }

    /// Remove `key` whatever its type: one meta delete; a collection's
    /// elements become unreachable and are reclaimed by compaction.
    pub fn delete_key(&mut self, key: &[u8]) {
        self.check_scope(key);
        let mk = meta_key(self.keyspace(), key);
        self.set_pending((Cf::Meta, mk), None);
    }

    /// Visit live keys of this database in key order, starting at `from`
    /// (inclusive), until `visit` returns false.
    pub fn for_each_key(
        &self,
        from: &[u8],
        mut visit: impl FnMut(&[u8], KeyType, Expiry) -> bool,
    ) -> Result<()> {
        self.check_whole_scope();
        let space = self.keyspace();
        let start = meta_key(space, from);
        let end = [space.saturating_add(1)];
        let upper = (space < u8::MAX).then_some(&end[..]);
        for item in self.iter(Cf::Meta, &start, upper, false) {
            let (k, v) = item?;
            let (kind, expire) = peek_raw(&v)?;
            if matches!(expire, Some(at) if at <= self.now_ms) {
                self.expired_seen
                    .borrow_mut()
                    .push((space, k[1..].to_vec()));
                continue;
            }
            if !visit(&k[1..], kind, expire) {
                break;
            }
        }
        Ok(())
    }

    // ------------------------------------------------- data family shortcuts

    pub fn get_data(&self, raw_key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(Cf::Data, raw_key)
    }

    pub fn put_data(&mut self, raw_key: &[u8], value: &[u8]) {
        self.put(Cf::Data, raw_key, value);
    }

    pub fn delete_data(&mut self, raw_key: &[u8]) {
        self.delete(Cf::Data, raw_key);
    }

    // ------------------------------------------------------------ lifecycle

    /// Remove every key of this database (FLUSHDB): range deletions at
    /// commit; from now on this context sees the database empty.
    pub fn flush_db(&mut self) {
        self.check_whole_scope();
        let db = self.keyspace();
        self.remember_flushed_writes(Some(db));
        match &mut self.undo {
            Some(undo) => {
                let removed: Vec<(Cf, Vec<u8>)> = self
                    .pending
                    .keys()
                    .filter(|(_, k)| k.first() == Some(&db))
                    .cloned()
                    .collect();
                for key in removed {
                    let prev = self.pending.remove(&key);
                    undo.push(Undo::Key(key, prev));
                }
            }
            None => self.pending.retain(|(_, k), _| k.first() != Some(&db)),
        }
        if !self.flushed.contains(db) {
            self.set_flushed(self.flushed.with(Flushed::db(db)));
        }
    }

    /// Remove every key of every database (FLUSHALL), atomically.
    pub fn flush_all(&mut self) {
        self.check_whole_scope();
        self.remember_flushed_writes(None);
        let cleared = std::mem::take(&mut self.pending);
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::Overlay(cleared));
        }
        self.set_flushed(Flushed::ALL);
    }

    /// Copy every element of one collection version to another key and
    /// version (RENAME, COPY), in every element family.
    /// The databases are logical numbers.
    pub fn copy_elements(&mut self, from: (u8, &[u8], u64), to: (u8, &[u8], u64)) -> Result<()> {
        let src = data_prefix(self.keyspace_of(from.0), from.1, from.2);
        let dst = data_prefix(self.keyspace_of(to.0), to.1, to.2);
        let end = super::prefix_end(&src);
        for cf in [Cf::Data, Cf::ZScore] {
            let items: Vec<_> = self
                .iter(cf, &src, end.as_deref(), false)
                .collect::<Result<_>>()?;
            for (k, v) in items {
                let mut key = dst.clone();
                key.extend_from_slice(&k[src.len()..]);
                self.put(cf, &key, &v);
            }
        }
        Ok(())
    }

    /// Keep the user keys of the pending writes a flush of `db` (`None`:
    /// every database) is about to drop, for [`Ctx::touched`].
    fn remember_flushed_writes(&mut self, db: Option<u8>) {
        let dropped: Vec<(u8, Vec<u8>)> = user_keys(self.pending.keys())
            .filter(|(d, _)| db.is_none_or(|db| db == *d))
            .collect();
        self.written_then_flushed.extend(dropped);
    }

    /// Whether this command has written anything yet.
    pub fn is_dirty(&self) -> bool {
        !self.flushed.is_empty()
            || !self.pending.is_empty()
            || !self.raft_writes.is_empty()
            || !self.swapped.is_empty()
    }

    /// The user keys this command's pending writes change, in logical
    /// databases as the map stands once committed.
    pub fn touched(&self) -> Touched {
        let map = &self.map;
        let mut keys: std::collections::BTreeSet<(u8, Vec<u8>)> = user_keys(self.pending.keys())
            .map(|(space, key)| (map.logical(space), key))
            .collect();
        keys.extend(
            self.written_then_flushed
                .iter()
                .map(|(space, key)| (map.logical(*space), key.clone())),
        );
        let flushed = if self.flushed == Flushed::ALL {
            Flushed::ALL
        } else {
            self.flushed.dbs().fold(Flushed::NOTHING, |f, space| {
                f.with(Flushed::db(map.logical(space)))
            })
        };
        Touched {
            keys: keys.into_iter().collect(),
            flushed,
            swapped: self.swapped,
        }
    }

    /// Each pending meta record with the committed one it replaces, looked
    /// up in one batched read where this context did not read it: (meta
    /// key, before, after), each `None` when absent, else its deadline.
    fn meta_changes(&self) -> Result<Vec<MetaChange<'_>>> {
        let metas: Vec<(&[u8], Option<Option<u64>>)> = self
            .pending
            .range((Cf::Meta, Vec::new())..(Cf::Data, Vec::new()))
            .map(|((_, key), value)| (key.as_slice(), value.as_deref().map(deadline_of)))
            .collect();
        if metas.is_empty() {
            return Ok(Vec::new());
        }
        let known = self.committed_meta.borrow();
        let unknown: Vec<&[u8]> = metas
            .iter()
            .map(|(key, _)| *key)
            .filter(|key| !self.flushed.hides(key) && !known.contains_key(*key))
            .collect();
        let cf = self.storage.meta_cf();
        let mut looked_up = match unknown.as_slice() {
            [] => Vec::new(),
            [one] => vec![self.storage.db.get_pinned_cf(cf, one)],
            many => self.storage.db.batched_multi_get_cf(cf, many, true),
        }
        .into_iter();
        let mut changes = Vec::with_capacity(metas.len());
        for (key, after) in metas {
            let before = if self.flushed.hides(key) {
                None
            } else if let Some(seen) = known.get(key) {
                *seen
            } else {
                match looked_up.next() {
                    Some(found) => found?.map(|raw| deadline_of(&raw)),
                    None => None,
                }
            };
            changes.push(MetaChange { key, before, after });
        }
        Ok(changes)
    }

    /// The key counts this context's writes leave in the keyspaces they
    /// change (see `counts.rs`).
    fn counts_after(&self, changes: &[MetaChange<'_>]) -> Vec<(u8, CountChange)> {
        let mut counts: BTreeMap<u8, CountChange> = self
            .flushed
            .dbs()
            .map(|space| {
                let emptied = CountChange {
                    emptied: true,
                    ..CountChange::default()
                };
                (space, emptied)
            })
            .collect();
        for change in changes {
            let Some(&space) = change.key.first() else {
                continue;
            };
            let volatile = |state: Option<Option<u64>>| state.map(|at| at.is_some());
            counts
                .entry(space)
                .or_default()
                .step(volatile(change.before), volatile(change.after));
        }
        counts.into_iter().collect()
    }

    /// Keys in the addressed database, this context's writes included
    /// (DBSIZE inside MULTI or a script sees them).
    pub fn key_count(&self) -> Result<KeyCount> {
        let space = self.keyspace();
        let mine = self.flushed.contains(space)
            || self
                .pending
                .range((Cf::Meta, vec![space])..(Cf::Meta, vec![space.saturating_add(1)]))
                .next()
                .is_some();
        if !mine {
            return Ok(self.storage.key_count(space));
        }
        let committed = self.storage.key_count(space);
        Ok(self
            .counts_after(&self.meta_changes()?)
            .into_iter()
            .find(|(s, _)| *s == space)
            .map_or(committed, |(_, change)| change.applied_to(committed)))
    }

    /// Apply the collected writes as one atomic batch.
    pub fn commit(&mut self) -> Result<()> {
        if !self.is_dirty() && self.raft_writes.is_empty() {
            return Ok(());
        }
        let changes = self.meta_changes()?;
        let counts = self.counts_after(&changes);
        let mut batch = WriteBatch::default();
        let index = self.storage.expiry_cf();
        if self.flushed == Flushed::ALL {
            for cf in Cf::ALL {
                batch.delete_range_cf(self.storage.cf(cf), [0], [super::DATABASES]);
            }
            batch.delete_range_cf(index, [0], [super::DATABASES]);
        } else {
            for db in self.flushed.dbs() {
                for cf in Cf::ALL {
                    batch.delete_range_cf(self.storage.cf(cf), [db], [db + 1]);
                }
                batch.delete_range_cf(index, [db], [db + 1]);
            }
        }
        // The expiry index follows each deadline set, changed or dropped.
        for change in &changes {
            let (before, after) = (change.before.flatten(), change.after.flatten());
            if before == after {
                continue;
            }
            if let Some(at) = before {
                batch.delete_cf(index, deadlines::entry(change.key, at));
            }
            if let Some(at) = after {
                batch.put_cf(index, deadlines::entry(change.key, at), []);
            }
        }
        drop(changes);
        for ((cf, key), value) in std::mem::take(&mut self.pending) {
            let handle = self.storage.cf(cf);
            match value {
                Some(v) => batch.put_cf(handle, key, v),
                None => batch.delete_cf(handle, key),
            }
        }
        for (cf, key, value) in std::mem::take(&mut self.raft_writes) {
            batch.put_cf(self.storage.raft_cf(cf), key, value);
        }
        let remap = self.map != self.base_map;
        if remap {
            batch.put_cf(
                self.storage.raft_cf(RaftCf::Replicated),
                super::dbmap::RECORD,
                self.map.encode(),
            );
        }
        self.swapped = Flushed::NOTHING;
        let range_deleted = !std::mem::take(&mut self.flushed).is_empty();
        self.undo = self.undo.as_ref().map(|_| Vec::new());
        self.storage.write(batch)?;
        self.storage.publish_counts(&counts);
        self.committed_meta.get_mut().clear();
        if remap {
            *self.storage.db_map.lock() = self.map;
            self.base_map = self.map;
        }
        if range_deleted {
            self.storage.flush_range_deletions_soon();
        }
        Ok(())
    }

    /// Drop the collected writes (a command that failed half-way): all of
    /// them, or those since [`Ctx::savepoint`] when one was set.
    pub fn rollback(&mut self) {
        let mark = match self.undo {
            Some(_) => self.events_mark,
            None => 0,
        };
        self.events.get_mut().truncate(mark);
        match &mut self.undo {
            Some(undo) => {
                while let Some(step) = undo.pop() {
                    match step {
                        Undo::Key(key, Some(prev)) => {
                            self.pending.insert(key, prev);
                        }
                        Undo::Key(key, None) => {
                            self.pending.remove(&key);
                        }
                        Undo::Flushed(prev) => self.flushed = prev,
                        Undo::Overlay(prev) => self.pending = prev,
                        Undo::Map(map, swapped) => {
                            self.map = map;
                            self.swapped = swapped;
                        }
                    }
                }
            }
            None => {
                self.pending.clear();
                self.flushed = Flushed::NOTHING;
                self.map = self.base_map;
                self.swapped = Flushed::NOTHING;
            }
        }
    }
}

/// A meta record a commit writes: its key, and the committed and new
/// states (`None`: absent, else the deadline).
struct MetaChange<'p> {
    key: &'p [u8],
    before: Option<Option<u64>>,
    after: Option<Option<u64>>,
}

fn peek_raw(raw: &[u8]) -> Result<(KeyType, Expiry)> {
    Meta::peek(raw).ok_or_else(|| StorageError::Corrupt("meta record".into()))
}

/// Committed entries of a key range merged with a command's pending writes.
pub struct RangeIter<'a> {
    raw: DBRawIterator<'a>,
    /// Pending writes in range, next one last.
    overlay: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    reverse: bool,
    /// Committed entries hidden by a pending FLUSHDB/FLUSHALL.
    hidden: Flushed,
    failed: bool,
}

impl RangeIter<'_> {
    fn advance_raw(&mut self) {
        if self.reverse {
            self.raw.prev();
        } else {
            self.raw.next();
        }
    }
}

impl Iterator for RangeIter<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            // Skip committed entries hidden by a pending FLUSHDB.
            while let Some(k) = self.raw.key() {
                if !self.hidden.hides(k) {
                    break;
                }
                self.advance_raw();
            }
            let raw_key = self.raw.key();
            if raw_key.is_none() {
                if let Err(e) = self.raw.status() {
                    self.failed = true;
                    return Some(Err(e.into()));
                }
            }
            let take_overlay = match (raw_key, self.overlay.last()) {
                (None, None) => return None,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(rk), Some((ok, _))) => {
                    let ord = ok.as_slice().cmp(rk);
                    if ord == std::cmp::Ordering::Equal {
                        // The pending write shadows the committed entry.
                        self.advance_raw();
                        true
                    } else {
                        (ord == std::cmp::Ordering::Less) != self.reverse
                    }
                }
            };
            if take_overlay {
                let (k, v) = self.overlay.pop()?;
                match v {
                    Some(v) => return Some(Ok((k, v))),
                    None => continue,
                }
            }
            let item = match (self.raw.key(), self.raw.value()) {
                (Some(k), Some(v)) => (k.to_vec(), v.to_vec()),
                _ => return None,
            };
            self.advance_raw();
            return Some(Ok(item));
        }
    }
}

/// The user keys (database, key) that pending writes to these raw keys change.
fn user_keys<'k>(
    raw: impl Iterator<Item = &'k (Cf, Vec<u8>)> + 'k,
) -> impl Iterator<Item = (u8, Vec<u8>)> + 'k {
    raw.filter_map(|(cf, raw)| match cf {
        Cf::Meta => raw.split_first().map(|(db, key)| (*db, key.to_vec())),
        Cf::Data | Cf::ZScore => {
            super::split_data_key(raw).map(|(db, key, _, _)| (db, key.to_vec()))
        }
    })
}
