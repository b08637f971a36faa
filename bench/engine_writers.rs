//! Writers on distinct keys, N threads at once, straight into the engine
//! (no network): how write throughput grows with threads.
//!
//! ```text
//! cargo run --release --example engine_writers -- [SECONDS] [THREADS...]
//! ```
//!
//! Each thread has its own session and its own keys
//! (`<workload>:r<threads>:t<thread>:<n>`, 10,000 per thread, workload and
//! run) and runs one workload for SECONDS (default 3); the default
//! thread counts are 1 and 2. Prints commands per second per workload and
//! thread count, and the ratio to one thread. `KIWI_WORKLOADS=SET,HSET`
//! runs only those.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kiwi::{Engine, RuntimeConfig};

const WORKLOADS: &[&str] = &["SET", "INCR", "LPUSH", "SADD", "HSET", "ZADD", "MSET"];

fn command(workload: &str, run: usize, thread: usize, n: u64) -> Vec<Bytes> {
    // Keys of their own per workload and run: an INCR of a SET's value
    // would measure the error path, an SADD of a member an earlier run
    // added a read.
    let key = format!("{workload}:r{run}:t{thread}:{}", n % 10_000);
    let other = format!("{workload}:r{run}:t{thread}:{}", (n + 5_000) % 10_000);
    // A new member on every pass over the keys (not a no-op SADD).
    let member = ((n / 10_000) % 1_000).to_string();
    let words: Vec<&str> = match workload {
        "SET" => vec![
            "SET",
            &key,
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ],
        "INCR" => vec!["INCR", &key],
        "LPUSH" => vec!["LPUSH", &key, "xxx"],
        "SADD" => vec!["SADD", &key, &member],
        "HSET" => vec!["HSET", &key, &member, "xxx"],
        "ZADD" => vec!["ZADD", &key, &member, &member],
        _ => vec!["MSET", &key, "xxx", &other, "yyy"],
    };
    words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn run(engine: &Arc<Engine>, workload: &'static str, threads: usize, seconds: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (engine, stop, done) = (engine.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut session = engine.local_session();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        let reply = engine.execute(&mut session, &command(workload, threads, t, n));
                        if let kiwi::resp::Reply::Error(e) = reply {
                            eprintln!("{workload}: {e}");
                            std::process::exit(1);
                        }
                        n += 1;
                    }
                }
                done.fetch_add(n, Ordering::Relaxed);
                engine.disconnect(&mut session);
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        if w.join().is_err() {
            eprintln!("a writer panicked");
        }
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let mut counts: Vec<usize> = args.filter_map(|s| s.parse().ok()).collect();
    if counts.is_empty() {
        counts = vec![1, 2];
    }
    let Ok(dir) = tempfile::tempdir() else {
        eprintln!("cannot make a temporary directory");
        std::process::exit(2);
    };
    let engine = match Engine::open(RuntimeConfig::new(dir.path())) {
        Ok(engine) => Arc::new(engine),
        Err(e) => {
            eprintln!("cannot open the engine: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "{} cores; {seconds} s per run; commands per second",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    print!("{:<8}", "workload");
    for n in &counts {
        print!("{:>14}", format!("{n} thread(s)"));
    }
    println!();
    // KIWI_WORKLOADS=SET,HSET runs only those (to profile one).
    let only = std::env::var("KIWI_WORKLOADS").unwrap_or_default();
    for workload in WORKLOADS {
        if !only.is_empty() && !only.split(',').any(|w| w.eq_ignore_ascii_case(workload)) {
            continue;
        }
        print!("{workload:<8}");
        let mut first = None;
        for &n in &counts {
            let rate = run(&engine, workload, n, seconds);
            let base = *first.get_or_insert(rate);
            print!("{:>14}", format!("{rate:.0} ({:.2}×)", rate / base));
        }
        println!();
    }
}
