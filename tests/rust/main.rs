//! Kiwi's Rust integration tests, one binary (RocksDB links once).

mod check_dir_tests;
mod cli_tests;
mod command_tests;
mod common;
mod dir_identity_tests;
mod durability_tests;
mod key_count_tests;
mod key_lock_tests;
mod metrics_tests;
mod raft_apply_tests;
mod raft_auth_tests;
mod raft_membership_tests;
mod raft_network_partition_tests;
mod raft_safety_tests;
mod raft_storage_tests;
mod resp_tests;
mod script_tests;
mod set_sampling_tests;
mod storage_tests;
