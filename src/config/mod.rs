//! Settings: what the server starts with and what CONFIG GET/SET read and
//! change at run time.

use std::path::PathBuf;

use crate::resp::DEFAULT_MAX_BULK_LEN;
use crate::storage::Appendfsync;

pub mod compat;
mod rewrite;
#[rustfmt::skip]
mod redis_params;

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
    /// A client whose unprocessed input passes this is closed.
    pub client_query_buffer_limit: usize,
    pub client_output_buffer_limit: OutputBufferLimits,
    /// Seconds of idleness before TCP keepalive probes (0 = off).
    pub tcp_keepalive: u64,
    /// Without a password, refuse clients that are not on loopback.
    pub protected_mode: bool,
    /// Clients over TLS (`tls-port`, 0 = none) and its files.
    pub tls: TlsSettings,
    /// `metrics-port`: serve Prometheus's text format over HTTP on this
    /// port (0 = off; see `server/metrics.rs`).
    pub metrics_port: u16,
    /// `enable-fault-injection`: whether `RAFT.FAULT` runs.
    pub fault_injection: FaultInjection,
    /// When the write-ahead log is synced to disk (redis.conf's name).
    pub appendfsync: Appendfsync,
    /// RocksDB's block cache and memtable budget (`block-cache-size`,
    /// `memtable-budget`; see `storage::memory`).
    pub memory: crate::storage::memory::MemoryConfig,
    /// `busy-reply-threshold` (alias `lua-time-limit`): how long a script
    /// runs before other clients are answered BUSY.
    pub busy_reply_threshold: std::time::Duration,
    /// `notify-keyspace-events` classes (see `storage::events`).
    pub notify_keyspace_events: u32,
    /// `tracking-table-max-keys`: keys CLIENT TRACKING remembers at most
    /// (0: no limit); past it, keys are forgotten and invalidated.
    pub tracking_table_max_keys: u64,
    /// Redis's parameters Kiwi accepts, stores and reports but does not
    /// act on (see [`compat`]).
    pub compat: compat::CompatParams,
    /// The redis.conf the server started from, which CONFIG REWRITE
    /// updates (none: CONFIG REWRITE refuses, as Redis does).
    pub config_file: Option<PathBuf>,
    /// `hll-sparse-max-bytes`: a sparse HyperLogLog that would grow past
    /// this many bytes (header included) turns dense.
    pub hll_sparse_max_bytes: u64,
    /// redis.conf's `user <name> <rules...>` lines, applied at start.
    pub acl_users: Vec<Vec<String>>,
}

/// Redis's `tls-*` settings for clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub port: u16,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_cert_file: Option<PathBuf>,
    pub auth_clients: TlsAuthClients,
    /// `tls-cluster`: raft peer links over mutual TLS (Redis's name for its
    /// cluster bus).
    pub cluster: bool,
    /// What this node presents when it dials a peer; the server's pair when
    /// unset.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

/// `tls-auth-clients`: whether a client must present a certificate signed
/// by `tls-ca-cert-file`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsAuthClients {
    #[default]
    Yes,
    No,
    Optional,
}

impl TlsAuthClients {
    pub fn parse(value: &str) -> Option<TlsAuthClients> {
        match value.to_ascii_lowercase().as_str() {
            "yes" => Some(TlsAuthClients::Yes),
            "no" => Some(TlsAuthClients::No),
            "optional" => Some(TlsAuthClients::Optional),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TlsAuthClients::Yes => "yes",
            TlsAuthClients::No => "no",
            TlsAuthClients::Optional => "optional",
        }
    }
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
            client_query_buffer_limit: 1 << 30,
            client_output_buffer_limit: OutputBufferLimits::default(),
            tcp_keepalive: 300,
            protected_mode: true,
            tls: TlsSettings::default(),
            metrics_port: 0,
            fault_injection: FaultInjection::No,
            appendfsync: Appendfsync::default(),
            memory: crate::storage::memory::MemoryConfig::default(),
            busy_reply_threshold: std::time::Duration::from_millis(5000),
            notify_keyspace_events: 0,
            tracking_table_max_keys: 1_000_000,
            compat: compat::CompatParams::default(),
            config_file: None,
            hll_sparse_max_bytes: crate::hll::DEFAULT_SPARSE_MAX_BYTES,
            acl_users: Vec::new(),
        }
    }

    /// Every parameter CONFIG GET knows, with its current value: Kiwi's
    /// own, then Redis's others (see [`compat`]).
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let mut entries = self.native_entries();
        let native: std::collections::HashSet<&str> = entries.iter().map(|(n, _)| *n).collect();
        let others: Vec<_> = self
            .compat
            .entries()
            .filter(|(name, _)| !native.contains(name))
            .collect();
        entries.extend(others);
        entries
    }

    fn native_entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("bind", self.bind.clone()),
            ("port", self.port.to_string()),
            ("dir", self.dir.display().to_string()),
            ("requirepass", self.requirepass.clone().unwrap_or_default()),
            ("proto-max-bulk-len", self.proto_max_bulk_len.to_string()),
            ("maxclients", self.maxclients.to_string()),
            ("io-threads", self.io_threads.to_string()),
            ("hz", self.hz.to_string()),
            (
                "busy-reply-threshold",
                self.busy_reply_threshold.as_millis().to_string(),
            ),
            (
                "lua-time-limit",
                self.busy_reply_threshold.as_millis().to_string(),
            ),
            (
                "tracking-table-max-keys",
                self.tracking_table_max_keys.to_string(),
            ),
            (
                "hll-sparse-max-bytes",
                self.hll_sparse_max_bytes.to_string(),
            ),
            (
                "notify-keyspace-events",
                crate::storage::events::flags_text(self.notify_keyspace_events),
            ),
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
            (
                "client-query-buffer-limit",
                self.client_query_buffer_limit.to_string(),
            ),
            (
                "client-output-buffer-limit",
                self.client_output_buffer_limit.to_string(),
            ),
            ("tcp-keepalive", self.tcp_keepalive.to_string()),
            ("protected-mode", yes_no(self.protected_mode).into()),
            ("tls-port", self.tls.port.to_string()),
            ("metrics-port", self.metrics_port.to_string()),
            ("tls-cert-file", path_text(&self.tls.cert_file)),
            ("tls-key-file", path_text(&self.tls.key_file)),
            ("tls-ca-cert-file", path_text(&self.tls.ca_cert_file)),
            ("tls-auth-clients", self.tls.auth_clients.name().into()),
            ("tls-cluster", yes_no(self.tls.cluster).into()),
            (
                "tls-client-cert-file",
                path_text(&self.tls.client_cert_file),
            ),
            ("tls-client-key-file", path_text(&self.tls.client_key_file)),
            ("databases", crate::storage::DATABASES.to_string()),
            (
                "enable-fault-injection",
                self.fault_injection.as_str().into(),
            ),
            ("appendfsync", self.appendfsync.name().into()),
            ("block-cache-size", self.memory.block_cache.to_string()),
            ("memtable-budget", self.memory.memtables.to_string()),
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
                self.maxclients = parse_in_range(value, 1, u64::from(u32::MAX))? as usize;
            }
            "client-query-buffer-limit" => {
                let v = parse_memory(value)
                    .ok_or(ConfigSetError::Invalid("argument must be a memory value"))?;
                if v < 1024 * 1024 || v > i64::MAX as u64 {
                    return Err(ConfigSetError::Invalid(
                        "argument must be between 1048576 and 9223372036854775807 inclusive",
                    ));
                }
                self.client_query_buffer_limit = usize::try_from(v).unwrap_or(usize::MAX);
            }
            "client-output-buffer-limit" => self.client_output_buffer_limit.set(value)?,
            "hll-sparse-max-bytes" => {
                // Redis reads an empty memory value as 0.
                let v = if value.is_empty() {
                    0
                } else {
                    parse_memory(value)
                        .ok_or(ConfigSetError::Invalid("argument must be a memory value"))?
                };
                if v > i64::MAX as u64 {
                    return Err(ConfigSetError::Invalid(
                        "argument must be between 0 and 9223372036854775807 inclusive",
                    ));
                }
                self.hll_sparse_max_bytes = v;
            }
            "tcp-keepalive" => self.tcp_keepalive = parse_in_range(value, 0, i32::MAX as u64)?,
            "protected-mode" => self.protected_mode = parse_yes_no(value)?,
            "appendfsync" => {
                self.appendfsync = Appendfsync::parse(value)
                    .ok_or(ConfigSetError::Invalid(Appendfsync::INVALID))?;
            }
            "block-cache-size" => self.memory.block_cache = parse_budget(value)?,
            "memtable-budget" => self.memory.memtables = parse_budget(value)?,
            "hz" => {
                let hz: u32 = value.parse().map_err(|_| {
                    ConfigSetError::Invalid("argument couldn't be parsed into an integer")
                })?;
                self.hz = hz.clamp(1, 500);
            }
            "timeout" => self.timeout = parse_in_range(value, 0, i32::MAX as u64)?,
            "tracking-table-max-keys" => {
                self.tracking_table_max_keys = parse_in_range(value, 0, i64::MAX as u64)?
            }
            "notify-keyspace-events" => {
                self.notify_keyspace_events =
                    crate::storage::events::parse_flags(value).ok_or(ConfigSetError::Invalid(
                        "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
                    ))?;
            }
            "busy-reply-threshold" | "lua-time-limit" => {
                let ms = parse_in_range(value, 0, i64::MAX as u64)?;
                self.busy_reply_threshold = std::time::Duration::from_millis(ms);
            }
            // The files are read again by CONFIG SET's caller (see
            // `TlsState::configure`). Listening on another port, or
            // switching a node's raft links to or from TLS while its peers
            // do not, needs a restart.
            "tls-cert-file" => self.tls.cert_file = non_empty_path(value),
            "tls-key-file" => self.tls.key_file = non_empty_path(value),
            "tls-ca-cert-file" => self.tls.ca_cert_file = non_empty_path(value),
            "tls-client-cert-file" => self.tls.client_cert_file = non_empty_path(value),
            "tls-client-key-file" => self.tls.client_key_file = non_empty_path(value),
            "tls-auth-clients" => {
                self.tls.auth_clients =
                    TlsAuthClients::parse(value).ok_or(ConfigSetError::Invalid(
                        "argument(s) must be one of the following: no, yes, optional",
                    ))?
            }
            "tls-port" | "tls-cluster" | "metrics-port" => return Err(ConfigSetError::Immutable),
            "bind"
            | "port"
            | "dir"
            | "databases"
            | "unixsocket"
            | "unixsocketperm"
            | "enable-fault-injection" => return Err(ConfigSetError::Immutable),
            other => self.compat.set(other, value, false)?,
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
    #[error("{0}")]
    Text(String),
    #[error("argument must be between {min} and {max} inclusive")]
    Range { min: u64, max: u64 },
}

/// A path directive's value: `""` means none (redis.conf and CONFIG SET).
pub(crate) fn non_empty_path(value: &str) -> Option<PathBuf> {
    Some(PathBuf::from(value)).filter(|p| !p.as_os_str().is_empty())
}

/// Whether a CONFIG SET of `name` means reading the TLS files again.
pub fn reloads_tls(name: &str) -> bool {
    matches!(
        name,
        "tls-cert-file"
            | "tls-key-file"
            | "tls-ca-cert-file"
            | "tls-client-cert-file"
            | "tls-client-key-file"
            | "tls-auth-clients"
    )
}

fn path_text(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}

fn parse_yes_no(value: &str) -> Result<bool, ConfigSetError> {
    match value.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(ConfigSetError::Invalid("argument must be 'yes' or 'no'")),
    }
}

/// An integer setting with Redis's bounds and texts.
fn parse_in_range(value: &str, min: u64, max: u64) -> Result<u64, ConfigSetError> {
    let n: i128 = value
        .parse()
        .map_err(|_| ConfigSetError::Invalid("argument couldn't be parsed into an integer"))?;
    if n < i128::from(min) || n > i128::from(max) {
        return Err(ConfigSetError::Range { min, max });
    }
    u64::try_from(n).map_err(|_| ConfigSetError::Range { min, max })
}

/// The class of client an output buffer limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientClass {
    Normal,
    Replica,
    Pubsub,
}

/// One class's `client-output-buffer-limit`: close a client whose pending
/// replies pass `hard` bytes, or stay above `soft` for `soft_seconds`
/// (0 = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: u64,
}

impl OutputLimit {
    pub fn is_unlimited(&self) -> bool {
        self.hard == 0 && self.soft == 0
    }
}

/// `client-output-buffer-limit` for every class, Redis's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputBufferLimits {
    pub normal: OutputLimit,
    pub replica: OutputLimit,
    pub pubsub: OutputLimit,
}

impl Default for OutputBufferLimits {
    fn default() -> Self {
        OutputBufferLimits {
            normal: OutputLimit::default(),
            replica: OutputLimit {
                hard: 256 << 20,
                soft: 64 << 20,
                soft_seconds: 60,
            },
            pubsub: OutputLimit {
                hard: 32 << 20,
                soft: 8 << 20,
                soft_seconds: 60,
            },
        }
    }
}

impl OutputBufferLimits {
    pub fn get(&self, class: ClientClass) -> OutputLimit {
        match class {
            ClientClass::Normal => self.normal,
            ClientClass::Replica => self.replica,
            ClientClass::Pubsub => self.pubsub,
        }
    }

    /// Apply `<class> <hard> <soft> <soft seconds>`, repeated: all groups
    /// are checked before any is applied, as Redis does.
    pub fn set(&mut self, value: &str) -> Result<(), ConfigSetError> {
        let words: Vec<&str> = value.split_ascii_whitespace().collect();
        if !words.len().is_multiple_of(4) {
            return Err(ConfigSetError::Invalid(
                "Wrong number of arguments in buffer limit configuration.",
            ));
        }
        let mut next = *self;
        for group in words.chunks_exact(4) {
            let [class, hard, soft, seconds] = group else {
                continue;
            };
            let class = match class.to_ascii_lowercase().as_str() {
                "normal" => ClientClass::Normal,
                "slave" | "replica" => ClientClass::Replica,
                "pubsub" => ClientClass::Pubsub,
                _ => {
                    return Err(ConfigSetError::Invalid(
                        "Invalid client class specified in buffer limit configuration.",
                    ))
                }
            };
            let bad = ConfigSetError::Invalid(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
            );
            let (Some(hard), Some(soft), Ok(soft_seconds)) = (
                parse_memory(hard),
                parse_memory(soft),
                seconds.parse::<u64>(),
            ) else {
                return Err(bad);
            };
            let limit = OutputLimit {
                hard,
                soft,
                soft_seconds,
            };
            match class {
                ClientClass::Normal => next.normal = limit,
                ClientClass::Replica => next.replica = limit,
                ClientClass::Pubsub => next.pubsub = limit,
            }
        }
        *self = next;
        Ok(())
    }
}

impl std::fmt::Display for OutputBufferLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let classes = [
            ("normal", self.normal),
            ("slave", self.replica),
            ("pubsub", self.pubsub),
        ];
        for (i, (name, l)) in classes.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{name} {} {} {}", l.hard, l.soft, l.soft_seconds)?;
        }
        Ok(())
    }
}

/// A memory budget of RocksDB's: a memory value of at least 1 MB.
fn parse_budget(value: &str) -> Result<usize, ConfigSetError> {
    let bytes =
        parse_memory(value).ok_or(ConfigSetError::Invalid("argument must be a memory value"))?;
    if bytes < crate::storage::memory::MIN_BUDGET as u64 || bytes > i64::MAX as u64 {
        return Err(ConfigSetError::Invalid(
            "argument must be between 1048576 and 9223372036854775807 inclusive",
        ));
    }
    Ok(usize::try_from(bytes).unwrap_or(usize::MAX))
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
