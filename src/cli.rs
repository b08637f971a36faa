//! The `kiwi-server` command line, shared by the Rust binary and the
//! Python console script.
//!
//! It follows redis-server's grammar so tools that drive redis-server
//! (pytest-redis, scripts, supervisors) can drive Kiwi unchanged:
//! `kiwi-server [/path/to/redis.conf] [--directive value ...]`, where a
//! directive takes every following word up to the next `--` (so
//! `--save ""` and `--save 900 1 300 10` both work), and the config file
//! holds the same directives one per line. clap does not fit that grammar
//! (a positional config file plus variable-arity directives shared with a
//! file format), so the parsing is done here, with redis.conf's quoting.

use std::io::Write;
use std::path::PathBuf;

use crate::cmd::REDIS_VERSION;
use crate::config::{parse_memory, ConfigSetError, FaultInjection, RuntimeConfig, TlsAuthClients};
use crate::raft::{RaftOptions, RaftSecret};
use crate::resp::split_args;
use crate::server::Server;
use crate::storage::DATABASES;

const HELP: &str = "\
kiwi-server: a Redis-compatible key-value server on RocksDB.

Usage: kiwi-server [/path/to/redis.conf] [--directive value ...]
       kiwi-server -v | --version
       kiwi-server --check-dir DIR
       kiwi-server -h | --help

Directives (also valid as `directive value` lines in the config file):
  --port N                 TCP port (default 7379; 0 picks a free one)
  --bind ADDR [ADDR ...]   address to listen on (default 127.0.0.1; the first is used)
  --dir PATH               data directory, created if missing (default ./kiwi-data)
  --requirepass PASS       clients must AUTH with PASS
  --unixsocket PATH        also listen on a unix socket
  --unixsocketperm OCTAL   permissions of the unix socket (e.g. 700)
  --maxclients N           most clients connected at once (default 10000)
  --io-threads N           threads serving clients (default: half the cores,
                           1 to 4; a Raft node runs at least 2)
  --timeout SECONDS        close clients idle this long (default 0 = never)
  --tcp-keepalive SECONDS  TCP keepalive probes after this idle time (default 300)
  --protected-mode yes|no  without requirepass, refuse clients that are not on
                           127.0.0.1 or ::1 (default yes)
  --appendfsync always|everysec|no  when the write-ahead log is synced to disk:
                           before each reply, once a second (default), or when
                           the OS decides (see Durability in README.md)
  --block-cache-size SIZE  RocksDB's block cache, shared by all data (default
                           128mb; data beyond it and the memtables stays on disk)
  --memtable-budget SIZE   all memtables together (default 128mb)
  --client-query-buffer-limit SIZE  close a client whose unprocessed input
                           passes SIZE (default 1gb)
  --client-output-buffer-limit CLASS HARD SOFT SECONDS  close a client whose
                           pending replies pass HARD, or SOFT for SECONDS
                           (classes normal, replica, pubsub; as Redis)
  --tls-port N             also serve clients over TLS on port N (0 = off)
  --metrics-port N         serve metrics in Prometheus's text format at
                           http://BIND:N/metrics (0 = off)
  --tls-cert-file PATH     the server's certificate chain (PEM)
  --tls-key-file PATH      its private key (PEM)
  --tls-ca-cert-file PATH  CA certificates that client certificates must chain to
  --tls-auth-clients yes|no|optional  require client certificates (default yes)
  --tls-cluster yes|no     raft peer links over mutual TLS with the files above:
                           each node's certificate must chain to
                           tls-ca-cert-file (default no)
  --tls-client-cert-file PATH, --tls-client-key-file PATH
                           what a node presents when it dials a peer
                           (default: tls-cert-file and tls-key-file)
  --hz N                   active-expiry sweeps per second (default 10)
  --proto-max-bulk-len N   largest bulk string in a request (default 512mb)
  --databases N            number of databases; Kiwi has 16, so N <= 16
  --loglevel LEVEL         debug, verbose, notice (default) or warning
  --logfile PATH           log to PATH instead of standard error (\"\" = stderr)
  --pidfile PATH           write the process id to PATH while running
  --daemonize no           Kiwi stays in the foreground (yes is refused)

Raft (replicate the keyspace across nodes; see RAFT.* in README.md):
  --node-id N              this node's raft id (turns raft on; needs --raft-addr)
  --raft-addr HOST:PORT    address of this node's raft listener (port 0 picks one)
  --raft-peer ID=HOST:PORT another member, for --raft-init (repeatable, or
                           several words after one --raft-peer)
  --raft-init              initialise a new cluster of this node and its peers
                           (ignored once the node is initialised)
  --raft-timeout-ms MS     longest a client waits for a quorum before
                           CLUSTERDOWN (default 2000)
  --raft-secret SECRET     the secret every node of the cluster shares; peers
                           prove they know it before anything else is read.
                           Without it the raft port accepts anyone, so it may
                           only listen on loopback. Prefer the config file:
                           the command line is visible to other local users.
  --enable-fault-injection no|yes|local
                           allow RAFT.FAULT (default no; local: only from
                           loopback and unix-socket clients)

Every other redis.conf 7.0 directive (save, appendonly, maxmemory,
hash-max-listpack-entries, list-compress-depth, ...) is accepted when its
value is one redis-server accepts, reported by CONFIG GET, and otherwise
ignored with a logged note (Kiwi persists every write to RocksDB's
write-ahead log and has no in-memory encodings to tune). Any other
directive is refused.

kiwi-server stops cleanly on SIGINT or SIGTERM.

--check-dir DIR verifies a stopped server's data directory without changing
it (RocksDB checksums, every key's metadata against its elements, a Raft
node's log against its state) and prints a report. Exit status: 0 clean,
1 problems found, 2 the directory could not be checked (missing, in use,
not Kiwi's, or written by a newer Kiwi).
";

/// One setting: its name and words, from the config file or the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    /// Where it came from, for error messages.
    pub origin: String,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    Help,
    Version,
    /// `--check-dir DIR`: verify a data directory offline.
    CheckDir(PathBuf),
    Run(Box<Settings>),
}

/// Everything `kiwi-server` starts with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: RuntimeConfig,
    pub loglevel: String,
    pub logfile: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    /// Directives accepted but without effect, logged at startup.
    pub ignored: Vec<String>,
    /// Run as a Raft node (`--node-id` and friends).
    pub raft: Option<RaftOptions>,
}

/// The raft directives, gathered before they are checked together.
#[derive(Debug, Default)]
struct RaftDirectives {
    node_id: Option<u64>,
    addr: Option<String>,
    peers: Vec<(u64, String)>,
    init: bool,
    timeout_ms: Option<u64>,
    secret: Option<RaftSecret>,
    /// Some raft directive other than `raft-secret` was given (a shared
    /// config file may carry the secret for a standalone server too).
    any: bool,
}

/// Split `argv` (program name first) into the config file and directives.
pub fn parse_invocation(argv: &[String]) -> Result<Invocation, String> {
    let mut words = argv.iter().skip(1).peekable();
    match words.peek().map(|w| w.as_str()) {
        Some("-h" | "--help") => return Ok(Invocation::Help),
        Some("-v" | "--version") => return Ok(Invocation::Version),
        Some("--check-dir") => {
            return match argv.get(2..) {
                Some([dir]) if !dir.is_empty() => Ok(Invocation::CheckDir(PathBuf::from(dir))),
                _ => Err("--check-dir takes one data directory and nothing else".into()),
            }
        }
        _ => {}
    }
    let mut directives = Vec::new();
    let mut config_file = None;
    if let Some(first) = words.peek() {
        if !first.starts_with("--") {
            let path = PathBuf::from(words.next().map(String::as_str).unwrap_or_default());
            directives.extend(read_config_file(&path)?);
            // CONFIG REWRITE writes back here (absolute: the server may chdir).
            config_file = Some(std::path::absolute(&path).unwrap_or(path));
        }
    }
    let mut current: Option<Directive> = None;
    for word in words {
        if let Some(name) = word.strip_prefix("--").filter(|n| !n.is_empty()) {
            directives.extend(current.take());
            current = Some(Directive {
                name: name.to_ascii_lowercase(),
                args: Vec::new(),
                origin: format!("command line option '--{name}'"),
            });
        } else if let Some(d) = current.as_mut() {
            d.args.push(word.clone());
        } else {
            return Err(format!(
                "unexpected argument '{word}' (directives start with --)"
            ));
        }
    }
    directives.extend(current);
    let mut settings = settings_from(&directives)?;
    settings.config.config_file = config_file;
    Ok(Invocation::Run(Box::new(settings)))
}

/// Read a redis.conf-style file: `directive value ...` per line, `#` comments.
pub fn read_config_file(path: &PathBuf) -> Result<Vec<Directive>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = split_args(line.as_bytes()).ok_or_else(|| {
            format!(
                "{}:{}: unbalanced quotes in '{line}'",
                path.display(),
                number + 1
            )
        })?;
        let mut words = words
            .into_iter()
            .map(|w| String::from_utf8_lossy(&w).into_owned());
        let Some(name) = words.next() else { continue };
        out.push(Directive {
            name: name.to_ascii_lowercase(),
            args: words.collect(),
            origin: format!("{}:{} '{line}'", path.display(), number + 1),
        });
    }
    Ok(out)
}

/// Apply directives in order (later ones win) to the defaults.
pub fn settings_from(directives: &[Directive]) -> Result<Settings, String> {
    let mut settings = Settings {
        config: RuntimeConfig::new("./kiwi-data"),
        loglevel: "notice".into(),
        logfile: None,
        pidfile: None,
        ignored: Vec::new(),
        raft: None,
    };
    let mut raft = RaftDirectives::default();
    for d in directives {
        let applied = match d.name.as_str() {
            "node-id" | "raft-addr" | "raft-peer" | "raft-init" | "raft-timeout-ms"
            | "raft-secret" => apply_raft(&mut raft, d),
            _ => apply(&mut settings, d),
        };
        applied.map_err(|e| format!("{}: {e}", d.origin))?;
    }
    settings.raft = raft_options(raft)?;
    Ok(settings)
}

fn apply_raft(r: &mut RaftDirectives, d: &Directive) -> Result<(), String> {
    if d.name == "raft-secret" {
        // `raft-secret ""` means none, as `requirepass ""` does.
        r.secret = RaftSecret::new(one(d)?);
        return Ok(());
    }
    r.any = true;
    match d.name.as_str() {
        "node-id" => r.node_id = Some(number(d)?),
        "raft-addr" => r.addr = Some(one(d)?.to_string()),
        "raft-peer" => {
            if d.args.is_empty() {
                return Err("'raft-peer' needs ID=HOST:PORT".into());
            }
            for peer in &d.args {
                let (id, addr) = peer
                    .split_once('=')
                    .filter(|(_, addr)| !addr.is_empty())
                    .ok_or_else(|| format!("'{peer}' is not ID=HOST:PORT"))?;
                let id = id.parse().map_err(|_| format!("'{id}' is not a node id"))?;
                r.peers.push((id, addr.to_string()));
            }
        }
        "raft-init" => {
            r.init = match d.args.as_slice() {
                [] => true,
                [v] if v.eq_ignore_ascii_case("yes") => true,
                [v] if v.eq_ignore_ascii_case("no") => false,
                _ => return Err("'raft-init' takes no value (or yes/no)".into()),
            }
        }
        "raft-timeout-ms" => r.timeout_ms = Some(number(d)?),
        _ => {}
    }
    Ok(())
}

fn raft_options(r: RaftDirectives) -> Result<Option<RaftOptions>, String> {
    if !r.any {
        return Ok(None);
    }
    let Some(id) = r.node_id else {
        return Err("raft directives need --node-id".into());
    };
    let Some(addr) = r.addr else {
        return Err("--node-id needs --raft-addr HOST:PORT".into());
    };
    if r.peers.iter().any(|(peer, _)| *peer == id) {
        return Err(format!("--raft-peer names this node's own id {id}"));
    }
    let mut options = RaftOptions::new(id, addr);
    options.peers = r.peers;
    options.init = r.init;
    options.secret = r.secret;
    if let Some(ms) = r.timeout_ms {
        options.timing.client_timeout = std::time::Duration::from_millis(ms.max(1));
    }
    Ok(Some(options))
}

fn one(d: &Directive) -> Result<&str, String> {
    match d.args.as_slice() {
        [value] => Ok(value),
        _ => Err(format!("'{}' takes exactly one value", d.name)),
    }
}

fn optional_path(d: &Directive) -> Result<Option<PathBuf>, String> {
    Ok(crate::config::non_empty_path(one(d)?))
}

fn number<T: std::str::FromStr>(d: &Directive) -> Result<T, String> {
    let value = one(d)?;
    value
        .parse()
        .map_err(|_| format!("'{}' needs a number, not '{value}'", d.name))
}

fn apply(s: &mut Settings, d: &Directive) -> Result<(), String> {
    let config = &mut s.config;
    match d.name.as_str() {
        "port" => config.port = number(d)?,
        "bind" => {
            let first = d.args.first().ok_or("'bind' needs an address")?;
            // redis.conf's "* -::*" means every interface.
            config.bind = if first == "*" {
                "0.0.0.0".into()
            } else {
                first.trim_start_matches('-').to_string()
            };
        }
        "dir" => config.dir = PathBuf::from(one(d)?),
        // Checked when the engine starts (with `aclfile`, as Redis).
        "user" => {
            if d.args.is_empty() {
                return Err("'user' needs a user name and its rules".into());
            }
            config.acl_users.push(d.args.clone());
        }
        "requirepass" => config.requirepass = Some(one(d)?.to_string()).filter(|p| !p.is_empty()),
        "enable-fault-injection" => {
            let value = one(d)?;
            config.fault_injection = FaultInjection::parse(value).ok_or_else(|| {
                format!("'enable-fault-injection' takes no, yes or local, not '{value}'")
            })?;
        }
        "maxclients" => config.maxclients = number(d)?,
        "io-threads" => config.io_threads = number::<usize>(d)?.clamp(1, 128),
        "timeout" => config.timeout = number(d)?,
        "tls-port" => config.tls.port = number(d)?,
        "metrics-port" => config.metrics_port = number(d)?,
        "tls-cert-file" => config.tls.cert_file = optional_path(d)?,
        "tls-key-file" => config.tls.key_file = optional_path(d)?,
        "tls-ca-cert-file" => config.tls.ca_cert_file = optional_path(d)?,
        "tls-cluster" => {
            config.tls.cluster = match one(d)?.to_ascii_lowercase().as_str() {
                "yes" => true,
                "no" => false,
                other => return Err(format!("'tls-cluster' takes yes or no, not '{other}'")),
            }
        }
        "tls-client-cert-file" => config.tls.client_cert_file = optional_path(d)?,
        "tls-client-key-file" => config.tls.client_key_file = optional_path(d)?,
        "tls-auth-clients" => {
            let value = one(d)?;
            config.tls.auth_clients = TlsAuthClients::parse(value).ok_or_else(|| {
                format!("'tls-auth-clients' takes yes, no or optional, not '{value}'")
            })?;
        }
        // Parsed exactly as CONFIG SET parses them.
        name @ ("client-query-buffer-limit"
        | "client-output-buffer-limit"
        | "tcp-keepalive"
        | "protected-mode"
        | "appendfsync"
        | "block-cache-size"
        | "memtable-budget"
        | "busy-reply-threshold"
        | "lua-time-limit"
        | "notify-keyspace-events"
        | "tracking-table-max-keys"
        | "hll-sparse-max-bytes") => config
            .set(name, &d.args.join(" "))
            .map_err(|e| format!("'{name} {}': {e}", d.args.join(" ")))?,
        "hz" => config.hz = number::<u32>(d)?.clamp(1, 500),
        "proto-max-bulk-len" => {
            let value = one(d)?;
            config.proto_max_bulk_len =
                parse_memory(value).ok_or_else(|| format!("invalid size '{value}'"))? as usize;
        }
        "unixsocket" => {
            config.unixsocket = Some(PathBuf::from(one(d)?)).filter(|p| !p.as_os_str().is_empty())
        }
        "unixsocketperm" => {
            let value = one(d)?;
            config.unixsocketperm = Some(
                u32::from_str_radix(value, 8)
                    .map_err(|_| format!("invalid octal permissions '{value}'"))?,
            );
        }
        "databases" => {
            let n: u32 = number(d)?;
            if n == 0 || n > u32::from(DATABASES) {
                return Err(format!(
                    "Kiwi has {DATABASES} databases; 'databases {n}' is not supported"
                ));
            }
        }
        "loglevel" => {
            let level = one(d)?.to_ascii_lowercase();
            if !["debug", "verbose", "notice", "warning", "nothing"].contains(&level.as_str()) {
                return Err(format!("invalid log level '{level}'"));
            }
            s.loglevel = level;
        }
        "logfile" => s.logfile = Some(PathBuf::from(one(d)?)).filter(|p| !p.as_os_str().is_empty()),
        "pidfile" => s.pidfile = Some(PathBuf::from(one(d)?)).filter(|p| !p.as_os_str().is_empty()),
        "daemonize" => match one(d)?.to_ascii_lowercase().as_str() {
            "no" => {}
            "yes" => return Err(
                "kiwi-server does not daemonize; run it in the foreground or under a supervisor"
                    .into(),
            ),
            other => return Err(format!("'daemonize' takes yes or no, not '{other}'")),
        },
        name => {
            let value = d.args.join(" ");
            match config.compat.set(name, &value, true) {
                Ok(()) => s.ignored.push(format!("{name} {value}")),
                Err(ConfigSetError::Unknown) => {
                    return Err(format!(
                        "unknown directive '{name}' (see kiwi-server --help)"
                    ))
                }
                Err(e) => return Err(format!("'{name} {value}': {e}")),
            }
        }
    }
    Ok(())
}

/// The line `kiwi-server --version` prints, shaped like redis-server's so
/// tools that parse `v=` find a compatible Redis version.
pub fn version_line() -> String {
    format!(
        "Redis server v={REDIS_VERSION} sha=00000000:0 malloc=libc bits={} build=kiwi-{}",
        usize::BITS,
        crate::version()
    )
}

fn init_logging(level: &str, logfile: Option<&PathBuf>) -> Result<(), String> {
    let filter = match level {
        "debug" => "debug",
        "verbose" => "info",
        "warning" => "warn",
        "nothing" => "off",
        _ => "info",
    };
    let env_filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt().with_env_filter(env_filter);
    let _ = match logfile {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .try_init()
        }
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    Ok(())
}

/// Run the server with these command-line arguments (`argv[0]` first)
/// until SIGINT/SIGTERM. Returns the process exit code.
pub fn run<I, T>(argv: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString>,
{
    let argv: Vec<String> = argv
        .into_iter()
        .map(|a| a.into().to_string_lossy().into_owned())
        .collect();
    let settings = match parse_invocation(&argv) {
        Ok(Invocation::Help) => {
            print!("{HELP}");
            return 0;
        }
        Ok(Invocation::Version) => {
            println!("{}", version_line());
            return 0;
        }
        Ok(Invocation::CheckDir(dir)) => return crate::check::run_cli(&dir),
        Ok(Invocation::Run(settings)) => *settings,
        Err(e) => {
            eprintln!("kiwi-server: {e}");
            return 2;
        }
    };
    if let Err(e) = init_logging(&settings.loglevel, settings.logfile.as_ref()) {
        eprintln!("kiwi-server: {e}");
        return 1;
    }
    for note in &settings.ignored {
        tracing::info!("accepted and ignored for compatibility: {note}");
    }
    if let Some(pidfile) = &settings.pidfile {
        let written =
            std::fs::File::create(pidfile).and_then(|mut f| writeln!(f, "{}", std::process::id()));
        if let Err(e) = written {
            eprintln!(
                "kiwi-server: cannot write pid file {}: {e}",
                pidfile.display()
            );
            return 1;
        }
    }
    let code = serve(settings.config, settings.raft);
    if let Some(pidfile) = &settings.pidfile {
        let _ = std::fs::remove_file(pidfile);
    }
    code
}

fn serve(config: RuntimeConfig, raft: Option<RaftOptions>) -> i32 {
    let started = match raft {
        Some(raft) => Server::start_raft(config, raft),
        None => Server::start(config),
    };
    let mut server = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kiwi-server: {e}");
            tracing::error!("{e}");
            return 1;
        }
    };
    if let Err(e) = server.catch_signals() {
        eprintln!("kiwi-server: {e}");
        return 1;
    }
    // The same words redis-server logs, for tools that wait for them.
    tracing::info!("Ready to accept connections on {}", server.addr());
    println!(
        "Kiwi {} ready to accept connections on {}",
        crate::version(),
        server.addr()
    );
    let code = match server.wait_for_signal() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kiwi-server: {e}");
            1
        }
    };
    server.hand_over_leadership();
    server.stop();
    tracing::info!("kiwi server stopped");
    code
}
