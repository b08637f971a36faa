//! The few C-API functions the sandbox needs, and the bridge that lets Rust
//! library functions raise errors exactly as Redis's C functions do.
//!
//! Why raw C functions at all: Redis's `redis.call`, `cjson.decode`, ...
//! are C functions. Their errors carry the caller's position
//! (`user_script:1: ...`) or none, may be tables (`{err=...}`), and the
//! error handler finds the script's line by looking one C frame up. An mlua
//! callback can only raise its own wrapped error type, and a Lua wrapper
//! would add a frame (and lose the line under `return f(...)`, a tail
//! call). So each Rust function is wrapped in [`trampoline`], a C closure
//! that calls it and, when it returns the [`SENTINEL`] marker, raises the
//! error the Redis way — from a C frame, like the original.
//!
//! Everything unsafe in the scripting module is here. The C functions keep
//! no Rust value with a destructor alive across a call that may raise
//! (`lua_error` unwinds with `longjmp`).

use std::os::raw::c_int;

use mlua::{ffi, Function, IntoLuaMulti, LightUserData, Lua, MultiValue, Value};

/// Marks a Rust function's "raise this" return (first value).
static SENTINEL: u8 = 0;

fn sentinel() -> LightUserData {
    LightUserData(std::ptr::addr_of!(SENTINEL) as *mut std::ffi::c_void)
}

/// An error a Rust library function raises into Lua.
#[derive(Debug)]
pub enum Raise {
    /// `luaL_error` style: the caller's position, then the message.
    Message(Vec<u8>),
    /// `lua_error` with this value as is (an error table, or a string raised
    /// without a position as the core's own errors are).
    Value(Value),
    /// `luaL_argerror(narg, extramsg)`: `bad argument #n to 'name' (extramsg)`.
    Arg(i32, String),
}

impl Raise {
    pub fn msg(text: impl Into<Vec<u8>>) -> Raise {
        Raise::Message(text.into())
    }
}

/// What a Rust library function returns.
pub type Outcome = Result<MultiValue, Raise>;

/// Turn a Rust function into a Lua C function that raises as Redis's do.
pub fn function<F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> mlua::Result<Outcome> + Send + 'static,
{
    let inner = lua.create_function(move |lua, args: MultiValue| {
        Ok(match f(lua, args)? {
            Ok(values) => values,
            Err(Raise::Message(text)) => {
                (sentinel(), 1, lua.create_string(&text)?).into_lua_multi(lua)?
            }
            Err(Raise::Value(v)) => (sentinel(), 2, v).into_lua_multi(lua)?,
            Err(Raise::Arg(n, text)) => (sentinel(), 3, n, text).into_lua_multi(lua)?,
        })
    })?;
    // SAFETY: pushes a C closure over the one argument exec_raw pushed.
    unsafe {
        lua.exec_raw(inner, |state| {
            ffi::lua_pushcclosure(state, trampoline, 1);
        })
    }
}

/// Calls upvalue 1 with this call's arguments; raises when it asks to.
unsafe extern "C-unwind" fn trampoline(state: *mut ffi::lua_State) -> c_int {
    let nargs = ffi::lua_gettop(state);
    if ffi::lua_checkstack(state, 3) == 0 {
        ffi::luaL_error(state, c"stack overflow".as_ptr());
    }
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, nargs, ffi::LUA_MULTRET);
    let top = ffi::lua_gettop(state);
    if top >= 3 && ffi::lua_touserdata(state, 1) == sentinel().0 {
        match ffi::lua_tointeger(state, 2) {
            1 => {
                ffi::luaL_where(state, 1);
                ffi::lua_pushvalue(state, 3);
                ffi::lua_concat(state, 2);
                ffi::lua_error(state);
            }
            3 => {
                let narg = ffi::lua_tointeger(state, 3) as c_int;
                // The message stays on the stack (so alive) until the raise.
                let msg = ffi::lua_tolstring(state, 4, std::ptr::null_mut());
                ffi::luaL_argerror(state, narg, msg);
                return 0;
            }
            _ => {
                ffi::lua_pushvalue(state, 3);
                ffi::lua_error(state);
            }
        }
    }
    top
}

/// Redis's `pcall`: an error raised as a table with a string `err` field is
/// returned as that string (Redis 7 raises tables from `redis.call`; older
/// scripts expect `pcall` to hand back the text).
pub fn redis_pcall(lua: &Lua) -> mlua::Result<Function> {
    // SAFETY: a plain C function, no upvalues.
    unsafe { lua.create_c_function(pcall_impl) }
}

unsafe extern "C-unwind" fn pcall_impl(state: *mut ffi::lua_State) -> c_int {
    let argc = ffi::lua_gettop(state);
    if ffi::lua_checkstack(state, 3) == 0 {
        ffi::luaL_error(state, c"stack overflow".as_ptr());
    }
    if argc == 0 {
        // Redis calls its own `true` placeholder here.
        ffi::lua_pushboolean(state, 0);
        ffi::lua_pushstring(state, c"attempt to call a boolean value".as_ptr());
        return 2;
    }
    ffi::lua_pushboolean(state, 1);
    ffi::lua_insert(state, 1);
    if ffi::lua_pcall(state, argc - 1, ffi::LUA_MULTRET, 0) != 0 {
        ffi::lua_remove(state, 1);
        if ffi::lua_istable(state, -1) != 0 {
            ffi::lua_getfield(state, -1, c"err".as_ptr());
            if ffi::lua_isstring(state, -1) != 0 {
                ffi::lua_replace(state, -2);
            }
        }
        ffi::lua_pushboolean(state, 0);
        ffi::lua_insert(state, 1);
    }
    ffi::lua_gettop(state)
}

/// `cjson.null` and friends: the NULL light userdata.
pub fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}
