//! What a replicated entry carries and how every node applies it: WATCH
//! checked at apply (later entries, batch-mates, flushes, expiry), the
//! database of each command of a transaction, the client's protocol, and a
//! replicated clock that never goes backwards. Each case applies the same
//! entries on two nodes and expects the same replies and keyspace.

use kiwi::raft::{Exec, KiwiRequest, KiwiResponse, Op, TypeConfig, Watched, Work};
use kiwi::resp::Reply;
use openraft::storage::RaftStateMachine;
use openraft::Entry;

use crate::raft_storage_tests::{bulk, keyspace_bytes, normal, Node};

/// Far enough ahead that nothing set with a TTL expires by wall clock.
const T0: u64 = 4_000_000_000_000;

/// An entry of term 1.
fn entry(index: u64, request: KiwiRequest) -> Entry<TypeConfig> {
    normal(1, index, request)
}

fn words(args: &[&str]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

fn plain(db: u8, commands: &[&[&str]]) -> Op {
    Op::commands(db, false, commands.iter().map(|c| words(c)).collect())
}

fn exec(commands: &[(u8, &[&str])], watched: Vec<Watched>) -> Op {
    Op {
        db: 0,
        resp3: false,
        work: Work::Exec(Exec {
            commands: commands.iter().map(|(db, c)| (*db, words(c))).collect(),
            watched,
        }),
    }
}

fn watched(db: u8, key: &str, seen: u64, existed: bool) -> Watched {
    Watched {
        db,
        key: key.as_bytes().to_vec(),
        seen,
        existed,
    }
}

fn request(now_ms: u64, ops: Vec<Op>) -> KiwiRequest {
    KiwiRequest { now_ms, ops }
}

/// Apply `entries` on two fresh nodes; both must answer and end alike.
/// Returns the replies per entry and per proposal, and the first node.
fn apply_on_two(entries: Vec<Entry<TypeConfig>>) -> (Vec<Vec<Vec<Reply>>>, Node) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (mut a, mut b) = (Node::new(), Node::new());
    let replies = rt.block_on(async {
        let ra = a.sm.apply(entries.clone()).await.expect("apply on a");
        let rb = b.sm.apply(entries).await.expect("apply on b");
        assert_eq!(ra, rb, "both nodes answer alike");
        let (ka, kb) = (
            keyspace_bytes(&mut a.sm).await,
            keyspace_bytes(&mut b.sm).await,
        );
        assert_eq!(ka, kb, "both nodes hold the same keyspace");
        ra
    });
    let replies = replies
        .into_iter()
        .map(|r: KiwiResponse| {
            r.replies
                .into_iter()
                .map(|op| op.into_iter().map(Reply::from).collect())
                .collect()
        })
        .collect();
    (replies, a)
}

#[test]
fn a_watched_key_written_by_a_later_entry_aborts_exec() {
    let (replies, node) = apply_on_two(vec![
        entry(1, request(T0, vec![plain(0, &[&["SET", "k", "1"]])])),
        // The client watched after entry 1 (it saw everything before 2)…
        entry(2, request(T0, vec![plain(0, &[&["SET", "k", "2"]])])),
        // …so entry 2's write aborts its transaction.
        entry(
            3,
            request(
                T0,
                vec![exec(
                    &[(0, &["SET", "k", "from-exec"])],
                    vec![watched(0, "k", 2, true)],
                )],
            ),
        ),
    ]);
    assert_eq!(replies[2], vec![vec![Reply::NilArray]]);
    assert_eq!(node.run(&["GET", "k"]), bulk("2"));
}

#[test]
fn an_unchanged_watched_key_lets_exec_run() {
    let (replies, node) = apply_on_two(vec![
        entry(1, request(T0, vec![plain(0, &[&["SET", "k", "1"]])])),
        entry(2, request(T0, vec![plain(0, &[&["SET", "other", "x"]])])),
        entry(
            3,
            request(
                T0,
                vec![exec(
                    &[(0, &["INCR", "k"]), (0, &["GET", "k"])],
                    vec![watched(0, "k", 2, true)],
                )],
            ),
        ),
    ]);
    assert_eq!(
        replies[2],
        vec![vec![Reply::Array(vec![Reply::Int(2), bulk("2")])]]
    );
    assert_eq!(node.run(&["GET", "k"]), bulk("2"));
}

#[test]
fn a_write_earlier_in_the_same_entry_aborts_exec() {
    // Two clients' proposals batched into one entry: the plain SET comes
    // first, so the transaction that watched k must not run.
    let (replies, node) = apply_on_two(vec![
        entry(1, request(T0, vec![plain(0, &[&["SET", "k", "1"]])])),
        entry(
            2,
            request(
                T0,
                vec![
                    plain(0, &[&["SET", "k", "2"]]),
                    exec(
                        &[(0, &["SET", "k", "lost-update"])],
                        vec![watched(0, "k", 2, true)],
                    ),
                    // Another client's transaction on an untouched key runs.
                    exec(&[(0, &["SET", "j", "ok"])], vec![watched(0, "j", 2, false)]),
                ],
            ),
        ),
    ]);
    assert_eq!(
        replies[1],
        vec![
            vec![Reply::OK],
            vec![Reply::NilArray],
            vec![Reply::Array(vec![Reply::OK])]
        ]
    );
    assert_eq!(node.run(&["GET", "k"]), bulk("2"));
    assert_eq!(node.run(&["GET", "j"]), bulk("ok"));
}

#[test]
fn flushes_abort_transactions_watching_their_databases() {
    let (replies, _node) = apply_on_two(vec![
        entry(1, request(T0, vec![plain(3, &[&["SET", "k", "1"]])])),
        entry(2, request(T0, vec![plain(3, &[&["FLUSHDB"]])])),
        entry(
            3,
            request(
                T0,
                vec![
                    exec(&[(3, &["SET", "k", "x"])], vec![watched(3, "k", 2, true)]),
                    // FLUSHDB of db 3 does not touch db 4.
                    exec(&[(4, &["SET", "k", "y"])], vec![watched(4, "k", 2, true)]),
                    // Nor a key of db 3 that did not exist (Redis: a flush
                    // touches the watched keys it deletes).
                    exec(
                        &[(5, &["SET", "k", "w"])],
                        vec![watched(3, "absent", 2, false)],
                    ),
                ],
            ),
        ),
        entry(4, request(T0, vec![plain(0, &[&["FLUSHALL"]])])),
        entry(
            5,
            request(
                T0,
                vec![exec(
                    &[(4, &["SET", "k", "z"])],
                    vec![watched(4, "k", 4, true)],
                )],
            ),
        ),
    ]);
    assert_eq!(
        replies[2],
        vec![
            vec![Reply::NilArray],
            vec![Reply::Array(vec![Reply::OK])],
            vec![Reply::Array(vec![Reply::OK])]
        ]
    );
    assert_eq!(replies[4], vec![vec![Reply::NilArray]]);
}

#[test]
fn a_watched_key_that_expired_since_aborts_exec() {
    let (replies, _node) = apply_on_two(vec![
        entry(
            1,
            request(T0, vec![plain(0, &[&["SET", "k", "1", "PX", "100"]])]),
        ),
        entry(
            2,
            request(T0 + 50, vec![plain(0, &[&["SET", "other", "x"]])]),
        ),
        // Watched at T0+50 (alive); the transaction applies after expiry.
        entry(
            3,
            request(
                T0 + 200,
                vec![exec(
                    &[(0, &["SET", "j", "1"])],
                    vec![watched(0, "k", 3, true)],
                )],
            ),
        ),
        // A key that was already gone when watched does not abort.
        entry(
            4,
            request(
                T0 + 300,
                vec![exec(
                    &[(0, &["SET", "j", "2"])],
                    vec![watched(0, "k", 4, false)],
                )],
            ),
        ),
    ]);
    assert_eq!(replies[2], vec![vec![Reply::NilArray]]);
    assert_eq!(replies[3], vec![vec![Reply::Array(vec![Reply::OK])]]);
}

#[test]
fn each_command_of_a_transaction_runs_in_its_own_database() {
    // MULTI; SET a 0; SELECT 5; SET a 5; INCR a; EXEC
    let (replies, node) = apply_on_two(vec![entry(
        1,
        request(
            T0,
            vec![exec(
                &[
                    (0, &["SET", "a", "0"]),
                    (5, &["SET", "a", "5"]),
                    (5, &["INCR", "a"]),
                ],
                Vec::new(),
            )],
        ),
    )]);
    assert_eq!(
        replies[0],
        vec![vec![Reply::Array(vec![
            Reply::OK,
            Reply::OK,
            Reply::Int(6)
        ])]]
    );
    assert_eq!(node.run(&["GET", "a"]), bulk("0"));
    assert_eq!(node.run_in(5, &["GET", "a"]), bulk("6"));
}

#[test]
fn replies_take_the_proposing_clients_protocol() {
    let mut resp3 = plain(0, &[&["ZPOPMIN", "z", "2"]]);
    resp3.resp3 = true;
    let (replies, _node) = apply_on_two(vec![
        entry(
            1,
            request(
                T0,
                vec![plain(0, &[&["ZADD", "z", "1", "a", "2", "b", "3", "c"]])],
            ),
        ),
        entry(
            2,
            request(T0, vec![plain(0, &[&["ZPOPMIN", "z", "1"]]), resp3]),
        ),
    ]);
    // RESP2: flat member, score; RESP3: a [member, score] pair each.
    assert_eq!(
        replies[1][0],
        vec![Reply::Array(vec![bulk("a"), Reply::Double(1.0)])]
    );
    assert_eq!(
        replies[1][1],
        vec![Reply::Array(vec![
            Reply::Array(vec![bulk("b"), Reply::Double(2.0)]),
            Reply::Array(vec![bulk("c"), Reply::Double(3.0)]),
        ])]
    );
}

#[test]
fn the_replicated_clock_never_goes_backwards() {
    let (replies, _node) = apply_on_two(vec![
        entry(
            1,
            request(
                T0 + 1_000,
                vec![plain(0, &[&["SET", "k", "v", "PX", "500"]])],
            ),
        ),
        entry(
            2,
            request(T0 + 1_600, vec![plain(0, &[&["SET", "other", "x"]])]),
        ),
        // A new leader whose clock is behind the old one's: k stays expired.
        entry(
            3,
            request(
                T0,
                vec![plain(0, &[&["GET", "k"], &["SET", "t", "1", "PX", "100"]])],
            ),
        ),
        entry(4, request(T0 + 1_650, vec![plain(0, &[&["GET", "t"]])])),
    ]);
    assert_eq!(replies[2][0], vec![Reply::Nil, Reply::OK]);
    // t's expiry was set relative to the replicated clock (T0+1600+100).
    assert_eq!(replies[3][0], vec![bulk("1")]);
}
