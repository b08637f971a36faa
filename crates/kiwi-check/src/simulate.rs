//! Linearizable histories by construction, for tests and benchmarks: a
//! simulated object that concurrent processes call, each operation taking
//! effect at one random instant between its invoke and its completion.
//! Some operations end `info` (taking effect or not), some `fail`, a few
//! never complete. Seeded and deterministic.

use std::fmt::Write;

use crate::model::ModelKind;
use crate::value::Value;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Simulation {
    pub model: ModelKind,
    pub seed: u64,
    /// Operations to invoke in all.
    pub operations: usize,
    /// Concurrent processes.
    pub processes: usize,
    /// Keys (0: lines carry no key, one object).
    pub keys: usize,
    /// Register values are drawn from `0..values`: few values make
    /// histories hard.
    pub values: i64,
    /// Per mille of operations that end `info`.
    pub info_per_mille: u32,
    /// Per mille of operations that end `fail` (not taking effect).
    pub fail_per_mille: u32,
}

impl Simulation {
    /// Defaults: 4 processes, 1 key, 5 values, 5% info, 5% fail.
    pub fn new(model: ModelKind, seed: u64, operations: usize) -> Simulation {
        Simulation {
            model,
            seed,
            operations,
            processes: 4,
            keys: 0,
            values: 5,
            info_per_mille: 50,
            fail_per_mille: 50,
        }
    }

    /// The history, as JSON lines.
    pub fn run(&self) -> String {
        let mut rng = Rng(self.seed);
        let mut states: Vec<Value> = vec![self.model.initial(); self.keys.max(1)];
        let mut clients: Vec<Client> = (0..self.processes.max(1))
            .map(|p| Client {
                process: p as i64,
                op: None,
            })
            .collect();
        let mut out = String::new();
        let mut invoked = 0usize;
        let mut serial = 0u64;
        // Each step moves one client on: invoke, take effect, or complete.
        while invoked < self.operations || clients.iter().any(|c| c.op.is_some()) {
            let n = clients.len() as u64;
            let Some(client) = clients.get_mut(rng.below(n) as usize) else {
                break;
            };
            match &mut client.op {
                None if invoked < self.operations => {
                    invoked += 1;
                    serial += 1;
                    let op = self.new_op(&mut rng, serial);
                    line(&mut out, client.process, "invoke", &op, &op.value, None);
                    client.op = Some(op);
                }
                None => {}
                Some(op) if !op.done => {
                    op.done = true;
                    let Some(state) = states.get_mut(op.key.unwrap_or(0)) else {
                        continue;
                    };
                    match op.fate {
                        Fate::Fail => {}
                        Fate::Info if rng.below(2) == 0 => {}
                        _ => op.result = self.apply(state, op),
                    }
                    // Once everything is invoked, an operation sometimes
                    // never completes (its client stops).
                    if invoked == self.operations && rng.below(20) == 0 {
                        client.op = None;
                    }
                }
                Some(op) => {
                    let (kind, value, error) = match op.fate {
                        Fate::Info => ("info", op.value.clone(), None),
                        Fate::Fail => ("fail", op.value.clone(), Some("refused")),
                        Fate::Ok => match &op.result {
                            Completed::Read(v) => ("ok", v.clone(), None),
                            // A cas that compared unequal: fail, no error.
                            Completed::Unequal => ("fail", op.value.clone(), None),
                            Completed::Done => ("ok", op.value.clone(), None),
                        },
                    };
                    line(&mut out, client.process, kind, op, &value, error);
                    if kind == "info" {
                        // As Jepsen does: a process that crashed comes back
                        // under a new id.
                        client.process += self.processes.max(1) as i64;
                    }
                    client.op = None;
                }
            }
        }
        out
    }

    fn new_op(&self, rng: &mut Rng, serial: u64) -> SimOp {
        let key = (self.keys > 0).then(|| rng.below(self.keys as u64) as usize);
        let roll = rng.below(1000) as u32;
        let fate = if roll < self.info_per_mille {
            Fate::Info
        } else if roll < self.info_per_mille + self.fail_per_mille {
            Fate::Fail
        } else {
            Fate::Ok
        };
        let small = Value::Int(rng.below(self.values.max(1) as u64) as i64);
        let (f, value) = match (self.model, rng.below(3)) {
            (ModelKind::Register | ModelKind::CasRegister, 0) => ("read", Value::Null),
            (ModelKind::CasRegister, 1) => {
                let new = Value::Int(rng.below(self.values.max(1) as u64) as i64);
                ("cas", Value::List(vec![small, new]))
            }
            (ModelKind::Register | ModelKind::CasRegister, _) => ("write", small),
            (ModelKind::Kv, 0) => ("get", Value::Null),
            (ModelKind::Kv, 1) if rng.below(8) == 0 => ("put", Value::Str(format!("p{serial} "))),
            (ModelKind::Kv, _) => ("append", Value::Str(format!("x{serial} "))),
            (ModelKind::ListAppend, 0) => ("read", Value::Null),
            (ModelKind::ListAppend, _) => ("append", Value::Int(serial as i64)),
        };
        SimOp {
            f,
            key,
            value,
            fate,
            done: false,
            result: Completed::Done,
        }
    }

    fn apply(&self, state: &mut Value, op: &SimOp) -> Completed {
        match (op.f, &op.value) {
            ("read" | "get", _) => Completed::Read(state.clone()),
            ("write" | "put", v) => {
                *state = v.clone();
                Completed::Done
            }
            ("cas", Value::List(pair)) => match pair.as_slice() {
                [expected, new] if state == expected => {
                    *state = new.clone();
                    Completed::Done
                }
                _ => Completed::Unequal,
            },
            ("append", item) => {
                *state = self.model.append(state, item);
                Completed::Done
            }
            _ => Completed::Done,
        }
    }
}

struct Client {
    process: i64,
    op: Option<SimOp>,
}

struct SimOp {
    f: &'static str,
    /// `None`: the line carries no key.
    key: Option<usize>,
    value: Value,
    fate: Fate,
    /// Whether its instant has passed.
    done: bool,
    result: Completed,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Ok,
    Info,
    Fail,
}

enum Completed {
    Read(Value),
    Unequal,
    Done,
}

fn line(
    out: &mut String,
    process: i64,
    kind: &str,
    op: &SimOp,
    value: &Value,
    error: Option<&str>,
) {
    let _ = write!(
        out,
        "{{\"process\": {process}, \"type\": \"{kind}\", \"f\": \"{}\"",
        op.f
    );
    if let Some(key) = op.key {
        let _ = write!(out, ", \"key\": \"k{key}\"");
    }
    let _ = write!(out, ", \"value\": {value}");
    if let Some(error) = error {
        let _ = write!(out, ", \"error\": \"{error}\"");
    }
    out.push_str("}\n");
}

/// SplitMix64: small, seeded, stable across versions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; 0 gives 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}
