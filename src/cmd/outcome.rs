//! What running a command comes to when it does not fail: a reply, a wait
//! for keys (a blocking command that found nothing), or work the
//! connection carries out (under Raft). None of these is an error: errors
//! are [`CmdError`](super::CmdError) and reach the client as error replies.

use bytes::Bytes;

use crate::resp::Reply;

/// What running a command came to.
#[derive(Debug)]
pub enum Outcome {
    Reply(Reply),
    /// A blocking command found nothing: wait as [`BlockOn`] says, then run it again.
    Block(BlockOn),
    /// Under Raft: the command needs the cluster (a proposal, a read
    /// barrier, an admin operation); the connection awaits it.
    Defer(Deferred),
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Outcome {
        Outcome::Reply(reply)
    }
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
    /// A script runs (and started less than `busy-reply-threshold` ago):
    /// wait until it ends or that time comes, then run the command again.
    AfterScript(std::time::Instant),
    /// WAIT under Raft: until `replicas` other nodes hold every entry
    /// applied here, or the timeout (`None`: forever); the count reached.
    Wait {
        replicas: u64,
        timeout: Option<std::time::Duration>,
    },
}

/// What a blocked command waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockOn {
    pub keys: Vec<Bytes>,
    /// `None` = wait forever (timeout 0).
    pub timeout: Option<std::time::Duration>,
    /// The reply when the timeout passes (a nil array, as Redis 7.0 answers
    /// every list and sorted-set wait).
    pub timeout_reply: Reply,
    /// The reply when the command may not wait: inside MULTI, in the embedded
    /// engine, in a Raft apply (a nil array for BLPOP, a nil for BLMOVE…).
    pub refused_reply: Reply,
    /// The arguments to run again instead of the call's own (XREAD's `$`
    /// resolved to the ID it stood for when the client started waiting).
    pub retry_args: Option<Vec<Bytes>>,
    /// Woken by every write to its keys together with the other readers
    /// (XREAD serves every reader of a stream), not one client at a time
    /// as the pops are.
    pub wake_all: bool,
}

/// What a command's function hands back to the engine: an [`Outcome`]
/// (its rare, large variants boxed, so a plain reply travels light), or
/// for EXEC the queued transaction, which the engine then runs itself (no
/// command runs other commands).
#[derive(Debug)]
pub enum Handled {
    Reply(Reply),
    Block(Box<BlockOn>),
    Defer(Box<Deferred>),
    Exec(Vec<Vec<Bytes>>),
    /// A script or function call (EVAL and friends), run by the engine.
    Script(Box<crate::script::ScriptCall>),
}

/// The reply of a command that needs Raft where it cannot be deferred
/// (inside EXEC, in a Raft apply).
const NEEDS_RAFT: &str = "ERR this command needs a raft node";

impl Handled {
    /// The reply where the command may neither wait nor be deferred, nor
    /// start a transaction (inside EXEC, in a Raft apply, in a pipelined
    /// batch). EXEC never runs there (it is neither queued, replicated nor
    /// batched): its error only keeps this total.
    pub fn settle_here(self) -> Reply {
        match self {
            Handled::Reply(reply) => reply,
            Handled::Block(block) => block.refused_reply,
            Handled::Defer(_) => Reply::error(NEEDS_RAFT),
            Handled::Exec(_) => Reply::error("ERR EXEC cannot run here"),
            Handled::Script(_) => Reply::error("ERR a script cannot run here"),
        }
    }
}

impl From<Reply> for Handled {
    fn from(reply: Reply) -> Handled {
        Handled::Reply(reply)
    }
}

impl From<Outcome> for Handled {
    fn from(outcome: Outcome) -> Handled {
        match outcome {
            Outcome::Reply(reply) => Handled::Reply(reply),
            Outcome::Block(block) => Handled::Block(Box::new(block)),
            Outcome::Defer(deferred) => Handled::Defer(Box::new(deferred)),
        }
    }
}
