//! The data directory's format version and `kiwi-server --check-dir`:
//! a directory of a newer format is refused untouched, an unrecorded one
//! is format 1 and gets the record, the directories committed under
//! tests/data/disk-format-1 open and read exactly; the check passes a
//! clean directory (standalone and Raft) and names each corruption.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bytes::Bytes;
use kiwi::raft::{LocalCluster, RaftTiming};
use kiwi::resp::Reply;
use kiwi::storage::{meta_key, Meta, MetaBody, DISK_FORMAT};
use kiwi::{Engine, RuntimeConfig};
use rocksdb::{Options, DB};

use crate::common::{resp_cmd as cmd, wait_until};

const KIWI_SERVER: &str = env!("CARGO_BIN_EXE_kiwi-server");

/// Kiwi's column families, to open a directory with RocksDB directly.
const FAMILIES: [&str; 7] = [
    "default",
    "meta",
    "data",
    "zscore",
    "raft_log",
    "raft_state",
    "raft_replicated",
];

/// `kiwi-server ARGS` run to completion.
fn kiwi_server(args: &[&str]) -> Output {
    crate::common::run_kiwi_server(args, Duration::from_secs(60), "did not finish")
}

/// `kiwi-server --check-dir DIR`: (exit code, stdout, stderr).
fn check_dir(dir: &Path) -> (Option<i32>, String, String) {
    let out = kiwi_server(&["--check-dir", &dir.display().to_string()]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn words(parts: &[&str]) -> Vec<Bytes> {
    parts
        .iter()
        .map(|p| Bytes::copy_from_slice(p.as_bytes()))
        .collect()
}

/// A reply as text: bulks as themselves, arrays in brackets.
fn text(reply: &Reply) -> String {
    match reply {
        Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Reply::Int(n) => n.to_string(),
        Reply::Nil | Reply::NilArray => "(nil)".into(),
        Reply::Array(items) | Reply::Set(items) => {
            let inner: Vec<String> = items.iter().map(text).collect();
            format!("[{}]", inner.join(" "))
        }
        Reply::Map(pairs) => {
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{} {}", text(k), text(v)))
                .collect();
            format!("[{}]", inner.join(" "))
        }
        Reply::Double(d) => d.to_string(),
        Reply::Status(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

/// Run commands on an engine, each reply as [`text`].
fn run_all(engine: &Engine, commands: &[&[&str]]) -> Vec<String> {
    let mut session = engine.local_session();
    commands
        .iter()
        .map(|c| text(&engine.execute(&mut session, &words(c))))
        .collect()
}

/// Keys of every type, written into a fresh standalone directory.
const WRITES: &[&[&str]] = &[
    &["SET", "s", "v"],
    &["SET", "ttl", "t", "PXAT", "4102444800000"],
    &["HSET", "h", "f1", "a", "f2", "b", "f3", "c"],
    &["RPUSH", "l", "x", "y", "z"],
    &["SADD", "set", "m1", "m2", "m3"],
    &["ZADD", "z", "1", "a", "2.5", "b", "-3", "c"],
    &["XADD", "st", "1-1", "k", "v1"],
    &["XADD", "st", "2-1", "k", "v2"],
    &["XGROUP", "CREATE", "st", "g", "0"],
];

fn standalone_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(RuntimeConfig::new(dir.path())).expect("open");
    for reply in run_all(&engine, WRITES) {
        assert!(!reply.contains("Error"), "{reply}");
    }
    drop(engine);
    dir
}

/// Every file under `dir` with its bytes.
fn snapshot_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            out.insert(path.clone(), std::fs::read(&path).expect("read file"));
        }
    }
    out
}

fn open_raw(dir: &Path) -> DB {
    let families = DB::list_cf(&Options::default(), dir).expect("list the families");
    DB::open_cf(&Options::default(), dir, families).expect("open with rocksdb")
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

#[test]
fn a_directory_records_its_format_and_a_newer_one_is_refused_untouched() {
    let dir = standalone_dir();
    {
        let db = open_raw(dir.path());
        let recorded = db.get(b"kiwi.format").expect("read");
        assert_eq!(recorded, Some(DISK_FORMAT.to_string().into_bytes()));
        db.put(b"kiwi.format", (DISK_FORMAT + 1).to_string())
            .expect("write a newer format");
    }
    let before = snapshot_files(dir.path());
    let expected = format!(
        "written by a newer Kiwi (disk format {}); this binary reads formats up to {DISK_FORMAT}: \
         upgrade kiwi-server",
        DISK_FORMAT + 1
    );
    let err = Engine::open(RuntimeConfig::new(dir.path())).expect_err("a newer format");
    assert!(err.to_string().contains(&expected), "{err}");
    let out = kiwi_server(&["--dir", &dir.path().display().to_string(), "--port", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
    let (code, _, stderr) = check_dir(dir.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        before == snapshot_files(dir.path()),
        "the refused directory changed"
    );
}

#[test]
fn a_directory_without_the_record_is_format_1_and_gets_it() {
    let dir = standalone_dir();
    open_raw(dir.path())
        .delete(b"kiwi.format")
        .expect("delete the record");
    let (code, out, err) = check_dir(dir.path());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("disk format 1, not recorded: written before Kiwi recorded formats"),
        "{out}"
    );
    let engine = Engine::open(RuntimeConfig::new(dir.path())).expect("open");
    let replies = run_all(&engine, &[&["GET", "s"], &["INFO", "server"]]);
    assert_eq!(replies[0], "v");
    // Format 1, upgraded to this binary's at open.
    let current = format!("kiwi_disk_format:{DISK_FORMAT}");
    assert!(replies[1].contains(&current), "{}", replies[1]);
    drop(engine);
    let recorded = open_raw(dir.path()).get(b"kiwi.format").expect("read");
    assert_eq!(recorded, Some(DISK_FORMAT.to_string().into_bytes()));
}

/// What the committed directories hold (tests/data/disk-format-1/make.sh
/// wrote them), and what reading them must answer.
const FIXTURE_READS: &[(&[&str], &str)] = &[
    (&["GET", "s"], "v"),
    (&["PEXPIRETIME", "ttl"], "4102444800000"),
    (&["HGETALL", "h"], "[f1 a f2 b f3 c]"),
    (&["LRANGE", "l", "0", "-1"], "[x y z]"),
    (&["SMEMBERS", "set"], "[m1 m2 m3]"),
    (
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        "[c -3 a 1 b 2.5]",
    ),
    (&["XRANGE", "st", "-", "+"], "[[1-1 [k v1]] [2-1 [k v2]]]"),
    (
        &["XINFO", "GROUPS", "st"],
        "[[name g consumers 0 pending 0 last-delivered-id 0-0 entries-read (nil) lag 2]]",
    ),
    (&["DBSIZE"], "7"),
    (&["SELECT", "1"], "OK"),
    (&["GET", "in-db-1"], "one"),
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/disk-format-1")
        .join(name)
}

#[test]
fn the_committed_format_1_standalone_directory_reads_exactly() {
    let committed = fixture("standalone");
    let before = snapshot_files(&committed);
    let (code, out, err) = check_dir(&committed);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("standalone directory, disk format 1\n"),
        "{out}"
    );
    assert!(
        before == snapshot_files(&committed),
        "--check-dir changed it"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&committed, dir.path());
    let engine = Engine::open(RuntimeConfig::new(dir.path())).expect("open the fixture");
    let commands: Vec<&[&str]> = FIXTURE_READS.iter().map(|(c, _)| *c).collect();
    let expected: Vec<&str> = FIXTURE_READS.iter().map(|(_, r)| *r).collect();
    assert_eq!(run_all(&engine, &commands), expected);
    // The upgrade to format 2 built the expiry index: `ttl` is in it.
    let storage = engine.storage();
    assert!(storage.has_deadlines().expect("read"));
    assert_eq!(
        storage.expiry_index_problems().expect("walk"),
        Vec::<String>::new()
    );
}

#[test]
fn the_committed_format_1_raft_directory_reads_exactly() {
    let committed = fixture("raft-node-1");
    let (code, out, err) = check_dir(&committed);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("raft node directory, disk format 1\n"),
        "{out}"
    );
    assert!(out.contains("raft: node 1, log "), "{out}");
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&committed, dir.path());
    let mut cluster = LocalCluster::start(
        vec![dir.path().to_path_buf()],
        "127.0.0.1",
        RaftTiming::default(),
    )
    .expect("node 1 on the fixture");
    wait_until("a leader", Duration::from_secs(10), || {
        cluster.leader().is_some()
    });
    let port = cluster.port(0).expect("port");
    assert_eq!(cmd(port, &["GET", "s"]), "v");
    assert_eq!(cmd(port, &["HGET", "h", "f2"]), "b");
    assert_eq!(cmd(port, &["ZSCORE", "z", "b"]), "2.5");
    assert_eq!(cmd(port, &["LINDEX", "l", "-1"]), "z");
    assert_eq!(cmd(port, &["SISMEMBER", "set", "m2"]), ":1");
    assert_eq!(cmd(port, &["PEXPIRETIME", "ttl"]), ":4102444800000");
    assert_eq!(cmd(port, &["XLEN", "st"]), ":2");
    assert_eq!(cmd(port, &["DBSIZE"]), ":7");
    cluster.stop_all();
}

/// The meta record of `key` (database 0) as RocksDB holds it.
fn read_meta(db: &DB, key: &[u8]) -> Meta {
    let cf = db.cf_handle("meta").expect("meta family");
    let raw = db
        .get_cf(cf, meta_key(0, key))
        .expect("read")
        .expect("the key exists");
    Meta::decode(&raw).expect("decode")
}

#[test]
fn check_dir_passes_a_clean_directory_and_names_each_corruption() {
    let dir = standalone_dir();
    let (code, out, err) = check_dir(dir.path());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("keyspace: 7 keys ("), "{out}");
    assert!(out.ends_with("no problems\n"), "{out}");

    {
        let db = open_raw(dir.path());
        // (a) A hash's count says one more field than it has.
        let mut meta = read_meta(&db, b"h");
        let MetaBody::Collection(c) = &mut meta.body else {
            panic!("h is a hash")
        };
        c.len += 1;
        let cf = db.cf_handle("meta").expect("meta family");
        db.put_cf(cf, meta_key(0, b"h"), meta.encode())
            .expect("write the meta");
        // (b) A sorted-set member's element record goes missing.
        let MetaBody::Collection(z) = read_meta(&db, b"z").body else {
            panic!("z is a sorted set")
        };
        let data = db.cf_handle("data").expect("data family");
        db.delete_cf(data, kiwi::storage::data_key(0, b"z", z.version, b"b"))
            .expect("delete the element");
        // (c) The expiry index loses `ttl`'s entry (`db ‖ deadline ‖ key`).
        let index = db.cf_handle("expiry").expect("expiry family");
        let mut entry = vec![0u8];
        entry.extend_from_slice(&4_102_444_800_000u64.to_be_bytes());
        entry.extend_from_slice(b"ttl");
        assert!(db.get_cf(index, &entry).expect("read").is_some());
        db.delete_cf(index, &entry).expect("delete the entry");
    }
    let (code, out, _) = check_dir(dir.path());
    // Shown with --nocapture: what a user reads.
    println!("{out}");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "PROBLEM [keyspace] db 0 key \"h\" (hash): expected 4 elements (the meta's count at \
             version"
        ) && out.contains("), found 3\n"),
        "{out}"
    );
    assert!(
        out.contains("PROBLEM [keyspace] db 0 key \"z\" (zset): expected 3 elements"),
        "{out}"
    );
    assert!(
        out.contains(
            "PROBLEM [keyspace] db 0 key \"z\" (zset): score index entry for \"b\" \
             (score 2.5) has no member record\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("PROBLEM [keyspace] expiry index: no entry \"\\x00"),
        "{out}"
    );
    assert!(
        out.contains("summary: 4 problems (4 keyspace) in "),
        "{out}"
    );
}

#[test]
fn check_dir_names_a_damaged_table_file() {
    let dir = standalone_dir();
    // Everything in table files, then the data family's file damaged.
    let table = {
        let db = open_raw(dir.path());
        for name in FAMILIES {
            db.flush_cf(db.cf_handle(name).expect("family"))
                .expect("flush");
        }
        db.live_files()
            .expect("live files")
            .into_iter()
            .find(|f| f.column_family_name == "data")
            .expect("a table file of the data family")
            .name
    };
    let path = dir.path().join(table.trim_start_matches('/'));
    let mut bytes = std::fs::read(&path).expect("read the table");
    for b in bytes.iter_mut().skip(8).take(16) {
        *b ^= 0x5a;
    }
    std::fs::write(&path, bytes).expect("damage the table");
    let (code, out, err) = check_dir(dir.path());
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("PROBLEM [checksum] column family data: reading stopped after 0 records:"),
        "{out}"
    );
    assert!(out.contains("Corruption"), "{out}");
    assert!(out.contains("checksum"), "{out}");
}

#[test]
fn check_dir_refuses_a_missing_directory_and_a_running_servers() {
    let missing = tempfile::tempdir().expect("temp dir");
    let gone = missing.path().join("nothing-here");
    let (code, _, err) = check_dir(&gone);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("nothing-here: no such directory"), "{err}");

    let dir = standalone_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let mut server = Command::new(KIWI_SERVER)
        .args([
            "--dir",
            &dir.path().display().to_string(),
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kiwi-server");
    wait_until("the server answers", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && cmd(port, &["GET", "s"]) == "v"
    });
    let (code, _, err) = check_dir(dir.path());
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "in use by process {} (it holds the directory's LOCK): stop the server first",
            server.id()
        )),
        "{err}"
    );
}

#[test]
fn check_dir_passes_a_raft_nodes_directory_and_names_log_damage() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Snapshots and purges early, so their records are checked too.
    let timing = RaftTiming {
        snapshot_every: 3,
        logs_to_keep: 2,
        ..RaftTiming::default()
    };
    let mut cluster =
        LocalCluster::start(vec![dir.path().to_path_buf()], "127.0.0.1", timing).expect("cluster");
    wait_until("a leader", Duration::from_secs(10), || {
        cluster.leader().is_some()
    });
    let port = cluster.port(0).expect("port");
    for c in WRITES {
        let reply = cmd(port, c);
        assert!(!reply.starts_with('-'), "{c:?}: {reply}");
    }
    let node = cluster.node(0).expect("node 1").clone();
    wait_until("a snapshot and a purge", Duration::from_secs(10), || {
        let metrics = node.raft().metrics().borrow().clone();
        metrics.snapshot.is_some() && metrics.purged.is_some()
    });
    drop(node);
    cluster.stop_all();
    let (code, out, err) = check_dir(dir.path());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("raft node directory"), "{out}");
    assert!(out.contains("raft: node 1, log "), "{out}");
    assert!(!out.contains("purged through none"), "{out}");
    assert!(!out.contains("snapshot none"), "{out}");

    // A hole in the log, the vote and the snapshot's data gone.
    let hole = {
        let db = open_raw(dir.path());
        let log = db.cf_handle("raft_log").expect("raft_log family");
        let mut indices = Vec::new();
        for item in db.iterator_cf(log, rocksdb::IteratorMode::Start) {
            let (key, _) = item.expect("read the log");
            indices.push(u64::from_be_bytes(key[..].try_into().expect("an index")));
        }
        assert!(indices.len() >= 3, "{indices:?}");
        let hole = indices[1];
        db.delete_cf(log, hole.to_be_bytes())
            .expect("delete an entry");
        let state = db.cf_handle("raft_state").expect("raft_state family");
        db.delete_cf(state, b"vote").expect("delete the vote");
        db.delete_cf(state, b"snapshot_data")
            .expect("delete the snapshot's data");
        hole
    };
    let (code, out, _) = check_dir(dir.path());
    println!("{out}");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "PROBLEM [raft] log entry {}: follows a gap: expected index {hole}\n",
            hole + 1
        )),
        "{out}"
    );
    assert!(
        out.contains("PROBLEM [raft] vote: missing, though the log holds entries\n"),
        "{out}"
    );
    assert!(out.contains(": its data is missing\n"), "{out}");
    assert!(out.contains("summary: 3 problems (3 raft) in "), "{out}");
}
