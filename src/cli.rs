//! The `kiwi-server` command line, shared by the Rust binary and the
//! Python console script.

use std::path::PathBuf;

use clap::Parser;

use crate::cmd::REDIS_VERSION;
use crate::config::{parse_memory, RuntimeConfig};
use crate::server::Server;

/// Kiwi: a Redis-compatible key-value server on RocksDB.
#[derive(Debug, Parser)]
#[command(name = "kiwi-server", disable_version_flag = true)]
pub struct Args {
    /// TCP port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 7379)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Data directory (created if missing); RocksDB keeps everything here.
    #[arg(long, default_value = "./kiwi-data")]
    pub dir: PathBuf,
    /// Require clients to AUTH with this password.
    #[arg(long)]
    pub requirepass: Option<String>,
    /// Largest bulk string a request may carry (bytes, or 512mb-style).
    #[arg(long, default_value = "512mb")]
    pub proto_max_bulk_len: String,
    /// Most clients connected at once.
    #[arg(long, default_value_t = 10_000)]
    pub maxclients: usize,
    /// Active-expiry sweeps per second.
    #[arg(long, default_value_t = 10)]
    pub hz: u32,
    /// Log level: debug, verbose, notice or warning (Redis's names).
    #[arg(long, default_value = "notice")]
    pub loglevel: String,
    /// Print the version and exit.
    #[arg(long, short = 'v')]
    pub version: bool,
}

impl Args {
    pub fn into_config(self) -> Result<RuntimeConfig, String> {
        let mut config = RuntimeConfig::new(self.dir);
        config.port = self.port;
        config.bind = self.bind;
        config.requirepass = self.requirepass.filter(|p| !p.is_empty());
        config.proto_max_bulk_len = parse_memory(&self.proto_max_bulk_len)
            .ok_or_else(|| format!("invalid --proto-max-bulk-len '{}'", self.proto_max_bulk_len))?
            as usize;
        config.maxclients = self.maxclients;
        config.hz = self.hz.clamp(1, 500);
        Ok(config)
    }
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

fn init_logging(level: &str) {
    let filter = match level {
        "debug" => "debug",
        "verbose" => "info",
        "warning" => "warn",
        _ => "info",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// Run the server with these command-line arguments (`argv[0]` first)
/// until SIGINT/SIGTERM. Returns the process exit code.
pub fn run<I, T>(argv: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = match Args::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    if args.version {
        println!("{}", version_line());
        return 0;
    }
    init_logging(&args.loglevel);
    let config = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kiwi-server: {e}");
            return 2;
        }
    };
    let mut server = match Server::start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kiwi-server: {e}");
            return 1;
        }
    };
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
    server.stop();
    tracing::info!("kiwi server stopped");
    code
}
