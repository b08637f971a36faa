//! Pipelined requests: consecutive data commands share one hold of the
//! storage lock and one RocksDB batch, so a pipelining client costs one
//! RocksDB write per batch, not per command.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{Engine, Outcome};
use crate::cmd::{self, BlockOn, CmdError, CommandSpec, Flags, Handled, Session};
use crate::resp::Reply;
use crate::storage::locks::LockRequest;
use crate::storage::now_ms;

impl Engine {
    /// A data command that may share a batch with its neighbours in a
    /// pipeline: known, right arity, touching keys, outside MULTI.
    fn groupable(&self, session: &Session, args: &[Bytes]) -> Option<&'static CommandSpec> {
        // Under Raft every write is proposed and every read linearized;
        // after a failed write each command is checked on its own.
        if session.multi.is_some()
            || !session.authenticated
            || !session.unrestricted()
            || self.is_replicated()
            || self.storage().write_failed()
            || self.scripts.is_running()
        {
            return None;
        }
        let spec = cmd::lookup(args.first()?)?;
        // A container's subcommand is checked (and refused) on its own.
        (spec.arity_ok(args.len())
            && !spec.flags.contains(Flags::NO_KEYS)
            && spec.check_subcommand(args).is_ok())
        .then_some(spec)
    }

    /// Run pipelined requests in order. Consecutive data commands share one
    /// hold of the storage lock and one RocksDB batch — each behind a
    /// savepoint, so a failing one drops only its own writes.
    /// Replies come back for the requests run; if one must block, or must
    /// go through Raft ([`Outcome::Defer`]), its outcome is returned and the
    /// requests after it have not run. Nothing runs after QUIT.
    pub fn execute_pipeline(
        &self,
        session: &mut Session,
        requests: &[Vec<Bytes>],
    ) -> (Vec<Reply>, Option<Outcome>) {
        let mut replies = Vec::with_capacity(requests.len());
        let mut i = 0;
        while i < requests.len() && !session.quit {
            let run = requests[i..]
                .iter()
                .take_while(|args| self.groupable(session, args).is_some())
                .count();
            if run >= 2 {
                let mut expired = Vec::new();
                let blocked =
                    self.run_group(session, &requests[i..i + run], &mut replies, &mut expired);
                self.expire_found(expired);
                if let Some(block) = blocked {
                    return (replies, Some(Outcome::Block(block)));
                }
                i += run;
                continue;
            }
            match self.execute_or_block(session, &requests[i]) {
                Outcome::Reply(reply) => replies.push(session.filter_reply(reply)),
                stop => return (replies, Some(stop)),
            }
            i += 1;
        }
        (replies, None)
    }

    /// Run a group of data commands under one hold of all their locks and
    /// commit them as one batch; replies are pushed only once the batch is
    /// durable.
    fn run_group(
        &self,
        session: &mut Session,
        group: &[Vec<Bytes>],
        replies: &mut Vec<Reply>,
        expired: &mut Vec<(u8, Vec<u8>)>,
    ) -> Option<BlockOn> {
        let specs: Vec<&'static CommandSpec> = group
            .iter()
            .filter_map(|a| self.groupable(session, a))
            .collect();
        let mut request = LockRequest::default();
        for (spec, args) in specs.iter().zip(group) {
            super::dispatch::lock_request(&mut request, spec, args);
        }
        let hold = self.storage().locks().take(request);
        let now = now_ms();
        let mut ctx = self.storage().ctx(session.db, now);
        ctx.limit_to(hold.stripes());
        ctx.writer = session.info.id;
        let mut results = Vec::with_capacity(group.len());
        let mut blocked = None;
        for (spec, args) in specs.iter().zip(group) {
            self.count_command(spec, session);
            ctx.savepoint();
            let (result, back) = self.call_handler(spec, session, args, ctx);
            ctx = back;
            self.feed_monitors(session.db, &session.info.addr, spec, args);
            self.track_command(session, spec, args);
            match result {
                Ok(Handled::Reply(reply)) => results.push(reply),
                Ok(Handled::Block(block)) => {
                    blocked = Some(*block);
                    break;
                }
                Ok(handled) => results.push(handled.settle_here()),
                Err(e) => results.push(Reply::Error(e.to_string())),
            }
        }
        session.info.last_active_ms.store(now, Ordering::Relaxed);
        if ctx.is_dirty() {
            if let Err(e) = self.commit(&mut ctx) {
                // Nothing of the group is stored: none of it may look done.
                let error = Reply::Error(CmdError::from(e).to_string());
                results.iter_mut().for_each(|r| *r = error.clone());
            }
        } else {
            self.publish_events(ctx.take_events());
        }
        replies.extend(results.into_iter().map(|r| session.filter_reply(r)));
        *expired = ctx.take_expired_seen();
        blocked
    }

    /// Delete the keys a command's lookups found expired (Redis's lazy
    /// expiry: the next DBSIZE no longer counts them, and `expired` is
    /// announced as the key is found). Called once the command's lock is
    /// released. Under Raft the leader's sweep deletes them through the
    /// log instead.
    pub(super) fn expire_found(&self, keys: Vec<(u8, Vec<u8>)>) {
        if keys.is_empty() || self.is_replicated() {
            return;
        }
        let deleted = self.storage().delete_expired_keys(keys, now_ms(), |t| {
            self.waiters.touch(t);
            self.publish_expired(t);
            self.invalidate(t, 0);
        });
        match deleted {
            Ok(n) => {
                self.stats
                    .expired_keys
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "deleting expired keys failed"),
        }
    }
}
