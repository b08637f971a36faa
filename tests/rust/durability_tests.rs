//! appendfsync as a setting, and the data-directory checks at open that
//! need a database only Rust can make (another program's RocksDB).

use kiwi::cli::{parse_invocation, Invocation};
use kiwi::config::RuntimeConfig;
use kiwi::storage::{Appendfsync, Storage};

fn appendfsync_of(argv: &[&str]) -> Result<Appendfsync, String> {
    let argv: Vec<String> = std::iter::once("kiwi-server")
        .chain(argv.iter().copied())
        .map(String::from)
        .collect();
    match parse_invocation(&argv)? {
        Invocation::Run(s) => Ok(s.config.appendfsync),
        other => Err(format!("not a run: {other:?}")),
    }
}

#[test]
fn appendfsync_directive_and_config_set() {
    assert_eq!(appendfsync_of(&[]), Ok(Appendfsync::EverySec));
    assert_eq!(
        appendfsync_of(&["--appendfsync", "always"]),
        Ok(Appendfsync::Always)
    );
    assert_eq!(
        appendfsync_of(&["--appendfsync", "NO"]),
        Ok(Appendfsync::No)
    );
    let err = appendfsync_of(&["--appendfsync", "sometimes"]).expect_err("refused");
    assert!(
        err.contains("argument(s) must be one of the following: everysec, always, no"),
        "{err}"
    );

    let mut config = RuntimeConfig::new("unused");
    config.set("appendfsync", "always").expect("always");
    assert_eq!(config.appendfsync, Appendfsync::Always);
    assert!(config
        .entries()
        .contains(&("appendfsync", "always".to_string())));
    let err = config.set("appendfsync", "").expect_err("empty");
    assert_eq!(
        err.to_string(),
        "argument(s) must be one of the following: everysec, always, no"
    );
    assert_eq!(config.appendfsync, Appendfsync::Always, "unchanged");
}

#[test]
fn storage_follows_the_policy_it_is_given() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open_with(dir.path(), Appendfsync::Always).expect("open");
    assert_eq!(storage.appendfsync(), Appendfsync::Always);
    storage.set_appendfsync(Appendfsync::No);
    assert_eq!(storage.appendfsync(), Appendfsync::No);
    let mut ctx = storage.ctx(0, 0);
    ctx.put_meta(
        b"k",
        &kiwi::storage::Meta::string(bytes::Bytes::from_static(b"v"), None),
    );
    ctx.commit().expect("write");
    storage.check_writable().expect("writable");
    assert!(!storage.write_failed());
}

/// Another program's RocksDB database: its column families, its data.
fn foreign_database(path: &std::path::Path, families: &[&str]) {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let db = rocksdb::DB::open_cf(&opts, path, families).expect("foreign db");
    db.put(b"their key", b"their value").expect("put");
    for family in families {
        let cf = db.cf_handle(family).expect("family");
        db.put_cf(cf, b"k", b"v").expect("put");
    }
}

fn files_of(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(path)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            p.is_file() && !name.starts_with("LOG") && name != "LOCK"
        })
        .map(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy().into();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn another_programs_rocksdb_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    foreign_database(dir.path(), &["users", "orders"]);
    let before = files_of(dir.path());
    let err = Storage::open(dir.path()).expect_err("foreign");
    let text = err.to_string();
    assert!(
        text.contains("a RocksDB database that is not Kiwi's (column families users, orders)"),
        "{text}"
    );
    assert_eq!(files_of(dir.path()), before, "no column family added");
}

#[test]
fn another_programs_rocksdb_with_only_the_default_family_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    foreign_database(dir.path(), &[]);
    let err = Storage::open(dir.path()).expect_err("foreign");
    assert!(
        err.to_string()
            .contains("not Kiwi's (data in its default column family)"),
        "{err}"
    );
}

#[test]
fn an_empty_rocksdb_with_only_the_default_family_opens() {
    // What a first start killed half-way may leave: nothing to lose.
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        rocksdb::DB::open(&opts, dir.path()).expect("empty db");
    }
    Storage::open(dir.path()).expect("opens");
}
