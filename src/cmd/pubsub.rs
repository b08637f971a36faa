//! Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH,
//! PUBSUB. The hub they act on is the engine's (`engine/pubsub.rs`); the
//! connection delivers the messages (`server/connection.rs`).
//!
//! Under Raft, PUBLISH and SPUBLISH travel through the log like writes
//! ([`Flags::REPLICATED`]): every node's apply delivers the message to its
//! own subscribers, so a message published on any node reaches all of
//! them, in log order; the client hears the count of its own node.

use bytes::Bytes;

use super::table::{commands, CommandSpec, Flags};
use super::{Call, CmdError, CmdResult};
use crate::engine::{confirmation, Kind};
use crate::resp::Reply;

/// Subscription changes.
const S: Flags = Flags::NO_KEYS.union(Flags::PUBSUB);
/// Publishing: through the log under Raft.
const P: Flags = S.union(Flags::FAST).union(Flags::REPLICATED);

pub(super) static COMMANDS: &[CommandSpec] = commands! {
    "subscribe", -2, S, 0, 0, 0, subscribe;
    "unsubscribe", -1, S, 0, 0, 0, unsubscribe;
    "psubscribe", -2, S, 0, 0, 0, psubscribe;
    "punsubscribe", -1, S, 0, 0, 0, punsubscribe;
    "ssubscribe", -2, S, 1, -1, 1, ssubscribe;
    "sunsubscribe", -1, S, 1, -1, 1, sunsubscribe;
    "publish", 3, P, 0, 0, 0, publish;
    "spublish", 3, P, 1, 1, 1, spublish;
    "pubsub", -2, Flags::NO_KEYS, 0, 0, 0, pubsub;
};

/// The commands RESP2 allows a client that listens to something
/// (Redis's pub/sub context); the others get [`context_error`].
pub fn allowed_in_context(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// What Redis answers a RESP2 subscriber's other commands.
pub fn context_error(full_name: &str) -> CmdError {
    CmdError::err(format!(
        "Can't execute '{full_name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

/// Whether running `args` may start listening (its connection then
/// delivers messages after its reply, never before).
pub fn may_subscribe(args: &[Bytes]) -> bool {
    args.first().is_some_and(|name| {
        [&b"subscribe"[..], b"psubscribe", b"ssubscribe", b"exec"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
    })
}

fn subscribe(call: &mut Call<'_, '_>) -> CmdResult {
    listen(call, Kind::Channel, "subscribe")
}

fn psubscribe(call: &mut Call<'_, '_>) -> CmdResult {
    listen(call, Kind::Pattern, "psubscribe")
}

fn ssubscribe(call: &mut Call<'_, '_>) -> CmdResult {
    listen(call, Kind::Shard, "ssubscribe")
}

fn unsubscribe(call: &mut Call<'_, '_>) -> CmdResult {
    stop_listening(call, Kind::Channel, "unsubscribe")
}

fn punsubscribe(call: &mut Call<'_, '_>) -> CmdResult {
    stop_listening(call, Kind::Pattern, "punsubscribe")
}

fn sunsubscribe(call: &mut Call<'_, '_>) -> CmdResult {
    stop_listening(call, Kind::Shard, "sunsubscribe")
}

/// One confirmation per name, each with the count after it.
fn listen(call: &mut Call<'_, '_>, kind: Kind, verb: &'static str) -> CmdResult {
    let session = &mut *call.session;
    if !session.info.mailbox.is_attached() {
        return Err(CmdError::err(format!(
            "{} needs a network connection to deliver messages",
            verb.to_ascii_uppercase()
        )));
    }
    let frames = call.args[1..]
        .iter()
        .map(|name| {
            let count = call.engine.pubsub.subscribe(
                &mut session.subscriptions,
                &session.info,
                kind,
                name.clone(),
            );
            confirmation(verb, Some(name.clone()), count)
        })
        .collect();
    Ok(Reply::Frames(frames))
}

/// One confirmation per name (every subscription of the kind when none is
/// named; a nil name when there is none).
fn stop_listening(call: &mut Call<'_, '_>, kind: Kind, verb: &'static str) -> CmdResult {
    let session = &mut *call.session;
    let hub = &call.engine.pubsub;
    let frames: Vec<Reply> = if call.args.len() == 1 {
        let dropped = hub.unsubscribe_all(&mut session.subscriptions, &session.info, kind);
        if dropped.is_empty() {
            vec![confirmation(verb, None, session.subscriptions.count(kind))]
        } else {
            dropped
                .into_iter()
                .map(|(name, count)| confirmation(verb, Some(name), count))
                .collect()
        }
    } else {
        call.args[1..]
            .iter()
            .map(|name| {
                let count = hub.unsubscribe(&mut session.subscriptions, &session.info, kind, name);
                confirmation(verb, Some(name.clone()), count)
            })
            .collect()
    };
    Ok(Reply::Frames(frames))
}

fn publish(call: &mut Call<'_, '_>) -> CmdResult {
    let n = call.engine.publish(false, &call.args[1], &call.args[2]);
    Ok(Reply::Int(n as i64))
}

fn spublish(call: &mut Call<'_, '_>) -> CmdResult {
    let n = call.engine.publish(true, &call.args[1], &call.args[2]);
    Ok(Reply::Int(n as i64))
}

const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

fn pubsub(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let hub = &call.engine.pubsub;
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let names = |kind: Kind| {
        let mut names = hub.channels(kind, args.get(2).map(|p| &p[..]));
        names.sort();
        Reply::Array(names.into_iter().map(Reply::Bulk).collect())
    };
    let counts = |kind: Kind| {
        Reply::Array(
            args[2..]
                .iter()
                .flat_map(|name| {
                    [
                        Reply::Bulk(name.clone()),
                        Reply::Int(hub.numsub(kind, name) as i64),
                    ]
                })
                .collect(),
        )
    };
    match (sub.as_str(), args.len()) {
        ("channels", 2 | 3) => Ok(names(Kind::Channel)),
        ("shardchannels", 2 | 3) => Ok(names(Kind::Shard)),
        ("numsub", _) => Ok(counts(Kind::Channel)),
        ("shardnumsub", _) => Ok(counts(Kind::Shard)),
        ("numpat", 2) => Ok(Reply::Int(hub.active(Kind::Pattern) as i64)),
        ("help", 2) => Ok(Reply::Array(
            HELP.iter()
                .map(|line| Reply::StatusOwned((*line).to_string()))
                .collect(),
        )),
        _ => Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            super::args::err_text(&args[1], 128)
        ))),
    }
}
