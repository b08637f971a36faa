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
