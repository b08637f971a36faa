//! EXEC under Raft: a transaction becomes one proposal that carries its
//! queued commands (each with the database it runs in) and what its client
//! WATCHed; every node applies or aborts it alike.
//!
//! Commands that act on the node rather than the keyspace (PING, ECHO,
//! CLIENT, CONFIG, keyless reads…) cannot travel in the log: they run here,
//! after the entry, and their replies take their places in EXEC's array.
//! SELECT is answered when planning and moves the commands after it to its
//! database, as in Redis; the connection ends in the database selected last.

use bytes::Bytes;

use super::apply::replicable;
use super::Engine;
use crate::cmd::{self, Session};
use crate::raft::{Exec, Op, Watched, Work};
use crate::resp::{Protocol, Reply};

/// A transaction ready to be proposed, and how to assemble its reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecPlan {
    /// The proposal ([`Work::Exec`]).
    pub op: Op,
    /// Where each queued command's reply comes from, in queue order.
    pub slots: Vec<Slot>,
    /// The connection's database once the transaction ran.
    pub db_after: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// The next reply of the entry.
    Entry,
    /// Run on this node after the entry, in database `db`.
    Local(u8, Vec<Bytes>),
    /// Answered when planning (SELECT).
    Answered(Reply),
}

impl ExecPlan {
    /// Whether the transaction needs the log at all: it has commands for
    /// the keyspace, or watched keys to check.
    pub fn needs_entry(&self) -> bool {
        match &self.op.work {
            Work::Exec(exec) => !exec.commands.is_empty() || !exec.watched.is_empty(),
            Work::Commands(c) => !c.is_empty(),
        }
    }
}

impl Engine {
    /// Turn a queued transaction into a proposal. SELECTs run now on the
    /// session (their replies are kept) and the session's database is put
    /// back: it changes only if the transaction runs.
    pub(crate) fn plan_exec(
        &self,
        session: &mut Session,
        queue: Vec<Vec<Bytes>>,
        watched: Vec<Watched>,
    ) -> ExecPlan {
        let original = session.db;
        let mut commands = Vec::new();
        let mut slots = Vec::with_capacity(queue.len());
        for args in queue {
            let is_select = args
                .first()
                .and_then(|name| cmd::lookup(name))
                .is_some_and(|spec| spec.name == "select");
            if is_select {
                slots.push(Slot::Answered(self.execute_local(session, &args)));
            } else if replicable(&args).is_ok() {
                commands.push((session.db, args.iter().map(|a| a.to_vec()).collect()));
                slots.push(Slot::Entry);
            } else {
                slots.push(Slot::Local(session.db, args));
            }
        }
        let db_after = session.db;
        session.db = original;
        session
            .info
            .db
            .store(original, std::sync::atomic::Ordering::Relaxed);
        ExecPlan {
            op: Op {
                db: original,
                resp3: session.protocol == Protocol::Resp3,
                work: Work::Exec(Exec { commands, watched }),
            },
            slots,
            db_after,
        }
    }

    /// EXEC's reply from the entry's reply (`None`: no entry was needed):
    /// the commands that run here run now, in their places.
    /// `slots` and `db_after` are the plan's (its proposal went to Raft).
    pub(crate) fn finish_exec(
        &self,
        session: &mut Session,
        slots: Vec<Slot>,
        db_after: u8,
        entry_reply: Option<Reply>,
    ) -> Reply {
        let mut from_entry = match entry_reply {
            None => Vec::new().into_iter(),
            Some(Reply::Array(replies)) => replies.into_iter(),
            // Aborted (a watched key changed) or refused: nothing ran.
            Some(other) => return other,
        };
        let mut replies = Vec::with_capacity(slots.len());
        for slot in slots {
            replies.push(match slot {
                Slot::Entry => from_entry
                    .next()
                    .unwrap_or_else(|| Reply::error("ERR missing reply from the replicated entry")),
                Slot::Local(db, args) => {
                    session.db = db;
                    self.execute_local(session, &args)
                }
                Slot::Answered(reply) => reply,
            });
        }
        session.db = db_after;
        session
            .info
            .db
            .store(db_after, std::sync::atomic::Ordering::Relaxed);
        Reply::Array(replies)
    }
}
