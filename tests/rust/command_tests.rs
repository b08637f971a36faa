//! Command behaviour through the engine, without a network.

use std::sync::Arc;

use bytes::Bytes;
use kiwi::resp::Reply;
use kiwi::{Engine, RuntimeConfig};

use crate::common::TestEngine;

#[test]
fn unknown_command_and_arity_texts() {
    let mut t = TestEngine::new();
    assert_eq!(
        t.run(&["nosuch", "a", "b"]),
        Reply::error("ERR unknown command 'nosuch', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(
        t.run(&["nosuch"]),
        Reply::error("ERR unknown command 'nosuch', with args beginning with: ")
    );
    assert_eq!(
        t.run(&["GET"]),
        Reply::error("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        t.run(&["set", "k"]),
        Reply::error("ERR wrong number of arguments for 'set' command")
    );
}

#[test]
fn commands_are_case_insensitive() {
    let mut t = TestEngine::new();
    assert_eq!(t.run(&["SeT", "k", "v"]), Reply::OK);
    assert_eq!(t.run(&["gEt", "k"]), Reply::bulk_str("v"));
}

#[test]
fn select_gives_separate_keyspaces() {
    let mut t = TestEngine::new();
    t.run(&["set", "k", "zero"]);
    assert_eq!(t.run(&["select", "3"]), Reply::OK);
    assert_eq!(t.run(&["get", "k"]), Reply::Nil);
    assert_eq!(
        t.run(&["select", "16"]),
        Reply::error("ERR DB index is out of range")
    );
    assert_eq!(
        t.run(&["select", "x"]),
        Reply::error("ERR value is not an integer or out of range")
    );
    t.run(&["select", "0"]);
    assert_eq!(t.run(&["get", "k"]), Reply::bulk_str("zero"));
}

#[test]
fn requirepass_gates_every_command_but_auth_hello_quit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = RuntimeConfig::new(dir.path());
    config.requirepass = Some("secret".into());
    let engine = Engine::open(config).expect("open");
    let mut s = engine.local_session();
    let run = |s: &mut _, words: &[&str]| engine.execute_args(s, words);
    assert_eq!(
        run(&mut s, &["get", "k"]),
        Reply::error("NOAUTH Authentication required.")
    );
    assert_eq!(
        run(&mut s, &["auth", "wrong"]),
        Reply::error("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(run(&mut s, &["auth", "secret"]), Reply::OK);
    assert_eq!(run(&mut s, &["get", "k"]), Reply::Nil);
}

#[test]
fn hello_switches_protocol_and_rejects_others() {
    let mut t = TestEngine::new();
    assert!(matches!(t.run(&["hello", "3"]), Reply::Map(_)));
    assert_eq!(t.session.protocol, kiwi::resp::Protocol::Resp3);
    assert_eq!(
        t.run(&["hello", "4"]),
        Reply::error("NOPROTO unsupported protocol version")
    );
    assert_eq!(
        t.run(&["hello", "2"]).to_bytes(kiwi::resp::Protocol::Resp2)[0],
        b'*'
    );
}

#[test]
fn wrongtype_leaves_the_key_untouched() {
    let mut t = TestEngine::new();
    assert_eq!(t.run(&["hset", "h", "f", "v"]), Reply::Int(1));
    let wrongtype =
        Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value");
    for cmd in [
        vec!["get", "h"],
        vec!["incr", "h"],
        vec!["append", "h", "x"],
        vec!["getset", "h", "x"],
        vec!["set", "h", "x", "get"],
        vec!["strlen", "h"],
        vec!["setrange", "h", "0", "x"],
    ] {
        assert_eq!(t.run(&cmd), wrongtype, "{cmd:?}");
    }
    assert_eq!(t.run(&["hget", "h", "f"]), Reply::bulk_str("v"));
    assert_eq!(t.run(&["mget", "h"]), Reply::Array(vec![Reply::Nil]));
    assert_eq!(t.run(&["set", "h", "s"]), Reply::OK);
    assert_eq!(t.run(&["type", "h"]), Reply::Status("string"));
}

#[test]
fn incr_family_errors() {
    let mut t = TestEngine::new();
    t.run(&["set", "n", "9223372036854775807"]);
    assert_eq!(
        t.run(&["incr", "n"]),
        Reply::error("ERR increment or decrement would overflow")
    );
    t.run(&["set", "s", "abc"]);
    assert_eq!(
        t.run(&["incr", "s"]),
        Reply::error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        t.run(&["incrby", "x", "1.5"]),
        Reply::error("ERR value is not an integer or out of range")
    );
    assert_eq!(t.run(&["incrby", "x", "5"]), Reply::Int(5));
    assert_eq!(t.run(&["decrby", "x", "7"]), Reply::Int(-2));
}

#[test]
fn expire_and_ttl() {
    let mut t = TestEngine::new();
    assert_eq!(t.run(&["ttl", "missing"]), Reply::Int(-2));
    t.run(&["set", "k", "v"]);
    assert_eq!(t.run(&["ttl", "k"]), Reply::Int(-1));
    assert_eq!(t.run(&["expire", "k", "100"]), Reply::Int(1));
    assert_eq!(t.run(&["ttl", "k"]), Reply::Int(100));
    assert_eq!(t.run(&["expire", "k", "50", "gt"]), Reply::Int(0));
    assert_eq!(t.run(&["persist", "k"]), Reply::Int(1));
    assert_eq!(t.run(&["ttl", "k"]), Reply::Int(-1));
    assert_eq!(t.run(&["expire", "k", "-1"]), Reply::Int(1));
    assert_eq!(t.run(&["exists", "k"]), Reply::Int(0));
}

#[test]
fn mset_is_never_seen_half_applied() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Arc::new(Engine::open(RuntimeConfig::new(dir.path())).expect("open"));
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let writer = {
        let engine = engine.clone();
        let keys = keys.clone();
        std::thread::spawn(move || {
            let mut s = engine.local_session();
            for gen in 0..300 {
                let mut args = vec![Bytes::from_static(b"mset")];
                for k in &keys {
                    args.push(Bytes::from(k.clone()));
                    args.push(Bytes::from(gen.to_string()));
                }
                assert_eq!(engine.execute(&mut s, &args), Reply::OK);
            }
        })
    };
    let mut s = engine.local_session();
    let mut args = vec![Bytes::from_static(b"mget")];
    args.extend(keys.iter().map(|k| Bytes::from(k.clone())));
    for _ in 0..300 {
        let Reply::Array(values) = engine.execute(&mut s, &args) else {
            panic!("MGET answers an array")
        };
        let first = &values[0];
        assert!(values.iter().all(|v| v == first), "torn MSET: {values:?}");
    }
    writer.join().expect("writer finished");
}

fn hset_many(t: &mut TestEngine, key: &str, n: usize) {
    let mut args = vec!["hset".to_string(), key.to_string()];
    for i in 0..n {
        args.push(format!("f{i}"));
        args.push("v".into());
    }
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(t.run(&words), Reply::Int(n as i64));
}

#[test]
fn deleting_or_overwriting_a_big_collection_writes_no_element() {
    use kiwi::storage::Cf;
    let mut t = TestEngine::new();
    hset_many(&mut t, "big", 20_000);
    let elements = t.engine.storage().count_raw(Cf::Data).expect("count");
    assert_eq!(elements, 20_000);
    // DEL, overwrite and expiry each rewrite only the meta record: the
    // elements stay until compaction, so the request path did O(1) work.
    assert_eq!(t.run(&["del", "big"]), Reply::Int(1));
    assert_eq!(
        t.engine.storage().count_raw(Cf::Data).expect("count"),
        elements
    );
    hset_many(&mut t, "big", 3);
    assert_eq!(
        t.run(&["hlen", "big"]),
        Reply::Int(3),
        "the new hash never sees the old fields"
    );
    assert_eq!(t.run(&["hget", "big", "f10000"]), Reply::Nil);
    assert_eq!(t.run(&["set", "big", "now a string"]), Reply::OK);
    assert_eq!(
        t.engine.storage().count_raw(Cf::Data).expect("count"),
        elements + 3
    );
    t.engine.storage().compact_all();
    assert_eq!(
        t.engine.storage().count_raw(Cf::Data).expect("count"),
        0,
        "compaction reclaimed every dead element"
    );
    assert_eq!(t.run(&["get", "big"]), Reply::bulk_str("now a string"));
}
