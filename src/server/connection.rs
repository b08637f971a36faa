#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

//! One client connection: read whatever arrived, run every complete request
//! in it, answer them all in one write (pipelining), repeat. Pub/sub
//! messages waiting in the client's mailbox go out between replies, and
//! as soon as they arrive while the client is idle.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::cmd::pubsub::may_subscribe;
use crate::cmd::scripting::runs_script;
use crate::cmd::{BlockOn, Deferred, Session};
use crate::config::OutputLimit;
use crate::engine::{Engine, ExecPlan, Outcome, Waiter};
use crate::raft::{Op, RaftNode, Work};
use crate::resp::Reply;
use crate::resp::RequestDecoder;

use super::output::{is_overrun, ReplyWriter};

/// Flush replies once this much output has accumulated, so a long pipeline
/// does not buffer all of its replies in memory.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;

/// Most pipelined writes proposed together in one Raft entry.
const MAX_PIPELINED_PROPOSAL: usize = 256;

/// What Redis 7 answers a client that protected mode refuses.
const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Redis compares the peer's address text with these two exactly.
pub(super) fn is_redis_loopback(ip: IpAddr) -> bool {
    ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)
}

/// A client's byte stream: TCP or a unix socket.
pub(super) trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ClientStream for T {}

/// Who is connecting: the text CLIENT LIST shows, and the IP address for
/// protected mode (none for a unix socket).
pub(super) struct Peer {
    pub addr: String,
    pub ip: Option<IpAddr>,
}

/// Serve one client until it quits, breaks the protocol, goes away, or
/// the server stops. `local` is the address CLIENT LIST shows as laddr.
pub(super) async fn serve<S: ClientStream>(
    engine: Arc<Engine>,
    mut stream: S,
    peer: Peer,
    local: String,
    shutdown: CancellationToken,
    raft: Option<Arc<RaftNode>>,
) {
    let (maxclients, max_bulk, protected) = {
        let config = engine.config.read();
        (
            config.maxclients,
            config.proto_max_bulk_len,
            config.protected_mode,
        )
    };
    // As Redis: protected while the default user needs no password.
    let protected = protected && engine.acl.default_user().state().nopass();
    let refusal = if protected && peer.ip.is_some_and(|ip| !is_redis_loopback(ip)) {
        Some(PROTECTED_MODE_DENIED)
    } else {
        None
    };
    let session = match refusal {
        None => engine.connect_within(peer.addr.clone(), local, maxclients),
        Some(_) => None,
    };
    let Some(mut session) = session else {
        engine
            .stats
            .rejected_connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let text = refusal.unwrap_or(b"-ERR max number of clients reached\r\n");
        let _ = stream.write_all(text).await;
        return;
    };
    let peer = peer.addr;
    // Stops this connection: the server stopping, or its mailbox overrunning.
    let stop = shutdown.child_token();
    session.info.mailbox.attach(stop.clone());
    // A bug that panics while serving one client must cost that client its
    // connection, not the server its life: catch it here, log it, close.
    let result = AssertUnwindSafe(run(
        &engine,
        raft.as_deref(),
        &mut stream,
        &mut session,
        max_bulk,
        &stop,
    ))
    .catch_unwind()
    .await;
    let overrun = session.info.mailbox.is_overrun();
    match result {
        Ok(Ok(())) if !overrun => {}
        Ok(Ok(())) => tracing::warn!(
            %peer,
            "Client scheduled to be closed ASAP for overcoming of output buffer limits."
        ),
        Ok(Err(e)) if is_overrun(&e) => tracing::warn!(
            %peer,
            "Client scheduled to be closed ASAP for overcoming of output buffer limits."
        ),
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "connection ended with an error"),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(%peer, panic = %what, "serving a client panicked; its connection is closed");
        }
    }
    engine.disconnect(&mut session);
}

async fn run<S: ClientStream>(
    engine: &Engine,
    raft: Option<&RaftNode>,
    stream: &mut S,
    session: &mut Session,
    max_bulk: usize,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    let mut decoder = RequestDecoder::new(max_bulk);
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut output = BytesMut::with_capacity(16 * 1024);
    let mut requests: Vec<Vec<bytes::Bytes>> = Vec::new();
    let mut writer = ReplyWriter::new(shutdown.clone(), session.info.clone());
    let client = session.info.clone();
    loop {
        let limits = Limits::now(engine, session.subscriptions.any());
        // Take every complete request that arrived (one at a time before
        // AUTH, whose limits depend on the outcome of the previous one).
        let mut protocol_error = None;
        let mut more_ready = false;
        loop {
            decoder.set_authenticated(session.authenticated);
            match decoder.parse(&mut input) {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => {
                    requests.push(args);
                    if !session.authenticated {
                        more_ready = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        let mut next = 0;
        // The next request that may start listening (each is looked at once).
        let mut subscribe_at: Option<usize> = None;
        while next < requests.len() {
            // CLIENT PAUSE: commands wait one at a time until it is over.
            let paused = engine.pause.current().is_some();
            if let Some(args) = requests.get(next).filter(|_| paused) {
                let writes = crate::cmd::held_by_write_pause(args, session.multi.as_ref());
                if !output.is_empty() {
                    writer.flush(stream, &mut output, limits.output).await?;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = engine.pause.wait(writes) => {}
                }
            }
            let pending = requests.get(next..).unwrap_or_default();
            // A client that listens runs its requests one at a time, each
            // reply after the messages published before it was made (its
            // own PUBLISH's included), as in Redis; a request that may
            // start listening ends its batch, and what arrives for it then
            // follows its reply.
            let listening = session.subscriptions.any();
            if subscribe_at.is_none_or(|at| at < next) {
                subscribe_at = Some(
                    pending
                        .iter()
                        .position(|args| may_subscribe(args))
                        .map_or(requests.len(), |i| next + i),
                );
            }
            let batch = match (listening, subscribe_at) {
                _ if paused => 1,
                (true, _) => 1,
                (false, Some(at)) => (at + 1 - next).min(pending.len()),
                (false, None) => pending.len(),
            };
            let first = pending.get(..batch).unwrap_or_default();
            let long = first
                .iter()
                .any(|args| runs_script(args, session.multi.as_ref()));
            let (replies, stopped) = match long {
                true => crate::engine::long_running(|| engine.execute_pipeline(session, first)),
                false => engine.execute_pipeline(session, first),
            };
            next += replies.len();
            if listening && !first.first().is_some_and(|args| may_subscribe(args)) {
                writer.deliver(&mut output);
            }
            for reply in replies {
                reply.encode(session.protocol, &mut output);
            }
            writer.deliver(&mut output);
            let mut block = None;
            match (stopped, requests.get(next)) {
                // A pipelined run of writes under Raft: one entry for all.
                (Some(Outcome::Defer(Deferred::Propose(mut op))), Some(args))
                    if raft.is_some() && !listening && engine.proposes(session, args) =>
                {
                    let mut end = next + 1;
                    if let Work::Commands(commands) = &mut op.work {
                        while let Some(more) = requests.get(end).filter(|more| {
                            commands.len() < MAX_PIPELINED_PROPOSAL
                                && engine.proposes(session, more)
                        }) {
                            commands.push(more.iter().map(|a| a.to_vec()).collect());
                            end += 1;
                        }
                    }
                    let replies = tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        replies = propose_all(raft, op) => replies,
                    };
                    writer.deliver(&mut output);
                    for reply in replies {
                        session
                            .filter_reply(reply)
                            .encode(session.protocol, &mut output);
                    }
                    next = end;
                }
                // Through Raft (a write, a linearizable read, RAFT.*), or a
                // blocking command with nothing to take.
                (Some(outcome), Some(args)) => {
                    let settled = tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        settled = settle(engine, raft, session, args, outcome) => settled,
                    };
                    match settled {
                        Settled::Reply(reply) => {
                            // After what its own PUBLISH delivered here.
                            writer.deliver(&mut output);
                            session
                                .filter_reply(reply)
                                .encode(session.protocol, &mut output);
                            next += 1;
                        }
                        Settled::Wait(waiting) => block = Some((waiting, args)),
                    }
                }
                (Some(_), None) => {
                    tracing::error!("the pipeline stopped past its last request");
                    next = requests.len();
                }
                (None, _) => {}
            }
            if let Some((block, args)) = block {
                // Earlier replies go out before this client waits.
                if !output.is_empty() {
                    writer.flush(stream, &mut output, limits.output).await?;
                }
                let waited = Blocked {
                    engine,
                    raft,
                    session,
                    args,
                    block,
                    query_buffer: limits.query_buffer,
                };
                match waited
                    .wait(stream, &mut input, shutdown, &mut writer, limits.output)
                    .await?
                {
                    Some(reply) => {
                        writer.deliver(&mut output);
                        session
                            .filter_reply(reply)
                            .encode(session.protocol, &mut output)
                    }
                    None => return Ok(()),
                }
                next += 1;
                // Requests that arrived during the wait are already in
                // `input`: parse them before reading again.
                more_ready = true;
            }
            if session.quit {
                writer.flush(stream, &mut output, limits.output).await?;
                return Ok(());
            }
            if output.len() >= OUTPUT_HIGH_WATER {
                writer.flush(stream, &mut output, limits.output).await?;
            }
        }
        requests.clear();
        if let Some(e) = protocol_error {
            // Answer what came before, then the error, then close.
            output.extend_from_slice(&e.reply_line());
            writer.flush(stream, &mut output, limits.output).await?;
            tracing::debug!(error = %e, "protocol error, closing connection");
            return Ok(());
        }
        if more_ready && !input.is_empty() {
            // More requests wait in the buffer: parse the next one now.
            if !output.is_empty() {
                writer.flush(stream, &mut output, limits.output).await?;
            }
            continue;
        }
        if !output.is_empty() {
            writer.flush(stream, &mut output, limits.output).await?;
        }
        if input.capacity() - input.len() < 4096 {
            input.reserve(16 * 1024);
        }
        // As Redis, a client that listens is never closed for idling.
        let idle = match session.subscriptions.any() {
            true => Duration::ZERO,
            false => limits.idle,
        };
        let idle_timeout = async {
            match idle.is_zero() {
                true => std::future::pending().await,
                false => tokio::time::sleep(idle).await,
            }
        };
        let woken = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            n = stream.read_buf(&mut input) => Woken::Read(n?),
            _ = client.mailbox.ready() => Woken::Mail,
            _ = idle_timeout => {
                tracing::info!(peer = %session.info.addr, "Closing idle client");
                return Ok(());
            }
        };
        let n = match woken {
            Woken::Read(n) => n,
            Woken::Mail => {
                writer.deliver(&mut output);
                if !output.is_empty() {
                    writer.flush(stream, &mut output, limits.output).await?;
                }
                continue;
            }
        };
        if n == 0 {
            return Ok(());
        }
        check_query_buffer(
            limits.query_buffer,
            session,
            input.len() + decoder.held_bytes(),
        )?;
    }
}

/// What ended an idle connection's wait.
enum Woken {
    /// Bytes arrived (0: the client closed).
    Read(usize),
    /// Messages arrived in its mailbox.
    Mail,
}

/// The settings a connection checks on every request, read once per turn
/// of its loop (a CONFIG SET applies from the next turn).
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// `timeout`: close the client after this long without a request.
    idle: Duration,
    /// `client-query-buffer-limit`.
    query_buffer: usize,
    /// The client's class's `client-output-buffer-limit` (pubsub for a
    /// client that listens, else normal).
    output: OutputLimit,
}

impl Limits {
    fn now(engine: &Engine, listening: bool) -> Limits {
        let config = engine.config.read();
        let classes = &config.client_output_buffer_limit;
        Limits {
            idle: Duration::from_secs(config.timeout),
            query_buffer: config.client_query_buffer_limit,
            output: match listening {
                true => classes.pubsub,
                false => classes.normal,
            },
        }
    }
}

/// Redis's `client-query-buffer-limit`: a client holding more unprocessed
/// input than `limit` is closed, without a reply.
fn check_query_buffer(limit: usize, session: &Session, held: usize) -> std::io::Result<()> {
    if held > limit {
        tracing::warn!(
            peer = %session.info.addr,
            bytes = held,
            "Closing client that reached max query buffer length"
        );
        return Err(std::io::Error::other("query buffer limit reached"));
    }
    Ok(())
}

/// Propose pipelined writes as one entry; one reply per command (the
/// same error for each when the entry was not committed).
async fn propose_all(raft: Option<&RaftNode>, op: Op) -> Vec<Reply> {
    let n = op.command_count();
    let Some(node) = raft else {
        return vec![Reply::error("ERR this node does not run raft"); n];
    };
    match node.propose(op).await {
        Ok(mut replies) => {
            replies.resize(n, Reply::error("ERR no reply from the replicated entry"));
            replies
        }
        Err(e) => vec![Reply::Error(e.to_string()); n],
    }
}

/// Carry out what a command deferred to the cluster. A node without Raft
/// answers an error.
async fn resolve(
    engine: &Engine,
    raft: Option<&RaftNode>,
    session: &mut Session,
    args: &[bytes::Bytes],
    deferred: Deferred,
) -> Reply {
    let Some(node) = raft else {
        return match deferred {
            Deferred::Read | Deferred::AfterScript(_) => engine.execute_local(session, args),
            Deferred::Wait { .. } => Reply::Int(0),
            _ => Reply::error("ERR this node does not run raft"),
        };
    };
    match deferred {
        Deferred::Propose(op) => propose(node, op).await,
        Deferred::Exec(plan) => {
            let needs_entry = plan.needs_entry();
            let ExecPlan {
                op,
                slots,
                db_after,
            } = plan;
            let entry_reply = match needs_entry {
                true => Some(propose(node, op).await),
                false => None,
            };
            engine.finish_exec(session, slots, db_after, entry_reply)
        }
        Deferred::Read => match node.linearize().await {
            Ok(()) => match engine.execute_after_barrier(session, args) {
                // A write checked against this node's limits on fresh data.
                Outcome::Defer(Deferred::Propose(op)) => propose(node, op).await,
                Outcome::Reply(reply) => reply,
                Outcome::Block(block) => block.timeout_reply,
                Outcome::Defer(_) => Reply::error("ERR this command needs a raft node's server"),
            },
            Err(e) => Reply::Error(e.to_string()),
        },
        Deferred::Raft(admin) => node.admin(admin).await,
        Deferred::Wait { replicas, timeout } => {
            let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
            // Every write acknowledged to anyone before WAIT arrived.
            let target = node.applied_index();
            loop {
                let held = node.replicas_holding(target);
                if held >= replicas || deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    return Reply::Int(held as i64);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // Handled before (`settle`); here only for completeness.
        Deferred::AfterScript(_) => engine.execute_local(session, args),
    }
}

/// Propose `op` in an entry; its first reply (a plain write has one, an
/// EXEC's is its array or a null array).
async fn propose(node: &RaftNode, op: Op) -> Reply {
    match node.propose(op).await {
        Ok(replies) => replies.into_iter().next().unwrap_or(Reply::Nil),
        Err(e) => Reply::Error(e.to_string()),
    }
}

/// A proposed blocking command found nothing to take (another client's
/// entry took it first): its empty reply, which it only gives on timeout.
fn took_nothing(reply: &Reply) -> bool {
    matches!(reply, Reply::Nil | Reply::NilArray)
}

/// What a request that did not answer at once comes to.
enum Settled {
    Reply(Reply),
    /// A blocking command with nothing to take: wait for a write.
    Wait(BlockOn),
}

/// Carry a deferred or blocked request as far as a reply or a wait.
///
/// Under Raft a blocking command only waits once this node has seen every
/// write acknowledged before it (a read barrier), so a client's own earlier
/// write is never missed; and it is proposed only when this node saw
/// something to take. If another client's entry took it first, the entry
/// answers empty: the client looks again and then waits, as Redis would
/// have made it wait. It never answers its timeout reply here: losing
/// races, however many, is not a timeout (`BLPOP k 0` waits forever).
/// Each extra look follows a lost race, i.e. another client's progress.
async fn settle(
    engine: &Engine,
    raft: Option<&RaftNode>,
    session: &mut Session,
    args: &[bytes::Bytes],
    mut outcome: Outcome,
) -> Settled {
    let blocking = args
        .first()
        .and_then(|name| crate::cmd::lookup(name))
        .is_some_and(|spec| spec.is_blocking() && crate::cmd::may_block(spec, args));
    // Whether this node's view was brought up to the leader's since the
    // last look.
    let mut fresh = raft.is_none();
    let mut lost = false;
    loop {
        match outcome {
            Outcome::Reply(reply) => return Settled::Reply(reply),
            Outcome::Defer(Deferred::AfterScript(until)) => {
                engine.scripts.wait_idle(until).await;
                outcome = engine.execute_or_block(session, args);
                continue;
            }
            Outcome::Block(block) if fresh => return Settled::Wait(block),
            Outcome::Defer(deferred) => {
                let reply = resolve(engine, raft, session, args, deferred).await;
                if !(blocking && took_nothing(&reply)) {
                    return Settled::Reply(reply);
                }
                lost = true;
            }
            Outcome::Block(_) => {}
        }
        // Look again once this node has caught up.
        if let Some(node) = raft {
            if let Err(e) = node.linearize().await {
                return Settled::Reply(Reply::Error(e.to_string()));
            }
        }
        fresh = true;
        session.retrying_block = lost;
        outcome = engine.execute_or_block(session, args);
        session.retrying_block = false;
    }
}

/// A client blocked in BLPOP and friends.
struct Blocked<'a> {
    engine: &'a Engine,
    raft: Option<&'a RaftNode>,
    session: &'a mut Session,
    args: &'a [bytes::Bytes],
    block: BlockOn,
    /// `client-query-buffer-limit` for what arrives while it waits.
    query_buffer: usize,
}

impl Blocked<'_> {
    /// Wait until a write to one of the keys lets the command run, or the
    /// timeout passes (its nil reply). `None`: the client went away or the
    /// server is stopping.
    async fn wait<S: ClientStream>(
        self,
        stream: &mut S,
        input: &mut BytesMut,
        shutdown: &CancellationToken,
        writer: &mut ReplyWriter,
        output_limit: OutputLimit,
    ) -> std::io::Result<Option<Reply>> {
        let Blocked {
            engine,
            raft,
            session,
            args,
            block,
            query_buffer,
        } = self;
        let waiter = Arc::new(match block.wake_all {
            true => Waiter::woken_by_every_write(),
            false => Waiter::blocked_client(),
        });
        // XREAD's `$` stays the ID it stood for when the wait began.
        let retry_args = block.retry_args.clone();
        let args: &[bytes::Bytes] = retry_args.as_deref().unwrap_or(args);
        let keys: Vec<(u8, Vec<u8>)> = block
            .keys
            .iter()
            .map(|k| (session.db, k.to_vec()))
            .collect();
        for key in &keys {
            engine.waiters.register(key, &waiter);
        }
        engine.stats.blocked_clients.fetch_add(1, Ordering::Relaxed);
        session.info.begin_block();
        let deadline = block.timeout.map(|t| tokio::time::Instant::now() + t);
        let result = async {
            loop {
                // Registered first, then retried: a push in between is not missed.
                session.retrying_block = true;
                let outcome = engine.execute_or_block(session, args);
                session.retrying_block = false;
                match outcome {
                    Outcome::Reply(reply) => return Ok(Some(reply)),
                    Outcome::Defer(Deferred::AfterScript(until)) => {
                        engine.scripts.wait_idle(until).await;
                        continue;
                    }
                    // Under Raft, something to take here: propose the
                    // command; if another client's entry took it first, the
                    // timeout reply comes back and this client waits on.
                    Outcome::Defer(deferred) => {
                        let reply = tokio::select! {
                            _ = shutdown.cancelled() => return Ok(None),
                            reply = resolve(engine, raft, session, args, deferred) => reply,
                        };
                        if !took_nothing(&reply) {
                            return Ok(Some(reply));
                        }
                    }
                    Outcome::Block(_) => {}
                }
                let timeout = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                };
                let client = session.info.clone();
                tokio::select! {
                    _ = waiter.notify.notified() => {}
                    // A RESP3 client that listens hears messages while it waits.
                    _ = client.mailbox.ready() => {
                        let mut messages = BytesMut::new();
                        writer.deliver(&mut messages);
                        if !messages.is_empty() {
                            writer.flush(stream, &mut messages, output_limit).await?;
                        }
                    }
                    _ = timeout => return Ok(Some(block.timeout_reply.clone())),
                    error = client.unblock_requested() => {
                        return Ok(Some(match error {
                            true => Reply::error("UNBLOCKED client unblocked via CLIENT UNBLOCK"),
                            false => block.timeout_reply.clone(),
                        }));
                    }
                    _ = shutdown.cancelled() => return Ok(None),
                    // Requests sent meanwhile wait in the buffer; a close ends the wait.
                    n = stream.read_buf(input) => {
                        if n? == 0 {
                            return Ok(None);
                        }
                        check_query_buffer(query_buffer, session, input.len())?;
                    }
                }
            }
        }
        .await;
        session.info.end_block();
        engine.stats.blocked_clients.fetch_sub(1, Ordering::Relaxed);
        for key in &keys {
            engine.waiters.unregister(key, &waiter);
        }
        result
    }
}
