//! What the server observes about the commands it runs: calls and time per
//! command and subcommand (INFO commandstats), error replies by code (INFO
//! errorstats), slow commands (SLOWLOG) and latency spikes (LATENCY).
//!
//! The per-command counters are atomics in a table built once, so counting
//! a call takes no lock; the slow log and the latency events are touched
//! only by commands past their thresholds.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

/// Redis keeps at most this many arguments of a slow command…
const SLOWLOG_MAX_ARGC: usize = 32;
/// …and this many bytes of each.
const SLOWLOG_MAX_STRING: usize = 128;
/// Samples LATENCY HISTORY keeps per event (one per second at most).
const LATENCY_SAMPLES: usize = 160;

/// Latency buckets per command: bucket k holds calls of at most
/// 1024·2^k ns, as Redis's histogram iterates them (LATENCY HISTOGRAM).
const LATENCY_BUCKETS: usize = 40;

pub struct CommandCounters {
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS],
}

impl Default for CommandCounters {
    fn default() -> Self {
        CommandCounters {
            calls: AtomicU64::new(0),
            usec: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// The bucket of a call that took `ns` nanoseconds.
fn latency_bucket(ns: u128) -> usize {
    let mut k = 0;
    while k + 1 < LATENCY_BUCKETS && ns >= 1024u128 << k {
        k += 1;
    }
    k
}

/// The microseconds Redis labels bucket `k` with (its upper bound).
fn bucket_label(k: usize) -> u64 {
    ((1024u128 << k) - 1) as u64 / 1000
}

/// One SLOWLOG entry.
#[derive(Clone)]
pub struct SlowEntry {
    pub id: u64,
    pub time_s: u64,
    pub duration_us: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: Bytes,
}

/// One latency event's history.
#[derive(Default, Clone)]
pub struct LatencyEvent {
    /// (unix seconds, milliseconds), oldest first.
    pub samples: VecDeque<(u64, u64)>,
    pub max_ms: u64,
}

pub struct Observer {
    commands: HashMap<String, CommandCounters>,
    errors: Mutex<BTreeMap<String, u64>>,
    pub total_errors: AtomicU64,
    slowlog: Mutex<VecDeque<SlowEntry>>,
    slowlog_next_id: AtomicU64,
    /// `slowlog-log-slower-than` in µs (negative: off).
    slow_threshold_us: AtomicI64,
    slow_max_len: AtomicU64,
    /// `latency-monitor-threshold` in ms (0: off).
    latency_threshold_ms: AtomicU64,
    latency: Mutex<BTreeMap<&'static str, LatencyEvent>>,
}

impl Observer {
    /// Counters for every command and subcommand name.
    pub fn new(names: impl Iterator<Item = String>) -> Observer {
        Observer {
            commands: names.map(|n| (n, CommandCounters::default())).collect(),
            errors: Mutex::new(BTreeMap::new()),
            total_errors: AtomicU64::new(0),
            slowlog: Mutex::new(VecDeque::new()),
            slowlog_next_id: AtomicU64::new(0),
            slow_threshold_us: AtomicI64::new(10_000),
            slow_max_len: AtomicU64::new(128),
            latency_threshold_ms: AtomicU64::new(0),
            latency: Mutex::new(BTreeMap::new()),
        }
    }

    /// Take the thresholds from the configuration (at start, CONFIG SET).
    pub fn configure(&self, slower_than_us: i64, max_len: u64, latency_ms: u64) {
        self.slow_threshold_us.store(slower_than_us, Relaxed);
        self.slow_max_len.store(max_len, Relaxed);
        self.latency_threshold_ms.store(latency_ms, Relaxed);
        let mut log = self.slowlog.lock();
        while log.len() as u64 > max_len {
            log.pop_back();
        }
    }

    /// A command (full name, `client|kill` for a subcommand) ran for
    /// `elapsed`; `error` is its error reply's text, if it failed.
    pub fn record_call(&self, name: &str, elapsed: Duration, error: Option<&str>) {
        if let Some(c) = self.commands.get(name) {
            c.calls.fetch_add(1, Relaxed);
            c.usec.fetch_add(elapsed.as_micros() as u64, Relaxed);
            c.latency[latency_bucket(elapsed.as_nanos())].fetch_add(1, Relaxed);
            if error.is_some() {
                c.failed.fetch_add(1, Relaxed);
            }
        }
        if let Some(text) = error {
            self.record_error(text);
        }
    }

    /// A command refused before it ran (arity, NOAUTH, MISCONF, BUSY...).
    pub fn record_rejected(&self, name: Option<&str>, text: &str) {
        if let Some(c) = name.and_then(|n| self.commands.get(n)) {
            c.rejected.fetch_add(1, Relaxed);
        }
        self.record_error(text);
    }

    /// An error reply: counted under its code (the first word).
    pub fn record_error(&self, text: &str) {
        self.total_errors.fetch_add(1, Relaxed);
        let code = text.split(' ').next().unwrap_or("ERR");
        let mut errors = self.errors.lock();
        // Redis stops adding codes past 128 of them (only ERR grows then).
        if errors.len() >= 128 && !errors.contains_key(code) {
            *errors.entry("ERR".to_string()).or_default() += 1;
            return;
        }
        *errors.entry(code.to_string()).or_default() += 1;
    }

    /// Whether a command that took `elapsed` goes to the slow log.
    pub fn is_slow(&self, elapsed: Duration) -> bool {
        let threshold = self.slow_threshold_us.load(Relaxed);
        threshold >= 0 && elapsed.as_micros() >= threshold as u128
    }

    /// Add a slow command (its arguments already redacted).
    pub fn push_slow(&self, args: &[Bytes], elapsed: Duration, addr: String, name: Bytes) {
        let max_len = self.slow_max_len.load(Relaxed);
        let mut kept: Vec<Bytes> = Vec::with_capacity(args.len().min(SLOWLOG_MAX_ARGC));
        let shown = if args.len() > SLOWLOG_MAX_ARGC {
            SLOWLOG_MAX_ARGC - 1
        } else {
            args.len()
        };
        for arg in args.iter().take(shown) {
            if arg.len() > SLOWLOG_MAX_STRING {
                let mut cut = arg.slice(..SLOWLOG_MAX_STRING).to_vec();
                cut.extend_from_slice(
                    format!("... ({} more bytes)", arg.len() - SLOWLOG_MAX_STRING).as_bytes(),
                );
                kept.push(Bytes::from(cut));
            } else {
                kept.push(arg.clone());
            }
        }
        if args.len() > shown {
            kept.push(Bytes::from(format!(
                "... ({} more arguments)",
                args.len() - shown
            )));
        }
        let entry = SlowEntry {
            id: self.slowlog_next_id.fetch_add(1, Relaxed),
            time_s: crate::storage::now_ms() / 1000,
            duration_us: elapsed.as_micros() as u64,
            args: kept,
            addr,
            name,
        };
        let mut log = self.slowlog.lock();
        log.push_front(entry);
        while log.len() as u64 > max_len {
            log.pop_back();
        }
    }

    /// The newest `count` slow commands (all for None).
    pub fn slow_entries(&self, count: Option<usize>) -> Vec<SlowEntry> {
        let log = self.slowlog.lock();
        log.iter()
            .take(count.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }

    pub fn slow_len(&self) -> usize {
        self.slowlog.lock().len()
    }

    pub fn slow_reset(&self) {
        self.slowlog.lock().clear();
    }

    /// Record `event` if it took at least `latency-monitor-threshold`.
    pub fn latency_sample(&self, event: &'static str, elapsed: Duration) {
        let threshold = self.latency_threshold_ms.load(Relaxed);
        let ms = elapsed.as_millis() as u64;
        if threshold == 0 || ms < threshold {
            return;
        }
        let now = crate::storage::now_ms() / 1000;
        let mut events = self.latency.lock();
        let e = events.entry(event).or_default();
        e.max_ms = e.max_ms.max(ms);
        match e.samples.back_mut() {
            Some((time, worst)) if *time == now => *worst = (*worst).max(ms),
            _ => {
                e.samples.push_back((now, ms));
                if e.samples.len() > LATENCY_SAMPLES {
                    e.samples.pop_front();
                }
            }
        }
    }

    pub fn latency_events(&self) -> BTreeMap<&'static str, LatencyEvent> {
        self.latency.lock().clone()
    }

    /// Forget the named events (all when empty); how many were known.
    pub fn latency_reset(&self, names: &[String]) -> usize {
        let mut events = self.latency.lock();
        if names.is_empty() {
            let n = events.len();
            events.clear();
            return n;
        }
        let before = events.len();
        events.retain(|k, _| !names.iter().any(|n| n.eq_ignore_ascii_case(k)));
        before - events.len()
    }

    /// INFO commandstats lines' figures, by name, for commands that ran or
    /// were refused.
    pub fn command_stats(&self) -> Vec<(String, u64, u64, u64, u64)> {
        let mut out: Vec<_> = self
            .commands
            .iter()
            .map(|(name, c)| {
                (
                    name.clone(),
                    c.calls.load(Relaxed),
                    c.usec.load(Relaxed),
                    c.rejected.load(Relaxed),
                    c.failed.load(Relaxed),
                )
            })
            .filter(|(_, calls, _, rejected, failed)| *calls + *rejected + *failed > 0)
            .collect();
        out.sort();
        out
    }

    /// LATENCY HISTOGRAM of one command: its calls and, per bucket where
    /// the count grows, (upper bound in µs, calls up to it). None when it
    /// never ran.
    pub fn histogram(&self, name: &str) -> Option<(u64, Vec<(u64, u64)>)> {
        let c = self.commands.get(name)?;
        let mut total = 0;
        let mut points = Vec::new();
        for (k, bucket) in c.latency.iter().enumerate() {
            let n = bucket.load(Relaxed);
            if n > 0 {
                total += n;
                points.push((bucket_label(k), total));
            }
        }
        (total > 0).then_some((total, points))
    }

    /// Names of the commands with a histogram, sorted.
    pub fn measured_commands(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .commands
            .iter()
            .filter(|(_, c)| c.latency.iter().any(|b| b.load(Relaxed) > 0))
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }

    /// INFO latencystats: the bucket bound (µs) under which `percentile`
    /// of the command's calls fall.
    pub fn percentile(&self, name: &str, percentile: f64) -> Option<f64> {
        let (total, points) = self.histogram(name)?;
        let wanted = (percentile / 100.0 * total as f64).ceil() as u64;
        points
            .iter()
            .find(|(_, cumulative)| *cumulative >= wanted.max(1))
            .map(|(bound, _)| *bound as f64)
    }

    pub fn error_stats(&self) -> Vec<(String, u64)> {
        self.errors
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// CONFIG RESETSTAT.
    pub fn reset_stats(&self) {
        for c in self.commands.values() {
            for counter in [&c.calls, &c.usec, &c.rejected, &c.failed] {
                counter.store(0, Relaxed);
            }
            for bucket in &c.latency {
                bucket.store(0, Relaxed);
            }
        }
        self.errors.lock().clear();
        self.total_errors.store(0, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_as_redis_labels_them() {
        assert_eq!(latency_bucket(500), 0);
        assert_eq!(latency_bucket(1023), 0);
        assert_eq!(latency_bucket(1024), 1);
        assert_eq!(latency_bucket(3000), 2);
        assert_eq!(
            (0..8).map(bucket_label).collect::<Vec<_>>(),
            vec![1, 2, 4, 8, 16, 32, 65, 131]
        );
    }

    #[test]
    fn slow_entries_are_cut_as_redis_cuts_them() {
        let o = Observer::new(std::iter::empty());
        o.configure(0, 2, 0);
        let args: Vec<Bytes> = (0..40).map(|i| Bytes::from(i.to_string())).collect();
        o.push_slow(&args, Duration::from_micros(5), "a:1".into(), Bytes::new());
        let many = o.slow_entries(None);
        assert_eq!(many[0].args.len(), 32);
        assert_eq!(many[0].args[31], Bytes::from("... (9 more arguments)"));
        let long = vec![Bytes::from(vec![b'x'; 130])];
        o.push_slow(&long, Duration::from_micros(5), "a:1".into(), Bytes::new());
        o.push_slow(&long, Duration::from_micros(5), "a:1".into(), Bytes::new());
        let entries = o.slow_entries(None);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, 2);
        assert!(entries[0].args[0].ends_with(b"... (2 more bytes)"));
    }
}
