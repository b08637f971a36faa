//! Checks one history file and prints the verdict and explanation:
//! `cargo run --release --example check -- MODEL FILE [BUDGET_S]`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(path)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: check MODEL FILE [BUDGET_S]");
        return ExitCode::from(3);
    };
    let budget = args
        .get(3)
        .and_then(|b| b.parse::<f64>().ok())
        .and_then(|b| Duration::try_from_secs_f64(b).ok())
        .unwrap_or(Duration::from_secs(10));
    let history = match std::fs::read_to_string(path) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(3);
        }
    };
    match kiwi_check::check(model, &history, budget) {
        Ok(result) => {
            // A closed pipe (`| head`) is no error worth a panic.
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{}", result.text);
            let _ = writeln!(out, "{}", result.verdict.name());
            ExitCode::from(match result.verdict {
                kiwi_check::Verdict::Valid => 0,
                kiwi_check::Verdict::Invalid => 1,
                kiwi_check::Verdict::Unknown => 2,
            })
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(3)
        }
    }
}
