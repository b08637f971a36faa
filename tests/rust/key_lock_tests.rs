//! Commands on different keys run side by side (storage/locks.rs); these
//! check over many concurrent runs that nothing they promise breaks:
//! read-modify-writes of one key never lose an update, a multi-key write
//! is seen whole or not at all, key counts stay exact, and no command
//! touches a key it did not lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use kiwi::resp::Reply;
use kiwi::storage::Storage;
use kiwi::{Engine, RuntimeConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const THREADS: usize = 4;

fn call(engine: &Engine, session: &mut kiwi::cmd::Session, words: &[&str]) -> Reply {
    let args: Vec<Bytes> = words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    engine.execute(session, &args)
}

fn int(reply: Reply) -> i64 {
    match reply {
        Reply::Int(n) => n,
        Reply::Bulk(b) => String::from_utf8_lossy(&b).parse().unwrap_or(i64::MIN),
        other => panic!("not a number: {other:?}"),
    }
}

fn open() -> (tempfile::TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(RuntimeConfig::new(dir.path())).expect("open");
    (dir, Arc::new(engine))
}

fn scope_misses(engine: &Engine) -> u64 {
    engine.storage().scope_misses()
}

/// Run `work(thread, engine)` on [`THREADS`] threads at once.
fn in_threads(engine: &Arc<Engine>, work: impl Fn(usize, &Engine) + Send + Sync + 'static) {
    let work = Arc::new(work);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (engine, work) = (engine.clone(), work.clone());
            std::thread::spawn(move || work(t, &engine))
        })
        .collect();
    for t in threads {
        assert!(t.join().is_ok(), "a thread panicked");
    }
}

#[test]
fn concurrent_increments_of_shared_and_own_keys_lose_nothing() {
    let (_dir, engine) = open();
    const ROUNDS: i64 = 1_500;
    in_threads(&engine, |t, engine| {
        let mut s = engine.local_session();
        let own = format!("own{t}");
        for i in 0..ROUNDS {
            // Shared keys, several commands that read then write them.
            let shared = format!("shared{}", i % 3);
            assert!(matches!(
                call(engine, &mut s, &["INCR", &shared]),
                Reply::Int(_)
            ));
            call(
                engine,
                &mut s,
                &["HINCRBY", "h", &format!("f{}", i % 5), "2"],
            );
            call(engine, &mut s, &["RPUSH", "list", &own]);
            call(engine, &mut s, &["INCRBY", &own, "3"]);
        }
        engine.disconnect(&mut s);
    });
    let mut s = engine.local_session();
    let shared: i64 = (0..3)
        .map(|k| int(call(&engine, &mut s, &["GET", &format!("shared{k}")])))
        .sum();
    assert_eq!(shared, ROUNDS * THREADS as i64);
    let fields: i64 = (0..5)
        .map(|f| int(call(&engine, &mut s, &["HGET", "h", &format!("f{f}")])))
        .sum();
    assert_eq!(fields, 2 * ROUNDS * THREADS as i64);
    assert_eq!(
        int(call(&engine, &mut s, &["LLEN", "list"])),
        ROUNDS * THREADS as i64
    );
    for t in 0..THREADS {
        assert_eq!(
            int(call(&engine, &mut s, &["GET", &format!("own{t}")])),
            3 * ROUNDS
        );
    }
    assert_eq!(scope_misses(&engine), 0);
}

#[test]
fn a_multi_key_write_is_seen_whole_by_concurrent_readers() {
    let (_dir, engine) = open();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (engine, stop) = (engine.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut s = engine.local_session();
            for i in 0..3_000 {
                let v = i.to_string();
                call(&engine, &mut s, &["MSET", "a", &v, "b", &v, "c", &v]);
                // A transaction and a pipeline group are single writes too.
                call(&engine, &mut s, &["MULTI"]);
                call(&engine, &mut s, &["SET", "a", &v]);
                call(&engine, &mut s, &["SET", "b", &v]);
                call(&engine, &mut s, &["SET", "c", &v]);
                call(&engine, &mut s, &["EXEC"]);
                let group: Vec<Vec<Bytes>> = ["a", "b", "c"]
                    .iter()
                    .map(|k| {
                        ["SET", k, v.as_str()]
                            .iter()
                            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                            .collect()
                    })
                    .collect();
                engine.execute_pipeline(&mut s, &group);
            }
            stop.store(true, Ordering::SeqCst);
            engine.disconnect(&mut s);
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (engine, stop) = (engine.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut s = engine.local_session();
                let mut seen = 0;
                while !stop.load(Ordering::SeqCst) {
                    let reply = match r {
                        0 => call(&engine, &mut s, &["MGET", "a", "b", "c"]),
                        _ => call(&engine, &mut s, &["EVAL_RO", MGET_SCRIPT, "0"]),
                    };
                    let Reply::Array(values) = reply else {
                        panic!("MGET: {reply:?}")
                    };
                    assert!(
                        values.windows(2).all(|w| w[0] == w[1]),
                        "half a write seen: {values:?}"
                    );
                    seen += 1;
                }
                engine.disconnect(&mut s);
                seen
            })
        })
        .collect();
    assert!(writer.join().is_ok());
    for r in readers {
        assert!(r.join().is_ok_and(|seen| seen > 0));
    }
    assert_eq!(scope_misses(&engine), 0);
}

const MGET_SCRIPT: &str =
    "return {redis.call('GET','a'),redis.call('GET','b'),redis.call('GET','c')}";

#[test]
fn key_counts_stay_exact_under_concurrent_writers() {
    let (_dir, engine) = open();
    in_threads(&engine, |t, engine| {
        let mut rng = ChaCha8Rng::seed_from_u64(t as u64);
        let mut s = engine.local_session();
        for _ in 0..2_000 {
            let key = format!("k{}", rng.random_range(0..40));
            let other = format!("k{}", rng.random_range(0..40));
            let words: Vec<&str> = match rng.random_range(0..9) {
                0 => vec!["SET", &key, "v"],
                1 => vec!["SET", &key, "v", "PX", "100000000"],
                2 => vec!["DEL", &key, &other],
                3 => vec!["SADD", &key, "m"],
                4 => vec!["SPOP", &key],
                5 => vec!["RENAME", &key, &other],
                6 => vec!["EXPIRE", &key, "100000"],
                7 => vec!["PERSIST", &key],
                _ => vec!["GETDEL", &key],
            };
            call(engine, &mut s, &words);
        }
        engine.disconnect(&mut s);
    });
    let mut s = engine.local_session();
    let size = int(call(&engine, &mut s, &["DBSIZE"]));
    let Reply::Array(keys) = call(&engine, &mut s, &["KEYS", "*"]) else {
        panic!("KEYS")
    };
    assert_eq!(size, keys.len() as i64);
    let volatile = keys
        .iter()
        .filter(|k| {
            let Reply::Bulk(k) = k else { return false };
            let k = String::from_utf8_lossy(k).into_owned();
            call(&engine, &mut s, &["PTTL", &k]) != Reply::Int(-1)
        })
        .count();
    let info = match call(&engine, &mut s, &["INFO", "keyspace"]) {
        Reply::Verbatim(text) => text,
        Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("INFO: {other:?}"),
    };
    let expected = format!("db0:keys={size},expires={volatile},");
    assert!(
        info.contains(&expected) || (size == 0 && !info.contains("db0:")),
        "{info} vs {expected}"
    );
    assert_eq!(scope_misses(&engine), 0);
}

#[test]
fn a_key_touched_outside_the_held_locks_is_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(dir.path()).expect("open");
    let mut ctx = storage.ctx(0, 0);
    let held = [kiwi::storage::locks::stripe_of(b"mine")];
    ctx.limit_to(Some(&held));
    assert!(ctx.get_meta(b"mine").is_ok());
    assert_eq!(storage.scope_misses(), 0);
    assert!(ctx.get_meta(b"theirs").is_ok());
    // "theirs" hashes elsewhere (checked, else the test proves nothing).
    assert_ne!(
        kiwi::storage::locks::stripe_of(b"theirs"),
        kiwi::storage::locks::stripe_of(b"mine")
    );
    assert_eq!(storage.scope_misses(), 1);
    ctx.limit_to(None);
    assert!(ctx.get_meta(b"anything").is_ok());
    assert_eq!(storage.scope_misses(), 1);
}
