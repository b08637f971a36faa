#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! What travels through the Raft log: a request (the proposals of clients —
//! whole commands, transactions with what they watched — plus the leader's
//! clock) and the replies the state machine produced for it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::resp::Reply;

/// One log entry's worth of client work: the proposals of one or more
/// clients, applied in order and atomically (one RocksDB batch), as of the
/// leader's clock.
///
/// `now_ms` is read once on the leader when the entry is proposed, so a
/// relative expiry (`EXPIRE k 10`, `SET k v EX 10`) becomes the same
/// absolute deadline on every node, and lazy expiry decides alike. Apply
/// never lets the replicated clock go backwards (see the state machine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KiwiRequest {
    pub now_ms: u64,
    pub ops: Vec<Op>,
}

impl KiwiRequest {
    pub fn new(db: u8, now_ms: u64) -> KiwiRequest {
        KiwiRequest {
            now_ms,
            ops: vec![Op::commands(db, false, Vec::new())],
        }
    }

    /// Add a command given as words to the last plain proposal (tests, the
    /// embedded API).
    pub fn command<A: AsRef<[u8]>>(mut self, args: &[A]) -> KiwiRequest {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_ref().to_vec()).collect();
        match self.ops.last_mut() {
            Some(Op {
                work: Work::Commands(commands),
                ..
            }) => commands.push(args),
            _ => self.ops.push(Op::commands(0, false, vec![args])),
        }
        self
    }

    /// Add a whole proposal.
    pub fn op(mut self, op: Op) -> KiwiRequest {
        self.ops.push(op);
        self
    }

    /// Number of commands the entry carries (batching limits count these).
    pub fn command_count(&self) -> usize {
        self.ops.iter().map(Op::command_count).sum()
    }
}

/// One client's proposal: what it sent plus what it relied on when it
/// sent it, so that every node applies it alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The database the client had selected.
    pub db: u8,
    /// The client speaks RESP3: replies take RESP3's shapes (pairs, maps).
    pub resp3: bool,
    pub work: Work,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Work {
    /// Commands run one after another, one reply each (a write, or a
    /// pipeline's run of writes). Each is `[name, args...]`.
    Commands(Vec<Vec<Vec<u8>>>),
    /// A MULTI/EXEC transaction: one reply, the array of its commands'
    /// replies, or a null array when a watched key changed.
    Exec(Exec),
}

/// A transaction as its client queued it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    /// Each queued command with the database it runs in (a SELECT inside
    /// MULTI changes it for the commands after it).
    pub commands: Vec<(u8, Vec<Vec<u8>>)>,
    /// What the client WATCHed, checked again at apply on every node.
    pub watched: Vec<Watched>,
}

/// A key the client WATCHed, and what it had seen of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watched {
    pub db: u8,
    pub key: Vec<u8>,
    /// The log index the node had applied when the client watched: a
    /// write to the key in a later entry aborts the transaction.
    pub seen: u64,
    /// The key existed (unexpired) then: if it has expired since, the
    /// transaction aborts, as in Redis.
    pub existed: bool,
}

impl Op {
    pub fn commands(db: u8, resp3: bool, commands: Vec<Vec<Vec<u8>>>) -> Op {
        Op {
            db,
            resp3,
            work: Work::Commands(commands),
        }
    }

    /// Whether a command of it runs a script (EVAL…, FCALL…), which may
    /// take long to apply.
    pub fn runs_script(&self) -> bool {
        let script = |args: &Vec<Vec<u8>>| {
            args.first().is_some_and(|name| {
                let lower = name.to_ascii_lowercase();
                // (`kiwi.asuser`: a script run with its caller's ACL rules)
                lower.starts_with(b"eval") || lower.starts_with(b"fcall") || lower == b"kiwi.asuser"
            })
        };
        match &self.work {
            Work::Commands(c) => c.iter().any(script),
            Work::Exec(e) => e.commands.iter().any(|(_, args)| script(args)),
        }
    }

    pub fn command_count(&self) -> usize {
        match &self.work {
            Work::Commands(c) => c.len(),
            Work::Exec(e) => e.commands.len().max(1),
        }
    }

    /// At least the proposal's encoded size (postcard spends at most 10
    /// bytes on a length or an integer).
    pub fn size_hint(&self) -> usize {
        fn command(args: &[Vec<u8>]) -> usize {
            args.iter().map(|a| a.len() + 10).sum::<usize>() + 10
        }
        16 + match &self.work {
            Work::Commands(c) => c.iter().map(|args| command(args)).sum::<usize>(),
            Work::Exec(e) => {
                e.commands
                    .iter()
                    .map(|(_, args)| command(args) + 1)
                    .sum::<usize>()
                    + e.watched.iter().map(|w| w.key.len() + 22).sum::<usize>()
            }
        }
    }
}

/// The replies to one entry: for each [`Op`], in order, its replies (one
/// per command of [`Work::Commands`], exactly one for [`Work::Exec`]).
/// Blank and membership entries answer an empty list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KiwiResponse {
    pub replies: Vec<Vec<WireReply>>,
}

impl KiwiResponse {
    /// Every reply, in order, as the command layer builds them.
    pub fn into_replies(self) -> Vec<Reply> {
        self.replies
            .into_iter()
            .flatten()
            .map(Reply::from)
            .collect()
    }
}

/// A serializable mirror of [`Reply`]: `Reply::Status` holds a
/// `&'static str`, which cannot be deserialized, so statuses travel as
/// owned text and come back as [`Reply::StatusOwned`] (except `OK`, which
/// comes back as [`Reply::OK`]); both encode to the same RESP bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WireReply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    NilArray,
    Array(Vec<WireReply>),
    Map(Vec<(WireReply, WireReply)>),
    Set(Vec<WireReply>),
    Double(f64),
    Bool(bool),
    Verbatim(String),
    Push(Vec<WireReply>),
    Frames(Vec<WireReply>),
    /// Last, so that the variants before it keep their tags.
    HumanDouble(f64),
}

impl From<Reply> for WireReply {
    fn from(reply: Reply) -> WireReply {
        match reply {
            Reply::Status(s) => WireReply::Status(s.to_string()),
            Reply::StatusOwned(s) => WireReply::Status(s),
            Reply::Error(e) => WireReply::Error(e),
            Reply::Int(i) => WireReply::Int(i),
            Reply::Bulk(b) => WireReply::Bulk(b.to_vec()),
            Reply::Nil => WireReply::Nil,
            Reply::NilArray => WireReply::NilArray,
            Reply::Array(items) => WireReply::Array(items.into_iter().map(Into::into).collect()),
            Reply::Map(pairs) => WireReply::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            Reply::Set(items) => WireReply::Set(items.into_iter().map(Into::into).collect()),
            Reply::Double(d) => WireReply::Double(d),
            Reply::HumanDouble(d) => WireReply::HumanDouble(d),
            Reply::Bool(b) => WireReply::Bool(b),
            Reply::Verbatim(t) => WireReply::Verbatim(t),
            Reply::Push(items) => WireReply::Push(items.into_iter().map(Into::into).collect()),
            Reply::Frames(items) => WireReply::Frames(items.into_iter().map(Into::into).collect()),
        }
    }
}

impl From<WireReply> for Reply {
    fn from(reply: WireReply) -> Reply {
        match reply {
            WireReply::Status(s) if s == "OK" => Reply::OK,
            WireReply::Status(s) => Reply::StatusOwned(s),
            WireReply::Error(e) => Reply::Error(e),
            WireReply::Int(i) => Reply::Int(i),
            WireReply::Bulk(b) => Reply::Bulk(Bytes::from(b)),
            WireReply::Nil => Reply::Nil,
            WireReply::NilArray => Reply::NilArray,
            WireReply::Array(items) => Reply::Array(items.into_iter().map(Into::into).collect()),
            WireReply::Map(pairs) => Reply::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            WireReply::Set(items) => Reply::Set(items.into_iter().map(Into::into).collect()),
            WireReply::Double(d) => Reply::Double(d),
            WireReply::HumanDouble(d) => Reply::HumanDouble(d),
            WireReply::Bool(b) => Reply::Bool(b),
            WireReply::Verbatim(t) => Reply::Verbatim(t),
            WireReply::Push(items) => Reply::Push(items.into_iter().map(Into::into).collect()),
            WireReply::Frames(items) => Reply::Frames(items.into_iter().map(Into::into).collect()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn words(rng: &mut rand_chacha::ChaCha8Rng) -> Vec<Vec<u8>> {
        (0..rng.random_range(1..6))
            .map(|_| vec![b'x'; rng.random_range(0..300)])
            .collect()
    }

    /// The proposal-size check relies on the hint never being below the
    /// encoded size.
    #[test]
    fn the_size_hint_bounds_the_encoded_size() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(10);
        for _ in 0..500 {
            let commands: Vec<Vec<Vec<u8>>> = (0..rng.random_range(0..20))
                .map(|_| words(&mut rng))
                .collect();
            let op = if rng.random_bool(0.5) {
                Op::commands(rng.random_range(0..16), rng.random_bool(0.5), commands)
            } else {
                Op {
                    db: 3,
                    resp3: false,
                    work: Work::Exec(Exec {
                        commands: commands.into_iter().map(|c| (15, c)).collect(),
                        watched: (0..rng.random_range(0..4))
                            .map(|_| Watched {
                                db: 1,
                                key: vec![b'k'; rng.random_range(0..200)],
                                seen: u64::MAX,
                                existed: true,
                            })
                            .collect(),
                    }),
                }
            };
            let encoded = postcard::to_allocvec(&op).expect("encode").len();
            assert!(encoded <= op.size_hint(), "{encoded} > {}", op.size_hint());
        }
    }
}
