//! FUNCTION libraries: `#!lua name=<lib>` code whose top level registers
//! functions with `redis.register_function`, as Redis 7.0 loads them.
//!
//! Libraries run in their own interpreter (not EVAL's), as in Redis. While
//! a library's top level runs, its globals are only Redis's load-time API
//! (`redis.register_function`, `redis.log`, the `LOG_*` levels and
//! `REDIS_VERSION`): anything else is a nonexistent global, and a top level
//! that runs past 500 ms is stopped. The globals table is the same one the
//! functions see later, whose lookups are then switched back to the whole
//! environment (Redis switches the globals' `__index` the same way), so a
//! registered function sees `math`, `string`, `redis.call` and the rest.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, MultiValue, Table, Value, VmState};
use parking_lot::Mutex;

use super::cache::ScriptFlags;
use super::raw::{self, Raise};
use super::vm::{lua_number_text, ScriptVm, REDIS_VERSION, REDIS_VERSION_NUM};
use crate::resp::Reply;

/// Flags a function declares (`flags={'no-writes', ...}`).
pub use super::cache::ScriptFlags as FunctionFlags;

/// How long a library's top level may run (Redis's load timeout).
const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a library does not load, or a FUNCTION command fails (Redis's texts,
/// `ERR ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LibraryError(pub String);

fn err(text: impl Into<String>) -> LibraryError {
    LibraryError(text.into())
}

const BAD_NAME: &str = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// What a FUNCTION RESTORE changed: the libraries removed, and the name and
/// code of each library loaded (for storage).
pub type Restored = (Vec<String>, Vec<(String, Bytes)>);

/// FUNCTION RESTORE's policy for libraries that exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    Flush,
    Append,
    Replace,
}

/// One registered function as FUNCTION LIST shows it.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub name: String,
    pub description: Option<Bytes>,
    pub flags: ScriptFlags,
}

/// A loaded library.
#[derive(Debug, Clone)]
pub struct Library {
    pub name: String,
    /// The whole code, metadata line included (FUNCTION LIST WITHCODE,
    /// storage, DUMP).
    pub code: Bytes,
    pub functions: Vec<FunctionInfo>,
}

/// A function ready to call.
#[derive(Debug, Clone)]
pub struct Callable {
    pub name: String,
    pub library: String,
    pub flags: ScriptFlags,
    pub function: Function,
}

/// The interpreter that runs functions and the libraries loaded into it.
pub struct FunctionEngine {
    vm: ScriptVm,
    libraries: BTreeMap<String, Library>,
    functions: HashMap<String, Callable>,
}

impl std::fmt::Debug for FunctionEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionEngine")
            .field("libraries", &self.libraries.len())
            .finish()
    }
}

/// `#!lua name=<lib>`: the library's name and where its code starts (the
/// metadata line's line feed is kept so line numbers stay right).
pub fn parse_metadata(code: &[u8]) -> Result<(String, usize), LibraryError> {
    if !code.starts_with(b"#!") {
        return Err(err("ERR Missing library metadata"));
    }
    let end = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
    let line = code.get(2..end).unwrap_or_default();
    let parts = crate::resp::split_args(line).ok_or_else(|| err("ERR Invalid metadata value"))?;
    let mut parts = parts.into_iter();
    let engine = parts.next().unwrap_or_default();
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(err(format!(
            "ERR Engine '{}' not found",
            String::from_utf8_lossy(&engine)
        )));
    }
    let mut name = None;
    for part in parts {
        match part.strip_prefix(b"name=") {
            Some(value) => {
                if name.is_some() {
                    return Err(err(
                        "ERR Invalid metadata value, name argument was given multiple times",
                    ));
                }
                name = Some(String::from_utf8_lossy(value).into_owned());
            }
            None => {
                return Err(err(format!(
                    "ERR Invalid metadata value given: {}",
                    String::from_utf8_lossy(&part)
                )))
            }
        }
    }
    let name = name.ok_or_else(|| err("ERR Library name was not given"))?;
    if !valid_name(&name) {
        return Err(err(BAD_NAME));
    }
    Ok((name, end))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What `redis.register_function` collected while a library loads.
type Registered = Arc<Mutex<Result<Vec<(FunctionInfo, Function)>, String>>>;

impl FunctionEngine {
    pub fn new() -> Result<FunctionEngine, super::VmError> {
        Ok(FunctionEngine {
            vm: ScriptVm::new()?,
            libraries: BTreeMap::new(),
            functions: HashMap::new(),
        })
    }

    pub fn vm(&self) -> &ScriptVm {
        &self.vm
    }

    /// FUNCTION LOAD [REPLACE]: the library's name, or Redis's error.
    pub fn load(&mut self, code: Bytes, replace: bool) -> Result<String, LibraryError> {
        let (name, code_start) = parse_metadata(&code)?;
        if self.libraries.contains_key(&name) && !replace {
            return Err(err(format!("ERR Library '{name}' already exists")));
        }
        let registered = self.run_top_level(code.get(code_start..).unwrap_or_default())?;
        if registered.is_empty() {
            return Err(err("ERR No functions registered"));
        }
        for (info, _) in &registered {
            if let Some(existing) = self.functions.get(&info.name) {
                if existing.library != name {
                    return Err(err(format!("ERR Function {} already exists", info.name)));
                }
            }
        }
        self.remove(&name);
        let mut functions = Vec::with_capacity(registered.len());
        for (info, function) in registered {
            self.functions.insert(
                info.name.clone(),
                Callable {
                    name: info.name.clone(),
                    library: name.clone(),
                    flags: info.flags,
                    function,
                },
            );
            functions.push(info);
        }
        self.libraries.insert(
            name.clone(),
            Library {
                name: name.clone(),
                code,
                functions,
            },
        );
        Ok(name)
    }

    /// FUNCTION DUMP: every library in Redis's payload format.
    pub fn dump(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for library in self.libraries.values() {
            out.push(crate::rdb::OPCODE_FUNCTION2);
            crate::rdb::write_string(&mut out, &library.code);
        }
        crate::rdb::seal(out)
    }

    /// FUNCTION RESTORE: load a DUMP payload under `policy`. Every library
    /// is checked in a scratch interpreter first, so a payload that fails
    /// changes nothing. Returns the libraries removed and those stored.
    pub fn restore(
        &mut self,
        payload: &[u8],
        policy: RestorePolicy,
    ) -> Result<Restored, LibraryError> {
        let body = crate::rdb::open(payload).map_err(|e| err(format!("ERR {e}")))?;
        let mut reader = crate::rdb::Reader::new(body);
        let mut codes = Vec::new();
        while !reader.is_empty() {
            match reader.byte() {
                Ok(crate::rdb::OPCODE_FUNCTION2) => {}
                Ok(crate::rdb::OPCODE_FUNCTION_PRE_GA) => {
                    return Err(err("ERR Pre-GA function format not supported"))
                }
                _ => return Err(err("ERR given type is not a function")),
            }
            let code = reader
                .string()
                .map_err(|_| err("ERR payload is not a valid function"))?;
            codes.push(Bytes::from(code));
        }
        let mut scratch = FunctionEngine::new().map_err(|e| err(format!("ERR {e}")))?;
        for code in &codes {
            scratch.load(code.clone(), false)?;
        }
        let replaced: Vec<String> = match policy {
            RestorePolicy::Flush => self.libraries.keys().cloned().collect(),
            RestorePolicy::Append => {
                if let Some(name) = scratch
                    .libraries
                    .keys()
                    .find(|n| self.libraries.contains_key(*n))
                {
                    return Err(err(format!("ERR Library {name} already exists")));
                }
                Vec::new()
            }
            RestorePolicy::Replace => scratch
                .libraries
                .keys()
                .filter(|n| self.libraries.contains_key(*n))
                .cloned()
                .collect(),
        };
        for f in scratch.functions.values() {
            if let Some(existing) = self.functions.get(&f.name) {
                if !replaced.contains(&existing.library) {
                    return Err(err(format!("ERR Function {} already exists", f.name)));
                }
            }
        }
        let removed = match policy {
            RestorePolicy::Flush => self.flush(),
            _ => {
                for name in &replaced {
                    self.remove(name);
                }
                Vec::new()
            }
        };
        let mut stored = Vec::with_capacity(codes.len());
        for code in codes {
            let name = self.load(code.clone(), true)?;
            stored.push((name, code));
        }
        Ok((removed, stored))
    }

    /// FUNCTION DELETE.
    pub fn delete(&mut self, name: &str) -> Result<(), LibraryError> {
        match self.remove(name) {
            true => Ok(()),
            false => Err(err("ERR Library not found")),
        }
    }

    fn remove(&mut self, name: &str) -> bool {
        let Some(library) = self.libraries.remove(name) else {
            return false;
        };
        for f in &library.functions {
            self.functions.remove(&f.name);
        }
        true
    }

    /// FUNCTION FLUSH: the names of the libraries that were loaded.
    pub fn flush(&mut self) -> Vec<String> {
        let names = self.libraries.keys().cloned().collect();
        self.libraries.clear();
        self.functions.clear();
        names
    }

    pub fn function(&self, name: &[u8]) -> Option<&Callable> {
        std::str::from_utf8(name)
            .ok()
            .and_then(|n| self.functions.get(n))
    }

    pub fn libraries(&self) -> impl Iterator<Item = &Library> {
        self.libraries.values()
    }

    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// Run a library's top level with the load-time API as its globals.
    fn run_top_level(&self, code: &[u8]) -> Result<Vec<(FunctionInfo, Function)>, LibraryError> {
        let chunk = self
            .vm
            .compile(code, "@user_function")
            .map_err(|e| err(format!("ERR Error compiling function: {e}")))?;
        let lua = self.vm.lua();
        let registered: Registered = Arc::new(Mutex::new(Ok(Vec::new())));
        let failed = |e: mlua::Error| err(format!("ERR Error registering functions: ERR {e}"));
        let api = load_api(lua, registered.clone()).map_err(failed)?;
        let globals_mt = lua
            .globals()
            .metatable()
            .ok_or_else(|| err("ERR the function engine has no globals"))?;
        let full: Value = globals_mt.raw_get("__index").map_err(failed)?;
        globals_mt.raw_set("__index", api).map_err(failed)?;
        let started = Instant::now();
        let hooked = lua.set_hook(
            HookTriggers::new().every_nth_instruction(100_000),
            move |_, _| match started.elapsed() > LOAD_TIMEOUT {
                true => Err(mlua::Error::runtime("FUNCTION LOAD timeout")),
                false => Ok(VmState::Continue),
            },
        );
        // Through Lua's own xpcall, to see the raised value as it is.
        let result = hooked.and_then(|()| {
            let xpcall: Function = self.vm.real_globals().raw_get("xpcall")?;
            let keep = lua.create_function(|_, v: Value| Ok(v))?;
            xpcall.call::<(bool, Value)>((chunk, keep))
        });
        lua.remove_hook();
        globals_mt.raw_set("__index", full).map_err(failed)?;
        match result {
            Ok((true, _)) => {}
            Ok((false, raised)) => {
                let text = match raised {
                    Value::Table(t) => match t.raw_get::<Value>("err") {
                        Ok(Value::String(s)) => s.to_string_lossy(),
                        _ => "ERR unknown error".to_string(),
                    },
                    Value::String(s) => format!("ERR {}", s.to_string_lossy()),
                    _ if started.elapsed() > LOAD_TIMEOUT => "ERR FUNCTION LOAD timeout".into(),
                    _ => "ERR unknown error".into(),
                };
                return Err(err(format!("ERR Error registering functions: {text}")));
            }
            Err(e) => return Err(failed(e)),
        }
        let collected = std::mem::replace(&mut *registered.lock(), Ok(Vec::new()));
        collected.map_err(|e| err(format!("ERR Error registering functions: {e}")))
    }
}

/// A table whose missing fields raise Redis's nonexistent-global error.
fn strict_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let mt = lua.create_table()?;
    let missing = raw::function(lua, |_, args| {
        let name = match args.get(1) {
            Some(Value::String(s)) => s.as_bytes().to_vec(),
            Some(Value::Number(n)) => lua_number_text(*n).into_bytes(),
            Some(Value::Integer(i)) => i.to_string().into_bytes(),
            _ => Vec::new(),
        };
        let mut text = b"Script attempted to access nonexistent global variable '".to_vec();
        text.extend(name);
        text.push(b'\'');
        Ok(Err(Raise::Message(text)))
    })?;
    mt.raw_set("__index", missing)?;
    t.set_metatable(Some(mt))?;
    Ok(t)
}

/// The globals a library's top level sees.
fn load_api(lua: &Lua, registered: Registered) -> mlua::Result<Table> {
    let api = strict_table(lua)?;
    let redis = strict_table(lua)?;
    let full_redis: Table = lua.globals().get("redis")?;
    redis.raw_set("log", full_redis.get::<Value>("log")?)?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        redis.raw_set(name, level)?;
    }
    redis.raw_set("REDIS_VERSION", REDIS_VERSION)?;
    redis.raw_set("REDIS_VERSION_NUM", REDIS_VERSION_NUM)?;
    redis.raw_set(
        "register_function",
        raw::function(lua, move |lua, args| match register(&args) {
            Ok(entry) => {
                let mut collected = registered.lock();
                if let Ok(list) = collected.as_mut() {
                    if list.iter().any(|(f, _)| f.name == entry.0.name) {
                        drop(collected);
                        return raise(lua, "ERR Function already exists in the library");
                    }
                    list.push(entry);
                }
                Ok(Ok(MultiValue::new()))
            }
            Err(text) => raise(lua, text),
        })?,
    )?;
    api.raw_set("redis", redis)?;
    Ok(api)
}

/// Raise an error table `{err = text}` (no position, as Redis's).
fn raise(lua: &Lua, text: &str) -> mlua::Result<raw::Outcome> {
    let t = lua.create_table()?;
    t.raw_set("err", text)?;
    Ok(Err(Raise::Value(Value::Table(t))))
}

/// `lua_isstring`'s text: strings and numbers.
fn string_of(v: &Value) -> Option<Bytes> {
    match v {
        Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Number(n) => Some(Bytes::from(lua_number_text(*n))),
        Value::Integer(i) => Some(Bytes::from(i.to_string())),
        _ => None,
    }
}

/// `redis.register_function`'s arguments: `(name, callback)` or one table
/// of named arguments.
fn register(args: &MultiValue) -> Result<(FunctionInfo, Function), &'static str> {
    let mut name = None;
    let mut callback = None;
    let mut description = None;
    let mut flags = ScriptFlags::default();
    match (args.len(), args.front()) {
        (1, Some(Value::Table(named))) => {
            for pair in named.clone().pairs::<Value, Value>() {
                let (key, value) = pair.map_err(|_| "unknown argument given to redis.register_function")?;
                let Value::String(key) = key else {
                    return Err("ERR named argument key given to redis.register_function is not a string");
                };
                match &*key.as_bytes() {
                    b"function_name" => {
                        name = Some(string_of(&value).ok_or(
                            "ERR function_name argument given to redis.register_function must be a string",
                        )?)
                    }
                    b"description" => {
                        description = Some(string_of(&value).ok_or(
                            "ERR description argument given to redis.register_function must be a string",
                        )?)
                    }
                    b"callback" => match value {
                        Value::Function(f) => callback = Some(f),
                        _ => return Err("ERR callback argument given to redis.register_function must be a function"),
                    },
                    b"flags" => {
                        let Value::Table(list) = value else {
                            return Err("ERR flags argument to redis.register_function must be a table representing function flags");
                        };
                        for flag in list.sequence_values::<Value>() {
                            let ok = match flag {
                                Ok(Value::String(s)) => flags.set(&s.as_bytes()),
                                _ => false,
                            };
                            if !ok {
                                return Err("ERR unknown flag given");
                            }
                        }
                    }
                    _ => return Err("ERR unknown argument given to redis.register_function"),
                }
            }
            if name.is_none() {
                return Err("ERR redis.register_function must get a function name argument");
            }
            if callback.is_none() {
                return Err("ERR redis.register_function must get a callback argument");
            }
        }
        (1, _) => return Err("ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."),
        (2, Some(first)) => {
            name = Some(string_of(first).ok_or("ERR first argument to redis.register_function must be a string")?);
            match args.get(1) {
                Some(Value::Function(f)) => callback = Some(f.clone()),
                _ => return Err("ERR second argument to redis.register_function must be a function"),
            }
        }
        _ => return Err("ERR wrong number of arguments to redis.register_function"),
    }
    let (Some(name), Some(callback)) = (name, callback) else {
        return Err("ERR wrong number of arguments to redis.register_function");
    };
    let name = String::from_utf8_lossy(&name).into_owned();
    if !valid_name(&name) {
        return Err(BAD_NAME);
    }
    Ok((
        FunctionInfo {
            name,
            description,
            flags,
        },
        callback,
    ))
}

/// FUNCTION LIST's entry for one library.
pub fn list_entry(library: &Library, with_code: bool) -> Reply {
    let functions = library
        .functions
        .iter()
        .map(|f| {
            Reply::Map(vec![
                (
                    Reply::Bulk(Bytes::from_static(b"name")),
                    Reply::Bulk(Bytes::from(f.name.clone())),
                ),
                (
                    Reply::Bulk(Bytes::from_static(b"description")),
                    f.description.clone().map_or(Reply::Nil, Reply::Bulk),
                ),
                (
                    Reply::Bulk(Bytes::from_static(b"flags")),
                    Reply::Set(flag_names(f.flags)),
                ),
            ])
        })
        .collect();
    let mut fields = vec![
        (
            Reply::Bulk(Bytes::from_static(b"library_name")),
            Reply::Bulk(Bytes::from(library.name.clone())),
        ),
        (
            Reply::Bulk(Bytes::from_static(b"engine")),
            Reply::Bulk(Bytes::from_static(b"LUA")),
        ),
        (
            Reply::Bulk(Bytes::from_static(b"functions")),
            Reply::Array(functions),
        ),
    ];
    if with_code {
        fields.push((
            Reply::Bulk(Bytes::from_static(b"library_code")),
            Reply::Bulk(library.code.clone()),
        ));
    }
    Reply::Map(fields)
}

fn flag_names(flags: ScriptFlags) -> Vec<Reply> {
    [
        (flags.no_writes, "no-writes"),
        (flags.allow_oom, "allow-oom"),
        (flags.allow_stale, "allow-stale"),
        (flags.no_cluster, "no-cluster"),
        (flags.allow_cross_slot_keys, "allow-cross-slot-keys"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| Reply::Bulk(Bytes::from_static(name.as_bytes())))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_as_redis() {
        assert_eq!(
            parse_metadata(b"#!lua name=lib\nx").map(|m| m.0),
            Ok("lib".into())
        );
        assert_eq!(
            parse_metadata(b"return 1"),
            Err(err("ERR Missing library metadata"))
        );
        assert_eq!(
            parse_metadata(b"#!lua\n"),
            Err(err("ERR Library name was not given"))
        );
        assert_eq!(
            parse_metadata(b"#!luaa name=r\n"),
            Err(err("ERR Engine 'luaa' not found"))
        );
        assert_eq!(
            parse_metadata(b"#!lua name=r foo=bar\n"),
            Err(err("ERR Invalid metadata value given: foo=bar"))
        );
        assert_eq!(parse_metadata(b"#!lua name=bad-name\n"), Err(err(BAD_NAME)));
    }

    #[test]
    fn libraries_load_replace_and_clash() -> Result<(), Box<dyn std::error::Error>> {
        let mut engine = FunctionEngine::new()?;
        let lib = |body: &str| Bytes::from(format!("#!lua name=l\n{body}"));
        assert_eq!(
            engine.load(
                lib("redis.register_function('f', function() return 1 end)"),
                false
            ),
            Ok("l".into())
        );
        assert_eq!(
            engine.load(lib("redis.register_function('g', function() end)"), false),
            Err(err("ERR Library 'l' already exists"))
        );
        let other = Bytes::from("#!lua name=m\nredis.register_function('f', function() end)");
        assert_eq!(
            engine.load(other, false),
            Err(err("ERR Function f already exists"))
        );
        assert_eq!(
            engine.load(lib("local x = math"), true),
            Err(err("ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'math'"))
        );
        assert!(engine.function(b"f").is_some());
        assert_eq!(
            engine.load(lib("while true do end"), true),
            Err(err(
                "ERR Error registering functions: ERR FUNCTION LOAD timeout"
            ))
        );
        assert_eq!(engine.delete("l"), Ok(()));
        assert!(engine.function(b"f").is_none());
        Ok(())
    }
}
