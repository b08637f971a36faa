//! Connection and server commands: AUTH, HELLO, PING, SELECT, INFO,
//! COMMAND, CONFIG, CLIENT, …

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{glob::glob_match_nocase, int_arg, is, Call, CmdError, CmdResult, Flags};
use crate::engine::wall_clock;
use crate::num::atoi;
use crate::resp::{Protocol, Reply};

/// The Redis version Kiwi answers as: clients pick features by it.
pub const REDIS_VERSION: &str = "7.0.15";

pub fn auth(call: &mut Call<'_, '_>) -> CmdResult {
    let (user, pass) = match call.args.len() {
        2 => (None, &call.args[1]),
        3 => (Some(&call.args[1]), &call.args[2]),
        _ => return Err(CmdError::Syntax),
    };
    check_password(call, user, pass)?;
    Ok(Reply::OK)
}

/// Authenticate the session as `user` (the default user when `None`):
/// AUTH and HELLO AUTH, with Redis's texts; a failure goes to ACL LOG.
fn check_password(call: &mut Call<'_, '_>, user: Option<&Bytes>, pass: &Bytes) -> CmdResult<()> {
    let acl = &call.engine.acl;
    if user.is_none() && acl.default_user().state().nopass() {
        return Err(CmdError::err(
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        ));
    }
    let name = user.cloned().unwrap_or(Bytes::from_static(b"default"));
    match acl.authenticate(&name, pass) {
        Some(found) => {
            call.session.authenticated = true;
            call.session.set_user(found);
            Ok(())
        }
        None => {
            let context = crate::engine::context_of(call.session);
            let object = call.args.first().cloned().unwrap_or_default();
            call.engine.log_acl(
                call.session,
                crate::acl::log::Reason::Auth,
                context,
                object,
                name,
            );
            Err(wrongpass())
        }
    }
}

fn wrongpass() -> CmdError {
    CmdError::Raw("WRONGPASS invalid username-password pair or user is disabled.".into())
}

pub fn hello(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let mut protocol = call.session.protocol;
    let mut i = 1;
    if args.len() > 1 {
        let ver = int_arg(&args[1])
            .map_err(|_| CmdError::err("Protocol version is not an integer or out of range"))?;
        protocol = match ver {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => return Err(CmdError::Raw("NOPROTO unsupported protocol version".into())),
        };
        i = 2;
    }
    let mut auth: Option<(Bytes, Bytes)> = None;
    let mut setname: Option<Bytes> = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(&args[i], "auth") && more >= 2 {
            auth = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 3;
        } else if is(&args[i], "setname") && more >= 1 {
            setname = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Err(CmdError::err(format!(
                "Syntax error in HELLO option '{}'",
                super::args::err_text(&args[i], usize::MAX)
            )));
        }
    }
    if let Some((user, pass)) = &auth {
        check_password(call, Some(user), pass)?;
    }
    if !call.session.authenticated {
        return Err(CmdError::Raw(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH \
             <user> <pass> option can be used to authenticate the client and select the RESP protocol version at \
             the same time"
                .into(),
        ));
    }
    if let Some(name) = setname {
        super::client::validate_client_name(&name)?;
        *call.session.info.name.lock() = (!name.is_empty()).then_some(name);
    }
    call.session.protocol = protocol;
    call.session
        .info
        .resp
        .store(protocol.version() as u8, Ordering::Relaxed);
    Ok(Reply::Map(vec![
        (Reply::bulk_str("server"), Reply::bulk_str("redis")),
        (Reply::bulk_str("version"), Reply::bulk_str(REDIS_VERSION)),
        (Reply::bulk_str("proto"), Reply::Int(protocol.version())),
        (Reply::bulk_str("id"), Reply::Int(call.session.id() as i64)),
        (Reply::bulk_str("mode"), Reply::bulk_str("standalone")),
        (Reply::bulk_str("role"), Reply::bulk_str("master")),
        (Reply::bulk_str("modules"), Reply::Array(vec![])),
    ]))
}

pub fn quit(call: &mut Call<'_, '_>) -> CmdResult {
    call.session.quit = true;
    Ok(Reply::OK)
}

pub fn ping(call: &mut Call<'_, '_>) -> CmdResult {
    // A RESP2 subscriber's PONG must look like a message to its client.
    if call.session.protocol == Protocol::Resp2
        && call.session.subscriptions.any()
        && call.args.len() <= 2
    {
        let payload = call.args.get(1).cloned().unwrap_or_default();
        return Ok(Reply::Array(vec![
            Reply::bulk_str("pong"),
            Reply::Bulk(payload),
        ]));
    }
    match call.args.len() {
        1 => Ok(Reply::Status("PONG")),
        2 => Ok(Reply::Bulk(call.args[1].clone())),
        _ => Err(CmdError::Arity("ping".into())),
    }
}

/// RESET: the connection as it was when it connected (Redis's
/// clearClientConnectionState): no transaction, watch or subscription,
/// database 0, RESP2, no name, authenticated only if no password is set.
pub fn reset(call: &mut Call<'_, '_>) -> CmdResult {
    let session = &mut *call.session;
    session.multi = None;
    session.multi_failed = false;
    call.engine.unwatch(session);
    call.engine
        .pubsub
        .forget(&mut session.subscriptions, &session.info);
    call.engine.monitors.remove(session.info.id);
    session.tracking = None;
    call.engine.tracking.disable(session.info.id);
    session.db = 0;
    session.info.db.store(0, Ordering::Relaxed);
    session.protocol = Protocol::Resp2;
    session.info.resp.store(2, Ordering::Relaxed);
    session.authenticated = !call.engine.acl.auth_required();
    session.set_user(call.engine.acl.default_user());
    *session.info.name.lock() = None;
    session.stale_reads = false;
    session.reply_mode = super::session::ReplyMode::On;
    session.info.no_evict.store(false, Ordering::Relaxed);
    Ok(Reply::Status("RESET"))
}

/// MONITOR: from now on, every command the server runs comes to this client
/// as a line (see `engine/monitor.rs`).
pub fn monitor(call: &mut Call<'_, '_>) -> CmdResult {
    if !call.session.info.mailbox.is_attached() {
        return Err(CmdError::err(
            "MONITOR needs a network connection (the embedded database has none)",
        ));
    }
    call.engine.monitors.add(call.session.info.clone());
    Ok(Reply::OK)
}

pub fn echo(call: &mut Call<'_, '_>) -> CmdResult {
    Ok(Reply::Bulk(call.args[1].clone()))
}

pub fn select(call: &mut Call<'_, '_>) -> CmdResult {
    let db = super::args::db_arg(&call.args[1])?;
    call.session.db = db;
    call.session.info.db.store(db, Ordering::Relaxed);
    Ok(Reply::OK)
}

pub fn time(_call: &mut Call<'_, '_>) -> CmdResult {
    let (secs, micros) = wall_clock();
    Ok(Reply::Array(vec![
        Reply::bulk(secs.to_string()),
        Reply::bulk(micros.to_string()),
    ]))
}

// ------------------------------------------------------------- COMMAND

pub fn command(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    if args.len() == 1 {
        return Ok(Reply::Array(super::all_commands().map(described).collect()));
    }
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "count" if args.len() == 2 => Ok(Reply::Int(super::all_commands().count() as i64)),
        "info" => {
            if args.len() == 2 {
                return Ok(Reply::Array(super::all_commands().map(described).collect()));
            }
            Ok(Reply::Array(
                args[2..]
                    .iter()
                    .map(|name| info_of(name).unwrap_or(Reply::Nil))
                    .collect(),
            ))
        }
        "docs" => {
            let names: Vec<String> = if args.len() == 2 {
                super::all_commands().map(|c| c.name.to_string()).collect()
            } else {
                args[2..]
                    .iter()
                    .map(|n| String::from_utf8_lossy(n).to_ascii_lowercase())
                    .collect()
            };
            let mut out = Vec::new();
            for name in names {
                if let Some(docs) = docs_of(&name) {
                    out.push((Reply::bulk(name), docs));
                }
            }
            Ok(Reply::Map(out))
        }
        "list" => list(&args[2..]),
        "getkeys" if args.len() >= 3 => getkeys(&args[2..], false),
        "getkeysandflags" if args.len() >= 3 => getkeys(&args[2..], true),
        "help" => Ok(help_reply(
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
            ],
        )),
        _ => Err(unknown_subcommand(&args[1], "COMMAND")),
    }
}

/// COMMAND GETKEYS: the keys of a call, as Redis 7.0 finds them (its
/// checks in its order; numkeys commands as its key specs read them, with
/// its fallback when those fail).
/// The key arguments of `call` (name included) for `spec`: COMMAND
/// GETKEYS, and the keys a tracking client read.
pub fn command_keys(spec: &super::CommandSpec, call: &[Bytes]) -> Vec<Bytes> {
    if spec.name == "sort" {
        return sort_keys(call);
    }
    if let Some(from) = store_keyword_from(spec.name) {
        return store_keyword_keys(call, from);
    }
    if spec.name == "xread" || spec.name == "xreadgroup" {
        return super::stream::stream_keys(call);
    }
    match numkeys_layout(spec.name) {
        Some((store, numkeys)) => numkeys_keys(call, store, numkeys),
        None if spec.first_key <= 0 => Vec::new(),
        None => {
            let last = if spec.last_key < 0 {
                call.len() as i32 + spec.last_key
            } else {
                spec.last_key
            };
            (spec.first_key..=last)
                .step_by(spec.step.max(1) as usize)
                .filter_map(|i| call.get(i as usize).cloned())
                .collect()
        }
    }
}

/// SORT's keys: the sorted key and, after STORE, the destination (Redis's
/// sortGetKeys skips LIMIT's two values and BY's and GET's one).
fn sort_keys(call: &[Bytes]) -> Vec<Bytes> {
    let mut keys: Vec<Bytes> = call.get(1).cloned().into_iter().collect();
    let mut store = None;
    let mut i = 2;
    while let Some(arg) = call.get(i) {
        let skip = if super::is(arg, "LIMIT") {
            2
        } else if super::is(arg, "GET") || super::is(arg, "BY") {
            1
        } else if super::is(arg, "STORE") {
            store = call.get(i + 1).cloned();
            1
        } else {
            0
        };
        i += 1 + skip;
    }
    keys.extend(store);
    keys
}

/// COMMAND GETKEYS and GETKEYSANDFLAGS: the keys Redis's
/// getKeysFromCommandWithSpecs finds (key specs, else its getkeys
/// function), with their key spec flags when asked.
fn getkeys(call: &[Bytes], with_flags: bool) -> CmdResult {
    let invalid = || CmdError::err("Invalid command specified");
    let spec = super::lookup(&call[0]).ok_or_else(invalid)?;
    let arity = match spec.subcommand(call).map_err(|_| invalid())? {
        Some((_, arity)) => arity,
        None => spec.arity,
    };
    let catalog = crate::acl::catalog::catalog();
    let entry = catalog.id_of_call(spec, call);
    let described = entry.and_then(|id| catalog.entry(id)).filter(|e| e.redis);
    let has_keys = match (entry, described) {
        (Some(id), Some(_)) => catalog.has_keys(id),
        _ => spec.first_key != 0,
    };
    if !has_keys {
        return Err(CmdError::err("The command has no key arguments"));
    }
    if !super::table::arity_ok(arity, call.len()) {
        return Err(CmdError::err(
            "Invalid number of arguments specified for command",
        ));
    }
    let keys = entry.map_or_else(Vec::new, |id| catalog.keys_and_flags(id, spec, call));
    if keys.is_empty() {
        if described.is_some_and(|e| e.no_mandatory_keys) {
            return Ok(Reply::Array(Vec::new()));
        }
        return Err(CmdError::err("Invalid arguments specified for command"));
    }
    let reply = keys
        .into_iter()
        .filter_map(|(at, flags)| {
            let key = Reply::Bulk(call.get(at)?.clone());
            Some(if with_flags {
                Reply::Array(vec![key, key_flags_reply(flags)])
            } else {
                key
            })
        })
        .collect();
    Ok(Reply::Array(reply))
}

/// Key spec flags as Redis prints them: a set of status words.
fn key_flags_reply(flags: crate::acl::catalog::KeyFlags) -> Reply {
    let names = crate::acl::catalog::KEY_FLAG_NAMES;
    Reply::Set(
        names
            .iter()
            .enumerate()
            .filter(|(i, _)| flags & (1 << i) != 0)
            .map(|(_, name)| Reply::StatusOwned((*name).to_string()))
            .collect(),
    )
}

/// GEORADIUS and GEORADIUSBYMEMBER: where Redis's key specs start looking
/// for their STORE and STOREDIST keywords.
fn store_keyword_from(name: &str) -> Option<usize> {
    match name {
        "georadius" => Some(6),
        "georadiusbymember" => Some(5),
        _ => None,
    }
}

/// The source key, then the key after the first STORE and the one after
/// the first STOREDIST at or past `from` (a keyword in the last place
/// names nothing), as Redis's keyword key specs find them.
fn store_keyword_keys(call: &[Bytes], from: usize) -> Vec<Bytes> {
    let mut keys: Vec<Bytes> = call.get(1).cloned().into_iter().collect();
    let searched = call.get(from..call.len().saturating_sub(1)).unwrap_or(&[]);
    for word in ["store", "storedist"] {
        if let Some(at) = searched.iter().position(|a| is(a, word)) {
            keys.extend(call.get(from + at + 1).cloned());
        }
    }
    keys
}

/// Where a numkeys command keeps its keys: the index of its destination key
/// (0: none) and of its key count; the keys follow the count.
fn numkeys_layout(name: &str) -> Option<(usize, usize)> {
    match name {
        "zunionstore" | "zinterstore" | "zdiffstore" => Some((1, 2)),
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" | "lmpop" | "zmpop" => {
            Some((0, 1))
        }
        "blmpop" | "bzmpop" => Some((0, 2)),
        _ => None,
    }
}

fn numkeys_keys(call: &[Bytes], store: usize, numkeys_at: usize) -> Vec<Bytes> {
    let first = numkeys_at + 1;
    let stored = || call.get(store).filter(|_| store > 0).cloned();
    // The key specs: a count string2ll reads, every key within the call;
    // the destination first.
    if let Some(n) = super::parse_i64(&call[numkeys_at]).and_then(|n| usize::try_from(n).ok()) {
        if n >= 1 && n <= call.len() - first {
            return stored()
                .into_iter()
                .chain(call[first..first + n].iter().cloned())
                .collect();
        }
    }
    // Redis's fallback, genericGetKeys: the count read by atoi, the
    // destination last.
    match usize::try_from(atoi(&call[numkeys_at])) {
        Ok(n) if n >= 1 && n <= call.len() - first => call[first..first + n]
            .iter()
            .cloned()
            .chain(stored())
            .collect(),
        _ => Vec::new(),
    }
}

/// COMMAND INFO of a command Kiwi runs: Redis's description when it has
/// one (see `redis_meta`), else one built from Kiwi's table.
fn described(spec: &'static super::CommandSpec) -> Reply {
    super::redis_meta::info(spec.name).unwrap_or_else(|| command_info(spec))
}

/// COMMAND INFO of a name as asked (`get`, `config|get`), if Kiwi runs it.
fn info_of(name: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(name).to_ascii_lowercase();
    match text.split_once('|') {
        None => super::lookup(name).map(described),
        Some((container, _)) => {
            super::lookup(container.as_bytes())?;
            super::redis_meta::info(&text)
        }
    }
}

/// COMMAND DOCS of a name Kiwi runs: Redis's documentation, else a stub.
fn docs_of(name: &str) -> Option<Reply> {
    let container = name.split_once('|').map_or(name, |(c, _)| c);
    let spec = super::lookup(container.as_bytes())?;
    if let Some(docs) = super::redis_meta::docs(name) {
        return Some(docs);
    }
    (!name.contains('|')).then(|| {
        Reply::Map(vec![
            (Reply::bulk_str("summary"), Reply::bulk_str("")),
            (Reply::bulk_str("since"), Reply::bulk_str("1.0.0")),
            (
                Reply::bulk_str("group"),
                Reply::bulk_str(super::group_of(spec.name)),
            ),
        ])
    })
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern].
/// COMMAND LIST [FILTERBY ...]: every command, each followed by its
/// subcommands (`client|kill`), as Redis lists them; a filter judges each
/// by its full name or its own categories.
fn list(args: &[Bytes]) -> CmdResult {
    let catalog = crate::acl::catalog::catalog();
    let wanted: Box<dyn Fn(&crate::acl::catalog::Entry) -> bool> = match args {
        [] => Box::new(|_| true),
        [filterby, kind, value] if is(filterby, "FILTERBY") => {
            if is(kind, "MODULE") {
                Box::new(|_| false)
            } else if is(kind, "ACLCAT") {
                // An unknown category matches nothing.
                let bit = crate::acl::catalog::category_bit(value).unwrap_or(0);
                Box::new(move |e| e.categories & bit != 0)
            } else if is(kind, "PATTERN") {
                let pattern = value.clone();
                Box::new(move |e| glob_match_nocase(&pattern, e.name.as_bytes()))
            } else {
                return Err(CmdError::Syntax);
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    let mut out = Vec::new();
    for entry in catalog.entries.iter().filter(|e| e.parent.is_none()) {
        let subcommands = entry.subcommands.iter().filter_map(|&id| catalog.entry(id));
        for e in std::iter::once(entry).chain(subcommands) {
            if wanted(e) {
                out.push(Reply::bulk_str(&e.name));
            }
        }
    }
    Ok(Reply::Array(out))
}

fn command_info(spec: &super::CommandSpec) -> Reply {
    Reply::Array(vec![
        Reply::bulk_str(spec.name),
        Reply::Int(i64::from(spec.arity)),
        Reply::Set(spec.flags.names().into_iter().map(Reply::Status).collect()),
        Reply::Int(i64::from(spec.first_key)),
        Reply::Int(i64::from(spec.last_key)),
        Reply::Int(i64::from(spec.step)),
        Reply::Set(vec![Reply::Status(if spec.flags.contains(Flags::WRITE) {
            "@write"
        } else {
            "@read"
        })]),
        Reply::Set(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

pub(super) fn unknown_subcommand(sub: &Bytes, cmd: &str) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand '{}'. Try {cmd} HELP.",
        super::args::err_text(sub, 128)
    ))
}

pub(super) fn help_reply(cmd: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::StatusOwned(format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    out.extend(lines.iter().map(|l| Reply::StatusOwned(l.to_string())));
    out.push(Reply::Status("HELP"));
    out.push(Reply::Status("    Prints this help."));
    Reply::Array(out)
}

// -------------------------------------------------------------- CONFIG

pub fn config(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "get" => {
            if args.len() < 3 {
                return Err(CmdError::Arity("config|get".into()));
            }
            let entries = call.engine.config.read().entries();
            // As Redis: a name without glob characters answers under the
            // spelling it was asked with; one reply per distinct name.
            let mut pairs = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for pattern in &args[2..] {
                if !pattern
                    .iter()
                    .any(|c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
                {
                    if let Some((_, value)) = entries
                        .iter()
                        .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(pattern))
                    {
                        if seen.insert(pattern.to_vec()) {
                            pairs.push((Reply::bulk(pattern.clone()), Reply::bulk(value.clone())));
                        }
                    }
                    continue;
                }
                for (name, value) in &entries {
                    if glob_match_nocase(pattern, name.as_bytes())
                        && seen.insert(name.as_bytes().to_vec())
                    {
                        pairs.push((Reply::bulk_str(name), Reply::bulk(value.clone())));
                    }
                }
            }
            Ok(Reply::Map(pairs))
        }
        "set" => {
            if args.len() < 4 || !args.len().is_multiple_of(2) {
                return Err(CmdError::Arity("config|set".into()));
            }
            // Validate everything on a copy, then apply at once: all or nothing.
            let mut updated = call.engine.config.read().clone();
            let mut named = std::collections::HashSet::new();
            for pair in args[2..].chunks(2) {
                let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
                if !named.insert(name.clone()) {
                    return Err(CmdError::err(format!(
                        "CONFIG SET failed (possibly related to argument '{}') - duplicate parameter",
                        super::args::err_text(&pair[0], usize::MAX)
                    )));
                }
                let value = String::from_utf8_lossy(&pair[1]).into_owned();
                if let Err(e) = updated.set(&name, &value) {
                    return Err(match e {
                        crate::config::ConfigSetError::Unknown => CmdError::err(format!(
                            "Unknown option or number of arguments for CONFIG SET - '{}'",
                            super::args::err_text(&pair[0], usize::MAX)
                        )),
                        other => CmdError::err(format!(
                            "CONFIG SET failed (possibly related to argument '{}') - {other}",
                            super::args::err_text(&pair[0], usize::MAX)
                        )),
                    });
                }
            }
            // Redis reads the TLS files again even when their names did not
            // change (that is how certificates are rotated).
            if let Some(name) = args[2..]
                .chunks(2)
                .filter_map(|pair| pair.first())
                .map(|name| String::from_utf8_lossy(name).to_ascii_lowercase())
                .find(|name| crate::config::reloads_tls(name))
            {
                if let Err(e) = call.engine.tls.configure(&updated.tls) {
                    tracing::warn!(error = %e, "Failed applying new configuration. Possibly related to new {name} setting. Restoring previous settings.");
                    return Err(CmdError::err(format!(
                        "CONFIG SET failed (possibly related to argument '{name}') - Unable to update TLS configuration. Check server logs."
                    )));
                }
            }
            call.engine.storage().set_appendfsync(updated.appendfsync);
            // Only when changed: resizing rewrites RocksDB's options file.
            if updated.memory != call.engine.config.read().memory {
                call.engine.storage().set_memory(updated.memory);
            }
            call.engine
                .storage()
                .notify_mask()
                .set(updated.notify_keyspace_events);
            call.engine.observe_config(&updated);
            // As Redis: requirepass is the default user's only password.
            if named.contains("requirepass") {
                call.engine
                    .acl
                    .set_default_password(updated.requirepass.as_deref());
            }
            *call.engine.config.write() = updated;
            Ok(Reply::OK)
        }
        "resetstat" if args.len() == 2 => {
            let s = &call.engine.stats;
            for counter in [
                &s.commands_processed,
                &s.connections_received,
                &s.expired_keys,
                &s.keyspace_hits,
                &s.keyspace_misses,
                &s.rejected_connections,
            ] {
                counter.store(0, Ordering::Relaxed);
            }
            call.engine.observer.reset_stats();
            Ok(Reply::OK)
        }
        "rewrite" if args.len() == 2 => {
            let config = call.engine.config.read().clone();
            let Some(path) = &config.config_file else {
                return Err(CmdError::err("The server is running without a config file"));
            };
            // As Redis: the users as `user` lines, unless an ACL file
            // keeps them (then the file's `user` lines are dropped).
            let users = config
                .compat
                .text("aclfile")
                .is_empty()
                .then(|| call.engine.acl.list());
            config
                .rewrite(path, users.as_deref())
                .map_err(|e| CmdError::err(format!("Rewriting config file: {e}")))?;
            Ok(Reply::OK)
        }
        "help" => Ok(help_reply(
            "CONFIG",
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "REWRITE",
                "    Rewrite the configuration file.",
            ],
        )),
        _ => Err(unknown_subcommand(&args[1], "CONFIG")),
    }
}
