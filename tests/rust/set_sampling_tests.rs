//! SPOP and SRANDMEMBER pick uniformly at any size (members numbered
//! `0..len`, cmd/positions.rs), and the numbering survives every way a set
//! changes: popping a set to empty gives back each member exactly once.

use bytes::Bytes;
use kiwi::resp::Reply;
use kiwi::storage::{data_key, CollectionMeta, KeyType, Meta, MetaBody, Storage};
use kiwi::{Engine, RuntimeConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

use crate::common::TestEngine;

fn strings(reply: Reply) -> Vec<String> {
    let items = match reply {
        Reply::Array(items) | Reply::Set(items) => items,
        other => panic!("not an aggregate: {other:?}"),
    };
    items
        .into_iter()
        .map(|r| match r {
            Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("not a bulk: {other:?}"),
        })
        .collect()
}

fn bulk(reply: Reply) -> String {
    match reply {
        Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("not a bulk: {other:?}"),
    }
}

/// Pearson's statistic of `hits` against an even spread over `members`.
fn chi_square(hits: &HashMap<String, u64>, members: usize, draws: u64) -> f64 {
    let expected = draws as f64 / members as f64;
    let seen: f64 = hits
        .values()
        .map(|&h| (h as f64 - expected).powi(2) / expected)
        .sum();
    let unseen = (members - hits.len()) as f64 * expected;
    seen + unseen
}

/// The bound a uniform pick stays under but for a one-in-10^14 chance:
/// mean `df` plus 8 standard deviations (`sqrt(2 df)`).
fn uniform_bound(members: usize) -> f64 {
    let df = (members - 1) as f64;
    df + 8.0 * (2.0 * df).sqrt()
}

/// Members whose names share long prefixes in uneven groups: the shape a
/// walk down the byte-trie of members picks unevenly from.
fn skewed_members(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 10 {
            0 => format!("a{i}"),
            1..=3 => format!("bb:{:06}", i),
            _ => format!("user:session:{:08}:x", i * 7919 % 1_000_003),
        })
        .collect()
}

fn sadd_all(t: &mut TestEngine, key: &str, members: &[String]) {
    for chunk in members.chunks(500) {
        let mut words = vec!["SADD", key];
        words.extend(chunk.iter().map(String::as_str));
        t.run(&words);
    }
}

#[test]
fn srandmember_is_uniform_on_a_large_set() {
    let mut t = TestEngine::new();
    let members = skewed_members(3000);
    sadd_all(&mut t, "s", &members);
    let draws = 90_000u64;
    let mut hits: HashMap<String, u64> = HashMap::new();
    for _ in 0..draws {
        *hits.entry(bulk(t.run(&["SRANDMEMBER", "s"]))).or_default() += 1;
    }
    let chi = chi_square(&hits, members.len(), draws);
    assert!(chi < uniform_bound(members.len()), "chi-square {chi}");
    // Negative counts by lookups: uniform too.
    let mut hits: HashMap<String, u64> = HashMap::new();
    for _ in 0..500 {
        for m in strings(t.run(&["SRANDMEMBER", "s", "-150"])) {
            *hits.entry(m).or_default() += 1;
        }
    }
    let chi = chi_square(&hits, members.len(), 75_000);
    assert!(
        chi < uniform_bound(members.len()),
        "chi-square {chi} (negative count)"
    );
}

#[test]
fn spop_is_uniform_on_a_large_set_that_keeps_changing() {
    let mut t = TestEngine::new();
    let members = skewed_members(2500);
    sadd_all(&mut t, "s", &members);
    let draws = 75_000u64;
    let mut hits: HashMap<String, u64> = HashMap::new();
    for _ in 0..draws {
        // Every pop renumbers (the last member moves in), every add appends.
        let m = bulk(t.run(&["SPOP", "s"]));
        assert_eq!(t.run(&["SADD", "s", &m]), Reply::Int(1));
        *hits.entry(m).or_default() += 1;
    }
    let chi = chi_square(&hits, members.len(), draws);
    assert!(chi < uniform_bound(members.len()), "chi-square {chi}");
    assert_eq!(t.run(&["SCARD", "s"]), Reply::Int(2500));
}

/// Pop `key` one member at a time to empty: each member of SMEMBERS
/// exactly once, nothing else.
fn pops_give_back_every_member(t: &mut TestEngine, key: &str) {
    let mut before = strings(t.run(&["SMEMBERS", key]));
    let mut popped = Vec::new();
    loop {
        match t.run(&["SPOP", key]) {
            Reply::Nil => break,
            Reply::Bulk(b) => popped.push(String::from_utf8_lossy(&b).into_owned()),
            other => panic!("SPOP {key}: {other:?}"),
        }
        assert!(
            popped.len() <= before.len(),
            "{key}: more pops than members"
        );
    }
    before.sort();
    popped.sort();
    assert_eq!(popped, before, "{key}");
    assert_eq!(t.run(&["EXISTS", key]), Reply::Int(0));
}

#[test]
fn numbering_survives_every_kind_of_change() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut t = TestEngine::new();
    let keys = ["s0", "s1", "s2"];
    for _ in 0..3000 {
        let key = keys[rng.random_range(0..keys.len())];
        let other = keys[rng.random_range(0..keys.len())];
        let m = format!("m{}", rng.random_range(0..60));
        let m2 = format!("m{}", rng.random_range(0..60));
        let n = rng.random_range(1..6).to_string();
        let words: Vec<&str> = match rng.random_range(0..12) {
            0..=2 => vec!["SADD", key, &m, &m2],
            3 => vec!["SREM", key, &m, &m2, &m],
            4 => vec!["SPOP", key],
            5 => vec!["SPOP", key, &n],
            6 => vec!["SMOVE", key, other, &m],
            7 => vec!["SUNIONSTORE", "tmp", key, other],
            8 => vec!["RENAME", "tmp", key],
            9 => vec!["COPY", key, other, "REPLACE"],
            10 => vec!["SINTERSTORE", key, key, other],
            _ => vec!["SDIFFSTORE", other, other, key],
        };
        t.run(&words);
    }
    // A dumped set restores numbered too.
    if let Reply::Bulk(dump) = t.run(&["DUMP", "s0"]) {
        let mut session = t.engine.local_session();
        let args = [
            Bytes::from_static(b"RESTORE"),
            Bytes::from_static(b"restored"),
            Bytes::from_static(b"0"),
            dump,
        ];
        assert_eq!(t.engine.execute(&mut session, &args), Reply::OK);
        t.engine.disconnect(&mut session);
        pops_give_back_every_member(&mut t, "restored");
    }
    for key in keys {
        pops_give_back_every_member(&mut t, key);
    }
}

#[test]
fn a_set_from_before_the_numbers_is_numbered_by_its_next_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let members: Vec<String> = (0..300).map(|i| format!("old{i}")).collect();
    {
        // As Kiwi stored sets before: members with empty values, no flag.
        let storage = Storage::open(dir.path()).expect("open");
        let mut ctx = storage.ctx(0, 1000);
        let version = 77;
        ctx.put_meta(
            b"legacy",
            &Meta {
                expire_at_ms: None,
                body: MetaBody::Collection(CollectionMeta {
                    kind: KeyType::Set,
                    version,
                    len: members.len() as u64,
                    head: 0,
                    tail: 0,
                    indexed: false,
                    stream: Default::default(),
                }),
            },
        );
        for m in &members {
            ctx.put_data(&data_key(0, b"legacy", version, m.as_bytes()), b"");
        }
        ctx.commit().expect("commit");
    }
    let engine = Engine::open(RuntimeConfig::new(dir.path())).expect("open engine");
    let mut t = TestEngine::wrap(engine, dir);
    // Reads pick by a pass, uniformly, before any write.
    let mut hits: HashMap<String, u64> = HashMap::new();
    for _ in 0..15_000 {
        *hits
            .entry(bulk(t.run(&["SRANDMEMBER", "legacy"])))
            .or_default() += 1;
    }
    let chi = chi_square(&hits, members.len(), 15_000);
    assert!(chi < uniform_bound(members.len()), "chi-square {chi}");
    assert_eq!(t.run(&["SADD", "legacy", "new"]), Reply::Int(1));
    pops_give_back_every_member(&mut t, "legacy");
}
