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

/// Whether `RAFT.FAULT` runs (`enable-fault-injection`), with the values
/// of Redis's `enable-debug-command`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaultInjection {
    /// Refused (the default): a fault breaks the cluster on purpose.
    #[default]
    No,
    Yes,
    /// Only from loopback and unix-socket clients.
    Local,
}

impl FaultInjection {
    pub fn parse(value: &str) -> Option<FaultInjection> {
        match value.to_ascii_lowercase().as_str() {
            "no" => Some(FaultInjection::No),
            "yes" => Some(FaultInjection::Yes),
            "local" => Some(FaultInjection::Local),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FaultInjection::No => "no",
            FaultInjection::Yes => "yes",
            FaultInjection::Local => "local",
        }
    }

    /// Whether a client at `addr` (as CLIENT LIST shows it) may inject faults.
    pub fn allows(self, addr: &str) -> bool {
        match self {
            FaultInjection::No => false,
            FaultInjection::Yes => true,
            // As Redis's islocalClient: loopback, or a unix socket (whose
            // clients have no IP address).
            FaultInjection::Local => addr
                .parse::<std::net::SocketAddr>()
                .map_or(true, |a| a.ip().is_loopback()),
        }
    }
}

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
    /// `enable-fault-injection`: whether `RAFT.FAULT` runs.
    pub fault_injection: FaultInjection,
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
            fault_injection: FaultInjection::No,
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
            (
                "enable-fault-injection",
                self.fault_injection.as_str().into(),
            ),
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
            "bind"
            | "port"
            | "dir"
            | "databases"
            | "unixsocket"
            | "unixsocketperm"
            | "enable-fault-injection" => return Err(ConfigSetError::Immutable),
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
