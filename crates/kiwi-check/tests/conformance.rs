//! Every verdict Porcupine publishes for its test histories (70 etcd
//! cas-register histories recorded by Jepsen, 4 key-value ones), as copied
//! to tests/data/linearizability/, is reproduced.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kiwi_check::{check, Verdict};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/linearizability")
}

/// (file, model, linearizable) rows of verdicts.tsv.
fn verdicts() -> Vec<(String, String, bool)> {
    let text = std::fs::read_to_string(data_dir().join("verdicts.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "verdicts.tsv row {l:?}");
            (cols[0].to_string(), cols[1].to_string(), cols[2] == "true")
        })
        .collect()
}

#[test]
fn every_published_verdict_is_reproduced() {
    let rows = verdicts();
    assert_eq!(rows.len(), 74);
    let mut stderr = std::io::stderr();
    let mut mismatches = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    let started = Instant::now();
    for (file, model, linearizable) in &rows {
        let history = std::fs::read_to_string(data_dir().join(file)).unwrap();
        let t = Instant::now();
        let result = check(model, &history, Duration::from_secs(60)).unwrap();
        let took = t.elapsed();
        // Written to the stream directly so `cargo test` shows it.
        let _ = writeln!(
            stderr,
            "  {file:<24} {model:<13} {:<8} {:>8.1} ms (window {} ops)",
            result.verdict.name(),
            took.as_secs_f64() * 1e3,
            result.window.len()
        );
        if took > slowest.0 {
            slowest = (took, file.clone());
        }
        let expected = if *linearizable {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        if result.verdict != expected {
            mismatches.push(format!(
                "{file}: {:?}, expected {expected:?}",
                result.verdict
            ));
        }
        if result.verdict == Verdict::Invalid {
            assert!(!result.window.is_empty(), "{file}: empty window");
            for op in &result.window {
                assert!(
                    result.text.contains(&format!("lines {}-", op.invoke + 1)),
                    "{file}: the text does not name the window's operation {op:?}:\n{}",
                    result.text
                );
            }
        }
    }
    let _ = writeln!(
        stderr,
        "  {} files in {:.2} s; slowest {} in {:.1} ms",
        rows.len(),
        started.elapsed().as_secs_f64(),
        slowest.1,
        slowest.0.as_secs_f64() * 1e3
    );
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}
