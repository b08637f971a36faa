//! ACL and its subcommands, answering as Redis 7.0 does (the model is in
//! `crate::acl`; what follows a change, closing clients, in the engine).

use bytes::Bytes;

use super::server::help_reply;
use super::{is, Call, CmdError, CmdResult};
use crate::acl::{catalog, category_bit, has_spaces, Selector, CATEGORIES};
use crate::resp::Reply;
use crate::storage::now_ms;

pub fn acl(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match (sub.as_str(), args.len()) {
        ("setuser", n) if n >= 3 => setuser(call),
        ("deluser", n) if n >= 3 => deluser(call),
        ("getuser", 3) => getuser(call),
        ("list", 2) => Ok(Reply::Array(
            call.engine
                .acl
                .list()
                .into_iter()
                .map(Reply::bulk)
                .collect(),
        )),
        ("users", 2) => Ok(Reply::Array(
            call.engine
                .acl
                .users()
                .into_iter()
                .map(|u| Reply::Bulk(u.name.clone()))
                .collect(),
        )),
        ("whoami", 2) => Ok(Reply::Bulk(call.session.user_name())),
        ("load" | "save", 2) if aclfile(call).is_empty() => Err(CmdError::err(
            "This Redis instance is not configured to use an ACL file. You may want to specify \
             users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you \
             have a Redis configuration file set) in order to store users in the Redis \
             configuration.",
        )),
        ("load", 2) => load(call),
        ("save", 2) => save(call),
        ("cat", 2) => Ok(Reply::Array(
            CATEGORIES.iter().map(|c| Reply::bulk_str(c)).collect(),
        )),
        ("cat", 3) => cat(&args[2]),
        ("genpass", 2 | 3) => genpass(args),
        ("log", 2 | 3) => log(call),
        ("dryrun", n) if n >= 4 => dryrun(call),
        ("help", 2) => Ok(help_reply("ACL", HELP)),
        // Unknown subcommands were refused before (the table knows ACL's).
        _ => Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
            super::args::err_text(&args[1], 128)
        ))),
    }
}

const HELP: &[&str] = &[
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
];

fn aclfile(call: &Call<'_, '_>) -> String {
    call.engine.config.read().compat.text("aclfile")
}

fn pubsub_all(call: &Call<'_, '_>) -> bool {
    crate::engine::pubsub_all(&call.engine.config.read())
}

fn setuser(call: &mut Call<'_, '_>) -> CmdResult {
    let name = &call.args[2];
    if has_spaces(name) {
        return Err(CmdError::err(
            "Usernames can't contain spaces or null characters",
        ));
    }
    let pubsub_all = pubsub_all(call);
    let changed = call
        .engine
        .acl
        .set_user(name, &call.args[3..], pubsub_all)
        .map_err(CmdError::Err)?;
    // Redis 7: clients listening to channels the user lost are closed.
    if let Some(old) = &changed.old {
        if let Some(allowed) = changed.user.state().revoked_channels(old) {
            call.engine
                .close_revoked_subscribers(&changed.user, &allowed, Some(call.session));
        }
    }
    Ok(Reply::OK)
}

fn deluser(call: &mut Call<'_, '_>) -> CmdResult {
    let gone = call
        .engine
        .acl
        .delete(&call.args[2..])
        .map_err(CmdError::Err)?;
    call.engine.close_clients_of(&gone, Some(call.session));
    Ok(Reply::Int(gone.len() as i64))
}

fn describe_selector(s: &Selector) -> Vec<(Reply, Reply)> {
    vec![
        (
            Reply::bulk_str("commands"),
            Reply::bulk(s.describe_commands()),
        ),
        (Reply::bulk_str("keys"), Reply::bulk(s.describe_keys())),
        (
            Reply::bulk_str("channels"),
            Reply::bulk(s.describe_channels()),
        ),
    ]
}

fn getuser(call: &mut Call<'_, '_>) -> CmdResult {
    let Some(user) = call.engine.acl.get(&call.args[2]) else {
        return Ok(Reply::Nil);
    };
    let state = user.state();
    let mut fields = vec![
        (
            Reply::bulk_str("flags"),
            Reply::Set(
                state
                    .flag_names()
                    .into_iter()
                    .map(Reply::bulk_str)
                    .collect(),
            ),
        ),
        (
            Reply::bulk_str("passwords"),
            Reply::Array(
                state
                    .passwords()
                    .iter()
                    .map(|p| Reply::bulk(p.clone()))
                    .collect(),
            ),
        ),
    ];
    let selectors = state.selectors();
    if let Some(root) = selectors.first() {
        fields.extend(describe_selector(root));
    }
    fields.push((
        Reply::bulk_str("selectors"),
        Reply::Array(
            selectors
                .iter()
                .skip(1)
                .map(|s| Reply::Map(describe_selector(s)))
                .collect(),
        ),
    ));
    Ok(Reply::Map(fields))
}

fn load(call: &mut Call<'_, '_>) -> CmdResult {
    let path = aclfile(call);
    let pubsub_all = pubsub_all(call);
    call.engine
        .load_acl_file(&path, pubsub_all, Some(call.session))
        .map_err(CmdError::Err)?;
    Ok(Reply::OK)
}

/// ACL SAVE: every user, written to a temporary file renamed over the
/// ACL file, so a crash leaves the old file or the new one.
fn save(call: &mut Call<'_, '_>) -> CmdResult {
    let path = aclfile(call);
    let mut text = String::new();
    for line in call.engine.acl.list() {
        text.push_str(&line);
        text.push('\n');
    }
    let tmp = format!("{path}.tmp-{}-{}", std::process::id(), now_ms());
    let written = std::fs::write(&tmp, text.as_bytes())
        .and_then(|()| std::fs::File::open(&tmp).and_then(|f| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!("Saving the ACL file {path}: {e}");
        let _ = std::fs::remove_file(&tmp);
        return Err(CmdError::err(
            "There was an error trying to save the ACLs. Please check the server logs for more \
             information",
        ));
    }
    Ok(Reply::OK)
}

fn cat(category: &Bytes) -> CmdResult {
    let Some(bit) = category_bit(category) else {
        return Err(CmdError::err(format!(
            "Unknown category '{}'",
            super::args::err_text(category, 128)
        )));
    };
    Ok(Reply::Array(
        catalog()
            .entries
            .iter()
            .filter(|e| e.categories & bit != 0)
            .map(|e| Reply::bulk(e.name.clone()))
            .collect(),
    ))
}

fn genpass(args: &[Bytes]) -> CmdResult {
    let bits = match args.get(2) {
        Some(arg) => super::parse_i64(arg).ok_or(CmdError::NotInteger)?,
        None => 256,
    };
    if !(1..=4096).contains(&bits) {
        return Err(CmdError::err(
            "ACL GENPASS argument must be the number of bits for the output password, a \
             positive number up to 4096",
        ));
    }
    let chars = (bits as usize).div_ceil(4);
    let hex: String = (0..chars)
        .map(|_| char::from(b"0123456789abcdef"[rand::random_range(0..16usize)]))
        .collect();
    Ok(Reply::bulk(hex))
}

fn log(call: &mut Call<'_, '_>) -> CmdResult {
    let mut count = 10i64;
    if let Some(arg) = call.args.get(2) {
        if is(arg, "reset") {
            call.engine.acl.log.reset();
            return Ok(Reply::OK);
        }
        count = super::parse_i64(arg).ok_or(CmdError::NotInteger)?.max(0);
    }
    Ok(call
        .engine
        .acl
        .log
        .reply(usize::try_from(count).unwrap_or(usize::MAX), now_ms()))
}

/// ACL DRYRUN user command args…: whether the user could run it now.
fn dryrun(call: &mut Call<'_, '_>) -> CmdResult {
    let args = call.args;
    let Some(user) = call.engine.acl.get(&args[2]) else {
        return Err(CmdError::err(format!(
            "User '{}' not found",
            String::from_utf8_lossy(&args[2])
        )));
    };
    let command = &args[3..];
    let not_found = || {
        CmdError::err(format!(
            "Command '{}' not found",
            String::from_utf8_lossy(&args[3])
        ))
    };
    let spec = super::lookup(&args[3]).ok_or_else(not_found)?;
    let cat = catalog();
    let id = match spec.subcommand(command) {
        Ok(Some((full, _))) => cat.id(full.as_bytes()),
        Ok(None) => cat.id(spec.name.as_bytes()),
        Err(_) => None,
    }
    .ok_or_else(not_found)?;
    let arity = match spec.subcommand(command) {
        Ok(Some((_, arity))) => arity,
        _ => spec.arity,
    };
    let full_name = cat.entry(id).map_or(spec.name, |e| e.name.as_str());
    if !super::arity_ok(arity, command.len()) {
        return Err(CmdError::Arity(full_name.to_string()));
    }
    match user.state().check(id, spec, command) {
        Ok(()) => Ok(Reply::OK),
        Err(denied) => {
            let text = match denied {
                crate::acl::Denied::Command => {
                    format!("This user has no permissions to run the '{full_name}' command")
                }
                crate::acl::Denied::Key(at) => format!(
                    "This user has no permissions to access the '{}' key",
                    String::from_utf8_lossy(command.get(at).map_or(&[][..], |a| &a[..]))
                ),
                crate::acl::Denied::Channel(at) => format!(
                    "This user has no permissions to access the '{}' channel",
                    String::from_utf8_lossy(command.get(at).map_or(&[][..], |a| &a[..]))
                ),
            };
            Ok(Reply::bulk(text))
        }
    }
}
