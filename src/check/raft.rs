#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! A Raft node's log against its state (`raft/log_store.rs`,
//! `raft/state_machine.rs`):
//! - every record of `raft_state` that Kiwi names decodes;
//! - the log's entries decode, each under its own index, the indices
//!   contiguous from the purge point + 1 (from 0 when nothing was purged)
//!   to the last, their terms never decreasing;
//! - a log with entries has a vote, whose term is at least the last
//!   entry's;
//! - committed and applied are not beyond the last log id, and where the
//!   log still holds their index, it holds the same entry;
//! - the current snapshot has its data, which parses, and covers no more
//!   than what is applied; the purge point is not past it.

use openraft::{Entry, LogId, SnapshotMeta, StoredMembership, Vote};
use serde::de::DeserializeOwned;

use crate::raft::identity::DirIdentity;
use crate::raft::{decode, snapshot_records, state_key, NodeId, TypeConfig};
use crate::storage::RaftCf;

use super::{Area, Families, Report};

type Id = LogId<NodeId>;

/// Check the Raft records, if the directory is a Raft node's.
pub(super) fn check(db: &Families<'_>, report: &mut Report) {
    let (Some(state_cf), Some(log_cf)) = (db.raft_cf(RaftCf::State), db.raft_cf(RaftCf::Log))
    else {
        return;
    };
    let state = State { db, cf: state_cf };
    let identity: Option<DirIdentity> = state.get(state_key::IDENTITY, report);
    let has_state = has_records(db, state_cf) || has_records(db, log_cf);
    report.raft = identity.is_some() || has_state;
    if !report.raft {
        return;
    }
    let vote: Option<Vote<NodeId>> = state.get(state_key::VOTE, report);
    let committed: Option<Option<Id>> = state.get(state_key::COMMITTED, report);
    let committed = committed.flatten();
    let purged: Option<Id> = state.get(state_key::LAST_PURGED, report);
    let applied: Option<Id> = state.get(state_key::LAST_APPLIED, report);
    let _: Option<StoredMembership<NodeId, openraft::BasicNode>> =
        state.get(state_key::MEMBERSHIP, report);
    let snapshot: Option<SnapshotMeta<NodeId, openraft::BasicNode>> =
        state.get(state_key::SNAPSHOT_META, report);

    let log = walk_log(db, log_cf, purged, report);
    // openraft's last log id: the last entry, else the purge point.
    let last = log.last.or(purged);
    match (&vote, log.last) {
        (None, Some(_)) => {
            report.problem(Area::Raft, "vote", "missing, though the log holds entries")
        }
        (Some(vote), Some(last_entry)) if vote.leader_id.term < last_entry.leader_id.term => report
            .problem(
                Area::Raft,
                "vote",
                format!(
                    "term {} is older than the last entry's ({})",
                    vote.leader_id.term, last_entry.leader_id.term
                ),
            ),
        _ => {}
    }
    for (name, id) in [("committed", committed), ("last applied", applied)] {
        let Some(id) = id else { continue };
        if Some(id) > last {
            report.problem(
                Area::Raft,
                name,
                format!("{id} is beyond the last log id {}", shown(last)),
            );
        } else if let Some(entry) = log.at(id.index).filter(|e| *e != id) {
            report.problem(
                Area::Raft,
                name,
                format!("{id}, but the log holds {entry} at index {}", id.index),
            );
        }
    }
    if let Some(meta) = &snapshot {
        check_snapshot(&state, meta, applied, purged, report);
    }
    report.raft_summary = Some(format!(
        "node {}, log {} entries ({}), purged through {}, committed {}, applied {}, vote {}, snapshot {}",
        identity.map_or_else(|| "without identity".to_string(), |i| i.node_id.to_string()),
        log.count,
        match (log.first, log.last) {
            (Some(first), Some(last)) => format!("{}..={}", first.index, last.index),
            _ => "empty".to_string(),
        },
        shown(purged),
        shown(committed),
        shown(applied),
        vote.map_or_else(|| "none".to_string(), |v| v.to_string()),
        snapshot
            .as_ref()
            .map_or_else(|| "none".to_string(), |m| shown(m.last_log_id)),
    ));
}

fn shown(id: Option<Id>) -> String {
    id.map_or_else(|| "none".to_string(), |id| id.to_string())
}

fn has_records(db: &Families<'_>, cf: &rocksdb::ColumnFamily) -> bool {
    let mut iter = db.db.raw_iterator_cf_opt(cf, db.read_opts());
    iter.seek_to_first();
    iter.valid()
}

/// The `raft_state` family, read record by record.
struct State<'a> {
    db: &'a Families<'a>,
    cf: &'a rocksdb::ColumnFamily,
}

impl State<'_> {
    fn raw(&self, key: &[u8], report: &mut Report) -> Option<Vec<u8>> {
        match self.db.db.get_cf_opt(self.cf, key, &self.db.read_opts()) {
            Ok(raw) => raw,
            Err(e) => {
                report.problem(Area::Raft, record_name(key), e.to_string());
                None
            }
        }
    }

    /// The record `key`, decoded; a damaged one is reported and `None`.
    fn get<T: DeserializeOwned>(&self, key: &[u8], report: &mut Report) -> Option<T> {
        let raw = self.raw(key, report)?;
        match decode(&raw) {
            Ok(value) => Some(value),
            Err(e) => {
                report.problem(Area::Raft, record_name(key), e.to_string());
                None
            }
        }
    }
}

fn record_name(key: &[u8]) -> String {
    format!("record {}", key.escape_ascii())
}

/// What the walk over the log found.
#[derive(Default)]
struct Log {
    count: u64,
    first: Option<Id>,
    last: Option<Id>,
    /// Every entry's id by the index it is stored under, in order:
    /// checked against committed and applied.
    ids: Vec<(u64, Id)>,
}

impl Log {
    fn at(&self, index: u64) -> Option<Id> {
        let at = self.ids.binary_search_by_key(&index, |(i, _)| *i).ok()?;
        self.ids.get(at).map(|(_, id)| *id)
    }
}

fn walk_log(
    db: &Families<'_>,
    cf: &rocksdb::ColumnFamily,
    purged: Option<Id>,
    report: &mut Report,
) -> Log {
    let mut log = Log::default();
    let mut expected = purged.map_or(0, |p| p.index.saturating_add(1));
    let mut iter = db.db.raw_iterator_cf_opt(cf, db.read_opts());
    iter.seek_to_first();
    while let (Some(key), Some(raw)) = (iter.key(), iter.value()) {
        let Ok(index) = <[u8; 8]>::try_from(key).map(u64::from_be_bytes) else {
            report.problem(
                Area::Raft,
                format!("log key \"{}\"", key.escape_ascii()),
                "not a log index",
            );
            iter.next();
            continue;
        };
        let place = format!("log entry {index}");
        match decode::<Entry<TypeConfig>>(raw) {
            Err(e) => report.problem(Area::Raft, place, format!("does not decode: {e}")),
            Ok(entry) => {
                let id = entry.log_id;
                if id.index != index {
                    report.problem(
                        Area::Raft,
                        place.clone(),
                        format!("holds the entry of index {}", id.index),
                    );
                }
                if index != expected {
                    let detail = match purged {
                        Some(p) if log.first.is_none() && index <= p.index => {
                            format!("still in the log, though the log was purged through {p}")
                        }
                        _ if log.first.is_none() => format!(
                            "is the first entry, expected {expected} (purged through {})",
                            shown(purged)
                        ),
                        _ => format!("follows a gap: expected index {expected}"),
                    };
                    report.problem(Area::Raft, place.clone(), detail);
                }
                if let Some(prev) = log.last.filter(|p| p.leader_id.term > id.leader_id.term) {
                    report.problem(
                        Area::Raft,
                        place,
                        format!(
                            "term {} is older than the previous entry's ({})",
                            id.leader_id.term, prev.leader_id.term
                        ),
                    );
                }
                log.first.get_or_insert(id);
                log.last = Some(id);
                log.ids.push((index, id));
            }
        }
        log.count += 1;
        expected = index.saturating_add(1);
        iter.next();
    }
    if let Err(e) = iter.status() {
        report.problem(
            Area::Raft,
            "column family raft_log",
            format!("the walk over the log stopped: {e}"),
        );
    }
    log
}

fn check_snapshot(
    state: &State<'_>,
    meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
    applied: Option<Id>,
    purged: Option<Id>,
    report: &mut Report,
) {
    let place = format!("snapshot {}", meta.snapshot_id);
    match state.raw(state_key::SNAPSHOT_DATA, report) {
        None => report.problem(Area::Raft, place.clone(), "its data is missing"),
        Some(data) => {
            if let Err(e) = snapshot_records(&data) {
                report.problem(Area::Raft, place.clone(), format!("its data: {e}"));
            }
        }
    }
    if meta.last_log_id > applied {
        report.problem(
            Area::Raft,
            place.clone(),
            format!(
                "covers {}, beyond the last applied {}",
                shown(meta.last_log_id),
                shown(applied)
            ),
        );
    }
    if purged > meta.last_log_id {
        report.problem(
            Area::Raft,
            place,
            format!(
                "covers {}, but the log was purged through {}",
                shown(meta.last_log_id),
                shown(purged)
            ),
        );
    }
}
