//! The storage layer: record encoding, atomic batches, expiry, reopening.

use bytes::Bytes;
use kiwi::storage::{
    data_key, data_prefix, split_data_key, Cf, CollectionMeta, KeyType, Meta, MetaBody, Storage,
    SweepCursor,
};

fn open() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(dir.path()).expect("open storage");
    (dir, storage)
}

#[test]
fn string_meta_round_trips() {
    for (value, expire) in [
        (&b""[..], None),
        (&b"hello\0world"[..], Some(1_700_000_000_123)),
    ] {
        let meta = Meta::string(Bytes::copy_from_slice(value), expire);
        let decoded = Meta::decode(&meta.encode()).expect("decodes");
        assert_eq!(decoded, meta);
        assert_eq!(decoded.kind(), KeyType::String);
        assert_eq!(Meta::peek(&meta.encode()), Some((KeyType::String, expire)));
    }
}

#[test]
fn collection_meta_round_trips() {
    for kind in [
        KeyType::Hash,
        KeyType::List,
        KeyType::Set,
        KeyType::ZSet,
        KeyType::Stream,
    ] {
        let stream = match kind {
            KeyType::Stream => kiwi::storage::StreamMeta {
                last_id: kiwi::storage::StreamId::new(9, 2),
                first_id: kiwi::storage::StreamId::new(1, 0),
                max_deleted: kiwi::storage::StreamId::new(4, 4),
                entries_added: 11,
            },
            _ => Default::default(),
        };
        let meta = Meta {
            expire_at_ms: Some(42),
            body: MetaBody::Collection(CollectionMeta {
                kind,
                version: 7,
                len: 3,
                head: if kind == KeyType::List { 100 } else { 0 },
                tail: if kind == KeyType::List { 103 } else { 0 },
                indexed: kind == KeyType::Set,
                stream,
            }),
        };
        assert_eq!(Meta::decode(&meta.encode()).expect("decodes"), meta);
    }
}

#[test]
fn corrupt_meta_is_an_error_not_a_panic() {
    for raw in [&b""[..], &[9u8; 9][..], &[2u8, 0, 0][..], &[3u8; 20][..]] {
        assert!(Meta::decode(raw).is_err(), "{raw:?}");
    }
}

#[test]
fn data_keys_split_back_and_versions_separate() {
    let key = data_key(3, b"user:1", 99, b"field");
    assert_eq!(
        split_data_key(&key),
        Some((3, &b"user:1"[..], 99, &b"field"[..]))
    );
    // A key that is a prefix of another never shares a data prefix with it.
    assert!(!data_prefix(0, b"ab", 1).starts_with(&data_prefix(0, b"a", 1)));
    assert!(!data_key(0, b"k", 2, b"x").starts_with(&data_prefix(0, b"k", 1)));
    assert_eq!(split_data_key(b"\0\0\0\0\xff"), None);
}

#[test]
fn versions_strictly_increase() {
    let (_dir, storage) = open();
    let ctx = storage.ctx(0, 0);
    let mut last = 0;
    for _ in 0..10_000 {
        let v = ctx.next_version();
        assert!(v > last);
        last = v;
    }
}

#[test]
fn commit_applies_all_writes_and_rollback_none() {
    let (_dir, storage) = open();
    let mut ctx = storage.ctx(0, 1000);
    ctx.put_meta(b"a", &Meta::string(Bytes::from_static(b"1"), None));
    ctx.put_meta(b"b", &Meta::string(Bytes::from_static(b"2"), None));
    // The command sees its own writes; nobody else does before commit.
    assert!(ctx.get_meta(b"a").expect("read").is_some());
    assert_eq!(storage.ctx(0, 1000).get_meta(b"a").expect("read"), None);
    ctx.commit().expect("commit");
    assert!(storage.ctx(0, 1000).get_meta(b"a").expect("read").is_some());
    assert!(ctx.get_meta(b"a").expect("read").is_some());
    assert!(ctx.get_meta(b"b").expect("read").is_some());

    ctx.put_meta(b"c", &Meta::string(Bytes::from_static(b"3"), None));
    ctx.delete_key(b"a");
    ctx.rollback();
    ctx.commit().expect("empty commit");
    assert_eq!(ctx.get_meta(b"c").expect("read"), None);
    assert!(ctx.get_meta(b"a").expect("read").is_some());
}

#[test]
fn databases_are_separate_keyspaces() {
    let (_dir, storage) = open();
    let mut ctx0 = storage.ctx(0, 1000);
    ctx0.put_meta(b"k", &Meta::string(Bytes::from_static(b"zero"), None));
    ctx0.commit().expect("commit");
    let mut ctx1 = storage.ctx(1, 1000);
    assert_eq!(ctx1.get_meta(b"k").expect("read"), None);
    ctx1.put_meta(b"k", &Meta::string(Bytes::from_static(b"one"), None));
    ctx1.flush_db();
    ctx1.commit().expect("commit");
    assert!(
        ctx0.get_meta(b"k").expect("read").is_some(),
        "FLUSHDB of db 1 left db 0 alone"
    );
}

#[test]
fn expired_keys_read_as_missing_and_the_sweep_removes_them() {
    let (_dir, storage) = open();
    let mut ctx = storage.ctx(0, 1000);
    for i in 0..50 {
        ctx.put_meta(
            format!("gone{i}").as_bytes(),
            &Meta::string(Bytes::from_static(b"x"), Some(1500)),
        );
    }
    ctx.put_meta(
        b"stays",
        &Meta::string(Bytes::from_static(b"y"), Some(10_000)),
    );
    ctx.put_meta(b"forever", &Meta::string(Bytes::from_static(b"z"), None));
    ctx.commit().expect("commit");

    let later = storage.ctx(0, 2000);
    assert_eq!(later.get_meta(b"gone1").expect("read"), None);
    assert!(
        later.get_raw_meta(b"gone1").expect("read").is_some(),
        "lazy: still on disk"
    );

    let mut cursor = SweepCursor::default();
    let mut deleted = 0;
    for _ in 0..10 {
        deleted += storage
            .sweep_expired(&mut cursor, 16, 2000, |_| {})
            .expect("sweep");
    }
    assert_eq!(deleted, 50);
    assert_eq!(
        later.get_raw_meta(b"gone1").expect("read"),
        None,
        "swept from disk"
    );
    assert!(later.get_meta(b"stays").expect("read").is_some());
    assert!(later.get_meta(b"forever").expect("read").is_some());
}

#[test]
fn the_sweep_reaches_due_keys_without_walking_the_keyspace() {
    let (_dir, storage) = open();
    let mut ctx = storage.ctx(0, 1000);
    // 50,000 keys without a deadline sort before the due ones: a walk of
    // 500 keys a step would take 100 steps to reach them.
    for i in 0..50_000 {
        ctx.put_meta(
            format!("a{i:06}").as_bytes(),
            &Meta::string(Bytes::from_static(b"x"), None),
        );
    }
    for i in 0..20 {
        ctx.put_meta(
            format!("z{i}").as_bytes(),
            &Meta::string(Bytes::from_static(b"x"), Some(1500 + i)),
        );
    }
    ctx.put_meta(
        b"zlater",
        &Meta::string(Bytes::from_static(b"x"), Some(10_000)),
    );
    ctx.commit().expect("commit");
    let mut cursor = SweepCursor::default();
    let deleted = storage
        .sweep_expired(&mut cursor, 500, 2000, |_| {})
        .expect("sweep");
    assert_eq!(deleted, 20, "one step finds every due key");
    assert!(cursor.saw_volatile_keys(), "zlater still has a deadline");
    let after = storage.ctx(0, 2000);
    assert_eq!(after.get_raw_meta(b"z3").expect("read"), None);
    assert!(after.get_meta(b"zlater").expect("read").is_some());
    assert_eq!(storage.key_count(0).keys, 50_001);
    assert_eq!(storage.key_count(0).volatile, 1);
    assert_eq!(
        storage.expiry_index_problems().expect("walk"),
        Vec::<String>::new()
    );
    // Nothing else is due: the next step deletes nothing.
    assert_eq!(
        storage
            .sweep_expired(&mut cursor, 500, 2000, |_| {})
            .expect("sweep"),
        0
    );
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let storage = Storage::open(dir.path()).expect("open");
        let mut ctx = storage.ctx(5, 1000);
        ctx.put_meta(b"k", &Meta::string(Bytes::from_static(b"v"), Some(99_999)));
        ctx.commit().expect("commit");
    }
    let storage = Storage::open(dir.path()).expect("reopen");
    let meta = storage
        .ctx(5, 1000)
        .get_meta(b"k")
        .expect("read")
        .expect("present");
    assert_eq!(meta, Meta::string(Bytes::from_static(b"v"), Some(99_999)));
}

#[test]
fn a_second_opener_gets_an_error() {
    let (dir, _storage) = open();
    let err = Storage::open(dir.path()).expect_err("locked");
    assert!(
        err.to_string().contains("cannot open data directory"),
        "{err}"
    );
}

fn keys_of(ctx: &kiwi::storage::Ctx<'_>, reverse: bool) -> Vec<String> {
    ctx.iter(Cf::Data, b"p", Some(b"q"), reverse)
        .map(|item| String::from_utf8(item.expect("read").0).expect("utf8"))
        .collect()
}

#[test]
fn iteration_merges_pending_writes_both_ways() {
    let (_dir, storage) = open();
    let mut ctx = storage.ctx(0, 1000);
    for k in ["p1", "p3", "p5", "p7"] {
        ctx.put(Cf::Data, k.as_bytes(), b"old");
    }
    ctx.put(Cf::Data, b"q0", b"outside the range");
    ctx.commit().expect("commit");

    ctx.put(Cf::Data, b"p0", b"new");
    ctx.put(Cf::Data, b"p4", b"new");
    ctx.delete(Cf::Data, b"p5");
    ctx.put(Cf::Data, b"p3", b"replaced");
    ctx.put(Cf::Data, b"p9", b"new");
    assert_eq!(keys_of(&ctx, false), ["p0", "p1", "p3", "p4", "p7", "p9"]);
    assert_eq!(keys_of(&ctx, true), ["p9", "p7", "p4", "p3", "p1", "p0"]);
    assert_eq!(
        ctx.get(Cf::Data, b"p3").expect("read").as_deref(),
        Some(&b"replaced"[..])
    );
    assert_eq!(ctx.get(Cf::Data, b"p5").expect("read"), None);
    ctx.commit().expect("commit");
    assert_eq!(
        keys_of(&storage.ctx(0, 1000), false),
        ["p0", "p1", "p3", "p4", "p7", "p9"]
    );
}

#[test]
fn a_pending_flushdb_hides_committed_keys() {
    let (_dir, storage) = open();
    let mut ctx = storage.ctx(2, 1000);
    ctx.put_meta(b"old", &Meta::string(Bytes::from_static(b"x"), None));
    ctx.commit().expect("commit");
    ctx.flush_db();
    assert_eq!(ctx.get_meta(b"old").expect("read"), None);
    ctx.put_meta(b"new", &Meta::string(Bytes::from_static(b"y"), None));
    let mut seen = Vec::new();
    ctx.for_each_key(b"", |k, _, _| {
        seen.push(k.to_vec());
        true
    })
    .expect("scan");
    assert_eq!(seen, vec![b"new".to_vec()]);
    ctx.commit().expect("commit");
    let after = storage.ctx(2, 1000);
    assert_eq!(after.get_meta(b"old").expect("read"), None);
    assert!(after.get_meta(b"new").expect("read").is_some());
}

fn hash_meta(version: u64, len: u64) -> Meta {
    Meta {
        expire_at_ms: None,
        body: MetaBody::Collection(CollectionMeta {
            kind: KeyType::Hash,
            version,
            len,
            head: 0,
            tail: 0,
            indexed: false,
            stream: Default::default(),
        }),
    }
}

#[test]
fn compaction_reclaims_elements_of_dead_versions_only() {
    let (_dir, storage) = open();
    let mut ctx = storage.ctx(0, 1000);
    // "live" keeps version 2; "replaced" moved from version 1 to 3; "deleted" is gone.
    ctx.put_meta(b"live", &hash_meta(2, 10));
    ctx.put_meta(b"replaced", &hash_meta(3, 1));
    for i in 0..10u8 {
        ctx.put_data(&data_key(0, b"live", 2, &[i]), b"v");
        ctx.put_data(&data_key(0, b"replaced", 1, &[i]), b"stale");
        ctx.put_data(&data_key(0, b"deleted", 1, &[i]), b"stale");
    }
    ctx.put_data(&data_key(0, b"replaced", 3, b"f"), b"v");
    ctx.commit().expect("commit");
    assert_eq!(storage.count_raw(Cf::Data).expect("count"), 31);
    storage.compact_all();
    assert_eq!(
        storage.count_raw(Cf::Data).expect("count"),
        11,
        "only live versions remain"
    );
    let ctx = storage.ctx(0, 1000);
    assert_eq!(
        ctx.scan_data(&data_prefix(0, b"live", 2))
            .expect("scan")
            .len(),
        10
    );
    assert_eq!(
        ctx.scan_data(&data_prefix(0, b"replaced", 3))
            .expect("scan")
            .len(),
        1
    );
}

#[test]
fn rollback_after_savepoint_undoes_only_what_followed() {
    let (_dir, storage) = open();
    let string = |v: &'static [u8]| Meta::string(Bytes::from_static(v), None);
    let mut ctx = storage.ctx(0, 1000);
    ctx.put_meta(b"committed", &string(b"0"));
    ctx.commit().expect("commit");

    // Several commands sharing one context: the first one's writes stay.
    let mut ctx = storage.ctx(0, 1000);
    ctx.savepoint();
    ctx.put_meta(b"a", &string(b"1"));
    ctx.savepoint();
    // A failing command that wrote, flushed and wrote again.
    ctx.put_meta(b"a", &string(b"changed"));
    ctx.put_meta(b"b", &string(b"2"));
    ctx.flush_db();
    ctx.put_meta(b"c", &string(b"3"));
    ctx.flush_all();
    ctx.put_meta(b"d", &string(b"4"));
    assert!(ctx.get_meta(b"committed").expect("read").is_none());
    ctx.rollback();

    let value = |ctx: &kiwi::storage::Ctx<'_>, key: &[u8]| match ctx.get_meta(key).expect("read") {
        Some(Meta {
            body: MetaBody::String(v),
            ..
        }) => Some(v),
        _ => None,
    };
    assert_eq!(value(&ctx, b"a"), Some(Bytes::from_static(b"1")));
    for key in [&b"b"[..], b"c", b"d"] {
        assert_eq!(value(&ctx, key), None);
    }
    assert_eq!(value(&ctx, b"committed"), Some(Bytes::from_static(b"0")));
    ctx.commit().expect("commit");

    let fresh = storage.ctx(0, 1000);
    assert_eq!(value(&fresh, b"a"), Some(Bytes::from_static(b"1")));
    assert_eq!(value(&fresh, b"committed"), Some(Bytes::from_static(b"0")));
    assert_eq!(value(&fresh, b"b"), None);
}

#[test]
fn log_versions_are_disjoint_per_entry_and_from_clock_versions() {
    use kiwi::storage::{log_versions, VERSIONS_PER_ENTRY};
    let (first0, end0) = log_versions(0).expect("index 0");
    let (first1, end1) = log_versions(1).expect("index 1");
    assert_eq!(end0 - first0, VERSIONS_PER_ENTRY);
    assert_eq!(end0, first1);
    assert!(end1 > first1);
    // Clock versions (microseconds since 1970) never reach the log's half.
    assert!(first0 >= 1 << 63);
    let (_dir, storage) = open();
    assert!(storage.ctx(0, 0).next_version() < first0);
    // The last usable index ends its range at the top of u64, not past it.
    let (_, last_end) = log_versions((1 << 43) - 2).expect("last usable index");
    assert_eq!(last_end, u64::MAX - VERSIONS_PER_ENTRY + 1);
    assert!(log_versions((1 << 43) - 1).is_err());
    assert!(log_versions(u64::MAX).is_err());
}
