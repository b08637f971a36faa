//! Kiwi: a Redis-compatible key-value engine on RocksDB.
//!
//! The layers, from the wire inwards: [`resp`] frames requests and encodes
//! replies, [`server`] runs connections on tokio, [`engine`] runs commands
//! from the table in [`cmd`], and [`storage`] keeps the data in RocksDB.

pub mod acl;
pub mod check;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod decoders;
pub mod engine;
pub mod geo;
pub mod hll;
pub mod num;
pub mod raft;
pub mod rdb;
pub mod resp;
pub mod script;
pub mod server;
pub mod storage;
pub mod tls;

#[cfg(feature = "python")]
mod python;

pub use config::RuntimeConfig;
pub use engine::Engine;
pub use server::Server;

/// Errors of starting and running a node.
#[derive(Debug, thiserror::Error)]
pub enum KiwiError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    #[error("{0}")]
    Config(String),
}

/// Kiwi's own version.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
