//! Parsing a JSON-lines history into operations (an invoke paired with its
//! completion), and what each operation means to the search: when it may
//! take effect and what it must observe, given `ok`/`fail`/`info`.

use std::collections::HashMap;

use serde::Deserialize;

use crate::error::CheckError;
use crate::model::{Action, ModelKind};
use crate::search::{Effect, SearchOp, PENDING};
use crate::value::Value;

/// How an operation completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// It happened, with the completion's result.
    Ok,
    /// It did not happen, except a cas-register `cas` without `error`:
    /// that one compared unequal and changed nothing.
    Fail { error: bool },
    /// Unknown: it may have happened at any time after its invoke.
    Info,
    /// No completion in the history: unknown, as `info`.
    Never,
}

impl Completion {
    /// The `type` of the completion line (`info` for one that never came).
    pub fn type_name(self) -> &'static str {
        match self {
            Completion::Ok => "ok",
            Completion::Fail { .. } => "fail",
            Completion::Info | Completion::Never => "info",
        }
    }
}

/// One operation: an invoke and its completion.
#[derive(Clone, Debug)]
pub struct Operation {
    pub process: i64,
    pub f: String,
    /// Index into [`History::keys`].
    pub key: usize,
    /// The invoke's value.
    pub value: Value,
    /// The completion's value (`None` for `info` or no completion).
    pub result: Option<Value>,
    pub completion: Completion,
    /// 0-based line of the invoke.
    pub invoke: usize,
    /// 0-based line of the completion.
    pub complete: Option<usize>,
    pub(crate) action: Action,
}

/// A parsed history.
#[derive(Clone, Debug)]
pub struct History {
    pub model: ModelKind,
    /// In invoke order.
    pub ops: Vec<Operation>,
    /// Every key (`None`: lines without a key), in order of first use.
    pub keys: Vec<Option<String>>,
    /// Each key's operations (indices into `ops`), in invoke order.
    pub by_key: Vec<Vec<usize>>,
}

/// Which part of a key's history a search sees.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct View {
    /// Only lines before this (0-based) are known: later invokes are left
    /// out and later completions have not come yet.
    pub cut: Option<usize>,
}

impl Operation {
    /// The completion as far as `view` knows it.
    fn completion_in(&self, view: View) -> Completion {
        match (self.complete, view.cut) {
            (Some(line), Some(cut)) if line >= cut => Completion::Never,
            (None, _) => Completion::Never,
            _ => self.completion,
        }
    }

    /// Whether the operation is in the view at all.
    pub(crate) fn visible(&self, view: View) -> bool {
        view.cut.is_none_or(|cut| self.invoke < cut)
    }

    /// Whether the view knows this operation's outcome in a way that
    /// constrains the search (an `ok`, or a `fail` of anything but a read):
    /// these are what a failing window is made of; relaxing one turns it
    /// into "may or may not have taken effect, within its interval".
    pub(crate) fn constrains(&self, view: View) -> bool {
        self.visible(view)
            && match self.completion_in(view) {
                Completion::Ok => true,
                Completion::Fail { .. } => !self.action.is_read(),
                Completion::Info | Completion::Never => false,
            }
    }

    /// What the search does with this operation in `view`, or `None` when
    /// it cannot matter. `relaxed` stops trusting its outcome: it may or may
    /// not take effect, within its interval.
    pub(crate) fn search_op(
        &self,
        model: ModelKind,
        view: View,
        relaxed: bool,
    ) -> Option<SearchOp<'_>> {
        if !self.visible(view) {
            return None;
        }
        let completion = self.completion_in(view);
        let ret = match completion {
            Completion::Ok | Completion::Fail { .. } => self.complete.map_or(PENDING, |c| c as u64),
            Completion::Info | Completion::Never => PENDING,
        };
        // What it does if it takes effect with its outcome unknown.
        let unknown_effect = match &self.action {
            Action::Read { .. } => None,
            Action::Write(v) => Some(Effect::Write(v)),
            Action::Append(v) => Some(Effect::Append(v)),
            Action::Cas { expected, new } => Some(Effect::CasIfEqual { expected, new }),
        };
        let (effect, optional) = match completion {
            // Unknown: it may take effect any time after its invoke; placed
            // last it changes nothing anyone saw.
            Completion::Info | Completion::Never => (unknown_effect?, false),
            _ if relaxed => (unknown_effect?, true),
            Completion::Ok => match &self.action {
                Action::Read { observed } => {
                    (Effect::Read(observed.as_ref().unwrap_or(&NULL)), false)
                }
                Action::Write(v) => (Effect::Write(v), false),
                Action::Append(v) => (Effect::Append(v), false),
                Action::Cas { expected, new } => (Effect::CasSwapped { expected, new }, false),
            },
            Completion::Fail { error } => match &self.action {
                Action::Cas { expected, .. } if !error && model == ModelKind::CasRegister => {
                    (Effect::CasUnequal(expected), false)
                }
                // Certainly did not happen.
                _ => return None,
            },
        };
        Some(SearchOp {
            call: self.invoke as u64,
            ret,
            effect,
            optional,
        })
    }
}

/// What an `ok` read without a decoded result observed (never happens:
/// parsing decodes every `ok` read).
static NULL: Value = Value::Null;

/// One line of the history, as written.
#[derive(Deserialize)]
struct Event {
    process: i64,
    #[serde(rename = "type")]
    kind: String,
    f: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Value,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

/// Parses JSON-lines `text` for `model`. Blank lines are skipped (and
/// still counted). Every refusal names its line.
pub fn parse(model: ModelKind, text: &str) -> Result<History, CheckError> {
    let mut history = History {
        model,
        ops: Vec::new(),
        keys: Vec::new(),
        by_key: Vec::new(),
    };
    let mut key_index: HashMap<Option<String>, usize> = HashMap::new();
    // Each process's operation in flight.
    let mut open: HashMap<i64, usize> = HashMap::new();
    for (line, raw) in text.split('\n').enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let fail = |message: String| CheckError::History {
            line: line + 1,
            message,
        };
        let event: Event =
            serde_json::from_str(raw).map_err(|e| fail(format!("not a history event: {e}")))?;
        let value = event.value;
        match event.kind.as_str() {
            "invoke" => {
                if let Some(&prior) = open.get(&event.process) {
                    let since = history.ops.get(prior).map_or(0, |op| op.invoke + 1);
                    return Err(fail(format!(
                        "process {} invokes while its operation from line {since} is still open",
                        event.process
                    )));
                }
                let f = event
                    .f
                    .ok_or_else(|| fail("an invoke needs \"f\"".into()))?;
                let action = model.decode_invoke(&f, &value).map_err(fail)?;
                let next_key = key_index.len();
                let key = *key_index.entry(event.key.clone()).or_insert_with(|| {
                    history.keys.push(event.key.clone());
                    history.by_key.push(Vec::new());
                    next_key
                });
                let index = history.ops.len();
                if let Some(ops) = history.by_key.get_mut(key) {
                    ops.push(index);
                }
                history.ops.push(Operation {
                    process: event.process,
                    f,
                    key,
                    value,
                    result: None,
                    completion: Completion::Never,
                    invoke: line,
                    complete: None,
                    action,
                });
                open.insert(event.process, index);
            }
            kind @ ("ok" | "fail" | "info") => {
                let op = open
                    .remove(&event.process)
                    .and_then(|index| history.ops.get_mut(index))
                    .ok_or_else(|| {
                        fail(format!(
                            "process {} completes an operation it never invoked",
                            event.process
                        ))
                    })?;
                if let Some(f) = &event.f {
                    if *f != op.f {
                        return Err(fail(format!(
                            "process {} completes {f:?} but invoked {:?} on line {}",
                            event.process,
                            op.f,
                            op.invoke + 1
                        )));
                    }
                }
                if let Some(key) = &event.key {
                    let invoked = history.keys.get(op.key).and_then(|k| k.as_ref());
                    if invoked != Some(key) {
                        return Err(fail(format!(
                            "process {} completes on key {key:?} but invoked on {invoked:?} (line {})",
                            event.process,
                            op.invoke + 1
                        )));
                    }
                }
                op.complete = Some(line);
                match kind {
                    "ok" => {
                        op.completion = Completion::Ok;
                        if let Action::Read { observed } = &mut op.action {
                            *observed = Some(model.decode_observed(&op.f, &value).map_err(fail)?);
                        }
                        op.result = Some(value);
                    }
                    "fail" => {
                        op.completion = Completion::Fail {
                            error: event.error.is_some(),
                        };
                        op.result = Some(value);
                    }
                    _ => op.completion = Completion::Info,
                }
            }
            other => {
                return Err(fail(format!(
                    "type {other:?} is not one of invoke, ok, fail, info"
                )))
            }
        }
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_line(model: ModelKind, text: &str) -> usize {
        match parse(model, text) {
            Err(CheckError::History { line, .. }) => line,
            other => panic!("expected a history error, got {other:?}"),
        }
    }

    #[test]
    fn pairs_invokes_with_completions() {
        let text = r#"{"process": 0, "type": "invoke", "f": "write", "value": 1}
{"process": 1, "type": "invoke", "f": "read", "value": null}

{"process": 1, "type": "ok", "f": "read", "value": 1}
{"process": 0, "type": "info", "f": "write", "value": 1}
{"process": 1, "type": "invoke", "f": "read"}
"#;
        let h = parse(ModelKind::Register, text).unwrap();
        assert_eq!(h.ops.len(), 3);
        assert_eq!(h.keys, vec![None]);
        assert_eq!((h.ops[0].invoke, h.ops[0].complete), (0, Some(4)));
        assert_eq!(h.ops[0].completion, Completion::Info);
        assert_eq!(h.ops[1].complete, Some(3));
        assert_eq!(h.ops[1].result, Some(Value::Int(1)));
        assert_eq!(h.ops[2].completion, Completion::Never);
    }

    #[test]
    fn malformed_lines_are_named() {
        let ok = r#"{"process": 0, "type": "invoke", "f": "read", "value": null}"#;
        let m = ModelKind::CasRegister;
        assert_eq!(error_line(m, &format!("{ok}\nnot json")), 2);
        assert_eq!(error_line(m, &format!("{ok}\n{ok}")), 2);
        assert_eq!(
            error_line(
                m,
                r#"{"process": 3, "type": "ok", "f": "read", "value": 1}"#
            ),
            1
        );
        assert_eq!(
            error_line(
                m,
                r#"{"process": 3, "type": "invoke", "f": "pop", "value": 1}"#
            ),
            1
        );
        assert_eq!(
            error_line(
                m,
                r#"{"process": 3, "type": "invoke", "f": "cas", "value": 1}"#
            ),
            1
        );
        assert_eq!(
            error_line(
                m,
                r#"{"process": 3, "type": "begin", "f": "read", "value": 1}"#
            ),
            1
        );
        assert_eq!(
            error_line(
                m,
                &format!(
                    "{ok}\n\n{}",
                    r#"{"process": 0, "type": "ok", "f": "read", "value": [1]}"#
                )
            ),
            3
        );
        assert_eq!(
            error_line(
                ModelKind::Kv,
                r#"{"process": 0, "type": "invoke", "f": "put", "key": "a", "value": 2}"#
            ),
            1
        );
    }
}
