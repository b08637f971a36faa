//! The scripting state a server holds: one Lua interpreter, the script
//! cache, and which script runs now (for `BUSY` and SCRIPT KILL).
//!
//! Lock order: the engine takes the storage lock before [`Scripts::vm`],
//! never the other way round. SCRIPT KILL and the busy check only touch
//! `running`, so they answer while a script holds everything else.

use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};

use super::cache::{parse_shebang, sha1_hex, ScriptCache, ScriptFlags};
use super::functions::FunctionEngine;
use super::vm::ScriptVm;
use crate::resp::Reply;

/// What other clients get while a script runs past `busy-reply-threshold`.
pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// The same while a function runs.
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// What a call runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallKind {
    /// An EVAL script (`sha`, `body`).
    Eval,
    /// FCALL of the function of this name.
    Function(String),
}

/// A script or function call, as its command parsed it, ready for the
/// engine to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptCall {
    pub kind: CallKind,
    /// Lowercase SHA1 of `body`.
    pub sha: String,
    /// The whole EVAL body, shebang included (what a Raft entry carries).
    pub body: Bytes,
    pub flags: ScriptFlags,
    pub keys: Vec<Bytes>,
    pub args: Vec<Bytes>,
    /// EVAL_RO / EVALSHA_RO, or a `no-writes` shebang: write commands are
    /// refused and the script may run as a read.
    pub read_only: bool,
}

impl ScriptCall {
    /// EVAL's arguments `body numkeys key... arg...` (the command name
    /// excluded), with Redis's errors.
    pub fn parse(body: Bytes, rest: &[Bytes], ro_command: bool) -> Result<ScriptCall, String> {
        let (keys, args) = split_keys(rest)?;
        let flags = parse_shebang(&body).map_err(|e| format!("ERR {e}"))?.flags;
        if ro_command && !flags.eval_compat && !flags.no_writes {
            return Err("ERR Can not execute a script with write flag using *_ro command.".into());
        }
        Ok(ScriptCall {
            kind: CallKind::Eval,
            sha: sha1_hex(&body),
            read_only: ro_command || flags.no_writes,
            body,
            flags,
            keys,
            args,
        })
    }

    /// An FCALL of `name` (its flags known from its library).
    pub fn function(
        name: String,
        flags: ScriptFlags,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        ro_command: bool,
    ) -> ScriptCall {
        ScriptCall {
            kind: CallKind::Function(name),
            sha: String::new(),
            body: Bytes::new(),
            read_only: ro_command || flags.no_writes,
            flags,
            keys,
            args,
        }
    }

    /// The arguments of the command that runs this call on another node:
    /// EVAL with the body (never EVALSHA), or FCALL.
    pub fn as_command(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(3 + self.keys.len() + self.args.len());
        match &self.kind {
            CallKind::Eval => {
                out.push(b"EVAL".to_vec());
                out.push(self.body.to_vec());
            }
            CallKind::Function(name) => {
                out.push(b"FCALL".to_vec());
                out.push(name.as_bytes().to_vec());
            }
        }
        out.push(self.keys.len().to_string().into_bytes());
        out.extend(self.keys.iter().map(|k| k.to_vec()));
        out.extend(self.args.iter().map(|a| a.to_vec()));
        out
    }
}

/// `numkeys key... arg...` → keys and args.
pub fn split_keys(rest: &[Bytes]) -> Result<(Vec<Bytes>, Vec<Bytes>), &'static str> {
    let numkeys = rest
        .first()
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| n.parse::<i64>().ok())
        .ok_or("ERR value is not an integer or out of range")?;
    if numkeys < 0 {
        return Err("ERR Number of keys can't be negative");
    }
    let given = rest.len().saturating_sub(1);
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > given {
        return Err("ERR Number of keys can't be greater than number of args");
    }
    let tail = rest.get(1..).unwrap_or_default();
    let (keys, args) = tail.split_at(numkeys);
    Ok((keys.to_vec(), args.to_vec()))
}

/// The script that runs now.
#[derive(Debug)]
struct Running {
    started: Instant,
    client_id: u64,
    function: bool,
    /// For a function: its name and the command that called it (FUNCTION
    /// STATS).
    called: Option<(String, Vec<Bytes>)>,
    /// It ran a write command: killing it would leave half its work.
    wrote: bool,
    /// It runs as part of a replicated entry: every node must finish it.
    replicated: bool,
    kill: bool,
}

/// SCRIPT KILL's refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillError {
    NotBusy,
    Unkillable,
    /// A function runs and SCRIPT KILL was asked (or a script and
    /// FUNCTION KILL).
    WrongKind,
}

impl KillError {
    pub fn text(self, function_kill: bool) -> &'static str {
        match (self, function_kill) {
            (KillError::NotBusy, _) => "NOTBUSY No scripts in execution right now.",
            (KillError::Unkillable, _) => "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
            // Redis answers with the busy error of what runs.
            (KillError::WrongKind, false) => BUSY_FUNCTION,
            (KillError::WrongKind, true) => BUSY_EVAL,
        }
    }
}

/// The server's scripting state.
#[derive(Default)]
pub struct Scripts {
    vm: Mutex<Option<ScriptVm>>,
    /// FUNCTION libraries and their interpreter, loaded from storage on
    /// first use.
    functions: Mutex<Option<FunctionEngine>>,
    /// Libraries and functions loaded, as of the last change: FUNCTION
    /// STATS answers from them while a function holds the engine.
    function_counts: Mutex<(usize, usize)>,
    cache: Mutex<ScriptCache>,
    running: Mutex<Option<Running>>,
    /// Whether `running` holds a script: every command looks, without the lock.
    any_running: std::sync::atomic::AtomicBool,
    /// Woken when a script ends.
    idle: tokio::sync::Notify,
}

impl std::fmt::Debug for Scripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripts")
            .field("cached", &self.cache.lock().len())
            .finish()
    }
}

/// The interpreter, created on first use.
pub struct VmGuard<'a>(MutexGuard<'a, Option<ScriptVm>>);

impl VmGuard<'_> {
    pub fn vm(&mut self) -> Option<&mut ScriptVm> {
        self.0.as_mut()
    }
}

/// The function engine, loaded.
pub struct FunctionsGuard<'a>(MutexGuard<'a, Option<FunctionEngine>>, Option<&'a Scripts>);

impl FunctionsGuard<'_> {
    pub fn engine(&mut self) -> Option<&mut FunctionEngine> {
        self.0.as_mut()
    }
}

impl Drop for FunctionsGuard<'_> {
    fn drop(&mut self) {
        // Whatever the holder changed, the counts follow it.
        if let Some(engine) = self.0.as_ref() {
            let counts = (engine.libraries().count(), engine.function_count());
            if let Some(scripts) = self.1 {
                *scripts.function_counts.lock() = counts;
            }
        }
    }
}

impl Scripts {
    /// The function engine; on first use it is created and loaded with
    /// `stored()`, the libraries kept in storage.
    pub fn functions(
        &self,
        stored: impl FnOnce() -> Vec<Vec<u8>>,
    ) -> Result<FunctionsGuard<'_>, Reply> {
        let mut guard = self.functions.lock();
        if guard.is_none() {
            let mut engine = FunctionEngine::new()
                .map_err(|e| Reply::Error(format!("ERR cannot start the Lua interpreter: {e}")))?;
            for code in stored() {
                if let Err(e) = engine.load(Bytes::from(code), true) {
                    tracing::warn!(error = %e, "a stored FUNCTION library does not load");
                }
            }
            *guard = Some(engine);
        }
        Ok(FunctionsGuard(guard, Some(self)))
    }

    /// Forget the loaded libraries (the stored ones changed under them: a
    /// snapshot was installed); the next use loads them again.
    pub fn reload_functions(&self) {
        *self.functions.lock() = None;
    }

    /// The interpreter (created now if this is the first script), or
    /// the error that stopped its creation.
    pub fn vm(&self) -> Result<VmGuard<'_>, Reply> {
        let mut guard = self.vm.lock();
        if guard.is_none() {
            let vm = ScriptVm::new()
                .map_err(|e| Reply::Error(format!("ERR cannot start the Lua interpreter: {e}")))?;
            *guard = Some(vm);
        }
        Ok(VmGuard(guard))
    }

    /// Compile `body` (unless it is already) and cache it: EVAL and SCRIPT
    /// LOAD. Returns its SHA1, or Redis's compile error.
    pub fn load(&self, vm: &mut ScriptVm, body: &Bytes) -> Result<String, Reply> {
        let shebang = parse_shebang(body).map_err(|e| Reply::Error(format!("ERR {e}")))?;
        let sha = sha1_hex(body);
        if !vm.has_script(&sha) {
            let code = body.get(shebang.code_start..).unwrap_or_default();
            vm.compile_script(&sha, code)?;
        }
        self.cache.lock().insert(body.clone(), shebang.flags);
        Ok(sha)
    }

    /// EVALSHA's lookup: the body and flags of a cached script.
    pub fn lookup(&self, sha: &[u8]) -> Option<(Bytes, ScriptFlags)> {
        self.cache
            .lock()
            .get(sha)
            .map(|(_, s)| (s.body.clone(), s.flags))
    }

    /// Scripts in the cache (INFO's number_of_cached_scripts).
    pub fn cached_count(&self) -> usize {
        self.cache.lock().len()
    }

    pub fn exists(&self, sha: &[u8]) -> bool {
        self.cache.lock().get(sha).is_some()
    }

    /// SCRIPT FLUSH: the cache and the compiled scripts.
    pub fn flush(&self) {
        self.cache.lock().flush();
        if let Some(vm) = self.vm.lock().as_mut() {
            vm.flush_scripts();
        }
    }

    /// A script starts for client `client_id` (`function`: the name and
    /// command of a function call); the guard marks its end.
    pub fn start(
        &self,
        client_id: u64,
        function: Option<(String, Vec<Bytes>)>,
        replicated: bool,
    ) -> RunGuard<'_> {
        self.any_running
            .store(true, std::sync::atomic::Ordering::Release);
        *self.running.lock() = Some(Running {
            started: Instant::now(),
            client_id,
            function: function.is_some(),
            called: function,
            wrote: false,
            replicated,
            kill: false,
        });
        RunGuard { scripts: self }
    }

    /// The busy error for a command of client `client_id`: `Err(until)` while a
    /// script started less than `threshold` ago (wait, then ask again),
    /// `Ok(Some(text))` past it, `Ok(None)` when no script runs.
    pub fn busy(
        &self,
        client_id: u64,
        threshold: Duration,
    ) -> Result<Option<&'static str>, Instant> {
        let running = self.running.lock();
        let Some(r) = running.as_ref().filter(|r| r.client_id != client_id) else {
            return Ok(None);
        };
        let until = r.started + threshold;
        if Instant::now() < until {
            return Err(until);
        }
        Ok(Some(match r.function {
            true => BUSY_FUNCTION,
            false => BUSY_EVAL,
        }))
    }

    /// (libraries, functions) loaded, without waiting for a running
    /// function: `None` when they were never loaded.
    pub fn function_counts(&self) -> Option<(usize, usize)> {
        match self.functions.try_lock() {
            Some(guard) => guard
                .as_ref()
                .map(|e| (e.libraries().count(), e.function_count())),
            None => Some(*self.function_counts.lock()),
        }
    }

    /// The function running now: its name, its command, for how many ms.
    pub fn running_function(&self) -> Option<(String, Vec<Bytes>, i64)> {
        let running = self.running.lock();
        let r = running.as_ref()?;
        let (name, command) = r.called.clone()?;
        let ms = i64::try_from(r.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        Some((name, command, ms))
    }

    /// Whether a script runs now.
    pub fn is_running(&self) -> bool {
        self.any_running.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Wait until no script runs, or until `until`.
    pub async fn wait_idle(&self, until: Instant) {
        let notified = self.idle.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.is_running() {
            return;
        }
        let _ = tokio::time::timeout_at(until.into(), notified).await;
    }

    /// SCRIPT KILL (`function_kill`: FUNCTION KILL).
    pub fn kill(&self, function_kill: bool) -> Result<(), KillError> {
        let mut running = self.running.lock();
        let Some(r) = running.as_mut() else {
            return Err(KillError::NotBusy);
        };
        if r.function != function_kill {
            return Err(KillError::WrongKind);
        }
        if r.wrote || r.replicated {
            return Err(KillError::Unkillable);
        }
        r.kill = true;
        Ok(())
    }
}

/// A running script's handle: records writes, reads the kill flag, and
/// marks the end when dropped.
pub struct RunGuard<'a> {
    scripts: &'a Scripts,
}

impl RunGuard<'_> {
    pub fn wrote(&self) {
        if let Some(r) = self.scripts.running.lock().as_mut() {
            r.wrote = true;
        }
    }

    pub fn kill_requested(&self) -> bool {
        self.scripts
            .running
            .lock()
            .as_ref()
            .is_some_and(|r| r.kill && !r.wrote)
    }
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        *self.scripts.running.lock() = None;
        self.scripts
            .any_running
            .store(false, std::sync::atomic::Ordering::Release);
        self.scripts.idle.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn numkeys_as_redis() {
        assert_eq!(split_keys(&b(&["1", "k", "a"])), Ok((b(&["k"]), b(&["a"]))));
        assert_eq!(split_keys(&b(&["0"])), Ok((vec![], vec![])));
        assert_eq!(
            split_keys(&b(&["-1"])),
            Err("ERR Number of keys can't be negative")
        );
        assert_eq!(
            split_keys(&b(&["2", "k"])),
            Err("ERR Number of keys can't be greater than number of args")
        );
        assert_eq!(
            split_keys(&b(&["x"])),
            Err("ERR value is not an integer or out of range")
        );
    }

    #[test]
    fn kill_refuses_a_script_that_wrote() {
        let scripts = Scripts::default();
        assert_eq!(scripts.kill(false), Err(KillError::NotBusy));
        let run = scripts.start(7, None, false);
        assert_eq!(scripts.kill(true), Err(KillError::WrongKind));
        assert_eq!(scripts.busy(7, Duration::ZERO), Ok(None));
        assert_eq!(scripts.busy(8, Duration::ZERO), Ok(Some(BUSY_EVAL)));
        assert!(scripts.busy(8, Duration::from_secs(60)).is_err());
        run.wrote();
        assert_eq!(scripts.kill(false), Err(KillError::Unkillable));
        drop(run);
        let run = scripts.start(7, None, false);
        assert_eq!(scripts.kill(false), Ok(()));
        assert!(run.kill_requested());
        drop(run);
        assert!(!scripts.is_running());
    }
}
