//! The Raft log store and state machine: openraft's conformance suite,
//! durability across reopen, deterministic apply, snapshot transfer.

use std::path::Path;
use std::sync::Arc;

use kiwi::raft::{open_stores, KiwiRequest, KiwiResponse, LogStore, StateMachine, TypeConfig};
use kiwi::resp::Reply;
use kiwi::{Engine, RuntimeConfig};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftLogReader, RaftSnapshotBuilder,
    StorageError, Vote,
};
use tempfile::TempDir;

// ------------------------------------------------------------------ helpers

fn open_engine(dir: &Path) -> Arc<Engine> {
    Arc::new(Engine::open(RuntimeConfig::new(dir)).expect("open engine"))
}

/// A node's storage on a fresh temporary directory.
pub(crate) struct Node {
    engine: Arc<Engine>,
    log: LogStore,
    pub(crate) sm: StateMachine,
    _dir: TempDir,
}

impl Node {
    pub(crate) fn new() -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = open_engine(dir.path());
        let (log, sm) = open_stores(engine.clone());
        Node {
            engine,
            log,
            sm,
            _dir: dir,
        }
    }

    /// Run a (local, read) command against the node's keyspace.
    pub(crate) fn run(&self, words: &[&str]) -> Reply {
        self.run_in(0, words)
    }

    /// [`Node::run`] in database `db`.
    pub(crate) fn run_in(&self, db: u8, words: &[&str]) -> Reply {
        let mut session = self.engine.local_session();
        session.db = db;
        let reply = self.engine.execute_args(&mut session, words);
        self.engine.disconnect(&mut session);
        reply
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("tokio runtime")
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

pub(crate) fn normal(term: u64, index: u64, request: KiwiRequest) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(request),
    }
}

fn blank(term: u64, index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Blank,
    }
}

fn membership(term: u64, index: u64) -> Entry<TypeConfig> {
    let nodes = [1u64, 2, 3].into_iter().collect();
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(Membership::new(vec![nodes], None)),
    }
}

pub(crate) fn bulk(s: &str) -> Reply {
    Reply::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

/// The data families of a node's keyspace, as snapshot bytes: two nodes
/// with equal bytes hold identical keys, values, expiries and versions.
pub(crate) async fn keyspace_bytes(sm: &mut StateMachine) -> Vec<u8> {
    let snapshot = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build snapshot");
    snapshot.snapshot.into_inner()
}

/// The leader's clock in the workload: far enough ahead (2096) that
/// nothing it sets expires while the test reads it.
const T0: u64 = 4_000_000_000_000;

/// A workload touching strings, hashes, relative expiry, RENAME of a
/// collection, a member's identity and a failing command in the middle of
/// an entry.
fn workload() -> Vec<Entry<TypeConfig>> {
    vec![
        blank(1, 1),
        membership(1, 2),
        normal(
            1,
            3,
            KiwiRequest::new(0, T0)
                .command(&["SET", "s", "abc", "EX", "100"])
                .command(&["HSET", "h", "f1", "v1", "f2", "v2"])
                .command(&["EXPIRE", "h", "50"])
                // Node 2 registers its directory (and the cluster id):
                // replicated records that snapshots must carry too.
                .command(&["KIWI.IDENTITY", "2", "abc", "1f"]),
        ),
        normal(
            1,
            4,
            KiwiRequest::new(0, T0 + 500)
                .command(&["INCR", "s"])
                .command(&["HSET", "s", "f", "v"])
                .command(&["RENAME", "h", "h2"])
                .command(&["HSET", "h", "new", "1"])
                .command(&["SET", "counter", "1"])
                .command(&["INCR", "counter"]),
        ),
        normal(
            2,
            5,
            KiwiRequest::new(3, T0 + 1_000)
                .command(&["SET", "other-db", "x", "PX", "250"])
                .command(&["CLIENT", "SETNAME", "nope"])
                .command(&["NOSUCHCOMMAND"]),
        ),
    ]
}

// -------------------------------------------------------- conformance suite

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, sm) = open_stores(open_engine(dir.path()));
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_conformance_suite() {
    Suite::test_all(Builder).expect("openraft storage suite");
}

// ------------------------------------------------------------- durability

#[test]
fn log_vote_and_committed_survive_reopen() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let entries = workload();
    rt.block_on(async {
        let (mut log, _sm) = open_stores(open_engine(dir.path()));
        // blocking_append returns once the store reported the entries flushed.
        log.blocking_append(entries.clone()).await.expect("append");
        log.save_vote(&Vote::new_committed(2, 1))
            .await
            .expect("vote");
        log.save_committed(Some(log_id(1, 4)))
            .await
            .expect("committed");
        log.purge(log_id(1, 2)).await.expect("purge");
    });
    rt.block_on(async {
        let (mut log, mut sm) = open_stores(open_engine(dir.path()));
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 2)));
        assert_eq!(state.last_log_id, Some(log_id(2, 5)));
        let read = log.try_get_log_entries(0..100).await.expect("read log");
        assert_eq!(read, entries[2..].to_vec());
        let read = log.try_get_log_entries(4..=4).await.expect("read log");
        assert_eq!(read, entries[3..4].to_vec());
        assert_eq!(
            log.read_vote().await.expect("vote"),
            Some(Vote::new_committed(2, 1))
        );
        assert_eq!(
            log.read_committed().await.expect("committed"),
            Some(log_id(1, 4))
        );
        // Nothing was applied: the state machine starts empty.
        let (applied, _) = sm.applied_state().await.expect("applied state");
        assert_eq!(applied, None);
        // Truncation removes the tail durably too.
        log.truncate(log_id(1, 4)).await.expect("truncate");
    });
    rt.block_on(async {
        let (mut log, _sm) = open_stores(open_engine(dir.path()));
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(state.last_log_id, Some(log_id(1, 3)));
        // Purging everything leaves the purge point as the last log id.
        log.purge(log_id(1, 3)).await.expect("purge");
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(state.last_log_id, Some(log_id(1, 3)));
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
    });
}

#[test]
fn applied_state_survives_reopen() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    rt.block_on(async {
        let (_log, mut sm) = open_stores(open_engine(dir.path()));
        sm.apply(workload()).await.expect("apply");
    });
    rt.block_on(async {
        let engine = open_engine(dir.path());
        let (_log, mut sm) = open_stores(engine.clone());
        let (applied, membership) = sm.applied_state().await.expect("applied state");
        assert_eq!(applied, Some(log_id(2, 5)));
        assert_eq!(membership.log_id(), &Some(log_id(1, 2)));
        let mut session = engine.local_session();
        assert_eq!(
            engine.execute_args(&mut session, &["HGET", "h2", "f2"]),
            bulk("v2")
        );
    });
}

// ----------------------------------------------------------- determinism

#[test]
fn apply_is_deterministic_across_nodes() {
    let rt = runtime();
    let (mut a, mut b) = (Node::new(), Node::new());
    let (replies_a, bytes_a, bytes_b) = rt.block_on(async {
        let replies_a = a.sm.apply(workload()).await.expect("apply on a");
        // A later wall clock on the second node must not matter.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let replies_b = b.sm.apply(workload()).await.expect("apply on b");
        assert_eq!(replies_a, replies_b);
        let bytes_a = keyspace_bytes(&mut a.sm).await;
        let bytes_b = keyspace_bytes(&mut b.sm).await;
        (replies_a, bytes_a, bytes_b)
    });
    // Identical keys, values, absolute expiries and collection versions.
    assert_eq!(bytes_a, bytes_b);

    let replies: Vec<Vec<Reply>> = replies_a
        .into_iter()
        .map(KiwiResponse::into_replies)
        .collect();
    assert_eq!(replies[0], Vec::<Reply>::new(), "blank entry");
    assert_eq!(replies[1], Vec::<Reply>::new(), "membership entry");
    assert_eq!(
        replies[2],
        vec![Reply::OK, Reply::Int(2), Reply::Int(1), Reply::Int(1)],
        "first entry"
    );
    assert!(replies[3][0].is_error(), "INCR of a non-number");
    assert_eq!(
        replies[3][1],
        Reply::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into())
    );
    assert_eq!(
        replies[3][2..],
        [Reply::OK, Reply::Int(1), Reply::OK, Reply::Int(2)]
    );
    assert_eq!(replies[4][0], Reply::OK);
    assert!(replies[4][1].is_error(), "node-local commands are refused");
    assert!(replies[4][2].is_error(), "unknown command");

    for node in [&a, &b] {
        // Relative expiries became the leader's clock plus the TTL.
        assert_eq!(
            node.run(&["PEXPIRETIME", "s"]),
            Reply::Int((T0 + 100_000) as i64)
        );
        assert_eq!(
            node.run(&["PEXPIRETIME", "h2"]),
            Reply::Int((T0 + 50_000) as i64)
        );
        // The failed commands left nothing behind; the others all landed.
        assert_eq!(node.run(&["TYPE", "s"]), Reply::Status("string"));
        assert_eq!(node.run(&["HGET", "h2", "f1"]), bulk("v1"));
        assert_eq!(node.run(&["HGET", "h", "new"]), bulk("1"));
        assert_eq!(node.run(&["EXISTS", "h"]), Reply::Int(1));
    }
    assert_eq!(a.run(&["GET", "s"]), bulk("abc"));
    assert_eq!(a.run(&["GET", "counter"]), bulk("2"));
}

/// SPOP removes members picked at random: under Raft every node must pick
/// the same ones (the generator is seeded from the log index), for small
/// sets (exact pick) and large ones (the trie walk) alike.
#[test]
fn random_pops_are_the_same_on_every_node() {
    fn as_strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let rt = runtime();
    let members = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    };
    let small = members("s", 50);
    let big = members("member:", 3000);
    let sadd = |key: &str, m: &[String]| -> Vec<String> {
        let mut args = vec!["SADD".to_string(), key.to_string()];
        args.extend(m.iter().cloned());
        args
    };
    let entries = || {
        let small_args = sadd("small", &small);
        let big_args = sadd("big", &big);
        vec![
            blank(1, 1),
            membership(1, 2),
            normal(
                1,
                3,
                KiwiRequest::new(0, T0)
                    .command(&as_strs(&small_args))
                    .command(&as_strs(&big_args)),
            ),
            normal(
                1,
                4,
                KiwiRequest::new(0, T0 + 1)
                    .command(&["SPOP", "small"])
                    .command(&["SPOP", "small", "5"])
                    .command(&["SPOP", "big"])
                    .command(&["SPOP", "big", "3"])
                    .command(&["SPOP", "big", "700"]),
            ),
        ]
    };
    let (mut a, mut b) = (Node::new(), Node::new());
    let (replies_a, replies_b, bytes_a, bytes_b) = rt.block_on(async {
        let ra = a.sm.apply(entries()).await.expect("apply on a");
        let rb = b.sm.apply(entries()).await.expect("apply on b");
        (
            ra,
            rb,
            keyspace_bytes(&mut a.sm).await,
            keyspace_bytes(&mut b.sm).await,
        )
    });
    assert_eq!(replies_a, replies_b, "both nodes popped the same members");
    assert_eq!(bytes_a, bytes_b, "both nodes hold the same sets");
    for node in [&a, &b] {
        assert_eq!(node.run(&["SCARD", "small"]), Reply::Int(50 - 6));
        assert_eq!(node.run(&["SCARD", "big"]), Reply::Int(3000 - 704));
    }
    // Another entry index draws differently (the seed is the log index).
    let pops = |index: u64| {
        let mut node = Node::new();
        let mut log = entries();
        log.truncate(3);
        if index > 4 {
            log.push(blank(1, 4));
        }
        log.push(normal(
            1,
            index,
            KiwiRequest::new(0, T0 + 1).command(&["SPOP", "big", "20"]),
        ));
        let replies = rt.block_on(async { node.sm.apply(log).await.expect("apply") });
        replies.last().cloned()
    };
    assert_ne!(pops(4), pops(5));
}

#[test]
fn flushall_in_the_log_keeps_raft_state() {
    let rt = runtime();
    let mut node = Node::new();
    rt.block_on(async {
        let mut entries = workload();
        entries.push(normal(
            2,
            6,
            KiwiRequest::new(0, 2_000_000).command(&["FLUSHALL"]),
        ));
        node.log
            .blocking_append(entries.clone())
            .await
            .expect("append");
        node.sm.apply(entries).await.expect("apply");
        let (applied, membership) = node.sm.applied_state().await.expect("applied");
        assert_eq!(applied, Some(log_id(2, 6)));
        assert_eq!(membership.log_id(), &Some(log_id(1, 2)));
        let state = node.log.get_log_state().await.expect("log state");
        assert_eq!(state.last_log_id, Some(log_id(2, 6)));
        let read = node.log.try_get_log_entries(..).await.expect("read log");
        assert_eq!(read.len(), 6);
    });
    assert_eq!(node.run(&["DBSIZE"]), Reply::Int(0));
}

// -------------------------------------------------------------- snapshots

#[test]
fn snapshot_installs_identical_data() {
    let rt = runtime();
    let (mut leader, mut fresh, mut stale) = (Node::new(), Node::new(), Node::new());
    rt.block_on(async {
        leader.sm.apply(workload()).await.expect("apply on leader");
        // `stale` holds data the snapshot does not have: it must vanish.
        stale
            .sm
            .apply([normal(
                1,
                1,
                KiwiRequest::new(5, 10)
                    .command(&["SET", "gone", "1"])
                    .command(&["HSET", "gone-hash", "f", "v"]),
            )])
            .await
            .expect("apply on stale");

        let built = leader
            .sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");
        let current = leader
            .sm
            .get_current_snapshot()
            .await
            .expect("current")
            .expect("a current snapshot");
        assert_eq!(current.meta, built.meta);
        assert_eq!(current.snapshot.get_ref(), built.snapshot.get_ref());

        for node in [&mut fresh, &mut stale] {
            let mut receiving = node.sm.begin_receiving_snapshot().await.expect("begin");
            *receiving = (*built.snapshot).clone();
            node.sm
                .install_snapshot(&built.meta, receiving)
                .await
                .expect("install");
            let (applied, membership) = node.sm.applied_state().await.expect("applied");
            assert_eq!(applied, built.meta.last_log_id);
            assert_eq!(membership, built.meta.last_membership);
            let current = node
                .sm
                .get_current_snapshot()
                .await
                .expect("current")
                .expect("installed snapshot is current");
            assert_eq!(current.meta, built.meta);
            assert_eq!(
                keyspace_bytes(&mut node.sm).await,
                built.snapshot.get_ref().clone()
            );
        }
    });
    for node in [&fresh, &stale] {
        assert_eq!(node.run(&["HGET", "h2", "f2"]), bulk("v2"));
        assert_eq!(
            node.run(&["PEXPIRETIME", "s"]),
            Reply::Int((T0 + 100_000) as i64)
        );
    }
    let mut session = stale.engine.local_session();
    assert_eq!(
        stale.engine.execute_args(&mut session, &["SELECT", "5"]),
        Reply::OK
    );
    assert_eq!(
        stale
            .engine
            .execute_args(&mut session, &["EXISTS", "gone", "gone-hash"]),
        Reply::Int(0)
    );
}

#[test]
fn a_snapshot_carries_swapdb() {
    let rt = runtime();
    let (mut leader, mut stale) = (Node::new(), Node::new());
    rt.block_on(async {
        let mut entries = workload();
        entries.push(normal(
            2,
            6,
            KiwiRequest::new(0, 2_000_000)
                .command(&["SET", "where", "was-0"])
                .command(&["SWAPDB", "0", "7"]),
        ));
        leader.sm.apply(entries).await.expect("apply on leader");
        // The stale node swapped other databases: the snapshot's map wins.
        stale
            .sm
            .apply([normal(
                1,
                1,
                KiwiRequest::new(0, 10)
                    .command(&["SET", "where", "stale"])
                    .command(&["SWAPDB", "0", "3"]),
            )])
            .await
            .expect("apply on stale");
        let built = leader
            .sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");
        let mut receiving = stale.sm.begin_receiving_snapshot().await.expect("begin");
        *receiving = (*built.snapshot).clone();
        stale
            .sm
            .install_snapshot(&built.meta, receiving)
            .await
            .expect("install");
    });
    for node in [&leader, &stale] {
        assert_eq!(node.run_in(7, &["GET", "where"]), bulk("was-0"));
        assert_eq!(node.run_in(0, &["GET", "where"]), Reply::Nil);
        assert_eq!(node.run_in(3, &["GET", "where"]), Reply::Nil);
        // What the workload wrote to database 0 moved to 7 with it.
        assert_eq!(node.run_in(7, &["HGET", "h2", "f2"]), bulk("v2"));
    }
}

#[test]
fn corrupt_snapshot_is_refused_and_changes_nothing() {
    let rt = runtime();
    let (mut leader, mut follower) = (Node::new(), Node::new());
    rt.block_on(async {
        leader.sm.apply(workload()).await.expect("apply");
        follower
            .sm
            .apply([normal(
                1,
                1,
                KiwiRequest::new(0, 10).command(&["SET", "keep", "1"]),
            )])
            .await
            .expect("apply");
        let built = leader
            .sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");
        let mut data = built.snapshot.into_inner();
        data.truncate(data.len() - 3);
        let result = follower
            .sm
            .install_snapshot(&built.meta, Box::new(std::io::Cursor::new(data)))
            .await;
        assert!(result.is_err(), "a truncated snapshot must be refused");
        let (applied, _) = follower.sm.applied_state().await.expect("applied");
        assert_eq!(applied, Some(log_id(1, 1)));
    });
    assert_eq!(follower.run(&["GET", "keep"]), bulk("1"));
}
