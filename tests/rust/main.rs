//! Kiwi's Rust integration tests, one binary (RocksDB links once).

mod common;
mod resp_tests;
mod storage_tests;
mod command_tests;
