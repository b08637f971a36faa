//! Settings: what the server starts with and what CONFIG GET/SET read and
//! change at run time.

use std::path::PathBuf;

use crate::resp::DEFAULT_MAX_BULK_LEN;

/// Threads serving clients unless `io-threads` says otherwise: half the
/// cores, 1 to 4. Writes take one storage lock, so more threads only help
/// reads, and on a 2-core machine a second thread costs more in lock
/// hand-offs than it gives (measured with redis-benchmark, 50 clients:
/// one thread is 5-40% faster on every write and on unpipelined reads,
/// 30% slower on pipelined GET; bench/RESULTS.md).
pub fn default_io_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get() / 2)
        .clamp(1, 4)
}

/// Threads of a Raft node: at least two, so a log append waiting on the
/// disk never holds up heartbeats and client traffic together.
pub const MIN_RAFT_IO_THREADS: usize = 2;

/// Settings of one node. CONFIG SET changes the mutable ones in place.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub bind: String,
    pub port: u16,
    pub dir: PathBuf,
    pub requirepass: Option<String>,
    pub proto_max_bulk_len: usize,
    pub maxclients: usize,
    /// Active-expiry sweeps per second.
    pub hz: u32,
    /// Idle seconds before a client is closed (0 = never).
    pub timeout: u64,
    /// Also listen on this unix socket.
    pub unixsocket: Option<PathBuf>,
    pub unixsocketperm: Option<u32>,
    /// Threads serving clients (redis.conf's `io-threads`): tokio workers
    /// (a Raft node runs at least [`MIN_RAFT_IO_THREADS`]).
    pub io_threads: usize,
}

impl RuntimeConfig {
    pub fn new(dir: impl Into<PathBuf>) -> RuntimeConfig {
        RuntimeConfig {
            bind: "127.0.0.1".into(),
            port: 7379,
            dir: dir.into(),
            requirepass: None,
            proto_max_bulk_len: DEFAULT_MAX_BULK_LEN,
            maxclients: 10_000,
            hz: 10,
            timeout: 0,
            unixsocket: None,
            unixsocketperm: None,
            io_threads: default_io_threads(),
        }
    }

    /// Every parameter CONFIG GET knows, with its current value.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("bind", self.bind.clone()),
            ("port", self.port.to_string()),
            ("dir", self.dir.display().to_string()),
            ("requirepass", self.requirepass.clone().unwrap_or_default()),
            ("proto-max-bulk-len", self.proto_max_bulk_len.to_string()),
            ("maxclients", self.maxclients.to_string()),
            ("io-threads", self.io_threads.to_string()),
            ("hz", self.hz.to_string()),
            ("timeout", self.timeout.to_string()),
            (
                "unixsocket",
                self.unixsocket
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            (
                "unixsocketperm",
                format!("{:o}", self.unixsocketperm.unwrap_or(0)),
            ),
            ("databases", crate::storage::DATABASES.to_string()),
            ("save", String::new()),
            ("appendonly", "no".into()),
            ("maxmemory", "0".into()),
            ("maxmemory-policy", "noeviction".into()),
        ]
    }

    /// Apply `CONFIG SET name value`. Errors are the text after
    /// `ERR CONFIG SET failed (possibly related to argument '<name>') - `.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigSetError> {
        match name {
            "requirepass" => {
                self.requirepass = (!value.is_empty()).then(|| value.to_string());
            }
            "proto-max-bulk-len" => {
                let v = parse_memory(value).ok_or(ConfigSetError::Invalid(
                    "argument couldn't be parsed into an integer",
                ))?;
                if v < 1024 * 1024 {
                    return Err(ConfigSetError::Invalid(
                        "argument must be between 1048576 and 9223372036854775807 inclusive",
                    ));
                }
                self.proto_max_bulk_len = v as usize;
            }
            "maxclients" => {
                self.maxclients = value.parse().map_err(|_| {
                    ConfigSetError::Invalid("argument couldn't be parsed into an integer")
                })?;
            }
            "hz" => {
                let hz: u32 = value.parse().map_err(|_| {
                    ConfigSetError::Invalid("argument couldn't be parsed into an integer")
                })?;
                self.hz = hz.clamp(1, 500);
            }
            "timeout" => {
                self.timeout = value.parse().map_err(|_| {
                    ConfigSetError::Invalid("argument couldn't be parsed into an integer")
                })?;
            }
            // Accepted for compatibility; Kiwi persists through RocksDB instead.
            "save" | "appendonly" | "maxmemory" | "maxmemory-policy" => {}
            "bind" | "port" | "dir" | "databases" | "unixsocket" | "unixsocketperm" => {
                return Err(ConfigSetError::Immutable)
            }
            _ => return Err(ConfigSetError::Unknown),
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigSetError {
    #[error("Unknown option or number of arguments for CONFIG SET")]
    Unknown,
    #[error("can't set immutable config")]
    Immutable,
    #[error("{0}")]
    Invalid(&'static str),
}

/// Parse `512mb`-style memory sizes as redis.conf does.
pub fn parse_memory(value: &str) -> Option<u64> {
    let lower = value.to_ascii_lowercase();
    let (digits, mult) = [
        ("gb", 1u64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suffix, mult)| lower.strip_suffix(suffix).map(|d| (d.to_string(), *mult)))
    .unwrap_or((lower.clone(), 1));
    digits.parse::<u64>().ok()?.checked_mul(mult)
}
