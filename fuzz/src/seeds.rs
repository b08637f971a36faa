//! Starting inputs for every target: well-formed messages and records of
//! each kind, and the packets that once killed the server. The corpus test
//! replays them; `fuzz/campaign.sh` writes them out as AFL's first inputs.

use std::collections::{BTreeMap, BTreeSet};

use kiwi::decoders::{Frame, RpcReply, StoredKind};
use kiwi::raft::identity::DirIdentity;
use kiwi::raft::network::{MembershipChange, Rpc, Stamp};
use kiwi::raft::{
    Exec, KiwiRequest, KiwiResponse, NodeId, Op, TypeConfig, Watched, WireReply, Work,
};
use kiwi::storage::{
    data_key, CollectionMeta, KeyType, Meta, MetaBody, StreamId, StreamMeta, LIST_START_INDEX,
};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta,
};
use openraft::{StoredMembership, Vote};

use crate::{hll, records, request, snapshot};

type Seed = (&'static str, Vec<u8>);

fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn membership() -> StoredMembership<NodeId, BasicNode> {
    let nodes: BTreeMap<NodeId, BasicNode> = (1..=3)
        .map(|id| (id, BasicNode::new(format!("127.0.0.1:{}", 7000 + id))))
        .collect();
    let voters: BTreeSet<NodeId> = nodes.keys().copied().collect();
    StoredMembership::new(Some(log_id(1, 1)), Membership::new(vec![voters], nodes))
}

fn kiwi_request() -> KiwiRequest {
    KiwiRequest::new(0, 1_700_000_000_000)
        .command(&["SET", "key", "value"])
        .command(&["RPUSH", "list", "a", "b\r\n\0"])
        .op(Op {
            db: 3,
            resp3: true,
            work: Work::Exec(Exec {
                commands: vec![(3, vec![b"INCR".to_vec(), b"n".to_vec()])],
                watched: vec![Watched {
                    db: 3,
                    key: b"n".to_vec(),
                    seen: 41,
                    existed: true,
                }],
            }),
        })
}

fn entries() -> Vec<Entry<TypeConfig>> {
    vec![
        Entry {
            log_id: log_id(2, 7),
            payload: EntryPayload::Blank,
        },
        Entry {
            log_id: log_id(2, 8),
            payload: EntryPayload::Normal(kiwi_request()),
        },
        Entry {
            log_id: log_id(2, 9),
            payload: EntryPayload::Membership(membership().membership().clone()),
        },
    ]
}

fn snapshot_meta() -> SnapshotMeta<NodeId, BasicNode> {
    SnapshotMeta {
        last_log_id: Some(log_id(2, 9)),
        last_membership: membership(),
        snapshot_id: "2-9-1".into(),
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap_or_default()
}

fn frames() -> Vec<Vec<u8>> {
    let stamp = Stamp {
        cluster: Some(0x1234_5678_9abc_def0),
        incarnation: 42,
        target_incarnation: Some(43),
    };
    let vote = Vote::new_committed(2, 1);
    let rpcs = vec![
        Rpc::AppendEntries(AppendEntriesRequest {
            vote,
            prev_log_id: Some(log_id(2, 6)),
            entries: entries(),
            leader_commit: Some(log_id(2, 6)),
        }),
        Rpc::Vote(VoteRequest::new(Vote::new(3, 2), Some(log_id(2, 9)))),
        Rpc::InstallSnapshot(InstallSnapshotRequest {
            vote,
            meta: snapshot_meta(),
            offset: 0,
            data: snapshot::build(snapshot::VERSION, &snapshot_records()),
            done: true,
        }),
        Rpc::Forward(kiwi_request()),
        Rpc::ReadIndex,
        Rpc::Membership(MembershipChange::Add(4, "127.0.0.1:7004".into())),
        Rpc::Membership(MembershipChange::Remove(3)),
    ];
    rpcs.into_iter()
        .map(|rpc| {
            encode(&Frame {
                from: 1,
                to: 2,
                stamp,
                rpc,
            })
        })
        .collect()
}

fn replies() -> Vec<Vec<u8>> {
    let nested = WireReply::Array(vec![
        WireReply::Map(vec![(
            WireReply::Bulk(b"k".to_vec()),
            WireReply::Set(vec![WireReply::Double(1.5), WireReply::Nil]),
        )]),
        WireReply::Status("OK".into()),
        WireReply::Error("ERR x".into()),
        WireReply::Int(-3),
        WireReply::NilArray,
        WireReply::Bool(true),
        WireReply::Verbatim("text".into()),
    ]);
    let all = vec![
        RpcReply::AppendEntries(Ok(AppendEntriesResponse::Success)),
        RpcReply::AppendEntries(Ok(AppendEntriesResponse::Conflict)),
        RpcReply::Vote(Ok(VoteResponse::new(
            Vote::new(3, 2),
            Some(log_id(2, 9)),
            true,
        ))),
        RpcReply::InstallSnapshot(Ok(InstallSnapshotResponse {
            vote: Vote::new_committed(2, 1),
        })),
        RpcReply::Forward(Ok(KiwiResponse {
            replies: vec![vec![nested, WireReply::Int(1)]],
        })),
        RpcReply::ReadIndex(Ok(Some(12))),
        RpcReply::Membership(Err("not the leader".into())),
        RpcReply::WrongNode(3),
        RpcReply::Refused("another cluster".into()),
    ];
    all.iter().map(encode).collect()
}

fn snapshot_records() -> Vec<snapshot::Owned> {
    vec![
        (
            snapshot::SHARED_TAG,
            b"shared.cluster".to_vec(),
            encode(&7u128),
        ),
        (
            1,
            vec![0, b'k'],
            Meta::string(bytes::Bytes::from_static(b"v"), Some(9)).encode(),
        ),
        (2, data_key(0, b"h", 5, b"field"), b"value".to_vec()),
        (3, vec![0, 0, 0, 0, 1, b'z'], Vec::new()),
        (5, b"clock".to_vec(), 99u64.to_be_bytes().to_vec()),
    ]
}

fn stored_records() -> Vec<(StoredKind, Vec<u8>)> {
    let list = Meta {
        expire_at_ms: None,
        body: MetaBody::Collection(CollectionMeta {
            kind: KeyType::List,
            version: 5,
            len: 2,
            head: LIST_START_INDEX - 1,
            tail: LIST_START_INDEX + 1,
            indexed: false,
            stream: StreamMeta::default(),
        }),
    };
    let hash = Meta {
        expire_at_ms: Some(1_700_000_000_000),
        body: MetaBody::Collection(CollectionMeta {
            kind: KeyType::Hash,
            version: 6,
            len: 3,
            head: 0,
            tail: 0,
            indexed: false,
            stream: StreamMeta::default(),
        }),
    };
    let stream = Meta {
        expire_at_ms: None,
        body: MetaBody::Collection(CollectionMeta {
            kind: KeyType::Stream,
            version: 7,
            len: 2,
            head: 0,
            tail: 0,
            indexed: false,
            stream: StreamMeta {
                last_id: StreamId::new(5, 1),
                first_id: StreamId::new(1, 1),
                max_deleted: StreamId::new(3, 0),
                entries_added: 4,
            },
        }),
    };
    let identity = DirIdentity {
        node_id: 2,
        incarnation: 0xdead_beef,
        cluster: Some(7),
    };
    let mut out = vec![
        (
            StoredKind::Meta,
            Meta::string(bytes::Bytes::from_static(b"v"), None).encode(),
        ),
        (StoredKind::Meta, list.encode()),
        (StoredKind::Meta, hash.encode()),
        (StoredKind::Meta, stream.encode()),
        (StoredKind::DataKey, data_key(1, b"key", 5, b"sub")),
        (StoredKind::Replicated, 77u64.to_be_bytes().to_vec()),
        (StoredKind::Vote, encode(&Vote::new_committed(2, 1))),
        (StoredKind::LogId, encode(&log_id(2, 9))),
        (StoredKind::Committed, encode(&Some(log_id(2, 9)))),
        (StoredKind::Membership, encode(&membership())),
        (StoredKind::SnapshotMeta, encode(&snapshot_meta())),
        (StoredKind::Identity, encode(&identity)),
        (StoredKind::SharedCluster, encode(&7u128)),
        (StoredKind::SharedIncarnation, encode(&Some(5u128))),
    ];
    out.extend(
        entries()
            .iter()
            .map(|entry| (StoredKind::LogEntry, encode(entry))),
    );
    out.extend(
        kiwi::decoders::stream_record_seeds()
            .into_iter()
            .map(|raw| (StoredKind::StreamRecord, raw)),
    );
    out
}

/// Every seed, by target name.
pub fn all() -> Vec<Seed> {
    let mut out: Vec<Seed> = Vec::new();
    let set = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\n\0!\r\n".to_vec();
    let mut cr_flood = b"*1\r\n$".to_vec();
    cr_flood.extend(std::iter::repeat_n(b'\r', 60_000));
    let nul_inline = [&b"\x00\xff\xfe".repeat(10)[..], b"\r\n"].concat();
    let pipeline =
        b"PING\r\n*1\r\n$4\r\nPING\r\n\r\n*0\r\n*-1\r\nset k \"a\\x00b\" 'c\\'d'\n".to_vec();
    for (auth, cuts, input) in [
        (true, vec![], set.clone()),
        (true, vec![1, 5, 9, 13, 20], set.clone()),
        (false, vec![3], b"*11\r\n".to_vec()),
        (false, vec![], b"*1\r\n$16385\r\n".to_vec()),
        (true, vec![], cr_flood),
        (true, vec![7], nul_inline),
        (true, vec![2, 30, 31], pipeline),
        (true, vec![], b"*2\r\n$3\r\nGET\r\n$-1\r\n".to_vec()),
        (true, vec![], b"\"unbalanced\r\n".to_vec()),
    ] {
        out.push(("request", request::encode_input(auth, &cuts, &input)));
    }
    for line in [
        &b"set k v"[..],
        b"set \"a\\x00b\\n\" 'c\\'d'",
        b"\"unbalanced",
        b"\"a\"b",
        b"  \t lots   of\x0b space ",
    ] {
        out.push(("inline", line.to_vec()));
    }
    for reply in [
        &b"\x0b\x03\x04\x02ab\x0c\x07"[..],
        b"\x03\xff\xff\xff\x0e\x0e\x0e\x0e",
        b"\x00",
    ] {
        out.push(("reply", reply.to_vec()));
    }
    out.extend(frames().into_iter().map(|f| ("raft_frame", f)));
    out.extend(replies().into_iter().map(|r| ("raft_reply", r)));
    let snap = snapshot::build(snapshot::VERSION, &snapshot_records());
    out.push(("snapshot", [&[0][..], &snap].concat()));
    out.push(("snapshot", [&[0][..], &snapshot::build(1, &[])].concat()));
    out.push(("snapshot", b"\x01\x05\x04abcdefghijklmnop".to_vec()));
    out.extend(
        stored_records()
            .into_iter()
            .map(|(kind, raw)| ("records", records::encode_input(kind, &raw))),
    );
    out.extend(hll_values().map(|(control, value)| ("hll", hll::encode_input(control, &value))));
    out.extend(dump_bodies().into_iter().map(|b| ("dump", b)));
    out
}

/// RESTORE payload bodies (type byte and object, no footer): what Kiwi
/// dumps for each type, and encodings redis-server 7.0 writes.
fn dump_bodies() -> Vec<Vec<u8>> {
    use kiwi::rdb::value::{encode_payload, Value};
    let item = |i: usize| format!("item{i}").into_bytes();
    let mut out: Vec<Vec<u8>> = [
        Value::String(b"hello".to_vec()),
        Value::List((0..200).map(item).collect()),
        Value::Set((0..5).map(item).collect()),
        Value::Hash((0..5).map(|i| (item(i), item(i + 1))).collect()),
        Value::ZSet((0..5).map(|i| (item(i), i as f64 - 2.5)).collect()),
    ]
    .iter()
    .map(|v| {
        let mut p = encode_payload(v);
        p.truncate(p.len().saturating_sub(10));
        p
    })
    .collect();
    out.extend([
        // Quicklist 2 with a listpack of integers, an intset, a zset
        // listpack, an LZF string (redis-server 7.0.15).
        b"\x12\x01\x02\x14\x14\x00\x00\x00\x04\x00\x81a\x02\x01\x01\xdf\xfe\x02\x83xyz\x04\xff"
            .to_vec(),
        b"\x0b\x14\x04\x00\x00\x00\x03\x00\x00\x00\x90\xee\xfe\xff\x01\x00\x00\x00\x02\x00\x00\x00"
            .to_vec(),
        b"\x11\x15\x15\x00\x00\x00\x04\x00\x81b\x02\xdf\xfe\x02\x81a\x02\x831.5\x04\xff".to_vec(),
        b"\x00\xc3\t(\x01aa\xe0\x1b\x00\x01aa".to_vec(),
        // A stream with a deleted entry, a group, a pending entry and two
        // consumers (redis-server 7.0.15).
        b"\x13\x01\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01@BB\x00\x00\x00\x19\x00\x02\x01\x01\x01\x02\x01\x81f\x02\x81g\x02\x00\x01\x02\x01\x00\x01\x00\x01\x01\x01\x81x\x02\x05\x01\x03\x01\x01\x01\x04\x01\xc1,\x02\xdf\xf9\x02\x05\x01\x00\x01\x02\x01\xdf\xff\x02\x01\x01\x81h\x02\x82yy\x03\x06\x01\xff\x02\x03\x00\x01\x01\x02\x05\x03\x01\x03grp\x01\x01\x81\xff\xff\xff\xff\xff\xff\xff\xff\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\xef\x06\xca$\xa2\x01\x00\x00\x01\x02\x05alice\xef\x06\xca$\xa2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x03bob\xf6\x06\xca$\xa2\x01\x00\x00\x00".to_vec(),
    ]);
    out
}

/// HyperLogLog values after `HYLL`: empty, sparse, dense, and damaged.
fn hll_values() -> impl Iterator<Item = (u8, Vec<u8>)> {
    let mut sparse = kiwi::hll::empty();
    for e in [&b"a"[..], b"b", b"c"] {
        let _ = kiwi::hll::add(&mut sparse, e, 3000);
    }
    let mut dense = sparse.clone();
    let _ = kiwi::hll::to_dense(&mut dense);
    let truncated = [&sparse[..], b"x"].concat();
    let cut = sparse.get(..sparse.len() - 3).unwrap_or_default().to_vec();
    let header = sparse.get(..16).unwrap_or_default();
    [
        (0x05, kiwi::hll::empty()),
        (0x25, sparse.clone()),
        (0x4f, dense),
        (0x63, truncated),
        (0x91, cut),
        (0x1f, [header, &[0xff; 8][..]].concat()),
    ]
    .into_iter()
    .map(|(control, value)| (control, value.get(4..).unwrap_or_default().to_vec()))
}
