//! The commands ACL rules name: every command and subcommand Kiwi runs,
//! each with an id (its bit in a selector's bitmap), Redis 7.0's ACL
//! categories and key specs as redis-server describes them (read from the
//! COMMAND INFO snapshot, `cmd/redis_commands.resp`), so `+@read` or
//! `%R~` mean here what they mean in Redis.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::cmd::{self, redis_meta, CommandSpec};
use crate::resp::Reply;

/// Redis 7.0's categories, in its order (ACL CAT lists them so, and
/// describing a user tries them so).
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of category `name` (case-insensitive), if Redis has it.
pub fn category_bit(name: &[u8]) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// Categories of Kiwi's own commands, which Redis does not have (chosen
/// here): RAFT.INFO tells the cluster's state, as INFO does (`@slow
/// @dangerous`); RAFT.CLUSTER INIT, RAFT.NODE ADD/REMOVE and RAFT.FAULT
/// change the cluster, like Redis's CLUSTER MEET/FORGET (`@admin @slow
/// @dangerous`); anything else Kiwi adds is `@slow`.
fn kiwi_categories(name: &str) -> &'static [&'static str] {
    match name {
        "raft.info" => &["slow", "dangerous"],
        "raft.cluster" | "raft.node" | "raft.fault" => &["admin", "slow", "dangerous"],
        _ => &["slow"],
    }
}

/// Access a key spec asks for (Redis's `CMD_KEY_ACCESS` / `INSERT`,
/// `DELETE`, `UPDATE`), as ACL key patterns judge it.
pub const KEY_READ: u8 = 1;
pub const KEY_WRITE: u8 = 2;

/// Redis's key spec flags, bit `i` for name `i`, in the order COMMAND
/// GETKEYSANDFLAGS prints them.
pub const KEY_FLAG_NAMES: [&str; 11] = [
    "RO",
    "RW",
    "OW",
    "RM",
    "access",
    "update",
    "insert",
    "delete",
    "not_key",
    "incomplete",
    "variable_flags",
];

/// A set of [`KEY_FLAG_NAMES`] (0: a getkeys function that gives none).
pub type KeyFlags = u16;

/// The bit of key spec flag `name` (case-insensitive).
fn key_flag(name: &str) -> KeyFlags {
    KEY_FLAG_NAMES
        .iter()
        .position(|f| f.eq_ignore_ascii_case(name))
        .map_or(0, |i| 1 << i)
}

/// The flags of `names` (`"RW access update"`).
fn key_flags(names: &str) -> KeyFlags {
    names.split(' ').fold(0, |acc, n| acc | key_flag(n))
}

/// The access ACL key patterns check for a key with `flags`, as Redis's
/// ACLSelectorCheckKey reads them.
pub fn access_of(flags: KeyFlags) -> u8 {
    let mut access = 0;
    if flags & key_flag("access") != 0 {
        access |= KEY_READ;
    }
    if flags & key_flags("insert delete update") != 0 {
        access |= KEY_WRITE;
    }
    access
}

/// Where a key spec starts looking for keys.
#[derive(Debug, Clone)]
enum Begin {
    Index(i64),
    Keyword { keyword: Bytes, startfrom: i64 },
}

/// How a key spec finds its keys from there.
#[derive(Debug, Clone)]
enum Find {
    Range { lastkey: i64, step: i64, limit: i64 },
    Keynum { index: i64, first: i64, step: i64 },
}

/// One of Redis's key specs.
#[derive(Debug, Clone)]
pub struct KeySpec {
    flags: KeyFlags,
    begin: Begin,
    find: Find,
}

/// One command or subcommand.
#[derive(Debug)]
pub struct Entry {
    /// `get`, `config|get`.
    pub name: String,
    pub categories: u32,
    pub parent: Option<usize>,
    pub subcommands: Vec<usize>,
    /// Redis's `no_auth` (AUTH, HELLO, QUIT, RESET): runs for every user.
    pub no_auth: bool,
    /// Redis's `no_mandatory_keys` (EVAL, FCALL): a call may name no key.
    pub no_mandatory_keys: bool,
    /// Redis describes it (else it is Kiwi's own: RAFT.*).
    pub redis: bool,
    /// `None`: the specs cannot be read; Kiwi's own key finder is used.
    key_specs: Option<Vec<KeySpec>>,
    /// Redis finds its keys with a function of its own (SET and BITFIELD,
    /// whose access depends on the arguments; SORT).
    special_keys: bool,
}

/// Every command and subcommand, by id.
#[derive(Debug)]
pub struct Catalog {
    pub entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

/// The catalog of this build's commands.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(Catalog::build)
}

impl Catalog {
    fn build() -> Catalog {
        let mut catalog = Catalog {
            entries: Vec::new(),
            by_name: HashMap::new(),
        };
        for spec in cmd::all_commands() {
            catalog.add(spec.name, None);
        }
        for name in cmd::command_names() {
            if let Some((container, _)) = name.split_once('|') {
                if let Some(&parent) = catalog.by_name.get(container) {
                    let id = catalog.add(&name, Some(parent));
                    if let Some(p) = catalog.entries.get_mut(parent) {
                        p.subcommands.push(id);
                    }
                }
            }
        }
        catalog
    }

    fn add(&mut self, name: &str, parent: Option<usize>) -> usize {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let info = redis_meta::info(name);
        let names: Vec<String> = match &info {
            Some(_) => redis_meta::categories(name),
            None => kiwi_categories(name)
                .iter()
                .map(|c| c.to_string())
                .collect(),
        };
        let categories = names
            .iter()
            .filter_map(|c| category_bit(c.as_bytes()))
            .fold(0, |acc, bit| acc | bit);
        // CLIENT SETINFO (Redis 7.2, which redis-py sends on connecting)
        // is unknown to Redis 7.0, so no user is ever refused it there:
        // allowed to all here.
        let no_auth = info.as_ref().is_some_and(|i| has_flag(i, "no_auth"))
            || (info.is_none() && matches!(name, "auth" | "hello" | "client|setinfo"));
        let key_specs = info.as_ref().and_then(parse_key_specs);
        let id = self.entries.len();
        self.entries.push(Entry {
            name: name.to_string(),
            categories,
            parent,
            subcommands: Vec::new(),
            no_auth,
            key_specs,
            no_mandatory_keys: info
                .as_ref()
                .is_some_and(|i| has_flag(i, "no_mandatory_keys")),
            redis: info.is_some(),
            special_keys: matches!(name, "set" | "bitfield" | "sort" | "sort_ro" | "migrate"),
        });
        self.by_name.insert(name.to_string(), id);
        id
    }

    /// The id of `name` (`get`, `config|get`), case-insensitively.
    pub fn id(&self, name: &[u8]) -> Option<usize> {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        self.by_name.get(&lower).copied()
    }

    pub fn entry(&self, id: usize) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// The id a call runs as: its subcommand's for a container command.
    pub fn id_of_call(&self, spec: &CommandSpec, args: &[Bytes]) -> Option<usize> {
        match spec.subcommand(args) {
            Ok(Some((full, _))) => self.by_name.get(&full).copied(),
            _ => self.by_name.get(spec.name).copied(),
        }
    }

    /// The keys of a call with the access each needs: positions in `args`.
    pub fn keys_of_call(&self, id: usize, spec: &CommandSpec, args: &[Bytes]) -> Vec<(usize, u8)> {
        self.keys_and_flags(id, spec, args)
            .into_iter()
            .map(|(at, flags)| (at, access_of(flags)))
            .collect()
    }

    /// The keys of a call with their key spec flags, as Redis's
    /// getKeysFromCommandWithSpecs finds them: positions in `args`.
    pub fn keys_and_flags(
        &self,
        id: usize,
        spec: &CommandSpec,
        args: &[Bytes],
    ) -> Vec<(usize, KeyFlags)> {
        let Some(entry) = self.entries.get(id) else {
            return Vec::new();
        };
        if entry.special_keys {
            return special_keys(&entry.name, args);
        }
        if let Some(specs) = &entry.key_specs {
            if let Some(keys) = keys_from_specs(specs, args) {
                return keys;
            }
        }
        if entry.redis {
            return getkeys_proc(&entry.name, args);
        }
        // Kiwi's own commands: its key finder, positions without flags
        // (which any key pattern grants).
        let found = cmd::command_keys(spec, args);
        let mut out = Vec::new();
        let mut from = 1;
        for key in found {
            if let Some(at) = args
                .iter()
                .skip(from)
                .position(|a| a == &key)
                .map(|p| p + from)
            {
                out.push((at, 0));
                from = at + 1;
            }
        }
        out
    }

    /// Whether Redis finds keys in calls of `id` at all.
    pub fn has_keys(&self, id: usize) -> bool {
        self.entries
            .get(id)
            .is_some_and(|e| e.special_keys || e.key_specs.as_ref().is_none_or(|s| !s.is_empty()))
    }
}

fn has_flag(info: &Reply, flag: &str) -> bool {
    let Reply::Array(fields) = info else {
        return false;
    };
    match fields.get(2) {
        Some(Reply::Set(flags)) | Some(Reply::Array(flags)) => flags
            .iter()
            .any(|f| matches!(f, Reply::StatusOwned(s) if s == flag)),
        _ => false,
    }
}

/// A map's value under `key`.
fn field<'a>(map: &'a Reply, key: &str) -> Option<&'a Reply> {
    let Reply::Map(pairs) = map else {
        return None;
    };
    pairs
        .iter()
        .find(|(k, _)| matches!(k, Reply::Bulk(b) if b[..] == *key.as_bytes()))
        .map(|(_, v)| v)
}

fn int_field(map: &Reply, key: &str) -> Option<i64> {
    match field(map, key)? {
        Reply::Int(n) => Some(*n),
        _ => None,
    }
}

fn text_field(map: &Reply, key: &str) -> Option<Bytes> {
    match field(map, key)? {
        Reply::Bulk(b) => Some(b.clone()),
        Reply::StatusOwned(s) => Some(Bytes::from(s.clone())),
        _ => None,
    }
}

/// COMMAND INFO's key specs (field 8); `None` if one cannot be read.
fn parse_key_specs(info: &Reply) -> Option<Vec<KeySpec>> {
    let Reply::Array(fields) = info else {
        return None;
    };
    let specs = match fields.get(8) {
        Some(Reply::Array(specs)) | Some(Reply::Set(specs)) => specs,
        _ => return Some(Vec::new()),
    };
    let mut out = Vec::new();
    for spec in specs {
        let flags: Vec<String> = match field(spec, "flags") {
            Some(Reply::Set(f)) | Some(Reply::Array(f)) => f
                .iter()
                .filter_map(|f| match f {
                    Reply::StatusOwned(s) => Some(s.to_ascii_lowercase()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        if flags.iter().any(|f| f == "not_key") {
            continue;
        }
        let begin_search = field(spec, "begin_search")?;
        let begin_args = field(begin_search, "spec")?;
        let begin = match text_field(begin_search, "type")?.as_ref() {
            b"index" => Begin::Index(int_field(begin_args, "index")?),
            b"keyword" => Begin::Keyword {
                keyword: text_field(begin_args, "keyword")?,
                startfrom: int_field(begin_args, "startfrom")?,
            },
            _ => return None,
        };
        let find_keys = field(spec, "find_keys")?;
        let find_args = field(find_keys, "spec")?;
        let find = match text_field(find_keys, "type")?.as_ref() {
            b"range" => Find::Range {
                lastkey: int_field(find_args, "lastkey")?,
                step: int_field(find_args, "keystep")?,
                limit: int_field(find_args, "limit")?,
            },
            b"keynum" => Find::Keynum {
                index: int_field(find_args, "keynumidx")?,
                first: int_field(find_args, "firstkey")?,
                step: int_field(find_args, "keystep")?,
            },
            _ => return None,
        };
        out.push(KeySpec {
            flags: flags.iter().fold(0, |acc, f| acc | key_flag(f)),
            begin,
            find,
        });
    }
    Some(out)
}

/// Redis's getKeysUsingKeySpecs: `None` when a spec does not fit the call
/// (then Redis falls back to its getkeys function).
fn keys_from_specs(specs: &[KeySpec], args: &[Bytes]) -> Option<Vec<(usize, KeyFlags)>> {
    let argc = i64::try_from(args.len()).ok()?;
    let mut out = Vec::new();
    for spec in specs {
        let mut first = match &spec.begin {
            Begin::Index(i) => *i,
            Begin::Keyword { keyword, startfrom } => {
                // Redis stops short of the end it searches towards.
                let found = if *startfrom > 0 {
                    (*startfrom..argc - 1).find(|&i| arg(args, i).eq_ignore_ascii_case(keyword))
                } else {
                    let start = argc + startfrom;
                    (2..=start)
                        .rev()
                        .take_while(|&i| i < argc)
                        .find(|&i| arg(args, i).eq_ignore_ascii_case(keyword))
                };
                match found {
                    Some(i) => i + 1,
                    None => continue,
                }
            }
        };
        let (last, step) = match spec.find {
            Find::Range {
                lastkey,
                step,
                limit,
            } => {
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (last, step)
            }
            Find::Keynum {
                index,
                first: f,
                step,
            } => {
                if index >= argc {
                    return None;
                }
                let n = crate::cmd::parse_i64(arg(args, first + index)).filter(|&n| n >= 0)?;
                first += f;
                (first + n - 1, step)
            }
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            out.push((usize::try_from(i).ok()?, spec.flags));
            i += step.max(1);
        }
        if spec.flags & key_flag("incomplete") != 0 {
            return None;
        }
    }
    Some(out)
}

fn arg(args: &[Bytes], i: i64) -> &[u8] {
    usize::try_from(i)
        .ok()
        .and_then(|i| args.get(i))
        .map_or(&[][..], |a| &a[..])
}

/// Redis's getkeys functions for calls its key specs do not fit (a key
/// count that is not a plain integer, say): positions without flags, as
/// Redis gives them. A command without one has no keys then.
fn getkeys_proc(name: &str, args: &[Bytes]) -> Vec<(usize, KeyFlags)> {
    // (destination, key count, first key) of Redis's genericGetKeys.
    let generic = match name {
        "zunionstore" | "zinterstore" | "zdiffstore" => Some((1, 2, 3)),
        "sintercard" | "zunion" | "zinter" | "zdiff" | "zintercard" | "lmpop" | "zmpop" => {
            Some((0, 1, 2))
        }
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" | "blmpop"
        | "bzmpop" => Some((0, 2, 3)),
        _ => None,
    };
    if let Some((store, count_at, first)) = generic {
        // The count is read with atoi; the destination comes last.
        let count = args.get(count_at).map_or(0, |c| crate::num::atoi(c));
        let Ok(count) = usize::try_from(count) else {
            return Vec::new();
        };
        if count < 1 || first + count > args.len() {
            return Vec::new();
        }
        let mut keys: Vec<(usize, KeyFlags)> = (first..first + count).map(|at| (at, 0)).collect();
        if store > 0 {
            keys.push((store, 0));
        }
        return keys;
    }
    let is = |a: &Bytes, word: &str| a.eq_ignore_ascii_case(word.as_bytes());
    match name {
        // The source, and the last STORE or STOREDIST key from the fifth
        // argument on.
        "georadius" | "georadiusbymember" => {
            let mut stored = None;
            let mut i = 5;
            while let Some(a) = args.get(i) {
                if (is(a, "store") || is(a, "storedist")) && i + 1 < args.len() {
                    stored = Some(i + 1);
                    i += 1;
                }
                i += 1;
            }
            std::iter::once((1, 0))
                .chain(stored.map(|at| (at, 0)))
                .collect()
        }
        // The first half of what follows STREAMS, options skipped.
        "xread" | "xreadgroup" => {
            let mut streams = None;
            let mut i = 1;
            while let Some(a) = args.get(i) {
                if is(a, "block") || is(a, "count") {
                    i += 1;
                } else if is(a, "group") {
                    i += 2;
                } else if is(a, "streams") {
                    streams = Some(i);
                    break;
                } else if !is(a, "noack") {
                    break;
                }
                i += 1;
            }
            let Some(at) = streams else {
                return Vec::new();
            };
            let rest = args.len() - at - 1;
            if rest == 0 || !rest.is_multiple_of(2) {
                return Vec::new();
            }
            (at + 1..at + 1 + rest / 2).map(|k| (k, 0)).collect()
        }
        _ => Vec::new(),
    }
}

/// The commands whose keys Redis finds with a function of its own, with
/// the flags it gives them (its setGetKeys, bitfieldGetKeys, sortGetKeys,
/// sortROGetKeys and migrateGetKeys).
fn special_keys(name: &str, args: &[Bytes]) -> Vec<(usize, KeyFlags)> {
    let is = |a: &Bytes, word: &str| a.eq_ignore_ascii_case(word.as_bytes());
    match name {
        // SET's key is read too when GET is given (Redis compares the
        // argument as a C string: "get" followed by a zero byte counts).
        "set" => {
            let get = args.iter().skip(3).any(|a| {
                a.get(..3).is_some_and(|g| g.eq_ignore_ascii_case(b"get"))
                    && a.get(3).is_none_or(|&b| b == 0)
            });
            let flags = if get { "RW access update" } else { "OW update" };
            vec![(1, key_flags(flags))]
        }
        // BITFIELD is a read unless a SET or INCRBY (or an error) comes.
        "bitfield" => {
            let mut read_only = true;
            let mut i = 2;
            while let Some(a) = args.get(i) {
                let left = args.len() - i - 1;
                if is(a, "get") && left >= 2 {
                    i += 3;
                } else if (is(a, "set") || is(a, "incrby")) && left >= 3 {
                    read_only = false;
                    break;
                } else if is(a, "overflow") && left >= 1 {
                    i += 2;
                } else {
                    read_only = false;
                    break;
                }
            }
            let flags = if read_only {
                "RO access"
            } else {
                "RW access update"
            };
            vec![(1, key_flags(flags))]
        }
        // SORT reads its key and writes the last STORE's (BY and GET
        // patterns are not keys here). A STORE's key is examined as an
        // option in turn, as Redis's loop does.
        "sort" | "sort_ro" => {
            let mut keys = vec![(1, key_flags("RO access"))];
            if name == "sort_ro" {
                return keys;
            }
            let mut store = None;
            let mut i = 2;
            while let Some(a) = args.get(i) {
                if is(a, "limit") {
                    i += 2;
                } else if is(a, "get") || is(a, "by") {
                    i += 1;
                } else if is(a, "store") && i + 1 < args.len() {
                    store = Some(i + 1);
                }
                i += 1;
            }
            keys.extend(store.map(|at| (at, key_flags("OW update"))));
            keys
        }
        // MIGRATE's one key, or those after KEYS when its key is empty.
        "migrate" => {
            let (mut first, mut count) = (3, 1);
            let mut i = 6;
            while let Some(a) = args.get(i) {
                if is(a, "keys") {
                    if args.get(3).is_some_and(|k| !k.is_empty()) {
                        count = 0;
                    } else {
                        first = i + 1;
                        count = args.len() - first;
                    }
                    break;
                }
                if is(a, "auth") {
                    i += 1;
                } else if is(a, "auth2") {
                    i += 2;
                }
                i += 1;
            }
            let flags = key_flags("RW access delete");
            (first..first + count)
                .filter(|&at| at < args.len())
                .map(|at| (at, flags))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The channel arguments of a call, Redis's table: (position, is a
/// pattern); UNSUBSCRIBE and friends name none ACL checks.
pub fn channels_of_call(name: &str, args: &[Bytes]) -> Vec<(usize, bool)> {
    match name {
        "subscribe" | "ssubscribe" => (1..args.len()).map(|i| (i, false)).collect(),
        "psubscribe" => (1..args.len()).map(|i| (i, true)).collect(),
        "publish" | "spublish" if args.len() > 1 => vec![(1, false)],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::from(w.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn categories_come_from_redis() {
        let c = catalog();
        let get = c.entry(c.id(b"GET").unwrap()).unwrap();
        assert!(get.categories & category_bit(b"read").unwrap() != 0);
        assert!(get.categories & category_bit(b"write").unwrap() == 0);
        let sub = c.id(b"config|get").unwrap();
        assert!(c.entry(sub).unwrap().parent.is_some());
        assert!(c.entry(c.id(b"auth").unwrap()).unwrap().no_auth);
    }

    #[test]
    fn key_specs_find_keys_with_their_access() {
        let c = catalog();
        let id = c.id(b"zunionstore").unwrap();
        let spec = cmd::lookup(b"zunionstore").unwrap();
        let keys = c.keys_of_call(id, spec, &args(&["zunionstore", "d", "2", "a", "b"]));
        assert_eq!(keys, vec![(1, KEY_WRITE), (3, KEY_READ), (4, KEY_READ)]);
        let id = c.id(b"mset").unwrap();
        let spec = cmd::lookup(b"mset").unwrap();
        let keys = c.keys_of_call(id, spec, &args(&["mset", "a", "1", "b", "2"]));
        assert_eq!(keys, vec![(1, KEY_WRITE), (3, KEY_WRITE)]);
        let id = c.id(b"set").unwrap();
        let spec = cmd::lookup(b"set").unwrap();
        let keys = c.keys_of_call(id, spec, &args(&["set", "a", "1", "get"]));
        assert_eq!(keys, vec![(1, KEY_READ | KEY_WRITE)]);
    }
}
