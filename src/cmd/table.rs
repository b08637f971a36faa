//! The command table: name, arity, flags, key positions, function.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use super::{
    acl, admin, bitfield, bitmap, client, debug, dump, functions, geo, hash, hll, info, keys, lcs,
    list, observe, pubsub, raft, replication, scripting, server, set, sort, stream, strings,
    transaction, zset, Call, CmdError, CmdResult, Handled,
};

/// Command flags (a subset of Redis's, the ones Kiwi acts on or reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    pub const WRITE: Flags = Flags(1);
    pub const READONLY: Flags = Flags(1 << 1);
    /// Runs before AUTH (AUTH, HELLO, QUIT).
    pub const NO_AUTH: Flags = Flags(1 << 2);
    /// Touches no keys: runs without the storage lock.
    pub const NO_KEYS: Flags = Flags(1 << 3);
    pub const FAST: Flags = Flags(1 << 4);
    pub const ADMIN: Flags = Flags(1 << 5);
    pub const DENYOOM: Flags = Flags(1 << 6);
    /// Runs at once even inside MULTI (MULTI, EXEC, DISCARD, WATCH, QUIT…).
    pub const TRANSACTION: Flags = Flags(1 << 7);
    /// May wait for another client's write (BLPOP…). Under Raft it is
    /// probed locally first and proposed only when it can take something.
    pub const BLOCKING: Flags = Flags(1 << 8);
    /// A write that may exceed a limit of this node's configuration
    /// (proto-max-bulk-len). Under Raft it is tried on the node's own data
    /// before proposing, and refused there (see `CmdError::NodeLimit`).
    pub const NODE_LIMITS: Flags = Flags(1 << 9);
    /// Refused unless switched on in the configuration, before anything
    /// else is checked (Redis's `protected`: DEBUG and
    /// `enable-debug-command`; here RAFT.FAULT and `enable-fault-injection`).
    pub const PROTECTED: Flags = Flags(1 << 10);
    /// Pub/sub (Redis's `pubsub` flag).
    pub const PUBSUB: Flags = Flags(1 << 11);
    /// Writes no key, yet under Raft travels through the log like a write,
    /// so that every node runs it (PUBLISH: each node delivers to its own
    /// subscribers).
    pub const REPLICATED: Flags = Flags(1 << 12);
    /// A read that may rewrite its key's value (PFCOUNT stores the count
    /// it computed in the value's cache): takes the storage lock
    /// exclusively, yet is a read everywhere else (Redis's `may_replicate`,
    /// which Redis 7.0's COMMAND INFO does not list).
    pub const MAY_REPLICATE: Flags = Flags(1 << 13);

    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flag names COMMAND INFO reports.
    pub fn names(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (flag, name) in [
            (Flags::WRITE, "write"),
            (Flags::READONLY, "readonly"),
            (Flags::DENYOOM, "denyoom"),
            (Flags::ADMIN, "admin"),
            (Flags::PUBSUB, "pubsub"),
            (Flags::NO_AUTH, "no_auth"),
            (Flags::BLOCKING, "blocking"),
            (Flags::FAST, "fast"),
            (Flags::PROTECTED, "protected"),
        ] {
            if self.contains(flag) {
                out.push(name);
            }
        }
        out
    }
}

/// A command's function. Each command list names plain functions, which
/// answer a reply, an [`Outcome`](super::Outcome) or (EXEC) a
/// [`Handled`]; [`commands!`] turns them into this.
pub type Handler = fn(&mut Call<'_, '_>) -> CmdResult<Handled>;

#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name, as Redis reports it.
    pub name: &'static str,
    /// Redis arity: N = exactly N arguments (name included), -N = at least N.
    pub arity: i32,
    pub flags: Flags,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub handler: Handler,
}

/// Redis arity: N = exactly N arguments (name included), -N = at least N.
pub fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = i32::try_from(argc).unwrap_or(i32::MAX);
    if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

impl CommandSpec {
    pub fn arity_ok(&self, argc: usize) -> bool {
        arity_ok(self.arity, argc)
    }

    /// The subcommand `args[1]` names, for a container command (CLIENT,
    /// CONFIG, OBJECT, COMMAND): its full name ("config|get") and arity.
    /// `Ok(None)` for other commands and a container called alone. Redis
    /// resolves subcommands before running anything, so an unknown one is
    /// refused at once, even inside MULTI.
    pub fn subcommand(&self, args: &[Bytes]) -> CmdResult<Option<(String, i32)>> {
        let Some((_, subs)) = SUBCOMMANDS.iter().find(|(c, _)| *c == self.name) else {
            return Ok(None);
        };
        let Some(sub) = args.get(1) else {
            return Ok(None);
        };
        match subs
            .iter()
            .find(|(n, _)| sub.eq_ignore_ascii_case(n.as_bytes()))
        {
            Some((n, arity)) => Ok(Some((format!("{}|{n}", self.name), *arity))),
            None => Err(CmdError::err(format!(
                "unknown subcommand '{}'. Try {} HELP.",
                super::args::err_text(sub, 128),
                self.name.to_ascii_uppercase()
            ))),
        }
    }

    /// What Redis checks before running a call besides the command's own
    /// arity: the subcommand exists and has its arity.
    pub fn check_subcommand(&self, args: &[Bytes]) -> CmdResult<()> {
        match self.subcommand(args)? {
            Some((name, arity)) if !arity_ok(arity, args.len()) => Err(CmdError::Arity(name)),
            _ => Ok(()),
        }
    }

    pub fn is_write(&self) -> bool {
        self.flags.contains(Flags::WRITE)
    }

    /// Runs under the exclusive storage lock: writes, and reads that may
    /// rewrite a value ([`Flags::MAY_REPLICATE`]).
    pub fn locks_exclusively(&self) -> bool {
        self.is_write() || self.flags.contains(Flags::MAY_REPLICATE)
    }

    /// Under Raft, proposed and run by every node's apply: writes, and
    /// the commands flagged [`Flags::REPLICATED`].
    pub fn through_log(&self) -> bool {
        self.is_write() || self.flags.contains(Flags::REPLICATED)
    }

    pub fn is_blocking(&self) -> bool {
        self.flags.contains(Flags::BLOCKING)
    }

    /// See [`Flags::NODE_LIMITS`].
    pub fn has_node_limits(&self) -> bool {
        self.flags.contains(Flags::NODE_LIMITS)
    }
}

/// The subcommands of the container commands, with Redis 7.0's arity of
/// each (COMMAND INFO's); Redis's others that Kiwi lacks are unknown here.
static SUBCOMMANDS: &[(&str, &[(&str, i32)])] = &[
    (
        "acl",
        &[
            ("cat", -2),
            ("deluser", -3),
            ("dryrun", -4),
            ("genpass", -2),
            ("getuser", 3),
            ("help", 2),
            ("list", 2),
            ("load", 2),
            ("log", -2),
            ("save", 2),
            ("setuser", -3),
            ("users", 2),
            ("whoami", 2),
        ],
    ),
    (
        "client",
        &[
            ("getname", 2),
            ("id", 2),
            ("info", 2),
            ("list", -2),
            ("setname", 3),
            ("no-evict", 3),
            ("help", 2),
            // Redis 7.2's, which redis-py sends when it connects.
            ("setinfo", 4),
            ("no-touch", 3),
            ("tracking", -3),
            ("caching", 3),
            ("getredir", 2),
            ("trackinginfo", 2),
            ("kill", -3),
            ("unblock", -3),
            ("pause", -3),
            ("unpause", 2),
            ("reply", 3),
        ],
    ),
    (
        "memory",
        &[
            ("doctor", 2),
            ("malloc-stats", 2),
            ("purge", 2),
            ("stats", 2),
            ("usage", -3),
            ("help", 2),
        ],
    ),
    (
        "module",
        &[
            ("list", 2),
            ("load", -3),
            ("loadex", -3),
            ("unload", 3),
            ("help", 2),
        ],
    ),
    (
        "slowlog",
        &[("get", -2), ("len", 2), ("reset", 2), ("help", 2)],
    ),
    (
        "latency",
        &[
            ("doctor", 2),
            ("graph", 3),
            ("history", 3),
            ("latest", 2),
            ("reset", -2),
            ("histogram", -2),
            ("help", 2),
        ],
    ),
    (
        "config",
        &[
            ("get", -3),
            ("set", -4),
            ("resetstat", 2),
            ("rewrite", 2),
            ("help", 2),
        ],
    ),
    (
        "object",
        &[
            ("encoding", 3),
            ("freq", 3),
            ("idletime", 3),
            ("refcount", 3),
            ("help", 2),
        ],
    ),
    (
        "function",
        &[
            ("delete", 3),
            ("dump", 2),
            ("flush", -2),
            ("help", 2),
            ("kill", 2),
            ("list", -2),
            ("load", -3),
            ("restore", -3),
            ("stats", 2),
        ],
    ),
    (
        "script",
        &[
            ("debug", 3),
            ("exists", -3),
            ("flush", -2),
            ("kill", 2),
            ("load", 3),
            ("help", 2),
        ],
    ),
    (
        "pubsub",
        &[
            ("channels", -2),
            ("numpat", 2),
            ("numsub", -2),
            ("shardchannels", -2),
            ("shardnumsub", -2),
            ("help", 2),
        ],
    ),
    (
        "xgroup",
        &[
            ("create", -5),
            ("createconsumer", 5),
            ("delconsumer", 5),
            ("destroy", 4),
            ("setid", -5),
            ("help", 2),
        ],
    ),
    (
        "xinfo",
        &[("consumers", 4), ("groups", 3), ("stream", -3), ("help", 2)],
    ),
    (
        "command",
        &[
            ("count", 2),
            ("docs", -2),
            ("getkeys", -4),
            ("getkeysandflags", -4),
            ("info", -2),
            ("list", -2),
            ("help", 2),
        ],
    ),
];

/// Shorthands for the flag sets the command lists use.
pub(crate) mod flags {
    use super::Flags;
    /// Writes that may grow memory.
    pub const W: Flags = Flags::WRITE.union(Flags::DENYOOM);
    pub const WF: Flags = W.union(Flags::FAST);
    /// Writes that only remove.
    pub const WD: Flags = Flags::WRITE;
    /// Writes that only remove, and are fast (LPOP, SREM, HDEL…).
    pub const WDF: Flags = WD.union(Flags::FAST);
    pub const R: Flags = Flags::READONLY;
    pub const RF: Flags = Flags::READONLY.union(Flags::FAST);
    pub const C: Flags = Flags::NO_KEYS.union(Flags::FAST);
    pub const CA: Flags = Flags::NO_KEYS.union(Flags::NO_AUTH).union(Flags::FAST);
    pub const A: Flags = Flags::NO_KEYS.union(Flags::ADMIN);
    /// Admin commands that must be switched on (`PROTECTED`).
    pub const AP: Flags = A.union(Flags::PROTECTED);
    /// Blocking variant of a flag set.
    pub const fn blocking(flags: Flags) -> Flags {
        flags.union(Flags::BLOCKING)
    }
    /// Transaction control: no storage lock of its own, runs inside MULTI.
    pub const TX: Flags = Flags::NO_KEYS.union(Flags::TRANSACTION).union(Flags::FAST);
}
use flags::*;

/// `commands! { "name", arity, flags, first_key, last_key, step, handler; … }`
/// builds a command list; each data-type module keeps its own.
macro_rules! commands {
    ($( $name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $handler:path; )*) => {
        &[ $( $crate::cmd::CommandSpec {
            name: $name, arity: $arity, flags: $flags, first_key: $first, last_key: $last, step: $step,
            handler: |call| $handler(call).map(::core::convert::Into::into),
        }, )* ]
    };
}
pub(crate) use commands;

/// Every command list with the group COMMAND DOCS reports for it.
static GROUPS: &[(&str, &[CommandSpec])] = &[
    ("connection", CONNECTION),
    ("transactions", TRANSACTIONS),
    ("scripting", SCRIPTING),
    ("server", SERVER),
    ("string", STRINGS),
    ("bitmap", bitmap::COMMANDS),
    ("hyperloglog", hll::COMMANDS),
    ("generic", KEYS),
    ("hash", hash::COMMANDS),
    ("list", list::COMMANDS),
    ("set", set::COMMANDS),
    ("sorted-set", zset::COMMANDS),
    ("geo", geo::COMMANDS),
    ("stream", stream::COMMANDS),
    ("pubsub", pubsub::COMMANDS),
    ("cluster", raft::CLUSTER_COMMANDS),
    ("raft", raft::COMMANDS),
];

/// All commands, in table order.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    GROUPS.iter().flat_map(|(_, cmds)| cmds.iter())
}

/// The documentation group of a command.
pub fn group_of(name: &str) -> &'static str {
    GROUPS
        .iter()
        .find(|(_, cmds)| cmds.iter().any(|c| c.name == name))
        .map(|(group, _)| *group)
        .unwrap_or("generic")
}

static CONNECTION: &[CommandSpec] = commands! {
    // Connection and server.
    "auth", -2, CA, 0, 0, 0, server::auth;
    "hello", -1, CA, 0, 0, 0, server::hello;
    "quit", -1, CA.union(Flags::TRANSACTION), 0, 0, 0, server::quit;
    "reset", 1, CA.union(Flags::TRANSACTION), 0, 0, 0, server::reset;
    "monitor", 1, A, 0, 0, 0, server::monitor;
    "ping", -1, C, 0, 0, 0, server::ping;
    "echo", 2, C, 0, 0, 0, server::echo;
    "select", 2, C, 0, 0, 0, server::select;
    "client", -2, Flags::NO_KEYS, 0, 0, 0, client::client;
};

static TRANSACTIONS: &[CommandSpec] = commands! {
    "multi", 1, TX, 0, 0, 0, transaction::multi;
    "exec", 1, TX, 0, 0, 0, transaction::exec;
    "discard", 1, TX, 0, 0, 0, transaction::discard;
    "watch", -2, TX, 1, -1, 1, transaction::watch;
    // Queued inside MULTI, as Redis does (only WATCH is refused there).
    "unwatch", 1, C, 0, 0, 0, transaction::unwatch;
};

/// The EVAL family parses its call and hands it to the engine, which takes
/// the storage lock itself for the whole script (`engine/script.rs`).
static SCRIPTING: &[CommandSpec] = commands! {
    "eval", -3, Flags::NO_KEYS, 0, 0, 0, scripting::eval;
    "evalsha", -3, Flags::NO_KEYS, 0, 0, 0, scripting::evalsha;
    "eval_ro", -3, Flags::NO_KEYS.union(Flags::READONLY), 0, 0, 0, scripting::eval_ro;
    "evalsha_ro", -3, Flags::NO_KEYS.union(Flags::READONLY), 0, 0, 0, scripting::evalsha_ro;
    "script", -2, Flags::NO_KEYS, 0, 0, 0, scripting::script;
    "fcall", -3, Flags::NO_KEYS, 0, 0, 0, functions::fcall;
    "fcall_ro", -3, Flags::NO_KEYS.union(Flags::READONLY), 0, 0, 0, functions::fcall_ro;
    "function", -2, Flags::NO_KEYS, 0, 0, 0, functions::function;
};

static SERVER: &[CommandSpec] = commands! {
    "info", -1, Flags::NO_KEYS, 0, 0, 0, info::info;
    "command", -1, Flags::NO_KEYS, 0, 0, 0, server::command;
    "config", -2, A, 0, 0, 0, server::config;
    "acl", -2, A, 0, 0, 0, acl::acl;
    "slowlog", -2, A, 0, 0, 0, observe::slowlog;
    "latency", -2, A, 0, 0, 0, observe::latency;
    "time", 1, C, 0, 0, 0, server::time;
    "lastsave", 1, C, 0, 0, 0, admin::lastsave;
    "save", 1, A, 0, 0, 0, admin::save;
    "bgsave", -1, A, 0, 0, 0, admin::bgsave;
    "shutdown", -1, A, 0, 0, 0, admin::shutdown;
    "role", 1, C, 0, 0, 0, admin::role;
    "wait", 3, Flags::NO_KEYS, 0, 0, 0, admin::wait;
    "replicaof", 3, A, 0, 0, 0, replication::replicaof;
    "slaveof", 3, A, 0, 0, 0, replication::replicaof;
    "sync", 1, A, 0, 0, 0, replication::sync;
    "psync", -3, A, 0, 0, 0, replication::sync;
    "failover", -1, A, 0, 0, 0, replication::failover;
    "migrate", -6, A, 3, 3, 1, replication::migrate;
    "bgrewriteaof", 1, A, 0, 0, 0, replication::bgrewriteaof;
    "module", -2, A, 0, 0, 0, replication::module;
    "lolwut", -1, Flags::NO_KEYS.union(Flags::READONLY).union(Flags::FAST), 0, 0, 0, admin::lolwut;
    "memory", -2, R, 2, 2, 1, admin::memory;
    "debug", -2, A, 0, 0, 0, debug::debug;
    "dbsize", 1, RF, 0, 0, 0, keys::dbsize;
    "flushdb", -1, WD, 0, 0, 0, keys::flushdb;
    "swapdb", 3, WDF, 0, 0, 0, keys::swapdb;
    "flushall", -1, WD, 0, 0, 0, keys::flushall;
};

static STRINGS: &[CommandSpec] = commands! {
    "get", 2, RF, 1, 1, 1, strings::get;
    "set", -3, W, 1, 1, 1, strings::set;
    "setnx", 3, WF, 1, 1, 1, strings::setnx;
    "setex", 4, W, 1, 1, 1, strings::setex;
    "psetex", 4, W, 1, 1, 1, strings::psetex;
    "getset", 3, WF, 1, 1, 1, strings::getset;
    "getdel", 2, WF, 1, 1, 1, strings::getdel;
    "getex", -2, WF, 1, 1, 1, strings::getex;
    "mget", -2, RF, 1, -1, 1, strings::mget;
    "mset", -3, W, 1, -1, 2, strings::mset;
    "msetnx", -3, W, 1, -1, 2, strings::msetnx;
    "append", 3, WF.union(Flags::NODE_LIMITS), 1, 1, 1, strings::append;
    "strlen", 2, RF, 1, 1, 1, strings::strlen;
    "getrange", 4, R, 1, 1, 1, strings::getrange;
    "substr", 4, R, 1, 1, 1, strings::getrange;
    "lcs", -3, R, 1, 2, 1, lcs::lcs;
    "bitfield", -2, W.union(Flags::NODE_LIMITS), 1, 1, 1, bitfield::bitfield;
    "bitfield_ro", -2, RF, 1, 1, 1, bitfield::bitfield_ro;
    "setrange", 4, W.union(Flags::NODE_LIMITS), 1, 1, 1, strings::setrange;
    "incr", 2, WF, 1, 1, 1, strings::incr;
    "decr", 2, WF, 1, 1, 1, strings::decr;
    "incrby", 3, WF, 1, 1, 1, strings::incrby;
    "decrby", 3, WF, 1, 1, 1, strings::decrby;
    "incrbyfloat", 3, WF, 1, 1, 1, strings::incrbyfloat;
};

static KEYS: &[CommandSpec] = commands! {
    "del", -2, WD, 1, -1, 1, keys::del;
    "unlink", -2, WF, 1, -1, 1, keys::del;
    "exists", -2, RF, 1, -1, 1, keys::exists;
    "type", 2, RF, 1, 1, 1, keys::type_;
    "keys", 2, R, 0, 0, 0, keys::keys;
    "scan", -2, R, 0, 0, 0, keys::scan;
    "rename", 3, WD, 1, 2, 1, keys::rename;
    "renamenx", 3, WF, 1, 2, 1, keys::renamenx;
    "randomkey", 1, R, 0, 0, 0, keys::randomkey;
    "copy", -3, W, 1, 2, 1, keys::copy;
    "sort", -2, W.union(Flags::DENYOOM), 1, 1, 1, sort::sort;
    "sort_ro", -2, R, 1, 1, 1, sort::sort_ro;
    "move", 3, WF, 1, 1, 1, keys::move_key;
    "touch", -2, RF, 1, -1, 1, keys::touch;
    "object", -2, R, 2, 2, 1, keys::object;
    // Expiry.
    "expire", -3, WF, 1, 1, 1, keys::expire;
    "pexpire", -3, WF, 1, 1, 1, keys::pexpire;
    "expireat", -3, WF, 1, 1, 1, keys::expireat;
    "pexpireat", -3, WF, 1, 1, 1, keys::pexpireat;
    "ttl", 2, RF, 1, 1, 1, keys::ttl;
    "pttl", 2, RF, 1, 1, 1, keys::pttl;
    "expiretime", 2, RF, 1, 1, 1, keys::expiretime;
    "pexpiretime", 2, RF, 1, 1, 1, keys::pexpiretime;
    "persist", 2, WF, 1, 1, 1, keys::persist;
    // Serialization (Redis 7.0's DUMP format).
    "dump", 2, R, 1, 1, 1, dump::dump;
    "restore", -4, W, 1, 1, 1, dump::restore;
};

/// Every command's name and every subcommand's full name (`client|kill`),
/// as INFO commandstats names them.
pub fn command_names() -> impl Iterator<Item = String> {
    all().map(|c| c.name.to_string()).chain(
        SUBCOMMANDS
            .iter()
            .flat_map(|(cmd, subs)| subs.iter().map(move |(sub, _)| format!("{cmd}|{sub}"))),
    )
}

/// The name commandstats counts a call under: `client|kill` for a known
/// subcommand, else the command's.
pub fn stats_name(spec: &CommandSpec, args: &[Bytes]) -> Option<std::borrow::Cow<'static, str>> {
    match spec.subcommand(args) {
        Ok(Some((name, _))) => Some(std::borrow::Cow::Owned(name)),
        Ok(None) => Some(std::borrow::Cow::Borrowed(spec.name)),
        Err(_) => None,
    }
}

/// Find a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    static INDEX: OnceLock<HashMap<Vec<u8>, &'static CommandSpec>> = OnceLock::new();
    let index = INDEX.get_or_init(|| all().map(|c| (c.name.as_bytes().to_vec(), c)).collect());
    if name.len() > 32 {
        return None;
    }
    let mut lower = [0u8; 32];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    index.get(&lower[..]).copied()
}
