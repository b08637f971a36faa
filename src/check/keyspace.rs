#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! Every key's metadata against its elements, and the key counts.
//!
//! A collection's elements are the `data` records under its meta's version
//! (`encoding.rs`): their number must be the meta's count. Per type:
//! - hash: one record per field;
//! - list: one record per index of the window `[head, tail)`;
//! - set: one record per member; a numbered set (`indexed`) also has
//!   `0..len` in `zscore`, number → member, each member's record holding
//!   its number (`cmd/positions.rs`);
//! - sorted set: member → score in `data`, and `score ‖ member` in `zscore`
//!   for each, no more;
//! - stream: `e ‖ id` entries (`len` of them, the first one's ID is the
//!   header's first ID, none past its last ID) and `n ‖ id` nodes whose
//!   live counts add up to `len` (`cmd/stream/store.rs`).
//!
//! Records under other versions are elements of deleted or overwritten
//! collections waiting for the compaction filter: counted, not problems.

use crate::cmd::stream::store as stream;
use crate::storage::counts::{self, KeyCount};
use crate::storage::dbmap::{self, DbMap};
use crate::storage::deadlines;
use crate::storage::{
    data_prefix, decode_score, prefix_end, split_data_key, Cf, CollectionMeta, KeyType, Meta,
    MetaBody, RaftCf, StreamId, DATABASES,
};

use super::report::key_place;
use super::{Area, Families, Report};

/// Check the keyspace and the records about it.
pub(super) fn check(db: &Families<'_>, report: &mut Report) {
    let map = database_map(db, report);
    let mut found = [KeyCount::default(); DATABASES as usize];
    // The expiry index entries the deadlines call for (format 2 on).
    let mut due = std::collections::BTreeSet::new();
    let Some(meta_cf) = db.cf(Cf::Meta) else {
        return;
    };
    let mut iter = db.db.raw_iterator_cf_opt(meta_cf, db.read_opts());
    iter.seek_to_first();
    while let (Some(raw_key), Some(raw)) = (iter.key(), iter.value()) {
        let Some((&space, key)) = raw_key.split_first().filter(|(s, _)| **s < DATABASES) else {
            report.problem(
                Area::Keyspace,
                format!("meta record \"{}\"", raw_key.escape_ascii()),
                format!("its key does not start with a database number below {DATABASES}"),
            );
            iter.next();
            continue;
        };
        let logical = map.logical(space);
        match Meta::decode(raw) {
            Err(e) => report.problem(
                Area::Keyspace,
                key_place(logical, key, None),
                format!("{e}: {} bytes that do not decode", raw.len()),
            ),
            Ok(meta) => {
                if let Some(count) = found.get_mut(usize::from(space)) {
                    *count = count.step(None, Some(meta.expire_at_ms.is_some()));
                }
                report.count_key(meta.kind().name());
                if let Some(at) = meta.expire_at_ms {
                    due.insert(deadlines::entry(raw_key, at));
                }
                if let MetaBody::Collection(c) = &meta.body {
                    let place = key_place(logical, key, Some(c.kind));
                    Collection::new(db, space, key, c, place).check(report);
                }
            }
        }
        iter.next();
    }
    if let Err(e) = iter.status() {
        report.problem(
            Area::Keyspace,
            "column family meta",
            format!("the walk over the keys stopped: {e}"),
        );
    }
    recorded_counts(db, &found, &map, report);
    if report.format >= 2 {
        expiry_index(db, due, report);
    }
    report.stale_elements = stale_elements(db);
}

/// The expiry index must list exactly the keys with a deadline.
fn expiry_index(
    db: &Families<'_>,
    expected: std::collections::BTreeSet<Vec<u8>>,
    report: &mut Report,
) {
    let place = "expiry index";
    let Some(cf) = db.db.cf_handle(deadlines::FAMILY) else {
        report.problem(Area::Keyspace, place, "its column family is missing");
        return;
    };
    for problem in deadlines::differences(db.db, cf, db.read_opts(), expected) {
        report.problem(Area::Keyspace, place, problem);
    }
}

/// The database map (identity when unrecorded; a damaged one reported).
fn database_map(db: &Families<'_>, report: &mut Report) -> DbMap {
    let Some(cf) = db.raft_cf(RaftCf::Replicated) else {
        return DbMap::IDENTITY;
    };
    match db.db.get_pinned_cf_opt(cf, dbmap::RECORD, &db.read_opts()) {
        Ok(Some(raw)) => DbMap::decode(&raw).unwrap_or_else(|e| {
            report.problem(Area::Counts, "the SWAPDB database map", e.to_string());
            DbMap::IDENTITY
        }),
        Ok(None) => DbMap::IDENTITY,
        Err(e) => {
            report.problem(Area::Counts, "the SWAPDB database map", e.to_string());
            DbMap::IDENTITY
        }
    }
}

/// The key counts a clean close left, against the keys found.
fn recorded_counts(db: &Families<'_>, found: &[KeyCount], map: &DbMap, report: &mut Report) {
    let Some(cf) = db.raft_cf(RaftCf::Replicated) else {
        return;
    };
    for (space, found) in (0..DATABASES).zip(found) {
        let place = format!("key count of db {}", map.logical(space));
        let raw = match db
            .db
            .get_pinned_cf_opt(cf, counts::record(space), &db.read_opts())
        {
            Ok(Some(raw)) => raw,
            Ok(None) => continue,
            Err(e) => {
                report.problem(Area::Counts, place, e.to_string());
                continue;
            }
        };
        match KeyCount::decode(&raw) {
            Ok(recorded) if recorded == *found => {}
            Ok(recorded) => report.problem(
                Area::Counts,
                place,
                format!(
                    "recorded {} keys ({} with an expiry), found {} ({})",
                    recorded.keys, recorded.volatile, found.keys, found.volatile
                ),
            ),
            Err(e) => report.problem(Area::Counts, place, e.to_string()),
        }
    }
}

/// Data records whose key's meta names another version (or no key).
fn stale_elements(db: &Families<'_>) -> u64 {
    let (Some(data), Some(meta)) = (db.cf(Cf::Data), db.cf(Cf::Meta)) else {
        return 0;
    };
    // One key's elements are adjacent: its meta is looked up once.
    let mut last: Option<(Vec<u8>, Option<u64>)> = None;
    let mut stale = 0;
    let mut iter = db.db.raw_iterator_cf_opt(data, db.read_opts());
    iter.seek_to_first();
    while let Some(raw) = iter.key() {
        if let Some((space, key, version, _)) = split_data_key(raw) {
            let mk = crate::storage::meta_key(space, key);
            let current = match &last {
                Some((k, v)) if *k == mk => *v,
                _ => {
                    let v = db
                        .db
                        .get_pinned_cf_opt(meta, &mk, &db.read_opts())
                        .ok()
                        .flatten()
                        .and_then(|raw| Meta::decode(&raw).ok())
                        .and_then(|m| match m.body {
                            MetaBody::Collection(c) => Some(c.version),
                            MetaBody::String(_) => None,
                        });
                    last = Some((mk, v));
                    v
                }
            };
            if current != Some(version) {
                stale += 1;
            }
        }
        iter.next();
    }
    stale
}

/// One collection being checked. Its records are streamed, never held
/// whole: a collection may be larger than memory.
struct Collection<'d, 'k> {
    db: &'d Families<'d>,
    meta: &'k CollectionMeta,
    prefix: Vec<u8>,
    place: String,
}

/// What a visit of a collection's records found wrong.
type Found = Vec<String>;

impl<'d, 'k> Collection<'d, 'k> {
    fn new(
        db: &'d Families<'d>,
        space: u8,
        key: &[u8],
        meta: &'k CollectionMeta,
        place: String,
    ) -> Collection<'d, 'k> {
        Collection {
            db,
            meta,
            prefix: data_prefix(space, key, meta.version),
            place,
        }
    }

    /// Visit every record of `cf` under this version as (sub-key, value);
    /// answers how many there were.
    fn each(
        &self,
        cf: Cf,
        found: &mut Found,
        mut visit: impl FnMut(&[u8], &[u8], &mut Found),
    ) -> u64 {
        let Some(handle) = self.db.cf(cf) else {
            return 0;
        };
        let mut opts = self.db.read_opts();
        opts.set_iterate_lower_bound(self.prefix.clone());
        if let Some(end) = prefix_end(&self.prefix) {
            opts.set_iterate_upper_bound(end);
        }
        let mut iter = self.db.db.raw_iterator_cf_opt(handle, opts);
        iter.seek_to_first();
        let mut n = 0;
        while let (Some(k), Some(v)) = (iter.key(), iter.value()) {
            if let Some(sub) = k.strip_prefix(self.prefix.as_slice()) {
                n += 1;
                visit(sub, v, found);
            }
            iter.next();
        }
        if let Err(e) = iter.status() {
            found.push(format!("cannot read its {} records: {e}", cf.name()));
        }
        n
    }

    /// The record `sub` of `cf` under this version.
    fn get(&self, cf: Cf, sub: &[u8], found: &mut Found) -> Option<Vec<u8>> {
        let handle = self.db.cf(cf)?;
        let key = [self.prefix.as_slice(), sub].concat();
        match self.db.db.get_cf_opt(handle, key, &self.db.read_opts()) {
            Ok(value) => value,
            Err(e) => {
                found.push(format!("cannot read its {} records: {e}", cf.name()));
                None
            }
        }
    }

    fn check(&self, report: &mut Report) {
        let mut found = Found::new();
        let meta = self.meta;
        let counted = match meta.kind {
            KeyType::List => self.check_list(&mut found),
            KeyType::Set if meta.indexed => self.check_numbers(&mut found),
            KeyType::ZSet => self.check_scores(&mut found),
            KeyType::Stream => self.check_stream(&mut found),
            _ => self.each(Cf::Data, &mut found, |_, _, _| {}),
        };
        report.elements += counted;
        if meta.kind != KeyType::Stream && counted != meta.len {
            found.insert(
                0,
                format!(
                    "expected {} elements (the meta's count at version {}), found {counted}",
                    meta.len, meta.version
                ),
            );
        }
        for detail in found {
            report.problem(Area::Keyspace, self.place.clone(), detail);
        }
    }

    /// Every element's index lies in the window (with the count, the
    /// window is then exactly filled).
    fn check_list(&self, found: &mut Found) -> u64 {
        let (head, tail) = (self.meta.head, self.meta.tail);
        self.each(
            Cf::Data,
            found,
            |sub, _, found| match <[u8; 8]>::try_from(sub).map(u64::from_be_bytes) {
                Ok(i) if (head..tail).contains(&i) => {}
                Ok(i) => found.push(format!(
                    "element at index {i}, outside the window [{head}, {tail})"
                )),
                Err(_) => found.push(format!(
                    "element sub-key \"{}\" is not an index",
                    sub.escape_ascii()
                )),
            },
        )
    }

    /// A numbered set: each member's number names it back, `len` numbers.
    fn check_numbers(&self, found: &mut Found) -> u64 {
        let members = self.each(Cf::Data, found, |member, raw, found| {
            let shown = member.escape_ascii();
            let Ok(number) = <[u8; 8]>::try_from(raw).map(u64::from_be_bytes) else {
                found.push(format!("member \"{shown}\" has no number"));
                return;
            };
            match self.get(Cf::ZScore, &number.to_be_bytes(), found) {
                Some(named) if named == member => {}
                Some(named) => found.push(format!(
                    "member \"{shown}\" has number {number}, which names \"{}\"",
                    named.escape_ascii()
                )),
                None => found.push(format!(
                    "member \"{shown}\" has number {number}, which is missing"
                )),
            }
        });
        let numbers = self.each(Cf::ZScore, found, |_, _, _| {});
        if numbers != self.meta.len {
            found.push(format!(
                "expected {} member numbers (the meta's count), found {numbers}",
                self.meta.len
            ));
        }
        members
    }

    /// A sorted set: each member's score is in the index, and each index
    /// entry names a member with that score.
    fn check_scores(&self, found: &mut Found) -> u64 {
        let members = self.each(Cf::Data, found, |member, raw, found| {
            let shown = member.escape_ascii();
            let Ok(score) = <[u8; 8]>::try_from(raw) else {
                found.push(format!("member \"{shown}\" has a damaged score"));
                return;
            };
            let entry = [&score[..], member].concat();
            if self.get(Cf::ZScore, &entry, found).is_none() {
                found.push(format!(
                    "member \"{shown}\" (score {}) is missing from the score index",
                    decode_score(score)
                ));
            }
        });
        let entries = self.each(Cf::ZScore, found, |entry, _, found| {
            let Some((score, member)) = entry.split_first_chunk::<8>() else {
                found.push(format!(
                    "score index entry \"{}\" is too short",
                    entry.escape_ascii()
                ));
                return;
            };
            let shown = member.escape_ascii();
            match self.get(Cf::Data, member, found) {
                Some(stored) if stored == score => {}
                Some(_) => found.push(format!(
                    "score index entry for \"{shown}\" (score {}) disagrees with its member's score",
                    decode_score(*score)
                )),
                None => found.push(format!(
                    "score index entry for \"{shown}\" (score {}) has no member record",
                    decode_score(*score)
                )),
            }
        });
        if entries != self.meta.len {
            found.push(format!(
                "expected {} score index entries (the meta's count), found {entries}",
                self.meta.len
            ));
        }
        members
    }

    /// A stream: entries, their IDs against the header, nodes' live counts.
    fn check_stream(&self, found: &mut Found) -> u64 {
        let mut entries = 0u64;
        let mut live = 0u64;
        let mut first: Option<StreamId> = None;
        let mut last: Option<StreamId> = None;
        self.each(Cf::Data, found, |sub, raw, found| {
            let Some((&tag, mut rest)) = sub.split_first() else {
                return;
            };
            if tag == stream::ENTRY {
                let id = StreamId::take(&mut rest).filter(|_| rest.is_empty());
                let (Some(id), Some(_)) = (id, stream::decode_entry(raw)) else {
                    found.push(format!("damaged stream entry \"{}\"", sub.escape_ascii()));
                    return;
                };
                entries += 1;
                first.get_or_insert(id);
                last = Some(id);
            } else if tag == stream::NODE {
                match stream::decode_node(raw) {
                    Some(node) => live = live.saturating_add(node.live),
                    None => found.push(format!("damaged stream node \"{}\"", sub.escape_ascii())),
                }
            }
        });
        let s = &self.meta.stream;
        let len = self.meta.len;
        if entries != len {
            found.push(format!(
                "expected {len} entries (the meta's length at version {}), found {entries}",
                self.meta.version
            ));
        }
        if live != len {
            found.push(format!(
                "expected its nodes to hold {len} live entries, they count {live}"
            ));
        }
        if let Some(first) = first.filter(|f| *f != s.first_id) {
            found.push(format!(
                "first entry is {first}, the header's first ID is {}",
                s.first_id
            ));
        }
        if let Some(last) = last.filter(|l| *l > s.last_id) {
            found.push(format!(
                "entry {last} is past the header's last ID {}",
                s.last_id
            ));
        }
        entries
    }
}
