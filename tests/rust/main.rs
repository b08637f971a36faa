//! Kiwi's Rust integration tests, one binary (RocksDB links once).

mod cli_tests;
mod command_tests;
mod common;
mod resp_tests;
mod storage_tests;
