//! Operating commands: SAVE, BGSAVE, LASTSAVE (RocksDB checkpoints), ROLE,
//! LOLWUT and MEMORY, answered in Redis 7.0's shapes with Kiwi's figures.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::server::{help_reply, unknown_subcommand, REDIS_VERSION};
use super::{is, parse_i64, Call, CmdError, CmdResult};
use crate::resp::Reply;
use crate::storage::{Meta, MetaBody};

/// SAVE: a checkpoint of the whole database in `<dir>/checkpoint`.
pub fn save(call: &mut Call<'_, '_>) -> CmdResult {
    if call.engine.saves.in_progress.load(Relaxed) {
        return Err(CmdError::err("Background save already in progress"));
    }
    call.engine.save()?;
    Ok(Reply::OK)
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: stop the server as SIGTERM
/// does (clients closed, the write-ahead log synced, exit 0). SAVE first
/// takes a checkpoint as SAVE does, and a failed one stops nothing unless
/// FORCE; without SAVE nothing is written beyond the log, which already
/// holds every write. A shutdown is never in progress for ABORT to cancel.
/// The client gets no reply: its connection closes, as with Redis.
pub fn shutdown(call: &mut Call<'_, '_>) -> CmdResult {
    let (mut nosave, mut save, mut now, mut force, mut abort) = (false, false, false, false, false);
    for arg in &call.args[1..] {
        let flag = if is(arg, "NOSAVE") {
            &mut nosave
        } else if is(arg, "SAVE") {
            &mut save
        } else if is(arg, "NOW") {
            &mut now
        } else if is(arg, "FORCE") {
            &mut force
        } else if is(arg, "ABORT") {
            &mut abort
        } else {
            return Err(CmdError::Syntax);
        };
        *flag = true;
    }
    if (abort && (nosave || save || now || force)) || (nosave && save) {
        return Err(CmdError::Syntax);
    }
    if abort {
        return Err(CmdError::err("No shutdown in progress."));
    }
    if call.engine.tcp_port.load(Relaxed) == 0 {
        // An embedded database has no server to stop.
        return Err(CmdError::err(
            "SHUTDOWN stops a server; close an embedded database instead",
        ));
    }
    if save {
        if let Err(e) = call.engine.save() {
            tracing::warn!(error = %e, "SHUTDOWN SAVE: the checkpoint failed");
            if !force {
                return Err(CmdError::err("Errors trying to SHUTDOWN. Check logs."));
            }
        }
    }
    tracing::info!(client = %call.session.info.addr, "SHUTDOWN asked: stopping");
    call.engine.shutdown_request.cancel();
    call.session.quit = true;
    Ok(Reply::Frames(Vec::new()))
}

/// BGSAVE [SCHEDULE]: the same checkpoint, taken on another thread.
pub fn bgsave(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    match args.get(1) {
        None => {}
        Some(a) if args.len() == 2 && is(a, "SCHEDULE") => {}
        Some(_) => return Err(CmdError::Syntax),
    }
    if !call.engine.bgsave() {
        return Err(CmdError::err("Background save already in progress"));
    }
    Ok(Reply::Status("Background saving started"))
}

pub fn lastsave(call: &mut Call<'_, '_>) -> CmdResult {
    Ok(Reply::Int(
        call.engine.saves.last_save_s.load(Relaxed) as i64
    ))
}

/// ROLE: a standalone server is a master without replicas.
pub fn role(_call: &mut Call<'_, '_>) -> CmdResult {
    Ok(Reply::Array(vec![
        Reply::bulk_str("master"),
        Reply::Int(0),
        Reply::Array(Vec::new()),
    ]))
}

/// LOLWUT [VERSION v]: Redis 7.0's answer (its version line).
pub fn lolwut(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    if let (Some(word), Some(v)) = (args.get(1), args.get(2)) {
        if is(word, "VERSION") {
            parse_i64(v).ok_or(CmdError::NotInteger)?;
        }
    }
    Ok(Reply::Verbatim(format!("Redis ver. {REDIS_VERSION}\n")))
}

const MEMORY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
];

pub fn memory(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let sub = &args[1];
    let n = args.len();
    if is(sub, "USAGE") && n >= 3 {
        return usage(call);
    }
    if is(sub, "STATS") && n == 2 {
        return Ok(stats(call));
    }
    if is(sub, "DOCTOR") && n == 2 {
        return Ok(Reply::Verbatim(
            "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
                .into(),
        ));
    }
    if is(sub, "MALLOC-STATS") && n == 2 {
        return Ok(Reply::Verbatim(
            "Stats not supported for the current allocator".into(),
        ));
    }
    if is(sub, "PURGE") && n == 2 {
        return Ok(Reply::OK);
    }
    if is(sub, "HELP") && n == 2 {
        return Ok(help_reply("MEMORY", MEMORY_HELP));
    }
    if ["USAGE", "STATS", "DOCTOR", "MALLOC-STATS", "PURGE", "HELP"]
        .iter()
        .any(|s| is(sub, s))
    {
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try MEMORY HELP.",
            super::args::err_text(sub, 128)
        )));
    }
    Err(unknown_subcommand(sub, "MEMORY"))
}

/// MEMORY USAGE key [SAMPLES count]: the key, its record and, for a
/// collection, its elements' size estimated from the first `count` (all
/// for 0), in bytes; nil for a missing key.
fn usage(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let mut samples: u64 = 5;
    let mut i = 3;
    while let Some(opt) = args.get(i) {
        match args.get(i + 1) {
            Some(v) if is(opt, "SAMPLES") => {
                let v = parse_i64(v).ok_or(CmdError::NotInteger)?;
                if v < 0 {
                    return Err(CmdError::Syntax);
                }
                samples = if v == 0 { u64::MAX } else { v as u64 };
                i += 2;
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let key = &args[2];
    let Some(meta) = call.ctx.get_meta(key)? else {
        return Ok(Reply::Nil);
    };
    // Redis's object header, dict entry and key string, roughly.
    const OVERHEAD: u64 = 48;
    let base = OVERHEAD + key.len() as u64;
    Ok(Reply::Int(match &meta.body {
        MetaBody::String(v) => base + v.len() as u64,
        MetaBody::Collection(c) => {
            let len = c.len;
            let sampled = sample_sizes(call, key, &meta, samples.min(len))?;
            let (count, bytes) = sampled;
            let per_element = bytes.checked_div(count).unwrap_or(0);
            base + 16 * len + per_element * len
        }
    } as i64))
}

/// (elements read, their bytes) for up to `want` elements of a collection.
fn sample_sizes(call: &Call<'_, '_>, key: &[u8], meta: &Meta, want: u64) -> CmdResult<(u64, u64)> {
    let MetaBody::Collection(c) = &meta.body else {
        return Ok((0, 0));
    };
    let prefix = crate::storage::data_prefix(call.ctx.keyspace(), key, c.version);
    let end = crate::storage::prefix_end(&prefix);
    let mut count = 0;
    let mut bytes = 0;
    for item in call
        .ctx
        .iter(crate::storage::Cf::Data, &prefix, end.as_deref(), false)
        .take(usize::try_from(want).unwrap_or(usize::MAX))
    {
        let (k, v) = item?;
        count += 1;
        bytes += (k.len().saturating_sub(prefix.len()) + v.len()) as u64;
    }
    Ok((count, bytes))
}

/// MEMORY STATS: Redis's fields (the process's resident memory standing in
/// for the allocator's) and RocksDB's own figures.
fn stats(call: &Call<'_, '_>) -> Reply {
    let engine = call.engine;
    let rss = super::info::resident_memory();
    let keys: u64 = engine.storage().estimated_keys();
    let clients = engine.clients.lock().len() as u64;
    let int = |v: u64| Reply::Int(i64::try_from(v).unwrap_or(i64::MAX));
    let mut fields: Vec<(&str, Reply)> = vec![
        ("peak.allocated", int(rss)),
        ("total.allocated", int(rss)),
        ("startup.allocated", int(0)),
        ("replication.backlog", int(0)),
        ("clients.slaves", int(0)),
        ("clients.normal", int(clients * 20 * 1024)),
        ("cluster.links", int(0)),
        ("aof.buffer", int(0)),
        ("lua.caches", int(0)),
        ("functions.caches", int(0)),
        ("overhead.total", int(0)),
        ("keys.count", int(keys)),
        (
            "keys.bytes-per-key",
            int(rss.checked_div(keys).unwrap_or(0)),
        ),
        ("dataset.bytes", int(rss)),
        ("dataset.percentage", Reply::Double(100.0)),
        ("peak.percentage", Reply::Double(100.0)),
        ("allocator.allocated", int(rss)),
        ("allocator.active", int(rss)),
        ("allocator.resident", int(rss)),
        ("allocator-fragmentation.ratio", Reply::Double(1.0)),
        ("allocator-fragmentation.bytes", int(0)),
        ("allocator.rss-ratio", Reply::Double(1.0)),
        ("allocator.rss-bytes", int(0)),
        ("rss-overhead.ratio", Reply::Double(1.0)),
        ("rss-overhead.bytes", int(0)),
        ("fragmentation", Reply::Double(1.0)),
        ("fragmentation.bytes", int(0)),
    ];
    let rocks = engine.storage().memory_figures();
    let rocks_replies: Vec<(&str, Reply)> = rocks.into_iter().map(|(k, v)| (k, int(v))).collect();
    fields.extend(rocks_replies);
    Reply::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Reply::Bulk(Bytes::from_static(k.as_bytes())), v))
            .collect(),
    )
}

/// WAIT's replica count and timeout (`None`: wait forever).
fn wait_arguments(args: &[Bytes]) -> CmdResult<(i64, Option<std::time::Duration>)> {
    let number = |i: usize| args.get(i).and_then(|a| parse_i64(a));
    let replicas = number(1).ok_or(CmdError::NotInteger)?;
    let ms = number(2).ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    Ok((
        replicas,
        (ms > 0).then(|| std::time::Duration::from_millis(ms as u64)),
    ))
}

/// WAIT queued in a transaction under Raft: answered at once, as Redis
/// answers it inside MULTI (the transaction's own writes are not
/// replicated before it runs, so no replica is counted as holding them).
pub fn wait_in_transaction(args: &[Bytes]) -> Reply {
    match wait_arguments(args) {
        Ok(_) => Reply::Int(0),
        Err(e) => Reply::Error(e.to_string()),
    }
}

/// WAIT numreplicas timeout: how many replicas hold this connection's
/// writes. A standalone server has none: 0 at once when none is asked for
/// (or inside MULTI), else after the timeout (never for 0), as Redis with
/// no replicas answers. Under Raft, the nodes that hold every entry the
/// leader had applied when WAIT arrived (see `RaftNode::replicas_holding`).
pub fn wait(call: &mut Call<'_, '_>) -> CmdResult<super::Handled> {
    use super::{BlockOn, Deferred, Handled};
    let (replicas, timeout) = wait_arguments(call.args)?;
    if call.engine.is_replicated() && call.session.multi.is_none() {
        return Ok(Handled::Defer(Box::new(Deferred::Wait {
            replicas: u64::try_from(replicas).unwrap_or(0),
            timeout,
        })));
    }
    if replicas <= 0 || call.session.multi.is_some() {
        return Ok(Handled::Reply(Reply::Int(0)));
    }
    Ok(Handled::Block(Box::new(BlockOn {
        keys: Vec::new(),
        timeout,
        timeout_reply: Reply::Int(0),
        refused_reply: Reply::Int(0),
        retry_args: None,
        wake_all: false,
    })))
}
