//! What travels through the Raft log: a request (whole commands plus the
//! leader's clock) and the replies the state machine produced for it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::resp::Reply;

/// One log entry's worth of client work: commands run in order against
/// database `db`, atomically (one RocksDB batch), as of the leader's clock.
///
/// `now_ms` is read once on the leader when the entry is proposed, so a
/// relative expiry (`EXPIRE k 10`, `SET k v EX 10`) becomes the same
/// absolute deadline on every node, and lazy expiry decides alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KiwiRequest {
    pub db: u8,
    pub now_ms: u64,
    /// Each command is its arguments, name first: `[b"SET", b"k", b"v"]`.
    pub commands: Vec<Vec<Vec<u8>>>,
}

impl KiwiRequest {
    pub fn new(db: u8, now_ms: u64) -> KiwiRequest {
        KiwiRequest {
            db,
            now_ms,
            commands: Vec::new(),
        }
    }

    /// Add a command given as words (tests, the embedded API).
    pub fn command<A: AsRef<[u8]>>(mut self, args: &[A]) -> KiwiRequest {
        self.commands
            .push(args.iter().map(|a| a.as_ref().to_vec()).collect());
        self
    }
}

/// The replies to one entry's commands, in order. Blank and membership
/// entries answer an empty list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KiwiResponse {
    pub replies: Vec<WireReply>,
}

impl KiwiResponse {
    /// The replies as the command layer builds them.
    pub fn into_replies(self) -> Vec<Reply> {
        self.replies.into_iter().map(Reply::from).collect()
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
            Reply::Bool(b) => WireReply::Bool(b),
            Reply::Verbatim(t) => WireReply::Verbatim(t),
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
            WireReply::Bool(b) => Reply::Bool(b),
            WireReply::Verbatim(t) => Reply::Verbatim(t),
        }
    }
}
