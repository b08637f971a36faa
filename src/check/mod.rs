//! `kiwi-server --check-dir DIR`: verify a data directory offline.
//!
//! The directory is opened read-only (RocksDB's `open_for_read_only`,
//! which writes nothing) and only after making sure no process holds its
//! `LOCK`: a live server's directory changes under the reader, so it is
//! refused. Then:
//!
//! 1. every record of every column family is read with block checksums
//!    verified ([`Area::Checksum`]);
//! 2. the disk format record is read ([`crate::storage::format`]);
//! 3. every key's metadata is checked against its elements
//!    ([`keyspace`]): counts at the meta's version, the sorted-set score
//!    index, set numbering, list windows, stream entries and nodes, and
//!    the key counts a clean close recorded;
//! 4. for a Raft node's directory, the log against its state ([`raft`]).
//!
//! [`check_dir`] returns a [`Report`]; [`run_cli`] prints it and answers
//! the exit code (0 clean, 1 problems found, 2 the directory could not be
//! checked).

mod keyspace;
mod raft;
mod report;

use std::path::{Path, PathBuf};

use rocksdb::{Options, ReadOptions, DB};

pub use report::{Area, Problem, Report};

use crate::storage::format;
use crate::storage::{Cf, RaftCf};

/// Why a directory could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0}: no such directory")]
    Missing(PathBuf),
    #[error("{0}: not a directory")]
    NotDirectory(PathBuf),
    #[error("{0}: not a Kiwi data directory (it has no RocksDB CURRENT file)")]
    NotDatabase(PathBuf),
    #[error(
        "{path}: in use by process {pid} (it holds the directory's LOCK): stop the server \
         first, or check a copy (SAVE writes one)"
    )]
    InUse { path: PathBuf, pid: i32 },
    #[error("{path}: {reason}")]
    Refused { path: PathBuf, reason: String },
    #[error("cannot check {path}: {reason}")]
    Open { path: PathBuf, reason: String },
}

/// Print the report of `path` and answer the exit code.
pub fn run_cli(path: &Path) -> i32 {
    match check_dir(path) {
        Ok(report) => {
            println!("{report}");
            if report.is_clean() {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("kiwi-server: --check-dir {e}");
            2
        }
    }
}

/// Check the directory at `path` without changing it. A process holding
/// its lock is detected only if it is another process (POSIX locks): do
/// not check a directory this process has open.
pub fn check_dir(path: &Path) -> Result<Report, CheckError> {
    let path = path.to_path_buf();
    match std::fs::metadata(&path) {
        Ok(m) if !m.is_dir() => return Err(CheckError::NotDirectory(path)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CheckError::Missing(path))
        }
        Err(e) => {
            return Err(CheckError::Open {
                path,
                reason: e.to_string(),
            })
        }
    }
    if !path.join("CURRENT").exists() {
        return Err(CheckError::NotDatabase(path));
    }
    let open_err = |reason: String| CheckError::Open {
        path: path.clone(),
        reason: crate::storage::directory::explain(reason),
    };
    match lock_holder(&path) {
        Ok(None) => {}
        Ok(Some(pid)) => return Err(CheckError::InUse { path, pid }),
        Err(e) => return Err(open_err(format!("cannot test its LOCK: {e}"))),
    }
    let families =
        DB::list_cf(&Options::default(), &path).map_err(|e| open_err(e.into_string()))?;
    let opts = crate::storage::directory::read_only_options();
    let db = DB::open_cf_for_read_only(&opts, &path, &families, false)
        .map_err(|e| open_err(e.into_string()))?;
    let mut report = Report {
        path: path.clone(),
        ..Report::default()
    };
    read_format(&db, &mut report).map_err(|reason| CheckError::Refused {
        path: path.clone(),
        reason,
    })?;
    let missing: Vec<&str> = Cf::ALL
        .iter()
        .map(|cf| cf.name())
        .chain(RaftCf::ALL.iter().map(|cf| cf.name()))
        .filter(|name| !families.iter().any(|f| f == name))
        .collect();
    if !missing.is_empty() {
        return Err(CheckError::Refused {
            path,
            reason: format!(
                "not a Kiwi data directory (no column families {})",
                missing.join(", ")
            ),
        });
    }
    for name in &families {
        verify_family(&db, name, &mut report);
    }
    let db = Families::new(&db);
    keyspace::check(&db, &mut report);
    raft::check(&db, &mut report);
    Ok(report)
}

/// Which process holds the POSIX lock RocksDB takes on `DIR/LOCK`, if any.
fn lock_holder(path: &Path) -> std::io::Result<Option<i32>> {
    use std::os::fd::AsRawFd;
    let file = match std::fs::File::open(path.join("LOCK")) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // SAFETY: `flock` is plain data, all zeroes is a valid value; fcntl
    // F_GETLK only reads the file's lock table into it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: a valid open descriptor and a valid `flock` for F_GETLK.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
    if rc == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((lock.l_type != libc::F_UNLCK as libc::c_short).then_some(lock.l_pid))
}

/// The disk format record: a newer format than this binary knows is
/// refused, a damaged one reported.
fn read_format(db: &DB, report: &mut Report) -> Result<(), String> {
    let raw = db.get_pinned(format::RECORD).map_err(|e| e.into_string())?;
    report.format_recorded = raw.is_some();
    match format::accept(raw.as_deref()) {
        Ok(recorded) => report.format = recorded.version(),
        Err(reason) if reason.contains("newer Kiwi") => return Err(reason),
        Err(reason) => report.problem(Area::Format, "format record", reason),
    }
    Ok(())
}

/// Read every record of family `name` with block checksums verified.
fn verify_family(db: &DB, name: &str, report: &mut Report) {
    let Some(cf) = db.cf_handle(name) else {
        return;
    };
    let mut opts = ReadOptions::default();
    opts.set_verify_checksums(true);
    opts.fill_cache(false);
    let mut iter = db.raw_iterator_cf_opt(cf, opts);
    iter.seek_to_first();
    let mut records = 0u64;
    while iter.valid() {
        records += 1;
        iter.next();
    }
    let verified = match iter.status() {
        Ok(()) => true,
        Err(e) => {
            report.problem(
                Area::Checksum,
                format!("column family {name}"),
                format!("reading stopped after {records} records: {e}"),
            );
            false
        }
    };
    report.families.push((name.to_string(), records, verified));
}

/// The opened database with Kiwi's families looked up once.
pub(crate) struct Families<'a> {
    pub db: &'a DB,
}

impl<'a> Families<'a> {
    fn new(db: &'a DB) -> Families<'a> {
        Families { db }
    }

    /// A data family (checked to exist before the passes run).
    pub fn cf(&self, cf: Cf) -> Option<&'a rocksdb::ColumnFamily> {
        self.db.cf_handle(cf.name())
    }

    pub fn raft_cf(&self, cf: RaftCf) -> Option<&'a rocksdb::ColumnFamily> {
        self.db.cf_handle(cf.name())
    }

    /// Read options that verify checksums and leave the cache alone.
    pub fn read_opts(&self) -> ReadOptions {
        let mut opts = ReadOptions::default();
        opts.set_verify_checksums(true);
        opts.fill_cache(false);
        opts
    }
}
