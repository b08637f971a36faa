//! INFO: the server's state in Redis 7.0's sections and field names, with
//! Kiwi's figures (RocksDB's data has no allocator statistics, so memory
//! fields report the process's resident memory).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::server::REDIS_VERSION;
use super::{Call, CmdResult};
use crate::engine::{wall_clock, Kind, Shared};
use crate::resp::Reply;
use crate::storage::DATABASES;

/// The sections INFO prints when asked for none (or `default`): all but
/// the per-command ones.
fn is_default(section: &str) -> bool {
    !matches!(section, "commandstats" | "latencystats")
}

/// INFO stats' fields, in Redis 7.0's order.
const STATS_FIELDS: &[&str] = &[
    "total_connections_received",
    "total_commands_processed",
    "instantaneous_ops_per_sec",
    "total_net_input_bytes",
    "total_net_output_bytes",
    "total_net_repl_input_bytes",
    "total_net_repl_output_bytes",
    "instantaneous_input_kbps",
    "instantaneous_output_kbps",
    "instantaneous_input_repl_kbps",
    "instantaneous_output_repl_kbps",
    "rejected_connections",
    "sync_full",
    "sync_partial_ok",
    "sync_partial_err",
    "expired_keys",
    "expired_stale_perc",
    "expired_time_cap_reached_count",
    "expire_cycle_cpu_milliseconds",
    "evicted_keys",
    "evicted_clients",
    "total_eviction_exceeded_time",
    "current_eviction_exceeded_time",
    "keyspace_hits",
    "keyspace_misses",
    "pubsub_channels",
    "pubsub_patterns",
    "pubsubshard_channels",
    "latest_fork_usec",
    "total_forks",
    "migrate_cached_sockets",
    "slave_expires_tracked_keys",
    "active_defrag_hits",
    "active_defrag_misses",
    "active_defrag_key_hits",
    "active_defrag_key_misses",
    "total_active_defrag_time",
    "current_active_defrag_time",
    "tracking_total_keys",
    "tracking_total_items",
    "tracking_total_prefixes",
    "unexpected_error_replies",
    "total_error_replies",
    "dump_payload_sanitizations",
    "total_reads_processed",
    "total_writes_processed",
    "io_threaded_reads_processed",
    "io_threaded_writes_processed",
    "reply_buffer_shrinks",
    "reply_buffer_expands",
];

/// Every section, in Redis's order.
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

pub fn info(call: &mut Call<'_, '_>) -> CmdResult {
    let wanted: Vec<String> = call.args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    Ok(Reply::Verbatim(render(call.engine, wanted)?))
}

/// INFO's text for the sections `wanted` (lower case; none: the default
/// ones): what the command answers and the metrics endpoint reads.
pub fn render(engine: &Shared, mut wanted: Vec<String>) -> CmdResult<String> {
    if wanted.iter().any(|w| w == "all" || w == "everything") {
        wanted = ALL_SECTIONS.iter().map(|s| s.to_string()).collect();
    } else if wanted.is_empty() || wanted.iter().any(|w| w == "default") {
        wanted.extend(
            ALL_SECTIONS
                .iter()
                .filter(|s| is_default(s))
                .map(|s| s.to_string()),
        );
    }
    let mut out = String::new();
    for section in ALL_SECTIONS {
        if !wanted.iter().any(|w| w == section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        info_section(engine, section, &mut out)?;
    }
    Ok(out)
}

fn info_section(engine: &Shared, section: &str, out: &mut String) -> CmdResult<()> {
    let title = match section {
        "cpu" => "CPU".to_string(),
        _ => {
            let mut t = section.to_string();
            t[..1].make_ascii_uppercase();
            t
        }
    };
    let _ = write!(out, "# {title}\r\n");
    let mut field = |k: &str, v: &dyn std::fmt::Display| {
        let _ = write!(out, "{k}:{v}\r\n");
    };
    match section {
        "server" => {
            let uptime = engine.uptime_secs();
            let hz = engine.config.read().hz;
            let (now_s, now_us) = wall_clock();
            field("redis_version", &REDIS_VERSION);
            field("kiwi_version", &env!("CARGO_PKG_VERSION"));
            field("kiwi_disk_format", &crate::storage::DISK_FORMAT);
            field("redis_git_sha1", &"00000000");
            field("redis_git_dirty", &0);
            field("redis_build_id", &"0");
            field("redis_mode", &"standalone");
            field("os", &std::env::consts::OS);
            field("arch_bits", &(usize::BITS));
            field("monotonic_clock", &"POSIX clock_gettime");
            field("multiplexing_api", &"epoll");
            field("atomicvar_api", &"c11-builtin");
            field("gcc_version", &"0.0.0");
            field("process_id", &std::process::id());
            field("process_supervised", &"no");
            field("run_id", &engine.run_id);
            field("tcp_port", &engine.tcp_port.load(Ordering::Relaxed));
            field("server_time_usec", &(now_s * 1_000_000 + now_us));
            field("uptime_in_seconds", &uptime);
            field("uptime_in_days", &(uptime / 86_400));
            field("hz", &hz);
            field("configured_hz", &hz);
            field("io_threads_active", &0);
            // Redis's 24-bit LRU clock, in seconds.
            field("lru_clock", &(now_s & ((1 << 24) - 1)));
            field(
                "executable",
                &std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
            let config_file = engine
                .config
                .read()
                .config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            field("config_file", &config_file);
        }
        "clients" => {
            field("connected_clients", &engine.clients.lock().len());
            field("cluster_connections", &0);
            field("maxclients", &engine.config.read().maxclients);
            field("client_recent_max_input_buffer", &0);
            field("client_recent_max_output_buffer", &0);
            field(
                "blocked_clients",
                &engine.stats.blocked_clients.load(Ordering::Relaxed),
            );
            field("tracking_clients", &engine.tracking.client_count());
            field("clients_in_timeout_table", &0);
        }
        "memory" => {
            let rss = resident_memory();
            let total = total_system_memory();
            let scripts = engine.scripts.cached_count();
            let (libraries, functions) = engine.scripts.function_counts().unwrap_or((0, 0));
            for (name, value) in [
                ("used_memory", rss.to_string()),
                ("used_memory_human", human_bytes(rss)),
                ("used_memory_rss", rss.to_string()),
                ("used_memory_rss_human", human_bytes(rss)),
                ("used_memory_peak", rss.to_string()),
                ("used_memory_peak_human", human_bytes(rss)),
                ("used_memory_peak_perc", "100.00%".into()),
                ("used_memory_overhead", "0".into()),
                ("used_memory_startup", "0".into()),
                ("used_memory_dataset", rss.to_string()),
                ("used_memory_dataset_perc", "100.00%".into()),
                ("allocator_allocated", rss.to_string()),
                ("allocator_active", rss.to_string()),
                ("allocator_resident", rss.to_string()),
                ("total_system_memory", total.to_string()),
                ("total_system_memory_human", human_bytes(total)),
                ("used_memory_lua", "0".into()),
                ("used_memory_vm_eval", "0".into()),
                ("used_memory_lua_human", "0B".into()),
                ("used_memory_scripts_eval", "0".into()),
                ("number_of_cached_scripts", scripts.to_string()),
                ("number_of_functions", functions.to_string()),
                ("number_of_libraries", libraries.to_string()),
                ("used_memory_vm_functions", "0".into()),
                ("used_memory_vm_total", "0".into()),
                ("used_memory_vm_total_human", "0B".into()),
                ("used_memory_functions", "0".into()),
                ("used_memory_scripts", "0".into()),
                ("used_memory_scripts_human", "0B".into()),
                ("maxmemory", "0".into()),
                ("maxmemory_human", "0B".into()),
                ("maxmemory_policy", "noeviction".into()),
                ("allocator_frag_ratio", "1.00".into()),
                ("allocator_frag_bytes", "0".into()),
                ("allocator_rss_ratio", "1.00".into()),
                ("allocator_rss_bytes", "0".into()),
                ("rss_overhead_ratio", "1.00".into()),
                ("rss_overhead_bytes", "0".into()),
                ("mem_fragmentation_ratio", "1.00".into()),
                ("mem_fragmentation_bytes", "0".into()),
                ("mem_not_counted_for_evict", "0".into()),
                ("mem_replication_backlog", "0".into()),
                ("mem_total_replication_buffers", "0".into()),
                ("mem_clients_slaves", "0".into()),
                ("mem_clients_normal", "0".into()),
                ("mem_cluster_links", "0".into()),
                ("mem_aof_buffer", "0".into()),
                ("mem_allocator", "libc".into()),
                ("active_defrag_running", "0".into()),
                ("lazyfree_pending_objects", "0".into()),
                ("lazyfreed_objects", "0".into()),
            ] {
                field(name, &value);
            }
            // RocksDB's share of it, against block-cache-size and
            // memtable-budget.
            let (cache, memtables) = engine.storage().memory_usage();
            field("kiwi_block_cache_bytes", &cache);
            field("kiwi_memtable_bytes", &memtables);
        }
        "persistence" => {
            let saves = &engine.saves;
            field("loading", &0);
            field("async_loading", &0);
            for name in [
                "current_cow_peak",
                "current_cow_size",
                "current_cow_size_age",
                "current_fork_perc",
                "current_save_keys_processed",
                "current_save_keys_total",
            ] {
                field(name, &0);
            }
            field("rdb_changes_since_last_save", &saves.changes_since_save());
            field(
                "rdb_bgsave_in_progress",
                &u8::from(saves.in_progress.load(Ordering::Relaxed)),
            );
            field(
                "rdb_last_save_time",
                &saves.last_save_s.load(Ordering::Relaxed),
            );
            let status = if saves.last_ok.load(Ordering::Relaxed) {
                "ok"
            } else {
                "err"
            };
            field("rdb_last_bgsave_status", &status);
            field(
                "rdb_last_bgsave_time_sec",
                &saves.last_duration_s.load(Ordering::Relaxed),
            );
            for name in [
                "rdb_current_bgsave_time_sec",
                "rdb_saves",
                "rdb_last_cow_size",
                "rdb_last_load_keys_expired",
                "rdb_last_load_keys_loaded",
                "aof_enabled",
                "aof_rewrite_in_progress",
                "aof_rewrite_scheduled",
                "aof_last_rewrite_time_sec",
                "aof_current_rewrite_time_sec",
            ] {
                let value: i64 = match name {
                    "aof_last_rewrite_time_sec" | "aof_current_rewrite_time_sec" => -1,
                    "rdb_current_bgsave_time_sec" => -1,
                    _ => 0,
                };
                field(name, &value);
            }
            for (name, value) in [
                ("aof_last_bgrewrite_status", "ok"),
                ("aof_rewrites", "0"),
                ("aof_rewrites_consecutive_failures", "0"),
                ("aof_last_write_status", "ok"),
                ("aof_last_cow_size", "0"),
                ("module_fork_in_progress", "0"),
                ("module_fork_last_cow_size", "0"),
            ] {
                field(name, &value);
            }
            field(
                "kiwi_checkpoint_dir",
                &engine.storage().checkpoint_path().display(),
            );
        }
        "stats" => {
            let s = &engine.stats;
            let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            let hub = &engine.pubsub;
            // Redis's fields in its order; what Kiwi has no use for is 0.
            let known: [(&str, u64); 11] = [
                ("total_connections_received", load(&s.connections_received)),
                ("total_commands_processed", load(&s.commands_processed)),
                ("rejected_connections", load(&s.rejected_connections)),
                ("expired_keys", load(&s.expired_keys)),
                ("keyspace_hits", load(&s.keyspace_hits)),
                ("keyspace_misses", load(&s.keyspace_misses)),
                ("pubsub_channels", hub.active(Kind::Channel) as u64),
                ("pubsub_patterns", hub.active(Kind::Pattern) as u64),
                ("pubsubshard_channels", hub.active(Kind::Shard) as u64),
                ("total_error_replies", load(&engine.observer.total_errors)),
                ("tracking_total_prefixes", 0),
            ];
            for name in STATS_FIELDS {
                let value = known.iter().find(|(k, _)| k == name).map_or(0, |(_, v)| *v);
                field(name, &value);
            }
            // Keys commands touched without holding their lock: 0 unless a
            // command's declared keys are wrong (tests check it stays 0).
            field("kiwi_lock_scope_misses", &engine.storage().scope_misses());
        }
        "replication" => {
            field("role", &"master");
            field("connected_slaves", &0);
            field("master_failover_state", &"no-failover");
            field("master_replid", &engine.run_id);
            field(
                "master_replid2",
                &"0000000000000000000000000000000000000000",
            );
            field("master_repl_offset", &0);
            field("second_repl_offset", &-1);
            field("repl_backlog_active", &0);
            field("repl_backlog_size", &1_048_576);
            field("repl_backlog_first_byte_offset", &0);
            field("repl_backlog_histlen", &0);
        }
        "cpu" => {
            let (user, sys) = cpu_seconds();
            field("used_cpu_sys", &format_args!("{sys:.6}"));
            field("used_cpu_user", &format_args!("{user:.6}"));
            field("used_cpu_sys_children", &"0.000000");
            field("used_cpu_user_children", &"0.000000");
            field("used_cpu_sys_main_thread", &format_args!("{sys:.6}"));
            field("used_cpu_user_main_thread", &format_args!("{user:.6}"));
        }
        "modules" => {}
        "commandstats" => {
            for (name, calls, usec, rejected, failed) in engine.observer.command_stats() {
                let per_call = if calls == 0 {
                    0.0
                } else {
                    usec as f64 / calls as f64
                };
                field(
                    &format!("cmdstat_{name}"),
                    &format_args!(
                        "calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}"
                    ),
                );
            }
        }
        "latencystats" => {
            let percentiles: Vec<f64> = engine
                .config
                .read()
                .compat
                .text("latency-tracking-info-percentiles")
                .split_ascii_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            for name in engine.observer.measured_commands() {
                let values: Vec<String> = percentiles
                    .iter()
                    .filter_map(|p| {
                        let v = engine.observer.percentile(&name, *p)?;
                        Some(format!("p{p}={v:.3}"))
                    })
                    .collect();
                field(
                    &format!("latency_percentiles_usec_{name}"),
                    &values.join(","),
                );
            }
        }
        "errorstats" => {
            for (code, count) in engine.observer.error_stats() {
                field(&format!("errorstat_{code}"), &format_args!("count={count}"));
            }
        }
        "cluster" => field("cluster_enabled", &0),
        "keyspace" => {
            // The committed counts, in constant time (see storage's
            // counts.rs); like Redis's, they include expired keys not yet
            // deleted.
            let map = engine.storage().db_map();
            for db in 0..DATABASES {
                let count = engine.storage().key_count(map.physical(db));
                let (keys, expires) = (count.keys, count.volatile);
                if keys > 0 {
                    field(
                        &format!("db{db}"),
                        &format!("keys={keys},expires={expires},avg_ttl=0"),
                    );
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// This process's user and system CPU time in seconds (Linux's
/// /proc/self/stat, in clock ticks of 1/100 s).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    (ticks(11), ticks(12))
}

/// The machine's memory (Linux's /proc/meminfo), in bytes.
fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

pub(super) fn resident_memory() -> u64 {
    // /proc/self/statm: size resident ... in pages.
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn human_bytes(n: u64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < units.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", units[unit])
    }
}
