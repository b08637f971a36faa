//! DBSIZE and INFO keyspace answer from per-keyspace counts kept with
//! every batch (storage/counts.rs): over random histories of every kind of
//! key creation and deletion, they must equal what a walk over the keys
//! finds, in every database, after SWAPDB, inside MULTI, and after reopening;
//! and the expiry index (storage/deadlines.rs) must list exactly the keys
//! that have a deadline.

use bytes::Bytes;
use kiwi::resp::Reply;
use kiwi::{Engine, RuntimeConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DBS: u8 = 4;
const KEYS: usize = 12;

fn run(engine: &Engine, session: &mut kiwi::cmd::Session, words: &[String]) -> Reply {
    let args: Vec<Bytes> = words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    engine.execute(session, &args)
}

fn words(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// One random command that may create, delete, move or re-time keys.
fn random_command(rng: &mut ChaCha8Rng) -> Vec<String> {
    let key = |rng: &mut ChaCha8Rng| format!("k{}", rng.random_range(0..KEYS));
    let db = |rng: &mut ChaCha8Rng| rng.random_range(0..DBS).to_string();
    let (a, b) = (key(rng), key(rng));
    match rng.random_range(0..21) {
        0 => words(&["SET", &a, "v"]),
        1 => words(&["SET", &a, "v", "PX", "10000000"]),
        2 => words(&["DEL", &a, &b]),
        3 => words(&["HSET", &a, "f", "v"]),
        4 => words(&["EXPIRE", &a, "10000"]),
        5 => words(&["PERSIST", &a]),
        6 => words(&["RENAME", &a, &b]),
        7 => words(&["MOVE", &a, &db(rng)]),
        8 => words(&["COPY", &a, &b, "DB", &db(rng), "REPLACE"]),
        9 => words(&["SWAPDB", &db(rng), &db(rng)]),
        10 if rng.random_range(0..8) == 0 => words(&["FLUSHDB"]),
        11 => words(&["SELECT", &db(rng)]),
        12 => words(&["SADD", &a, "m"]),
        13 => words(&["SPOP", &a]),
        14 => words(&["LPUSH", &a, "x"]),
        15 => words(&["LPOP", &a]),
        16 => words(&["GETDEL", &a]),
        17 => words(&["GETEX", &a, "PX", "20000000"]),
        18 => words(&["SET", &a, "w", "KEEPTTL"]),
        19 => words(&["PEXPIREAT", &a, "1"]),
        _ => words(&["SET", &a, "v", "EX", "5000", "GET"]),
    }
}

/// (keys, keys with an expiry) of each database.
type Counts = Vec<(i64, i64)>;

/// DBSIZE and INFO keyspace of every database, and what a walk finds.
fn counted_and_walked(engine: &Engine) -> (Counts, Counts) {
    let mut s = engine.local_session();
    let info = match run(engine, &mut s, &words(&["INFO", "keyspace"])) {
        Reply::Verbatim(text) => text,
        Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("INFO: {other:?}"),
    };
    let mut counted = Vec::new();
    let mut walked = Vec::new();
    for db in 0..DBS {
        run(engine, &mut s, &words(&["SELECT", &db.to_string()]));
        let Reply::Int(size) = run(engine, &mut s, &words(&["DBSIZE"])) else {
            panic!("DBSIZE")
        };
        let prefix = format!("db{db}:keys=");
        let expires = info
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|rest| {
                let (keys, rest) = rest.split_once(",expires=").expect("expires field");
                assert_eq!(keys.parse::<i64>().expect("keys"), size, "INFO and DBSIZE");
                rest.split(',')
                    .next()
                    .expect("n")
                    .parse::<i64>()
                    .expect("n")
            })
            .unwrap_or(0);
        counted.push((size, expires));
        let Reply::Array(keys) = run(engine, &mut s, &words(&["KEYS", "*"])) else {
            panic!("KEYS")
        };
        let mut volatile = 0;
        for k in &keys {
            let Reply::Bulk(k) = k else { panic!("key") };
            let k = String::from_utf8_lossy(k).into_owned();
            if run(engine, &mut s, &words(&["PTTL", &k])) != Reply::Int(-1) {
                volatile += 1;
            }
        }
        walked.push((keys.len() as i64, volatile));
    }
    engine.disconnect(&mut s);
    (counted, walked)
}

#[test]
fn key_counts_equal_the_keys_over_random_histories() {
    let dir = tempfile::tempdir().expect("temp dir");
    for seed in 0..4u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let engine = Engine::open(RuntimeConfig::new(dir.path())).expect("open");
        // Reopened: the counts of the last round came back from disk.
        let (counted, walked) = counted_and_walked(&engine);
        assert_eq!(counted, walked, "seed {seed}: after reopening");
        let mut session = engine.local_session();
        for step in 0..400 {
            if rng.random_range(0..10) == 0 {
                // A transaction: its commands count together, and DBSIZE
                // inside it sees the ones before it.
                run(&engine, &mut session, &words(&["MULTI"]));
                let n = rng.random_range(1..4);
                for _ in 0..n {
                    run(&engine, &mut session, &random_command(&mut rng));
                }
                run(&engine, &mut session, &words(&["DBSIZE"]));
                let Reply::Array(replies) = run(&engine, &mut session, &words(&["EXEC"])) else {
                    panic!("EXEC")
                };
                let Some(Reply::Int(inside)) = replies.last() else {
                    panic!("DBSIZE in EXEC: {replies:?}")
                };
                let Reply::Int(after) = run(&engine, &mut session, &words(&["DBSIZE"])) else {
                    panic!("DBSIZE")
                };
                assert_eq!(
                    *inside, after,
                    "seed {seed} step {step}: DBSIZE inside EXEC"
                );
            } else {
                run(&engine, &mut session, &random_command(&mut rng));
            }
            let (counted, walked) = counted_and_walked(&engine);
            assert_eq!(counted, walked, "seed {seed} step {step}");
            // The expiry index follows every deadline alike.
            let problems = engine.storage().expiry_index_problems().expect("walk");
            assert!(problems.is_empty(), "seed {seed} step {step}: {problems:?}");
        }
        // A checkpoint is a directory no clean close left counts in (as
        // after a crash): opening it counts the keys.
        assert_eq!(run(&engine, &mut session, &words(&["SAVE"])), Reply::OK);
        let copy = tempfile::tempdir().expect("temp dir");
        let target = copy.path().join("data");
        copy_dir(&engine.storage().checkpoint_path(), &target);
        let (counted, _) = counted_and_walked(&engine);
        let reopened = Engine::open(RuntimeConfig::new(&target)).expect("open checkpoint");
        let (from_copy, walked) = counted_and_walked(&reopened);
        assert_eq!(from_copy, walked, "seed {seed}: the checkpoint");
        assert_eq!(from_copy, counted, "seed {seed}: the checkpoint");
        drop(reopened);
        engine.disconnect(&mut session);
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn a_lazily_expired_key_is_deleted_from_its_own_database_after_swapdb() {
    // No server, so no active expiry: only a lookup deletes the key.
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(RuntimeConfig::new(dir.path())).expect("open");
    let mut s = engine.local_session();
    run(&engine, &mut s, &words(&["SWAPDB", "0", "1"]));
    run(&engine, &mut s, &words(&["SET", "k", "v", "PX", "30"]));
    run(&engine, &mut s, &words(&["SELECT", "1"]));
    run(&engine, &mut s, &words(&["SET", "other", "v"]));
    run(&engine, &mut s, &words(&["SELECT", "0"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while run(&engine, &mut s, &words(&["GET", "k"])) != Reply::Nil {
        assert!(std::time::Instant::now() < deadline, "k never expired");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The lookup that found it expired deleted it, as in Redis.
    assert_eq!(run(&engine, &mut s, &words(&["DBSIZE"])), Reply::Int(0));
    run(&engine, &mut s, &words(&["SELECT", "1"]));
    assert_eq!(run(&engine, &mut s, &words(&["DBSIZE"])), Reply::Int(1));
    engine.disconnect(&mut s);
}
