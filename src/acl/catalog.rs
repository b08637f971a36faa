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
    access: u8,
    begin: Begin,
    find: Find,
    incomplete: bool,
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
            special_keys: matches!(name, "set" | "bitfield" | "sort" | "sort_ro"),
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
        // Redis's fallback (its getkeys functions): positions without
        // access flags, which any key pattern grants.
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
        let mut access = 0;
        if flags.iter().any(|f| f == "access") {
            access |= KEY_READ;
        }
        if flags
            .iter()
            .any(|f| f == "insert" || f == "delete" || f == "update")
        {
            access |= KEY_WRITE;
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
            access,
            begin,
            find,
            incomplete: flags.iter().any(|f| f == "incomplete"),
        });
    }
    Some(out)
}

/// Redis's getKeysUsingKeySpecs: `None` when a spec does not fit the call
/// (then Redis falls back to its getkeys function).
fn keys_from_specs(specs: &[KeySpec], args: &[Bytes]) -> Option<Vec<(usize, u8)>> {
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
            out.push((usize::try_from(i).ok()?, spec.access));
            i += step.max(1);
        }
        if spec.incomplete {
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

/// The commands whose keys' access Redis judges from their arguments.
fn special_keys(name: &str, args: &[Bytes]) -> Vec<(usize, u8)> {
    let rw = KEY_READ | KEY_WRITE;
    match name {
        // SET's key is read too when GET is given.
        "set" => {
            let get = args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
            vec![(1, if get { rw } else { KEY_WRITE })]
        }
        // BITFIELD is a read unless a SET or INCRBY (or an error) comes.
        "bitfield" => {
            let mut read_only = true;
            let mut i = 2;
            while i < args.len() {
                let left = args.len() - i - 1;
                let a = &args[i];
                if a.eq_ignore_ascii_case(b"get") && left >= 2 {
                    i += 3;
                } else if (a.eq_ignore_ascii_case(b"set") || a.eq_ignore_ascii_case(b"incrby"))
                    && left >= 3
                {
                    read_only = false;
                    break;
                } else if a.eq_ignore_ascii_case(b"overflow") && left >= 1 {
                    i += 2;
                } else {
                    read_only = false;
                    break;
                }
            }
            vec![(1, if read_only { KEY_READ } else { rw })]
        }
        // SORT reads its key and writes STORE's (BY/GET patterns are not
        // keys for ACL, as in Redis).
        "sort" | "sort_ro" => {
            let mut keys = vec![(1, KEY_READ)];
            let mut i = 2;
            while i < args.len() {
                let a = &args[i];
                let skip = if a.eq_ignore_ascii_case(b"limit") {
                    2
                } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
                    1
                } else if name == "sort" && a.eq_ignore_ascii_case(b"store") && i + 1 < args.len() {
                    keys.push((i + 1, KEY_WRITE));
                    1
                } else {
                    0
                };
                i += 1 + skip;
            }
            keys
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
