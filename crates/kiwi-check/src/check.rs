//! Checking a whole history: parse it, search each key on its own
//! (P-compositionality) within one time budget, and explain the first
//! invalid key.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::CheckError;
use crate::explain::{explain, Explanation};
use crate::history::{parse, History, View};
use crate::model::ModelKind;
use crate::search::{search, Outcome, SearchOp};
use crate::value::Value;

/// The verdict on a whole history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every key is linearizable.
    Valid,
    /// At least one key is not.
    Invalid,
    /// No key is invalid, but the budget ran out before some key was
    /// decided.
    Unknown,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }

    /// `Some(true)` valid, `Some(false)` invalid, `None` unknown.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            Verdict::Valid => Some(true),
            Verdict::Invalid => Some(false),
            Verdict::Unknown => None,
        }
    }
}

/// One operation of a failing window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WindowOp {
    pub process: i64,
    pub f: String,
    pub key: Option<String>,
    /// The invoke's value.
    pub value: Value,
    /// The completion's value (`None` for info).
    pub result: Option<Value>,
    /// `ok`, `fail` or `info`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// 0-based line of the invoke.
    pub invoke: usize,
    /// 0-based line of the completion.
    pub complete: Option<usize>,
}

/// What [`check`] found.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    pub verdict: Verdict,
    pub model: ModelKind,
    /// Invocations in the history.
    pub operations: usize,
    /// Distinct keys (lines without a key count as one).
    pub keys: usize,
    pub elapsed: Duration,
    pub invalid_keys: Vec<Option<String>>,
    pub unknown_keys: Vec<Option<String>>,
    /// The smallest failing set of operations found for the first invalid
    /// key, in invoke order; empty unless invalid.
    pub window: Vec<WindowOp>,
    /// A human explanation.
    pub text: String,
}

/// Checks `history` (JSON lines) against `model` (by name), spending at
/// most `budget` on the verdict; explaining an invalid key takes at most a
/// quarter of `budget` more.
pub fn check(model: &str, history: &str, budget: Duration) -> Result<CheckResult, CheckError> {
    let started = Instant::now();
    let model: ModelKind = model.parse()?;
    let history = parse(model, history)?;
    Ok(check_parsed(&history, started, budget))
}

/// Checks an already parsed history; `started` is when the budget began.
pub fn check_parsed(history: &History, started: Instant, budget: Duration) -> CheckResult {
    let deadline = started.checked_add(budget).unwrap_or_else(far_future);
    let mut invalid = Vec::new();
    let mut unknown = Vec::new();
    for (key, ops) in history.by_key.iter().enumerate() {
        let search_ops = key_search_ops(history, ops);
        let outcome = if Instant::now() >= deadline {
            Outcome::Unknown
        } else {
            search(history.model, &search_ops, deadline, false)
        };
        match outcome {
            Outcome::Linearizable => {}
            Outcome::NotLinearizable { .. } => invalid.push(key),
            Outcome::Unknown => unknown.push(key),
        }
    }
    let verdict = if !invalid.is_empty() {
        Verdict::Invalid
    } else if !unknown.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    let key_name = |k: &usize| history.keys.get(*k).cloned().flatten();
    let mut result = CheckResult {
        verdict,
        model: history.model,
        operations: history.ops.len(),
        keys: history.keys.len(),
        elapsed: Duration::ZERO,
        invalid_keys: invalid.iter().map(key_name).collect(),
        unknown_keys: unknown.iter().map(key_name).collect(),
        window: Vec::new(),
        text: String::new(),
    };
    let explanation = invalid.first().map(|&key| {
        let explain_until = Instant::now()
            .checked_add(budget / 4)
            .unwrap_or_else(far_future);
        explain(history, key, explain_until)
    });
    if let Some(Explanation { window, text }) = explanation {
        result.window = window
            .iter()
            .filter_map(|&i| history.ops.get(i))
            .map(|op| WindowOp {
                process: op.process,
                f: op.f.clone(),
                key: history.keys.get(op.key).cloned().flatten(),
                value: op.value.clone(),
                result: op.result.clone(),
                kind: op.completion.type_name(),
                invoke: op.invoke,
                complete: op.complete,
            })
            .collect();
        result.text = text;
    }
    result.elapsed = started.elapsed();
    result.text = summary(&result, budget) + &result.text;
    result
}

/// One key's operations as the search sees them (the whole history,
/// every outcome trusted).
pub(crate) fn key_search_ops<'a>(history: &'a History, ops: &[usize]) -> Vec<SearchOp<'a>> {
    ops.iter()
        .filter_map(|&i| history.ops.get(i))
        .filter_map(|op| op.search_op(history.model, View::default(), false))
        .collect()
}

fn far_future() -> Instant {
    // Far enough for any check; `Instant` has no maximum.
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

fn key_label(key: &Option<String>) -> String {
    match key {
        Some(k) => format!("{k:?}"),
        None => "(no key)".into(),
    }
}

fn summary(result: &CheckResult, budget: Duration) -> String {
    let mut text = format!(
        "{}: {} operations on {} key{}, model {}, checked in {:.3} s\n",
        result.verdict.name(),
        result.operations,
        result.keys,
        plural(result.keys),
        result.model,
        result.elapsed.as_secs_f64()
    );
    let list = |keys: &[Option<String>]| {
        let shown: Vec<String> = keys.iter().take(10).map(key_label).collect();
        let more = keys.len().saturating_sub(shown.len());
        let shown = shown.join(", ");
        let count = format!("{} key{}", keys.len(), plural(keys.len()));
        if more > 0 {
            format!("{count}: {shown} and {more} more")
        } else {
            format!("{count}: {shown}")
        }
    };
    if !result.invalid_keys.is_empty() {
        text += &format!("not linearizable: {}\n", list(&result.invalid_keys));
    }
    if !result.unknown_keys.is_empty() {
        text += &format!(
            "undecided within the {:.3} s budget (or the search's memory bound): {}\n",
            budget.as_secs_f64(),
            list(&result.unknown_keys)
        );
    }
    text
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
