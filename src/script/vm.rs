//! One Lua state set up as Redis 7.0 sets up its scripting engine.
//!
//! The globals a script sees are exactly Redis's (`_G`, `_VERSION`, the base
//! functions Redis keeps, `string`, `table`, `math`, `coroutine`, `cjson`,
//! `struct`, `cmsgpack`, `bit`, `redis`, `KEYS`/`ARGV` for EVAL), and they
//! are read-only: assigning a global or a library field raises
//! `Attempt to modify a readonly table`, reading an undeclared global raises
//! `Script attempted to access nonexistent global variable '...'`.
//!
//! Redis makes tables read-only with a patch to its Lua (a `readonly` flag
//! checked by the VM). Kiwi runs stock Lua 5.1, so the globals and every
//! library table are empty proxies whose metatables read through to the
//! real tables and refuse writes; `rawset`, `rawget`, `next`, `pairs`,
//! `getmetatable`, `setmetatable` and `table.insert` see through the
//! proxies, so scripts observe the same contents and the same errors.
//! Binary chunks (`loadstring(string.dump(f))`) are refused: loading
//! crafted bytecode can corrupt Lua 5.1's memory.

use std::collections::HashMap;

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use super::convert::{error_table, lua_to_reply, reply_to_lua};
use super::rand::Lrand48;
use super::raw::{self, Raise};
use super::{libs, HostCall, LogLevel, ScriptHost};
use crate::resp::{format_double, Protocol, Reply};

/// `REDIS_VERSION` as scripts see it: the version Kiwi is compatible with.
pub const REDIS_VERSION: &str = "7.0.15";
/// `REDIS_VERSION_NUM`: `0x00MMmmpp`.
pub const REDIS_VERSION_NUM: u32 = 0x0007_000f;

/// Most memory one interpreter may hold (all its scripts' data together).
/// Redis leaves Lua unbounded; one hostile EVAL must not take the machine.
pub const MEMORY_LIMIT: usize = 1 << 30;

/// Instructions between two polls of [`ScriptHost::interrupted`] (Redis's
/// count hook period).
const HOOK_PERIOD: u32 = 100_000;

const READONLY: &str = "Attempt to modify a readonly table";

/// Errors of setting up the Lua state (not script errors, which are replies).
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("Lua: {0}")]
    Lua(#[from] mlua::Error),
}

/// What a script run needs from inside Lua callbacks.
#[derive(Debug, Default)]
struct RunState {
    active: bool,
    protocol: Protocol,
    read_only: bool,
    killed: bool,
    rng: Lrand48,
}

/// Which kind of code runs: EVAL's (KEYS/ARGV globals) or FCALL's
/// (keys and args passed to the function).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Eval,
    Function,
}

/// A Lua interpreter with Redis's environment.
pub struct ScriptVm {
    lua: Lua,
    /// The real globals behind the read-only `_G` proxy.
    globals: Table,
    /// `function(f, fcall, keys, args)`: runs `f` under Redis's error
    /// handler, returns xpcall's results.
    runner: Function,
    /// Compiled EVAL scripts by lowercase SHA1 (Redis's `f_<sha>`).
    scripts: HashMap<String, Function>,
}

impl std::fmt::Debug for ScriptVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptVm")
            .field("scripts", &self.scripts.len())
            .finish()
    }
}

const ERROR_HANDLER: &str = r#"
local dbg, type, tostring = ...
return function(err)
  local i = dbg.getinfo(2, 'nSl')
  if i and i.what == 'C' then
    i = dbg.getinfo(3, 'nSl')
  end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end
"#;

const RUNNER: &str = r#"
local xpcall, handler = ...
return function(f, fcall, keys, args)
  if fcall then
    return xpcall(function() return f(keys, args) end, handler)
  end
  return xpcall(f, handler)
end
"#;

impl ScriptVm {
    /// A fresh interpreter (Redis's `scriptingInit`).
    pub fn new() -> Result<ScriptVm, VmError> {
        ScriptVm::with_memory_limit(MEMORY_LIMIT)
    }

    /// A fresh interpreter whose allocations may not pass `bytes`: a script
    /// that asks for more (`string.rep('x', 2^40)`) fails with Lua's `not
    /// enough memory` instead of taking the server's memory.
    pub fn with_memory_limit(bytes: usize) -> Result<ScriptVm, VmError> {
        // SAFETY: `debug` is needed by the error handler; it is taken out of
        // the globals before any script runs, as Redis does.
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::default(),
            )
        };
        lua.set_memory_limit(bytes)?;
        lua.set_app_data(RunState::default());
        let globals = lua.globals();
        let debug: Table = globals.raw_get("debug")?;
        for name in [
            "debug", "print", "dofile", "loadfile", "getfenv", "setfenv", "newproxy",
        ] {
            globals.raw_set(name, Value::Nil)?;
        }

        let handler: Function = lua.load(ERROR_HANDLER).set_name("=err_handler_def").call((
            debug,
            globals.raw_get::<Function>("type")?,
            globals.raw_get::<Function>("tostring")?,
        ))?;
        globals.raw_set("__redis__err__handler", handler.clone())?;
        let runner: Function = lua
            .load(RUNNER)
            .set_name("=runner")
            .call((globals.raw_get::<Function>("xpcall")?, handler))?;

        globals.raw_set("pcall", raw::redis_pcall(&lua)?)?;
        install_math(&lua, &globals)?;
        install_redis(&lua, &globals)?;
        libs::install(&lua, &globals)?;
        install_loaders(&lua, &globals)?;
        protect(&lua, &globals)?;

        Ok(ScriptVm {
            lua,
            globals,
            runner,
            scripts: HashMap::new(),
        })
    }

    /// The interpreter (for FUNCTION libraries and tests).
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// The real globals behind the read-only `_G` proxy.
    pub fn real_globals(&self) -> &Table {
        &self.globals
    }

    /// `redisSrand48(seed)`: the engine calls it before each replicated
    /// script so that `math.random` gives every node the same sequence.
    pub fn seed_random(&self, seed: i32) {
        if let Some(mut state) = self.lua.app_data_mut::<RunState>() {
            state.rng = Lrand48::seeded(seed);
        }
    }

    /// Compile an EVAL body (without its shebang line, which the caller has
    /// parsed) under `sha`, unless already there. The error is Redis's:
    /// `ERR Error compiling script (new function): user_script:1: ...`.
    pub fn compile_script(&mut self, sha: &str, code: &[u8]) -> Result<(), Reply> {
        if self.scripts.contains_key(sha) {
            return Ok(());
        }
        let f = self.compile(code, "@user_script").map_err(|msg| {
            Reply::Error(format!("ERR Error compiling script (new function): {msg}"))
        })?;
        self.scripts.insert(sha.to_string(), f);
        Ok(())
    }

    /// Whether `sha` (lowercase) is compiled.
    pub fn has_script(&self, sha: &str) -> bool {
        self.scripts.contains_key(sha)
    }

    /// Forget every compiled script (SCRIPT FLUSH).
    pub fn flush_scripts(&mut self) {
        self.scripts.clear();
        let _ = self.lua.gc_collect();
    }

    /// Compile text (never bytecode) to a function; the error text is Lua's.
    pub fn compile(&self, code: &[u8], chunk_name: &str) -> Result<Function, String> {
        if code.first() == Some(&0x1b) {
            return Err(format!(
                "{}: attempt to load a binary chunk",
                chunk_name.trim_start_matches(['@', '='])
            ));
        }
        self.lua
            .load(code)
            .set_name(chunk_name)
            .set_mode(mlua::chunk::ChunkMode::Text)
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                other => other.to_string(),
            })
    }

    /// Run the compiled EVAL script `sha` with KEYS and ARGV. `read_only` is
    /// EVAL_RO/EVALSHA_RO or a `no-writes` shebang flag. A script that is
    /// not compiled gets Redis's NOSCRIPT error.
    pub fn eval(
        &mut self,
        host: &mut dyn ScriptHost,
        sha: &str,
        keys: &[Bytes],
        args: &[Bytes],
        read_only: bool,
    ) -> Reply {
        let Some(f) = self.scripts.get(sha).cloned() else {
            return Reply::error("NOSCRIPT No matching script. Please use EVAL.");
        };
        self.run(host, &f, sha, keys, args, read_only, RunMode::Eval)
    }

    /// Run `f` as Redis runs a script or function named `name` (the SHA for
    /// EVAL, the function's name for FCALL), converting its result or error.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        host: &mut dyn ScriptHost,
        f: &Function,
        name: &str,
        keys: &[Bytes],
        args: &[Bytes],
        read_only: bool,
        mode: RunMode,
    ) -> Reply {
        match self.run_inner(host, f, name, keys, args, read_only, mode) {
            Ok(reply) => reply,
            Err(e) => Reply::Error(format!("ERR Error running script {name}, {e}")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_inner(
        &self,
        host: &mut dyn ScriptHost,
        f: &Function,
        name: &str,
        keys: &[Bytes],
        args: &[Bytes],
        read_only: bool,
        mode: RunMode,
    ) -> mlua::Result<Reply> {
        let lua = &self.lua;
        if let Some(mut state) = lua.app_data_mut::<RunState>() {
            state.active = true;
            state.protocol = Protocol::Resp2;
            state.read_only = read_only;
            state.killed = false;
        }
        let keys_t = lua.create_sequence_from(
            keys.iter()
                .map(|k| lua.create_string(k))
                .collect::<mlua::Result<Vec<_>>>()?,
        )?;
        let args_t = lua.create_sequence_from(
            args.iter()
                .map(|a| lua.create_string(a))
                .collect::<mlua::Result<Vec<_>>>()?,
        )?;
        if mode == RunMode::Eval {
            self.globals.raw_set("KEYS", keys_t.clone())?;
            self.globals.raw_set("ARGV", args_t.clone())?;
        }
        let host_cell = std::cell::RefCell::new(host);
        let outcome = lua.scope(|scope| {
            let call = scope.create_function(|lua, (raise, args): (bool, MultiValue)| {
                let Ok(mut host) = host_cell.try_borrow_mut() else {
                    return error_value(lua, b"luaRedisGenericCommand() recursive call detected. Are you doing funny stuff with Lua debug hooks?", false);
                };
                host_command(lua, &mut **host, raise, args)
            })?;
            let log = scope.create_function(|_, (level, text): (i32, mlua::LuaString)| {
                if let Ok(mut host) = host_cell.try_borrow_mut() {
                    let level = match level {
                        0 => LogLevel::Debug,
                        1 => LogLevel::Verbose,
                        2 => LogLevel::Notice,
                        _ => LogLevel::Warning,
                    };
                    host.log(level, &text.as_bytes());
                }
                Ok(())
            })?;
            let interrupted = scope.create_function(|_, ()| {
                Ok(host_cell.try_borrow_mut().map(|mut h| h.interrupted()).unwrap_or(false))
            })?;
            lua.set_named_registry_value("kiwi.call", call)?;
            lua.set_named_registry_value("kiwi.log", log)?;
            lua.set_named_registry_value("kiwi.interrupted", interrupted)?;
            lua.set_hook(
                HookTriggers::new().every_nth_instruction(HOOK_PERIOD),
                |lua, _| {
                    let killed = lua.app_data_ref::<RunState>().map(|s| s.killed).unwrap_or(false);
                    let stop = killed
                        || match lua.named_registry_value::<Option<Function>>("kiwi.interrupted")? {
                            Some(f) => f.call::<bool>(())?,
                            None => false,
                        };
                    if stop {
                        if let Some(mut s) = lua.app_data_mut::<RunState>() {
                            s.killed = true;
                        }
                        return Err(mlua::Error::runtime(
                            "Script killed by user with SCRIPT KILL...",
                        ));
                    }
                    Ok(VmState::Continue)
                },
            )?;
            let result = self
                .runner
                .call::<MultiValue>((f.clone(), mode == RunMode::Function, keys_t, args_t));
            lua.remove_hook();
            for key in ["kiwi.call", "kiwi.log", "kiwi.interrupted"] {
                lua.set_named_registry_value(key, Value::Nil)?;
            }
            result
        });
        let (protocol, killed) = match lua.app_data_mut::<RunState>() {
            Some(mut state) => {
                state.active = false;
                (state.protocol, state.killed)
            }
            None => (Protocol::Resp2, false),
        };
        let mut values = outcome?.into_iter();
        let ok = matches!(values.next(), Some(Value::Boolean(true)));
        let value = values.next().unwrap_or(Value::Nil);
        if ok {
            return lua_to_reply(lua, value, protocol);
        }
        Ok(error_reply(value, name, killed))
    }
}

/// `luaExtractErrorInformation` and the reply Redis builds from it.
fn error_reply(err: Value, name: &str, killed: bool) -> Reply {
    let Value::Table(t) = err else {
        let msg = match &err {
            Value::String(s) => s.to_string_lossy(),
            _ => "execution failure".to_string(),
        };
        let msg: String = msg.chars().take(100).collect();
        return Reply::Error(format!("ERR Error running script {name}, {msg} "));
    };
    let field = |key: &str| -> Option<String> {
        match t.get::<Value>(key).ok()? {
            Value::String(s) => Some(s.to_string_lossy()),
            Value::Number(n) => Some(lua_number_text(n)),
            Value::Integer(i) => Some(i.to_string()),
            _ => None,
        }
    };
    let msg = if killed {
        "ERR Script killed by user with SCRIPT KILL...".to_string()
    } else {
        field("err").unwrap_or_else(|| "(null)".to_string())
    };
    let mut text = msg;
    if let (Some(source), Some(line)) = (field("source"), field("line")) {
        text.push_str(&format!(" script: {name}, on {source}:{line}."));
    }
    Reply::Error(text.replace(['\r', '\n'], " "))
}

/// `lua_tostring` of a number: `%.14g`.
pub fn lua_number_text(n: f64) -> String {
    libs::format_g(n, 14)
}

/// `(kind, value)` for the static `redis.call` wrapper: kind 1 raises.
fn error_value(lua: &Lua, text: &[u8], from_reply: bool) -> mlua::Result<(i32, Value)> {
    Ok((1, Value::Table(error_table(lua, text, from_reply)?)))
}

/// `luaRedisGenericCommand`: check the arguments, run the command through
/// the host, convert its reply; errors are raised by `redis.call` and
/// returned by `redis.pcall`.
fn host_command(
    lua: &Lua,
    host: &mut dyn ScriptHost,
    raise: bool,
    args: MultiValue,
) -> mlua::Result<(i32, Value)> {
    if args.is_empty() {
        return error_value(
            lua,
            b"Please specify at least one argument for this redis lib call",
            false,
        );
    }
    let mut argv = Vec::with_capacity(args.len());
    for arg in args.iter() {
        match arg {
            Value::Number(n) => argv.push(Bytes::from(format_double(*n))),
            Value::Integer(i) => argv.push(Bytes::from(format_double(*i as f64))),
            Value::String(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
            _ => {
                return error_value(
                    lua,
                    b"Lua redis lib command arguments must be strings or integers",
                    false,
                );
            }
        }
    }
    let (protocol, read_only) = lua
        .app_data_ref::<RunState>()
        .map(|s| (s.protocol, s.read_only))
        .unwrap_or_default();
    let reply = host.call(HostCall {
        args: argv,
        protocol,
        read_only,
    });
    let value = reply_to_lua(lua, &reply, protocol)?;
    Ok((i32::from(raise && reply.is_error()), value))
}

/// Redis's `math.random` / `math.randomseed` on its lrand48.
fn install_math(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    let math: Table = globals.raw_get("math")?;
    math.raw_set(
        "random",
        raw::function(lua, |lua, args| {
            let Some(mut state) = lua.app_data_mut::<RunState>() else {
                return Ok(Err(Raise::msg(
                    "math.random can only be called inside a script invocation",
                )));
            };
            if !state.active {
                return Ok(Err(Raise::msg(
                    "math.random can only be called inside a script invocation",
                )));
            }
            let r = state.rng.next_fraction();
            drop(state);
            let n = match args.len() {
                0 => r,
                1 => {
                    let u = match check_int(&args, 1) {
                        Ok(u) => u,
                        Err(e) => return Ok(Err(e)),
                    };
                    if u < 1 {
                        return Ok(Err(Raise::Arg(1, "interval is empty".into())));
                    }
                    (r * f64::from(u)).floor() + 1.0
                }
                2 => {
                    let (l, u) = match (check_int(&args, 1), check_int(&args, 2)) {
                        (Ok(l), Ok(u)) => (l, u),
                        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
                    };
                    if l > u {
                        return Ok(Err(Raise::Arg(2, "interval is empty".into())));
                    }
                    (r * (f64::from(u) - f64::from(l) + 1.0)).floor() + f64::from(l)
                }
                _ => return Ok(Err(Raise::msg("wrong number of arguments"))),
            };
            Ok(Ok(MultiValue::from_vec(vec![Value::Number(n)])))
        })?,
    )?;
    math.raw_set(
        "randomseed",
        raw::function(lua, |lua, args| {
            let active = lua
                .app_data_ref::<RunState>()
                .map(|s| s.active)
                .unwrap_or(false);
            if !active {
                return Ok(Err(Raise::msg(
                    "math.randomseed can only be called inside a script invocation",
                )));
            }
            let seed = match check_int(&args, 1) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            if let Some(mut state) = lua.app_data_mut::<RunState>() {
                state.rng = Lrand48::seeded(seed);
            }
            Ok(Ok(MultiValue::new()))
        })?,
    )?;
    Ok(())
}

/// `luaL_checkint`: a number or a numeric string, truncated to a C int.
pub fn check_int(args: &MultiValue, n: usize) -> Result<i32, Raise> {
    let v = args.get(n - 1).cloned().unwrap_or(Value::Nil);
    let num = match &v {
        Value::Number(x) => Some(*x),
        Value::Integer(i) => Some(*i as f64),
        Value::String(s) => libs::str_to_number(&s.as_bytes()),
        _ => None,
    };
    match num {
        Some(x) => Ok(super::convert::number_to_i64(x) as i32),
        None => Err(Raise::Arg(
            n as i32,
            format!("number expected, got {}", type_name(&v)),
        )),
    }
}

/// `luaL_typename`, "no value" for a missing argument.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "no value",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

fn ok_values(values: Vec<Value>) -> mlua::Result<super::raw::Outcome> {
    Ok(Ok(MultiValue::from_vec(values)))
}

/// The `redis` table.
fn install_redis(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    let redis = lua.create_table()?;
    for (name, raise) in [("call", true), ("pcall", false)] {
        redis.raw_set(
            name,
            raw::function(lua, move |lua, args| {
                let Some(call) = lua.named_registry_value::<Option<Function>>("kiwi.call")? else {
                    let t = error_table(
                        lua,
                        b"redis.call/pcall can only be called inside a script invocation",
                        false,
                    )?;
                    return Ok(Err(Raise::Value(Value::Table(t))));
                };
                let (kind, value): (i32, Value) = call.call((raise, args))?;
                if kind == 1 && raise {
                    return Ok(Err(Raise::Value(value)));
                }
                ok_values(vec![value])
            })?,
        )?;
    }
    redis.raw_set(
        "sha1hex",
        raw::function(lua, |lua, args| {
            if args.len() != 1 {
                let t = error_table(lua, b"wrong number of arguments", false)?;
                return Ok(Err(Raise::Value(Value::Table(t))));
            }
            let bytes = match args.front() {
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                Some(v @ (Value::Number(_) | Value::Integer(_))) => {
                    lua_number_text(libs::number(v).unwrap_or(0.0)).into_bytes()
                }
                _ => Vec::new(),
            };
            ok_values(vec![Value::String(
                lua.create_string(super::cache::sha1_hex(&bytes))?,
            )])
        })?,
    )?;
    redis.raw_set(
        "error_reply",
        raw::function(lua, |lua, args| {
            let t = match (args.len(), args.front()) {
                (1, Some(Value::String(s))) => {
                    let mut text = s.as_bytes().to_vec();
                    if text.first() != Some(&b'-') {
                        text.insert(0, b'-');
                    }
                    error_table(lua, &text, false)?
                }
                _ => error_table(lua, b"wrong number or type of arguments", false)?,
            };
            ok_values(vec![Value::Table(t)])
        })?,
    )?;
    redis.raw_set(
        "status_reply",
        raw::function(lua, |lua, args| {
            let t = match (args.len(), args.front()) {
                (1, Some(Value::String(s))) => {
                    let t = lua.create_table()?;
                    t.raw_set("ok", s.clone())?;
                    t
                }
                _ => error_table(lua, b"wrong number or type of arguments", false)?,
            };
            ok_values(vec![Value::Table(t)])
        })?,
    )?;
    redis.raw_set(
        "log",
        raw::function(lua, |lua, args| {
            let raise = |text: &[u8]| -> mlua::Result<super::raw::Outcome> {
                Ok(Err(Raise::Value(Value::Table(error_table(
                    lua, text, false,
                )?))))
            };
            if args.len() < 2 {
                return raise(b"redis.log() requires two arguments or more.");
            }
            let level = match args.front() {
                Some(v @ (Value::Number(_) | Value::Integer(_))) => libs::number(v).unwrap_or(0.0),
                Some(Value::String(s)) => match libs::str_to_number(&s.as_bytes()) {
                    Some(n) => n,
                    None => return raise(b"First argument must be a number (log level)."),
                },
                _ => return raise(b"First argument must be a number (log level)."),
            };
            let level = level as i32;
            if !(0..=3).contains(&level) {
                return raise(b"Invalid debug level.");
            }
            let mut text = Vec::new();
            for (j, v) in args.iter().enumerate().skip(1) {
                let piece = match v {
                    Value::String(s) => s.as_bytes().to_vec(),
                    Value::Number(_) | Value::Integer(_) => {
                        lua_number_text(libs::number(v).unwrap_or(0.0)).into_bytes()
                    }
                    _ => continue,
                };
                if j != 1 {
                    text.push(b' ');
                }
                text.extend(piece);
            }
            if let Some(log) = lua.named_registry_value::<Option<Function>>("kiwi.log")? {
                log.call::<()>((level, lua.create_string(&text)?))?;
            }
            ok_values(vec![])
        })?,
    )?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        redis.raw_set(name, level)?;
    }
    redis.raw_set("REDIS_VERSION_NUM", REDIS_VERSION_NUM)?;
    redis.raw_set("REDIS_VERSION", REDIS_VERSION)?;
    redis.raw_set(
        "setresp",
        raw::function(lua, |lua, args| {
            let raise = |text: &[u8]| -> mlua::Result<super::raw::Outcome> {
                Ok(Err(Raise::Value(Value::Table(error_table(
                    lua, text, false,
                )?))))
            };
            let active = lua
                .app_data_ref::<RunState>()
                .map(|s| s.active)
                .unwrap_or(false);
            if !active {
                return raise(b"redis.setresp can only be called inside a script invocation");
            }
            if args.len() != 1 {
                return raise(b"redis.setresp() requires one argument.");
            }
            let resp = match args.front() {
                Some(v @ (Value::Number(_) | Value::Integer(_))) => {
                    libs::number(v).unwrap_or(0.0) as i32
                }
                Some(Value::String(s)) => libs::str_to_number(&s.as_bytes())
                    .map(|n| n as i32)
                    .unwrap_or(0),
                _ => 0,
            };
            let protocol = match resp {
                2 => Protocol::Resp2,
                3 => Protocol::Resp3,
                _ => return raise(b"RESP version must be 2 or 3."),
            };
            if let Some(mut s) = lua.app_data_mut::<RunState>() {
                s.protocol = protocol;
            }
            ok_values(vec![])
        })?,
    )?;
    redis.raw_set(
        "set_repl",
        raw::function(lua, |lua, args| {
            let raise = |text: &[u8]| -> mlua::Result<super::raw::Outcome> {
                Ok(Err(Raise::Value(Value::Table(error_table(lua, text, false)?))))
            };
            let active = lua.app_data_ref::<RunState>().map(|s| s.active).unwrap_or(false);
            if !active {
                return raise(b"redis.set_repl can only be called inside a script invocation");
            }
            if args.len() != 1 {
                return raise(b"redis.set_repl() requires two arguments.");
            }
            let flags = match args.front() {
                Some(v @ (Value::Number(_) | Value::Integer(_))) => libs::number(v).unwrap_or(0.0) as i64,
                _ => 0,
            };
            if flags & !3 != 0 {
                return raise(b"Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
            }
            // Kiwi replicates through Raft, whole scripts; the flags are accepted.
            ok_values(vec![])
        })?,
    )?;
    for (name, v) in [
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.raw_set(name, v)?;
    }
    redis.raw_set(
        "replicate_commands",
        raw::function(lua, |_, _| ok_values(vec![Value::Boolean(true)]))?,
    )?;
    redis.raw_set(
        "breakpoint",
        raw::function(lua, |_, _| ok_values(vec![Value::Boolean(false)]))?,
    )?;
    redis.raw_set("debug", raw::function(lua, |_, _| ok_values(vec![]))?)?;
    globals.raw_set("redis", redis)?;
    Ok(())
}

/// `loadstring` and `load` that refuse binary chunks.
fn install_loaders(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    let loadstring: Function = globals.raw_get("loadstring")?;
    let original = loadstring.clone();
    globals.raw_set(
        "loadstring",
        raw::function(lua, move |lua, args| {
            if let Some(Value::String(s)) = args.front() {
                if s.as_bytes().first() == Some(&0x1b) {
                    return ok_values(vec![
                        Value::Nil,
                        Value::String(lua.create_string("attempt to load a binary chunk")?),
                    ]);
                }
            }
            Ok(Ok(original.call::<MultiValue>(args)?))
        })?,
    )?;
    globals.raw_set(
        "load",
        raw::function(lua, move |lua, args| {
            let Some(Value::Function(reader)) = args.front().cloned() else {
                return Ok(Err(Raise::Arg(
                    1,
                    format!(
                        "function expected, got {}",
                        type_name(args.front().unwrap_or(&Value::Nil))
                    ),
                )));
            };
            let mut code = Vec::new();
            // Bounded by the script's own reader; each piece is a string.
            loop {
                match reader.call::<Value>(())? {
                    Value::String(s) if !s.as_bytes().is_empty() => {
                        code.extend_from_slice(&s.as_bytes())
                    }
                    Value::Nil | Value::String(_) => break,
                    _ => {
                        return ok_values(vec![
                            Value::Nil,
                            Value::String(
                                lua.create_string("reader function must return a string")?,
                            ),
                        ]);
                    }
                }
            }
            if code.first() == Some(&0x1b) {
                return ok_values(vec![
                    Value::Nil,
                    Value::String(lua.create_string("attempt to load a binary chunk")?),
                ]);
            }
            let name = match args.get(1) {
                Some(Value::String(s)) => Value::String(s.clone()),
                _ => Value::String(lua.create_string("=(load)")?),
            };
            Ok(Ok(
                loadstring.call::<MultiValue>((lua.create_string(&code)?, name))?
            ))
        })?,
    )?;
    Ok(())
}

/// Make the globals and every library table read-only (see module docs).
fn protect(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    let real_of = lua.create_table()?;
    let readonly_write = raw::function(lua, |_, _| Ok(Err(Raise::msg(READONLY))))?;
    let make_proxy = |real: &Table| -> mlua::Result<Table> {
        let proxy = lua.create_table()?;
        let mt = lua.create_table()?;
        mt.raw_set("__index", real.clone())?;
        mt.raw_set("__newindex", readonly_write.clone())?;
        proxy.set_metatable(Some(mt))?;
        real_of.raw_set(proxy.clone(), real.clone())?;
        Ok(proxy)
    };
    // Library tables first, so the globals hold their proxies.
    for name in [
        "string",
        "table",
        "math",
        "coroutine",
        "cjson",
        "struct",
        "cmsgpack",
        "bit",
        "redis",
    ] {
        if let Value::Table(real) = globals.raw_get::<Value>(name)? {
            let proxy = make_proxy(&real)?;
            if name == "string" {
                // `("x"):upper()` reads through the string metatable.
                if let Some(mt) = globals
                    .raw_get::<Function>("getmetatable")?
                    .call::<Option<Table>>("")?
                {
                    mt.raw_set("__index", proxy.clone())?;
                }
            }
            globals.raw_set(name, proxy)?;
        }
    }
    let missing = raw::function(lua, |_, args| {
        let name = match args.get(1) {
            Some(Value::String(s)) => s.as_bytes().to_vec(),
            Some(v @ (Value::Number(_) | Value::Integer(_))) => {
                lua_number_text(libs::number(v).unwrap_or(0.0)).into_bytes()
            }
            _ => {
                return Ok(Err(Raise::msg(
                    "Second argument to luaProtectedTableError must be a string or number",
                )))
            }
        };
        let mut text = b"Script attempted to access nonexistent global variable '".to_vec();
        text.extend(name);
        text.push(b'\'');
        Ok(Err(Raise::Message(text)))
    })?;
    let globals_mt = lua.create_table()?;
    globals_mt.raw_set("__index", missing)?;
    globals.set_metatable(Some(globals_mt))?;
    let proxy_g = make_proxy(globals)?;
    globals.raw_set("_G", proxy_g.clone())?;

    // The raw accessors see through proxies and refuse writes.
    let real = {
        let real_of = real_of.clone();
        move |v: &Value| -> Option<Table> {
            match v {
                Value::Table(t) => real_of.raw_get::<Option<Table>>(t.clone()).ok().flatten(),
                _ => None,
            }
        }
    };
    let rawset: Function = globals.raw_get("rawset")?;
    let rawget: Function = globals.raw_get("rawget")?;
    let next: Function = globals.raw_get("next")?;
    let getmetatable: Function = globals.raw_get("getmetatable")?;
    let setmetatable: Function = globals.raw_get("setmetatable")?;
    let table_lib: Table = real_of.raw_get(globals.raw_get::<Table>("table")?)?;
    let insert: Function = table_lib.raw_get("insert")?;
    // Writers through a proxy raise the read-only error.
    let refusing = |f: Function| {
        let real = real.clone();
        raw::function(lua, move |lua, args| {
            if real(args.front().unwrap_or(&Value::Nil)).is_some() {
                return Ok(Err(Raise::Value(Value::String(
                    lua.create_string(READONLY)?,
                ))));
            }
            Ok(Ok(f.call::<MultiValue>(args)?))
        })
    };
    globals.raw_set("rawset", refusing(rawset)?)?;
    table_lib.raw_set("insert", refusing(insert)?)?;
    globals.raw_set("setmetatable", refusing(setmetatable)?)?;
    let see_through = |f: Function| {
        let real = real.clone();
        move |_: &Lua, args: MultiValue| -> mlua::Result<super::raw::Outcome> {
            let mut args = args;
            if let Some(r) = real(args.front().unwrap_or(&Value::Nil)) {
                if let Some(first) = args.get_mut(0) {
                    *first = Value::Table(r);
                }
            }
            Ok(Ok(f.call::<MultiValue>(args)?))
        }
    };
    globals.raw_set("rawget", raw::function(lua, see_through(rawget))?)?;
    globals.raw_set(
        "getmetatable",
        raw::function(lua, see_through(getmetatable))?,
    )?;
    let next_fn = raw::function(lua, see_through(next))?;
    globals.raw_set("next", next_fn.clone())?;
    let pairs: Function = globals.raw_get("pairs")?;
    {
        let real = real.clone();
        globals.raw_set(
            "pairs",
            raw::function(lua, move |_, args| {
                if real(args.front().unwrap_or(&Value::Nil)).is_some() {
                    let t = args.front().cloned().unwrap_or(Value::Nil);
                    return ok_values(vec![Value::Function(next_fn.clone()), t, Value::Nil]);
                }
                Ok(Ok(pairs.call::<MultiValue>(args)?))
            })?,
        )?;
    }
    lua.set_globals(proxy_g)?;
    Ok(())
}
