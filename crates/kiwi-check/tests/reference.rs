//! The checker agrees with a brute-force reference on thousands of small
//! random histories, linearizable or not: the reference tries every order
//! of every subset of operations, with none of the search's memoization or
//! pruning, so a pruning rule that cut a real linearization (or kept a
//! false one) shows up as a disagreement.

use std::collections::BTreeMap;
use std::time::Duration;

use kiwi_check::simulate::Simulation;
use kiwi_check::{check, ModelKind, Verdict};
use serde_json::Value as Json;

/// One operation as the reference sees it.
#[derive(Clone, Debug)]
struct RefOp {
    f: String,
    value: Json,
    result: Json,
    /// "ok", "fail", "fail-error", "info" (never completed: "info" too).
    outcome: String,
    call: usize,
    ret: Option<usize>,
}

fn ops_by_key(history: &str) -> BTreeMap<Option<String>, Vec<RefOp>> {
    let mut open: BTreeMap<i64, (Option<String>, usize)> = BTreeMap::new();
    let mut keys: BTreeMap<Option<String>, Vec<RefOp>> = BTreeMap::new();
    for (line, text) in history.lines().enumerate() {
        let event: Json = serde_json::from_str(text).unwrap();
        let process = event["process"].as_i64().unwrap();
        let key = event["key"].as_str().map(str::to_string);
        if event["type"] == "invoke" {
            let ops = keys.entry(key.clone()).or_default();
            ops.push(RefOp {
                f: event["f"].as_str().unwrap().to_string(),
                value: event["value"].clone(),
                result: Json::Null,
                outcome: "info".into(),
                call: line,
                ret: None,
            });
            open.insert(process, (key, ops.len() - 1));
        } else {
            let (key, index) = open.remove(&process).unwrap();
            let op = &mut keys.get_mut(&key).unwrap()[index];
            op.result = event["value"].clone();
            op.outcome = match event["type"].as_str().unwrap() {
                "fail" if event.get("error").is_some() => "fail-error".into(),
                kind => kind.into(),
            };
            if op.outcome != "info" {
                op.ret = Some(line);
            }
        }
    }
    keys
}

/// The state after `op` from `state`, or `None` if the model refuses it.
fn step(model: ModelKind, state: &Json, op: &RefOp) -> Option<Json> {
    let known = op.outcome == "ok";
    let norm = |v: &Json| match (model, v) {
        (ModelKind::Kv, Json::Null) => Json::from(""),
        (ModelKind::ListAppend, Json::Null) => Json::Array(vec![]),
        _ => v.clone(),
    };
    match op.f.as_str() {
        "read" | "get" => (!known || norm(&op.result) == *state).then(|| state.clone()),
        "write" | "put" => Some(op.value.clone()),
        "append" => Some(match (state, &op.value) {
            (Json::String(s), Json::String(x)) => Json::from(format!("{s}{x}")),
            (Json::Array(items), x) => {
                let mut items = items.clone();
                items.push(x.clone());
                Json::Array(items)
            }
            _ => return None,
        }),
        "cas" => {
            let (expected, new) = (&op.value[0], &op.value[1]);
            let equal = state == expected;
            match op.outcome.as_str() {
                "ok" => equal.then(|| new.clone()),
                "fail" => (!equal).then(|| state.clone()),
                _ => Some(if equal { new.clone() } else { state.clone() }),
            }
        }
        _ => None,
    }
}

/// Whether some order of some of the unknown operations and all the
/// known ones, each between its call and return, the model accepts.
fn linearizable(model: ModelKind, ops: &[RefOp]) -> bool {
    let ops: Vec<&RefOp> = ops
        .iter()
        .filter(|op| match op.outcome.as_str() {
            "fail-error" => false,
            "fail" => op.f == "cas" && model == ModelKind::CasRegister,
            _ => true,
        })
        .collect();
    fn go(model: ModelKind, ops: &[&RefOp], placed: &mut Vec<bool>, state: &Json) -> bool {
        let must_left = ops
            .iter()
            .zip(placed.iter())
            .any(|(op, &p)| !p && op.ret.is_some());
        if !must_left {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            // Every unplaced known operation that returned before this call
            // had to come first.
            let blocked = ops
                .iter()
                .zip(placed.iter())
                .any(|(other, &p)| !p && other.ret.is_some_and(|r| r < ops[i].call));
            if blocked {
                continue;
            }
            if let Some(next) = step(model, state, ops[i]) {
                placed[i] = true;
                if go(model, ops, placed, &next) {
                    return true;
                }
                placed[i] = false;
            }
        }
        false
    }
    let initial = match model {
        ModelKind::Register | ModelKind::CasRegister => Json::Null,
        ModelKind::Kv => Json::from(""),
        ModelKind::ListAppend => Json::Array(vec![]),
    };
    go(model, &ops, &mut vec![false; ops.len()], &initial)
}

/// Cheap deterministic choices.
fn pick(seed: u64, salt: u64, n: usize) -> usize {
    let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^= z >> 29;
    z = z.wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 32;
    (z % n.max(1) as u64) as usize
}

/// A small simulated history, then a few random changes: a read's result
/// swapped for another read's (or a small value), an outcome changed.
fn random_history(model: ModelKind, seed: u64) -> String {
    let mut sim = Simulation::new(model, seed, 3 + pick(seed, 1, 6));
    sim.processes = 2 + pick(seed, 2, 3);
    sim.keys = pick(seed, 3, 2);
    sim.values = 2 + pick(seed, 4, 2) as i64;
    sim.info_per_mille = 150;
    sim.fail_per_mille = 150;
    let mut lines: Vec<Json> = sim
        .run()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reads: Vec<Json> = lines
        .iter()
        .filter(|l| l["type"] == "ok" && (l["f"] == "read" || l["f"] == "get"))
        .map(|l| l["value"].clone())
        .collect();
    // kv: turn some appends into puts (the simulation makes few puts).
    if model == ModelKind::Kv {
        for at in 0..lines.len() {
            if lines[at]["f"] == "append"
                && lines[at]["type"] == "invoke"
                && pick(seed, at as u64, 3) == 0
            {
                let process = lines[at]["process"].clone();
                for line in lines.iter_mut().skip(at) {
                    if line["process"] == process {
                        line["f"] = Json::from("put");
                        if line["type"] != "invoke" {
                            break;
                        }
                    }
                }
            }
        }
    }
    let completions: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i]["type"] != "invoke")
        .collect();
    if completions.is_empty() {
        return lines.iter().map(|l| format!("{l}\n")).collect();
    }
    for change in 0..1 + pick(seed, 5, 3) {
        let salt = 10 + change as u64 * 7;
        let line = &mut lines[completions[pick(seed, salt, completions.len())]];
        match pick(seed, salt + 1, 4) {
            0 | 1 if line["f"] == "read" || line["f"] == "get" => {
                line["value"] = match model {
                    ModelKind::Register | ModelKind::CasRegister => {
                        Json::from(pick(seed, salt + 2, 3))
                    }
                    _ if !reads.is_empty() => mangle(
                        &reads[pick(seed, salt + 2, reads.len())],
                        pick(seed, salt + 4, 3),
                    ),
                    _ => continue,
                };
            }
            1 if line["type"] == "ok" => {
                line["type"] = Json::from(if pick(seed, salt + 3, 2) == 0 {
                    "fail"
                } else {
                    "info"
                });
            }
            _ if line["type"] == "fail" => line["type"] = Json::from("ok"),
            _ => {}
        }
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Another read's value, as it is (0), without its first element or token
/// (1), or with its first two swapped (2).
fn mangle(read: &Json, how: usize) -> Json {
    match read {
        Json::String(s) => {
            let mut tokens: Vec<&str> = s.split_inclusive(' ').collect();
            match how {
                1 if !tokens.is_empty() => {
                    tokens.remove(0);
                }
                2 if tokens.len() > 1 => tokens.swap(0, 1),
                _ => {}
            }
            Json::from(tokens.concat())
        }
        Json::Array(items) => {
            let mut items = items.clone();
            match how {
                1 if !items.is_empty() => {
                    items.remove(0);
                }
                2 if items.len() > 1 => items.swap(0, 1),
                _ => {}
            }
            Json::Array(items)
        }
        other => other.clone(),
    }
}

#[test]
fn agrees_with_brute_force_on_small_random_histories() {
    for model in ModelKind::ALL {
        let (mut valid, mut invalid) = (0, 0);
        for seed in 0..4000u64 {
            let history = random_history(model, seed);
            let expected = ops_by_key(&history)
                .values()
                .all(|ops| linearizable(model, ops));
            let result = check(model.name(), &history, Duration::from_secs(30)).unwrap();
            let got = result.verdict;
            assert_eq!(
                got,
                if expected {
                    Verdict::Valid
                } else {
                    Verdict::Invalid
                },
                "{model} seed {seed}:\n{history}\n{}",
                result.text
            );
            if expected {
                valid += 1;
            } else {
                invalid += 1;
                // The window alone is not linearizable either.
                let window: Vec<RefOp> = {
                    let all = ops_by_key(&history);
                    let key = result.window[0].key.clone();
                    all[&key]
                        .iter()
                        .filter(|op| result.window.iter().any(|w| w.invoke == op.call))
                        .cloned()
                        .collect()
                };
                assert!(
                    !linearizable(model, &window),
                    "{model} seed {seed}: window {window:?}"
                );
            }
        }
        // Both verdicts are well represented.
        assert!(
            valid > 500 && invalid > 300,
            "{model}: {valid} valid, {invalid} invalid"
        );
    }
}
