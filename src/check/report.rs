//! What `--check-dir` found: the problems, each naming where and what was
//! expected and found, and the figures of what was read; printed as the
//! report the command shows.

use std::fmt;
use std::path::PathBuf;

use crate::storage::KeyType;

/// The part of the directory a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    /// RocksDB could not read a block (checksum mismatch, truncated file).
    Checksum,
    /// The disk format record.
    Format,
    /// A key's metadata against its elements.
    Keyspace,
    /// The key counts a clean close recorded, or the database map.
    Counts,
    /// The Raft log, vote and state records.
    Raft,
}

impl Area {
    pub fn name(self) -> &'static str {
        match self {
            Area::Checksum => "checksum",
            Area::Format => "format",
            Area::Keyspace => "keyspace",
            Area::Counts => "counts",
            Area::Raft => "raft",
        }
    }
}

/// One thing wrong: where (`place`) and what (`detail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub area: Area,
    pub place: String,
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PROBLEM [{}] {}: {}",
            self.area.name(),
            self.place,
            self.detail
        )
    }
}

/// The place of a key in a report: `db 0 key "name" (hash)`.
pub fn key_place(db: u8, key: &[u8], kind: Option<KeyType>) -> String {
    match kind {
        Some(kind) => format!("db {db} key \"{}\" ({})", key.escape_ascii(), kind.name()),
        None => format!("db {db} key \"{}\"", key.escape_ascii()),
    }
}

/// At most this many problems are listed; the summary counts them all.
const LISTED: usize = 1000;

/// The whole check.
#[derive(Debug, Default)]
pub struct Report {
    pub path: PathBuf,
    /// The directory's disk format, and whether it was recorded.
    pub format: u32,
    pub format_recorded: bool,
    pub raft: bool,
    /// Column families read: name, records, whether every block read
    /// passed its checksum.
    pub families: Vec<(String, u64, bool)>,
    /// Keys by type name, collections' elements, elements of older
    /// versions waiting for compaction.
    pub keys: Vec<(&'static str, u64)>,
    pub elements: u64,
    pub stale_elements: u64,
    /// One line on the Raft log and state, for a Raft directory.
    pub raft_summary: Option<String>,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn problem(&mut self, area: Area, place: impl Into<String>, detail: impl Into<String>) {
        self.problems.push(Problem {
            area,
            place: place.into(),
            detail: detail.into(),
        });
    }

    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Count one key of type `kind`.
    pub fn count_key(&mut self, kind: &'static str) {
        match self.keys.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.keys.push((kind, 1)),
        }
    }

    fn total_keys(&self) -> u64 {
        self.keys.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.raft { "raft node" } else { "standalone" };
        let recorded = if self.format_recorded {
            ""
        } else {
            ", not recorded: written before Kiwi recorded formats"
        };
        writeln!(
            f,
            "kiwi-server --check-dir {}: {kind} directory, disk format {}{recorded}",
            self.path.display(),
            self.format
        )?;
        for (name, records, verified) in &self.families {
            let outcome = match verified {
                true => "block checksums verified",
                false => "unreadable past that (see below)",
            };
            writeln!(f, "family {name}: {records} records, {outcome}")?;
        }
        let mut keys = self.keys.clone();
        keys.sort();
        let by_type: Vec<String> = keys.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(
            f,
            "keyspace: {} keys ({}), {} elements, {} elements of older versions awaiting compaction",
            self.total_keys(),
            if by_type.is_empty() {
                "none".to_string()
            } else {
                by_type.join(", ")
            },
            self.elements,
            self.stale_elements
        )?;
        if let Some(raft) = &self.raft_summary {
            writeln!(f, "raft: {raft}")?;
        }
        for problem in self.problems.iter().take(LISTED) {
            writeln!(f, "{problem}")?;
        }
        if let Some(more) = self.problems.len().checked_sub(LISTED).filter(|n| *n > 0) {
            writeln!(f, "... and {more} more problems")?;
        }
        if self.is_clean() {
            let records: u64 = self.families.iter().map(|(_, n, _)| n).sum();
            write!(
                f,
                "summary: clean: {} keys, {records} records in {} column families, no problems",
                self.total_keys(),
                self.families.len()
            )
        } else {
            let mut areas: Vec<(Area, usize)> = Vec::new();
            for p in &self.problems {
                match areas.iter_mut().find(|(a, _)| *a == p.area) {
                    Some((_, n)) => *n += 1,
                    None => areas.push((p.area, 1)),
                }
            }
            areas.sort();
            let areas: Vec<String> = areas
                .iter()
                .map(|(a, n)| format!("{n} {}", a.name()))
                .collect();
            write!(
                f,
                "summary: {} problem{} ({}) in {}",
                self.problems.len(),
                if self.problems.len() == 1 { "" } else { "s" },
                areas.join(", "),
                self.path.display()
            )
        }
    }
}
