//! Times the checker on big simulated linearizable histories:
//! `cargo run --release --example bench -- [OPS] [KEYS] [PROCESSES]`
//! (default 100,000 operations over 1,000 keys by 10 processes), once per
//! model.

use std::time::{Duration, Instant};

use kiwi_check::simulate::Simulation;
use kiwi_check::{check, ModelKind};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let ops = args.first().copied().unwrap_or(100_000);
    let keys = args.get(1).copied().unwrap_or(1_000);
    let processes = args.get(2).copied().unwrap_or(10);
    for model in ModelKind::ALL {
        let mut sim = Simulation::new(model, 1, ops);
        sim.keys = keys;
        sim.processes = processes;
        let history = sim.run();
        let started = Instant::now();
        match check(model.name(), &history, Duration::from_secs(120)) {
            Ok(result) => println!(
                "{:<13} {} ops, {} keys, {} processes, {} lines ({:.1} MB): {} in {:.3} s",
                model.name(),
                result.operations,
                result.keys,
                processes,
                history.lines().count(),
                history.len() as f64 / 1e6,
                result.verdict.name(),
                started.elapsed().as_secs_f64()
            ),
            Err(e) => println!("{model}: {e}"),
        }
    }
}
