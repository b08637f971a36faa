//! Checks on the data directory before RocksDB opens it, so a directory
//! that is corrupt, missing its `CURRENT` file, or holding another program's
//! database is refused with a message instead of being opened (RocksDB would
//! start an empty database over database files it does not know, deleting
//! them as obsolete, and would add Kiwi's column families to a foreign
//! RocksDB database).
//!
//! A directory with Redis's RDB or AOF files and no database of Kiwi's is
//! refused too: Kiwi would look empty to someone who meant to move that data
//! over. A directory holding other files (logs, a pid file, a socket — as
//! pytest-redis and a redis.conf with `dir ./` arrange it) is accepted, as
//! Redis accepts it.

use std::path::Path;

use rocksdb::{Options, DB};

/// What to do about a directory Kiwi cannot use.
const CORRUPT_HINT: &str =
    "the data directory is damaged: restore it from a backup, or move it aside to start empty";

const FOREIGN_DEFAULT_FAMILY: &str = "it holds a RocksDB database that is not Kiwi's \
     (data in its default column family); give Kiwi a directory of its own";

/// Make sure `path` is a directory Kiwi may open: create it if missing,
/// refuse a file in its place, an unreadable directory, database files
/// without a `CURRENT` file, and a RocksDB database that is not Kiwi's.
pub(super) fn prepare(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => {
            return Err("it is a file, not a directory (give --dir a directory)".into())
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return std::fs::create_dir_all(path).map_err(|e| format!("cannot create it: {e}"));
        }
        Err(e) => return Err(format!("cannot read it: {e}")),
    }
    let entries = std::fs::read_dir(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read it: {e}"))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    if names.iter().any(|n| n == "CURRENT") {
        return check_database(path);
    }
    if let Some(redis_file) = names.iter().find(|n| is_redis_file(n)) {
        return Err(format!(
            "it holds Redis's data ({redis_file}), which Kiwi does not read; \
             give Kiwi a directory of its own"
        ));
    }
    let mut data_files: Vec<&String> = names.iter().filter(|n| is_data_file(n)).collect();
    if data_files.is_empty() {
        return Ok(());
    }
    data_files.sort();
    data_files.truncate(3);
    let shown: Vec<&str> = data_files.iter().map(|s| s.as_str()).collect();
    Err(format!(
        "it holds database files ({}, ...) but no CURRENT file: it is corrupt or \
         another program's ({CORRUPT_HINT})",
        shown.join(", ")
    ))
}

/// RocksDB's and LevelDB's files that hold data, all named by number:
/// tables (`000012.sst`, `000012.ldb`), write-ahead logs (`000013.log`)
/// and blobs.
fn is_data_file(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    let numbered = !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit());
    numbered && matches!(ext, "sst" | "ldb" | "blob" | "log")
}

/// Redis's persistence: RDB snapshots and the append-only file(s).
fn is_redis_file(name: &str) -> bool {
    name.ends_with(".rdb") || name.ends_with(".aof") || name == "appendonlydir"
}

/// An existing RocksDB database must have only Kiwi's column families, and
/// nothing in the default one (Kiwi writes only its format record there,
/// once the other families exist).
fn check_database(path: &Path) -> Result<(), String> {
    let families = DB::list_cf(&Options::default(), path).map_err(|e| explain(e.into_string()))?;
    let known = |name: &str| {
        name == rocksdb::DEFAULT_COLUMN_FAMILY_NAME
            || super::family_names().any(|known| known == name)
    };
    let foreign: Vec<&str> = families
        .iter()
        .map(String::as_str)
        .filter(|n| !known(n))
        .collect();
    if !foreign.is_empty() {
        return Err(format!(
            "it holds a RocksDB database that is not Kiwi's (column families {}); \
             give Kiwi a directory of its own",
            foreign.join(", ")
        ));
    }
    // Kiwi's own databases never have only the default family once they
    // opened: a database like that is another program's, or a Kiwi
    // directory whose first start stopped half-way (then it is empty).
    if families
        .iter()
        .all(|n| n == rocksdb::DEFAULT_COLUMN_FAMILY_NAME)
    {
        let db = DB::open_for_read_only(&read_only_options(), path, false)
            .map_err(|e| explain(e.into_string()))?;
        let first = db.iterator(rocksdb::IteratorMode::Start).next();
        match first {
            None => {}
            Some(Ok(_)) => return Err(FOREIGN_DEFAULT_FAMILY.into()),
            Some(Err(e)) => return Err(explain(e.into_string())),
        }
    }
    Ok(())
}

/// Options for opening a directory read-only without writing to it:
/// RocksDB's info log goes to `tracing` instead of a new `LOG` file (a
/// file-backed log would rotate the server's own `LOG` aside).
pub(crate) fn read_only_options() -> Options {
    let mut opts = Options::default();
    opts.set_info_logger(rocksdb::InfoLogger::new_callback_logger(
        rocksdb::LogLevel::Warn,
        |_, message| tracing::debug!(target: "rocksdb", "{}", message.trim_end()),
    ));
    opts
}

/// RocksDB's reason for refusing to open, with what it means for Kiwi.
pub(crate) fn explain(reason: String) -> String {
    let hint = if reason.contains("Corruption") {
        CORRUPT_HINT
    } else if reason.contains("LOCK") && reason.contains("temporarily unavailable") {
        "another process has it open"
    } else if reason.contains("Permission denied") {
        "check the permissions of the directory and its files"
    } else if reason.contains("Read-only file system") {
        "the file system is mounted read-only"
    } else if reason.contains("No space left") {
        "the disk is full"
    } else {
        return reason;
    };
    format!("{reason} ({hint})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_files_are_told_from_other_files() {
        for name in ["000012.sst", "000005.ldb", "000013.log", "000001.blob"] {
            assert!(is_data_file(name), "{name}");
        }
        for name in [
            "LOG",
            "redis-server.7000.log",
            "kiwi.log",
            "CURRENT",
            "notes.txt",
            ".sst",
        ] {
            assert!(!is_data_file(name), "{name}");
        }
        assert!(is_redis_file("dump.rdb") && is_redis_file("appendonly.aof"));
        assert!(is_redis_file("appendonlydir") && !is_redis_file("redis.conf"));
    }

    #[test]
    fn explanations_say_what_to_do() {
        assert!(explain("Corruption: bad magic".into()).contains("restore it from a backup"));
        assert!(explain(
            "IO error: While lock file: /d/LOCK: Resource temporarily unavailable".into()
        )
        .contains("another process has it open"));
        assert_eq!(explain("Invalid argument: x".into()), "Invalid argument: x");
    }
}
