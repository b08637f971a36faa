//! `check_history`: the linearizability checker of `kiwi.testing` (the
//! `kiwi-check` crate), returning its verdict as the dict TESTING_API.md
//! describes.

use std::time::Duration;

use kiwi_check::{CheckResult, Value, WindowOp};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Check a JSON-lines history against a model (`register`,
/// `cas-register`, `kv` or `list-append`), spending at most `budget_s`
/// seconds (`math.inf`: no limit) on the verdict (and at most a quarter of that more explaining a
/// violation). Releases the GIL. Returns a dict: `valid` (True, False, or
/// None when the budget ran out), `verdict`, `model`, `operations`,
/// `keys`, `elapsed_s`, `invalid_keys`, `unknown_keys`, `window` (the
/// smallest failing set of operations found for the first invalid key,
/// with 0-based line numbers) and `text` (an explanation). A malformed
/// history or an unknown model raises ValueError naming the line.
///
/// >>> from kiwi._kiwi import check_history
/// >>> history = (
/// ...     '{"process": 0, "type": "invoke", "f": "write", "value": 1}\n'
/// ...     '{"process": 0, "type": "ok", "f": "write", "value": 1}\n'
/// ...     '{"process": 1, "type": "invoke", "f": "read", "value": null}\n'
/// ...     '{"process": 1, "type": "ok", "f": "read", "value": null}\n'
/// ... )
/// >>> result = check_history("register", history)
/// >>> result["verdict"], [op["invoke"] for op in result["window"]]
/// ('invalid', [0, 2])
#[pyfunction]
#[pyo3(signature = (model, history, budget_s = 10.0))]
pub(super) fn check_history<'py>(
    py: Python<'py>,
    model: String,
    history: String,
    budget_s: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let budget = if budget_s == f64::INFINITY {
        Duration::MAX
    } else {
        Duration::try_from_secs_f64(budget_s).map_err(|_| {
            PyValueError::new_err(format!(
                "budget_s must be a non-negative number of seconds, not {budget_s}"
            ))
        })?
    };
    let result = py
        .detach(|| kiwi_check::check(&model, &history, budget))
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    result_dict(py, &result)
}

fn result_dict<'py>(py: Python<'py>, result: &CheckResult) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("valid", result.verdict.as_bool())?;
    d.set_item("verdict", result.verdict.name())?;
    d.set_item("model", result.model.name())?;
    d.set_item("operations", result.operations)?;
    d.set_item("keys", result.keys)?;
    d.set_item("elapsed_s", result.elapsed.as_secs_f64())?;
    d.set_item("invalid_keys", &result.invalid_keys)?;
    d.set_item("unknown_keys", &result.unknown_keys)?;
    let window = PyList::empty(py);
    for op in &result.window {
        window.append(window_op(py, op)?)?;
    }
    d.set_item("window", window)?;
    d.set_item("text", &result.text)?;
    Ok(d)
}

fn window_op<'py>(py: Python<'py>, op: &WindowOp) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("process", op.process)?;
    d.set_item("f", &op.f)?;
    d.set_item("key", &op.key)?;
    d.set_item("value", value(py, &op.value)?)?;
    match &op.result {
        Some(result) => d.set_item("result", value(py, result)?)?,
        None => d.set_item("result", py.None())?,
    }
    d.set_item("type", op.kind)?;
    d.set_item("invoke", op.invoke)?;
    d.set_item("complete", op.complete)?;
    Ok(d)
}

/// A history value as Python: None, int, str, or a list of those (lists
/// hold scalars only, so this does not recurse past one level).
fn value<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(scalar(py, item)?)?;
            }
            list.into_any()
        }
        other => scalar(py, other)?,
    })
}

fn scalar<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Str(s) => s.into_pyobject(py)?.into_any(),
        // Lists never nest (the parser refuses it).
        Value::List(_) => py.None().into_bound(py),
    })
}
