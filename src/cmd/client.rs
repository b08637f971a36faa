//! CLIENT: the connection's own settings (name, tracking, reply), what
//! CLIENT LIST/INFO report about every client, and the commands that act
//! on other clients (KILL, UNBLOCK, PAUSE).

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{is, Call, CmdError, CmdResult};
use crate::engine::{ClientInfo, Kind, PauseKind};
use crate::resp::Reply;

/// CLIENT HELP, as Redis 7.0 words it.
const HELP: &[&str] = &[
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
];

pub(super) fn validate_client_name(name: &[u8]) -> CmdResult<()> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

pub fn client(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match (sub.as_str(), args.len()) {
        ("id", 2) => Ok(Reply::Int(call.session.id() as i64)),
        ("getname", 2) => Ok(Reply::bulk_opt(call.session.name())),
        ("setname", 3) => {
            validate_client_name(&args[2])?;
            let name = args[2].clone();
            *call.session.info.name.lock() = (!name.is_empty()).then_some(name);
            Ok(Reply::OK)
        }
        ("tracking", _) => super::tracking::tracking(call),
        ("caching", 3) => super::tracking::caching(call),
        ("getredir", 2) => super::tracking::getredir(call),
        ("trackinginfo", 2) => super::tracking::trackinginfo(call),
        ("info", 2) => Ok(Reply::Verbatim(client_line(
            call.engine,
            &call.session.info,
            call.session.db,
        ))),
        ("list", n) => {
            // Redis 7.0 takes either TYPE <type> or ID <id>…, not both.
            let mut ids: Option<Vec<u64>> = None;
            // TYPE normal / pubsub: whether listed clients listen to something.
            let mut listening: Option<bool> = None;
            if n == 4 && is(&args[2], "type") {
                let kind = String::from_utf8_lossy(&args[3]).to_ascii_lowercase();
                if !["normal", "master", "slave", "replica", "pubsub"].contains(&kind.as_str()) {
                    return Err(CmdError::err(format!(
                        "Unknown client type '{}'",
                        super::args::err_text(&args[3], usize::MAX)
                    )));
                }
                match kind.as_str() {
                    "normal" => listening = Some(false),
                    "pubsub" => listening = Some(true),
                    _ => ids = Some(Vec::new()),
                }
            } else if n > 3 && is(&args[2], "id") {
                let mut list = Vec::new();
                for a in &args[3..] {
                    let id =
                        super::parse_i64(a).ok_or_else(|| CmdError::err("Invalid client ID"))?;
                    // No client has an id below 1.
                    list.extend(u64::try_from(id).ok());
                }
                ids = Some(list);
            } else if n != 2 {
                return Err(CmdError::Syntax);
            }
            let mut clients: Vec<_> = call.engine.clients.lock().values().cloned().collect();
            clients.sort_by_key(|c| c.id);
            let mut out = String::new();
            for c in clients {
                if ids.as_ref().is_some_and(|ids| !ids.contains(&c.id))
                    || listening.is_some_and(|l| l != is_listening(&c))
                {
                    continue;
                }
                let db = if c.id == call.session.id() {
                    call.session.db
                } else {
                    c.db.load(Ordering::Relaxed)
                };
                out.push_str(&client_line(call.engine, &c, db));
            }
            Ok(Reply::Verbatim(out))
        }
        // redis-py announces itself with SETINFO (Redis 7.2); accept it.
        ("setinfo", 4) => {
            if !is(&args[2], "lib-name") && !is(&args[2], "lib-ver") {
                return Err(CmdError::err(format!(
                    "Unrecognized option '{}'",
                    super::args::err_text(&args[2], usize::MAX)
                )));
            }
            Ok(Reply::OK)
        }
        ("no-evict", 3) | ("no-touch", 3) => {
            let on = if is(&args[2], "on") {
                true
            } else if is(&args[2], "off") {
                false
            } else {
                return Err(CmdError::Syntax);
            };
            if sub == "no-evict" {
                call.session.info.no_evict.store(on, Ordering::Relaxed);
            }
            Ok(Reply::OK)
        }
        ("help", 2) => Ok(super::server::help_reply("CLIENT", HELP)),
        ("kill", n) if n >= 3 => kill(call),
        ("unblock", 3 | 4) => unblock(call),
        ("pause", 3 | 4) => pause(call),
        ("reply", 3) => {
            use super::session::ReplyMode;
            call.session.reply_mode = if is(&args[2], "ON") {
                ReplyMode::On
            } else if is(&args[2], "OFF") {
                ReplyMode::Off
            } else if is(&args[2], "SKIP") {
                ReplyMode::SkipNext
            } else {
                return Err(CmdError::Syntax);
            };
            Ok(Reply::OK)
        }
        ("unpause", 2) => {
            call.engine.pause.unpause();
            Ok(Reply::OK)
        }
        // Past the table's arity, Redis's CLIENT rejects the rest itself.
        ("unblock" | "pause", _) => Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            super::args::err_text(&args[1], 128)
        ))),
        (
            "id" | "getname" | "setname" | "info" | "setinfo" | "no-evict" | "no-touch" | "help"
            | "kill" | "unpause" | "reply",
            _,
        ) => Err(CmdError::Arity(format!("client|{sub}"))),
        _ => Err(super::server::unknown_subcommand(&args[1], "CLIENT")),
    }
}

fn is_listening(c: &ClientInfo) -> bool {
    [Kind::Channel, Kind::Pattern, Kind::Shard]
        .into_iter()
        .any(|kind| c.subscribed.get(kind) > 0)
}

/// CLIENT LIST's flags, in Redis's order: O (MONITOR), P (pub/sub), b
/// (blocked), t (tracking), R (its redirect broke), B (broadcast
/// tracking), e (no-evict); N for none.
fn client_flags(engine: &crate::engine::Shared, c: &ClientInfo) -> String {
    let mut flags = String::new();
    if engine.monitors.contains(c.id) {
        flags.push('O');
    }
    if is_listening(c) {
        flags.push('P');
    }
    if c.blocked.load(Ordering::Relaxed) {
        flags.push('b');
    }
    if let Some(t) = engine.tracking_summary(c.id) {
        flags.push('t');
        if t.broken_redirect {
            flags.push('R');
        }
        if t.bcast {
            flags.push('B');
        }
    }
    if c.no_evict.load(Ordering::Relaxed) {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    flags
}

/// CLIENT LIST's line of one client (ACL LOG's `client-info` too).
pub(crate) fn client_line(engine: &crate::engine::Shared, c: &ClientInfo, db: u8) -> String {
    let redir = engine
        .tracking_summary(c.id)
        .map_or(-1, |t| i64::try_from(t.redirect).unwrap_or(i64::MAX));
    let name = c
        .name
        .lock()
        .clone()
        .map(|n| String::from_utf8_lossy(&n).into_owned())
        .unwrap_or_default();
    let age = c.created.elapsed().as_secs();
    let idle =
        crate::storage::now_ms().saturating_sub(c.last_active_ms.load(Ordering::Relaxed)) / 1000;
    let cmd = *c.last_cmd.lock();
    let user = c.user.lock().as_ref().map_or("default".into(), |u| {
        String::from_utf8_lossy(&u.name).into_owned()
    });
    format!(
        "id={} addr={} laddr={} fd=8 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi=-1 qbuf=0 \
         qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} \
         user={} redir={} resp={}\n",
        c.id,
        c.addr,
        c.laddr,
        name,
        age,
        idle,
        client_flags(engine, c),
        db,
        c.subscribed.get(Kind::Channel),
        c.subscribed.get(Kind::Pattern),
        c.subscribed.get(Kind::Shard),
        cmd,
        user,
        redir,
        c.resp.load(Ordering::Relaxed)
    )
}

/// Which clients a CLIENT KILL names.
#[derive(Default)]
struct KillFilter {
    addr: Option<Bytes>,
    laddr: Option<Bytes>,
    id: Option<u64>,
    /// Some(true): pub/sub clients; Some(false): normal ones; replicas and
    /// masters match none (Kiwi has none).
    listening: Option<Option<bool>>,
    user: Option<std::sync::Arc<crate::acl::AclUser>>,
    skip_me: bool,
}

impl KillFilter {
    fn matches(&self, c: &ClientInfo) -> bool {
        self.addr
            .as_ref()
            .is_none_or(|a| a[..] == *c.addr.as_bytes())
            && self
                .laddr
                .as_ref()
                .is_none_or(|a| a[..] == *c.laddr.as_bytes())
            && self.id.is_none_or(|id| id == c.id)
            && self
                .listening
                .is_none_or(|kind| kind.is_some_and(|l| l == is_listening(c)))
            && self.user.as_ref().is_none_or(|u| {
                c.user
                    .lock()
                    .as_ref()
                    .is_some_and(|cu| std::sync::Arc::ptr_eq(cu, u))
            })
    }
}

/// CLIENT KILL <addr> (OK or "No such client"), or CLIENT KILL with
/// filters (how many were killed; the caller itself only with SKIPME no,
/// after its reply).
fn kill(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let old_form = args.len() == 3;
    let mut filter = KillFilter {
        skip_me: !old_form,
        ..KillFilter::default()
    };
    if old_form {
        filter.addr = Some(args[2].clone());
    } else {
        let mut i = 2;
        while let Some(option) = args.get(i) {
            let Some(value) = args.get(i + 1) else {
                return Err(CmdError::Syntax);
            };
            if is(option, "ID") {
                let id = super::parse_i64(value)
                    .filter(|&id| id >= 1)
                    .ok_or_else(|| CmdError::err("client-id should be greater than 0"))?;
                filter.id = Some(id as u64);
            } else if is(option, "TYPE") {
                filter.listening = Some(client_type(value)?);
            } else if is(option, "ADDR") {
                filter.addr = Some(value.clone());
            } else if is(option, "LADDR") {
                filter.laddr = Some(value.clone());
            } else if is(option, "USER") {
                let user = call.engine.acl.get(value).ok_or_else(|| {
                    CmdError::err(format!(
                        "No such user '{}'",
                        super::args::err_text(value, usize::MAX)
                    ))
                })?;
                filter.user = Some(user);
            } else if is(option, "SKIPME") {
                filter.skip_me = if is(value, "yes") {
                    true
                } else if is(value, "no") {
                    false
                } else {
                    return Err(CmdError::Syntax);
                };
            } else {
                return Err(CmdError::Syntax);
            }
            i += 2;
        }
    }
    let me = call.session.id();
    let clients: Vec<_> = call.engine.clients.lock().values().cloned().collect();
    let mut killed = 0i64;
    for c in clients {
        if !filter.matches(&c) || (c.id == me && filter.skip_me) {
            continue;
        }
        if c.id == me {
            // Closed once this reply is out, as Redis's CLOSE_AFTER_REPLY.
            call.session.quit = true;
        } else {
            c.mailbox.kill();
        }
        killed += 1;
    }
    match (old_form, killed) {
        (true, 0) => Err(CmdError::err("No such client")),
        (true, _) => Ok(Reply::OK),
        (false, n) => Ok(Reply::Int(n)),
    }
}

/// A CLIENT KILL / LIST type: `Some(listening)` for normal and pubsub
/// clients, `None` for replicas and masters.
fn client_type(value: &[u8]) -> CmdResult<Option<bool>> {
    match String::from_utf8_lossy(value).to_ascii_lowercase().as_str() {
        "normal" => Ok(Some(false)),
        "pubsub" => Ok(Some(true)),
        "master" | "slave" | "replica" => Ok(None),
        _ => Err(CmdError::err(format!(
            "Unknown client type '{}'",
            super::args::err_text(value, usize::MAX)
        ))),
    }
}

/// CLIENT UNBLOCK <id> [TIMEOUT|ERROR]: 1 when that client was waiting in a
/// blocking command and now gets its timeout reply (or an UNBLOCKED error).
fn unblock(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let error = match args.get(3) {
        None => false,
        Some(reason) if is(reason, "TIMEOUT") => false,
        Some(reason) if is(reason, "ERROR") => true,
        Some(_) => {
            return Err(CmdError::err(
                "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    let id = super::int_arg(&args[2])?;
    let target = u64::try_from(id)
        .ok()
        .and_then(|id| call.engine.clients.lock().get(&id).cloned());
    let done = target.is_some_and(|c| c.request_unblock(error));
    Ok(Reply::Int(i64::from(done)))
}

/// CLIENT PAUSE <ms> [WRITE|ALL].
fn pause(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let kind = match args.get(3) {
        None => PauseKind::All,
        Some(k) if is(k, "WRITE") => PauseKind::Write,
        Some(k) if is(k, "ALL") => PauseKind::All,
        Some(_) => return Err(CmdError::err("CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let ms = super::parse_i64(&args[2])
        .ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    let end = tokio::time::Instant::now() + std::time::Duration::from_millis(ms as u64);
    call.engine.pause.pause(end, kind);
    Ok(Reply::OK)
}

/// Whether CLIENT PAUSE WRITE holds back this command: it writes or may
/// propagate (scripts that may write, PUBLISH), or it is an EXEC of such.
pub fn held_by_write_pause(args: &[Bytes], queued: Option<&Vec<Vec<Bytes>>>) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    if is(name, "EXEC") {
        return queued.is_some_and(|q| q.iter().any(|cmd| held_by_write_pause(cmd, None)));
    }
    let Some(spec) = super::lookup(name) else {
        return false;
    };
    spec.flags.contains(super::Flags::WRITE)
        || spec.flags.contains(super::Flags::REPLICATED)
        || matches!(spec.name, "eval" | "evalsha" | "fcall")
}
