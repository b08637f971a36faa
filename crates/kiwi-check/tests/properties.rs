//! Properties over many seeded random histories: what a simulated
//! linearizable object produces is valid; the same history with one read
//! corrupted to a value nobody wrote is invalid, and its window holds that
//! read; malformed input is an error naming its line, never a panic.

use std::time::Duration;

use kiwi_check::simulate::Simulation;
use kiwi_check::{check, CheckError, ModelKind, Verdict};
use serde_json::Value as Json;

const BUDGET: Duration = Duration::from_secs(30);

/// A varied simulation per seed: 1-8 processes, 0-4 keys, up to 150 ops.
fn simulation(model: ModelKind, seed: u64) -> Simulation {
    let mut sim = Simulation::new(model, seed, 20 + (seed as usize * 37) % 130);
    sim.processes = 1 + (seed as usize) % 8;
    sim.keys = (seed as usize / 8) % 5;
    sim.values = 2 + (seed as i64) % 5;
    sim.info_per_mille = ((seed * 13) % 150) as u32;
    sim.fail_per_mille = ((seed * 29) % 150) as u32;
    sim
}

const SEEDS: u64 = 150;

#[test]
fn simulated_linearizable_histories_are_valid() {
    for model in ModelKind::ALL {
        for seed in 0..SEEDS {
            let history = simulation(model, seed).run();
            let result = check(model.name(), &history, BUDGET).unwrap();
            assert_eq!(
                result.verdict,
                Verdict::Valid,
                "{model} seed {seed}:\n{}\n{history}",
                result.text
            );
            assert!(result.window.is_empty());
        }
    }
}

/// A value `model` never produces in a simulation.
fn never_written(model: ModelKind, read: &Json) -> Json {
    match model {
        ModelKind::Register | ModelKind::CasRegister => Json::from(1_000_000),
        ModelKind::Kv => Json::from("never written"),
        ModelKind::ListAppend => {
            let mut items = read.as_array().cloned().unwrap_or_default();
            items.push(Json::from(-1));
            Json::Array(items)
        }
    }
}

#[test]
fn one_corrupted_read_makes_a_history_invalid_and_is_in_the_window() {
    for model in ModelKind::ALL {
        let mut corrupted = 0;
        for seed in 0..SEEDS {
            let history = simulation(model, seed).run();
            let mut lines: Vec<Json> = history
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let reads: Vec<usize> = (0..lines.len())
                .filter(|&i| {
                    let l = &lines[i];
                    l["type"] == "ok" && (l["f"] == "read" || l["f"] == "get")
                })
                .collect();
            if reads.is_empty() {
                continue;
            }
            let line = reads[(seed as usize * 7919) % reads.len()];
            let bad = never_written(model, &lines[line]["value"]);
            lines[line]["value"] = bad;
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let result = check(model.name(), &text, BUDGET).unwrap();
            assert_eq!(
                result.verdict,
                Verdict::Invalid,
                "{model} seed {seed}, line {line}:\n{text}"
            );
            result.valid_keys_sanity();
            let key = lines[line]["key"].as_str().map(str::to_string);
            assert_eq!(result.invalid_keys, vec![key], "{model} seed {seed}");
            assert!(
                result.window.iter().any(|op| op.complete == Some(line)),
                "{model} seed {seed}: corrupted line {line} not in the window {:?}",
                result.window
            );
            assert!(
                result.text.contains(&format!("-{}", line + 1)),
                "{model} seed {seed}: text does not name line {}:\n{}",
                line + 1,
                result.text
            );
            corrupted += 1;
        }
        assert!(
            corrupted > SEEDS / 2,
            "{model}: only {corrupted} histories had reads"
        );
    }
}

/// Sanity of a result's fields, whatever the verdict.
trait Sanity {
    fn valid_keys_sanity(&self);
}

impl Sanity for kiwi_check::CheckResult {
    fn valid_keys_sanity(&self) {
        assert!(self.invalid_keys.len() + self.unknown_keys.len() <= self.keys);
        assert_eq!(
            self.verdict == Verdict::Invalid,
            !self.invalid_keys.is_empty()
        );
        assert_eq!(self.verdict == Verdict::Invalid, !self.window.is_empty());
        assert!(self.text.starts_with(self.verdict.name()));
    }
}

/// Writes by `n` concurrent processes, then a read of a value none wrote:
/// proving it impossible means trying every subset of the writes.
fn hard_history(n: usize) -> String {
    let mut text = String::new();
    for p in 0..n {
        text += &format!(r#"{{"process": {p}, "type": "invoke", "f": "write", "value": {p}}}"#);
        text += "\n";
    }
    for p in 0..n {
        text += &format!(r#"{{"process": {p}, "type": "ok", "f": "write", "value": {p}}}"#);
        text += "\n";
    }
    text += r#"{"process": 0, "type": "invoke", "f": "read", "value": null}
{"process": 0, "type": "ok", "f": "read", "value": -1}
"#;
    text
}

#[test]
fn a_tiny_budget_gives_unknown() {
    for budget in [Duration::ZERO, Duration::from_millis(20)] {
        let result = check("register", &hard_history(40), budget).unwrap();
        assert_eq!(result.verdict, Verdict::Unknown, "budget {budget:?}");
        assert_eq!(result.verdict.as_bool(), None);
        assert_eq!(result.unknown_keys, vec![None]);
        assert!(result.window.is_empty());
        // The budget is honoured (loosely: this is not a timing test).
        assert!(result.elapsed < budget + Duration::from_secs(5));
    }
    // A history the search does decide, with no time for it.
    let easy = simulation(ModelKind::CasRegister, 3).run();
    let result = check("cas-register", &easy, Duration::ZERO).unwrap();
    assert_eq!(result.verdict, Verdict::Unknown);
}

fn verdict(model: &str, history: &str) -> Verdict {
    check(model, history, BUDGET).unwrap().verdict
}

#[test]
fn fail_and_info_mean_what_the_contract_says() {
    let w = |t: &str, extra: &str| {
        format!(r#"{{"process": 0, "type": "{t}", "f": "write", "value": 1{extra}}}"#)
    };
    let read1 = r#"{"process": 1, "type": "invoke", "f": "read", "value": null}
{"process": 1, "type": "ok", "f": "read", "value": 1}"#;
    // fail: certainly did not happen.
    let h = format!("{}\n{}\n{read1}\n", w("invoke", ""), w("fail", ""));
    assert_eq!(verdict("register", &h), Verdict::Invalid);
    // info: may have happened, even after its completion line.
    let h = format!("{}\n{}\n{read1}\n", w("invoke", ""), w("info", ""));
    assert_eq!(verdict("register", &h), Verdict::Valid);
    // Never completed: the same.
    let h = format!("{}\n{read1}\n", w("invoke", ""));
    assert_eq!(verdict("register", &h), Verdict::Valid);
    // A read that ended info constrains nothing.
    let h = r#"{"process": 1, "type": "invoke", "f": "read", "value": null}
{"process": 1, "type": "info", "f": "read", "value": null}
"#;
    assert_eq!(verdict("register", h), Verdict::Valid);

    let cas = |t: &str, extra: &str| {
        format!(
            r#"{{"process": 0, "type": "invoke", "f": "cas", "value": [null, 1]}}
{{"process": 0, "type": "{t}", "f": "cas", "value": [null, 1]{extra}}}
"#
        )
    };
    // cas fail without error: compared unequal, but the register was null.
    assert_eq!(verdict("cas-register", &cas("fail", "")), Verdict::Invalid);
    // cas fail with error: refused before proposing, did not happen.
    let refused = cas("fail", r#", "error": "CLUSTERDOWN""#);
    assert_eq!(verdict("cas-register", &refused), Verdict::Valid);
    assert_eq!(
        verdict("cas-register", &format!("{refused}{read1}\n")),
        Verdict::Invalid
    );
    assert_eq!(
        verdict("cas-register", &format!("{}{read1}\n", cas("ok", ""))),
        Verdict::Valid
    );
    assert_eq!(
        verdict("cas-register", &format!("{}{read1}\n", cas("info", ""))),
        Verdict::Valid
    );
}

#[test]
fn a_state_a_concurrent_read_sees_is_not_taken_for_overwritten() {
    // put a; append x; a get reads "ax" while a put of "b" is in flight and
    // another get, returning first, reads "b": linearizable as put a,
    // append x, get "ax", put b, get "b".
    let h = r#"{"process": 0, "type": "invoke", "f": "put", "value": "a"}
{"process": 0, "type": "ok", "f": "put", "value": "a"}
{"process": 1, "type": "invoke", "f": "put", "value": "b"}
{"process": 2, "type": "invoke", "f": "append", "value": "x"}
{"process": 2, "type": "ok", "f": "append", "value": "x"}
{"process": 3, "type": "invoke", "f": "get", "value": null}
{"process": 4, "type": "invoke", "f": "get", "value": null}
{"process": 4, "type": "ok", "f": "get", "value": "b"}
{"process": 3, "type": "ok", "f": "get", "value": "ax"}
{"process": 1, "type": "ok", "f": "put", "value": "b"}
"#;
    assert_eq!(verdict("kv", h), Verdict::Valid);
    // Without the put of "b" in flight, "b" cannot be read.
    let no_put = h.replace(r#""put", "value": "b""#, r#""append", "value": "b""#);
    assert_eq!(verdict("kv", &no_put), Verdict::Invalid);
}

#[test]
fn keys_are_checked_independently() {
    let h = r#"{"process": 0, "type": "invoke", "f": "put", "key": "a", "value": "x"}
{"process": 0, "type": "ok", "f": "put", "key": "a", "value": "x"}
{"process": 0, "type": "invoke", "f": "get", "key": "b", "value": null}
{"process": 0, "type": "ok", "f": "get", "key": "b", "value": "x"}
{"process": 0, "type": "invoke", "f": "append", "key": "a", "value": "y"}
{"process": 0, "type": "ok", "f": "append", "key": "a", "value": "y"}
{"process": 0, "type": "invoke", "f": "get", "key": "a", "value": null}
{"process": 0, "type": "ok", "f": "get", "key": "a", "value": "xy"}
"#;
    let result = check("kv", h, BUDGET).unwrap();
    assert_eq!(result.verdict, Verdict::Invalid);
    assert_eq!((result.operations, result.keys), (4, 2));
    assert_eq!(result.invalid_keys, vec![Some("b".to_string())]);
    assert_eq!(result.window.len(), 1);
    assert_eq!(result.window[0].key.as_deref(), Some("b"));
    assert_eq!(
        (result.window[0].invoke, result.window[0].complete),
        (2, Some(3))
    );
}

/// Cheap deterministic choices for the mutation test.
fn pick(seed: u64, salt: u64, n: usize) -> usize {
    let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^= z >> 31;
    (z % n.max(1) as u64) as usize
}

#[test]
fn malformed_histories_are_errors_naming_their_line() {
    let mut errors = 0;
    for seed in 0..300u64 {
        let model = ModelKind::ALL[pick(seed, 1, 4)];
        let history = simulation(model, seed).run();
        let mut lines: Vec<String> = history.lines().map(str::to_string).collect();
        let at = pick(seed, 2, lines.len());
        match pick(seed, 3, 6) {
            0 => {
                let keep = pick(seed, 4, lines[at].len());
                lines[at].truncate(keep);
            }
            1 => {
                let copy = lines[at].clone();
                lines.insert(at, copy);
            }
            2 => lines[at] = lines[at].replace("\"value\"", "\"value\": [[1]], \"v\""),
            3 => lines[at] = lines[at].replace("invoke", "ok"),
            4 => lines[at] = lines[at].replace("\"f\": \"", "\"f\": \"x"),
            _ => lines[at] = lines[at].replace("\"process\": ", "\"process\": 1.5, \"p\": "),
        }
        let text = lines.join("\n");
        match check(model.name(), &text, BUDGET) {
            Ok(result) => result.valid_keys_sanity(),
            Err(CheckError::History { line, message }) => {
                errors += 1;
                assert!(line >= 1 && line <= lines.len(), "{line}: {message}");
                let shown = CheckError::History {
                    line,
                    message: message.clone(),
                }
                .to_string();
                assert!(shown.contains(&format!("line {line}")), "{shown}");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(errors > 100, "only {errors} mutations were refused");
    assert!(matches!(
        check("queue", "", BUDGET),
        Err(CheckError::UnknownModel(_))
    ));
}
