//! Prints a simulated linearizable history (JSON lines):
//! `cargo run --release --example simulate -- MODEL SEED OPS PROCESSES KEYS VALUES INFO FAIL`
//! (the last five optional; INFO and FAIL per mille).

use kiwi_check::simulate::Simulation;
use kiwi_check::ModelKind;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok());
    let Some(model) = args.get(1).and_then(|m| m.parse::<ModelKind>().ok()) else {
        eprintln!("usage: simulate MODEL SEED OPS [PROCESSES KEYS VALUES INFO FAIL]");
        std::process::exit(3);
    };
    let mut sim = Simulation::new(model, num(2).unwrap_or(0), num(3).unwrap_or(100) as usize);
    if let Some(p) = num(4) {
        sim.processes = p as usize;
    }
    if let Some(k) = num(5) {
        sim.keys = k as usize;
    }
    if let Some(v) = num(6) {
        sim.values = v as i64;
    }
    if let Some(i) = num(7) {
        sim.info_per_mille = i as u32;
    }
    if let Some(f) = num(8) {
        sim.fail_per_mille = f as u32;
    }
    print!("{}", sim.run());
}
