//! Errors a command answers, with Redis's exact texts.

use thiserror::Error;

use crate::storage::StorageError;

#[derive(Debug, Error)]
pub enum CmdError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    /// `ERR <text>`.
    #[error("ERR {0}")]
    Err(String),
    /// A full error line with its own code (`NOAUTH …`, `WRONGPASS …`).
    #[error("{0}")]
    Raw(String),
    /// `ERR <text>`, or Redis's `MISCONF` text when the disk failed.
    #[error("{}", storage_reply(.0))]
    Storage(#[from] StorageError),
    /// Over a limit this node's configuration sets (proto-max-bulk-len):
    /// `ERR <text>`. Under Raft it is judged on the node the client talks
    /// to, before proposing; a replicated apply uses a fixed limit.
    #[error("ERR {0}")]
    NodeLimit(&'static str),
    /// A blocking command found nothing to take: the connection waits for a
    /// write to one of the keys (or the timeout) and runs the command again.
    /// Never reaches a client as an error.
    #[error("ERR blocking command cannot block here")]
    Block(BlockOn),
    /// The command needs the cluster (a Raft proposal, a read barrier, an
    /// admin operation): the connection awaits it. Never reaches a client
    /// as an error.
    #[error("ERR this command needs a raft node")]
    Defer(Deferred),
}

/// Work a command hands back to the connection because it needs Raft.
#[derive(Debug, Clone, PartialEq)]
pub enum Deferred {
    /// Replicate `op` in a Raft entry; the reply is its one reply (a
    /// pipeline may add the writes that follow to the same proposal).
    Propose(crate::raft::Op),
    /// EXEC under Raft: the transaction's proposal and how to assemble
    /// its reply.
    Exec(crate::engine::ExecPlan),
    /// Confirm the read is linearizable (read index), then run the command
    /// locally (`Engine::execute_after_barrier`; a write with limits of
    /// this node's to check is then checked, and proposed).
    Read,
    /// A `RAFT.*` admin command.
    Raft(super::raft::RaftAdmin),
}

/// What a blocked command waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockOn {
    pub keys: Vec<bytes::Bytes>,
    /// `None` = wait forever (timeout 0).
    pub timeout: Option<std::time::Duration>,
    /// The reply when the timeout passes (a nil array, as Redis 7.0 answers
    /// every list and sorted-set wait).
    pub timeout_reply: crate::resp::Reply,
    /// The reply when the command may not wait: inside MULTI, in the embedded
    /// engine, in a Raft apply (a nil array for BLPOP, a nil for BLMOVE…).
    pub refused_reply: crate::resp::Reply,
}

/// The reply to a storage error. A write that failed in the file system
/// answers what Redis answers when its AOF write fails (the write-ahead log
/// is Kiwi's append-only file, `appendfsync` governs both): clients and
/// alerts that know Redis's `MISCONF` recognise it.
fn storage_reply(e: &StorageError) -> String {
    match e {
        StorageError::Disk(reason) => format!("MISCONF Errors writing to the AOF file: {reason}"),
        other => format!("ERR {other}"),
    }
}

impl CmdError {
    pub fn err(msg: impl Into<String>) -> CmdError {
        CmdError::Err(msg.into())
    }
}

pub type CmdResult<T = crate::resp::Reply> = Result<T, CmdError>;
