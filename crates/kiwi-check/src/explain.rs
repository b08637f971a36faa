//! Explaining a violation: the smallest failing window of one invalid key.
//!
//! First the shortest failing prefix (binary search over the key's
//! completion lines: what was known by that line; operations still open
//! there are pending). Then delta debugging over the prefix's operations
//! whose outcome is known: drop a chunk (then single operations) from the
//! window while what is left still cannot be linearized. A dropped
//! operation is not deleted but relaxed: it may or may not have taken
//! effect, within its interval. So the window cannot be linearized even
//! allowing anything the other operations might have done, and on its own
//! neither: it never blames a read for a value some other write made.

use std::time::{Duration, Instant};

use crate::history::{Completion, History, Operation, View};
use crate::model::Action;
use crate::search::{search, Outcome, SearchOp};
use crate::value::Value;

/// A failing window (indices into `History::ops`, invoke order) and its
/// explanation.
pub(crate) struct Explanation {
    pub window: Vec<usize>,
    pub text: String,
}

/// Explains why `key` (known invalid) is not linearizable, working until
/// `deadline` at most; what it could not shrink in time stays in the window.
pub(crate) fn explain(history: &History, key: usize, deadline: Instant) -> Explanation {
    let indices: Vec<usize> = history.by_key.get(key).cloned().unwrap_or_default();
    let ops: Vec<&Operation> = indices.iter().filter_map(|&i| history.ops.get(i)).collect();
    let view = shortest_failing_prefix(history, &ops, deadline);
    let candidates: Vec<usize> = (0..ops.len())
        .filter(|&i| ops.get(i).is_some_and(|op| op.constrains(view)))
        .collect();
    let kept = shrink(history, &ops, view, candidates, deadline);
    let text = describe(history, key, &ops, view, &kept, deadline);
    let window = kept
        .iter()
        .filter_map(|&i| indices.get(i).copied())
        .collect();
    Explanation { window, text }
}

/// The time one search may take: `share` of what is left, so one hard
/// search cannot use everything.
fn sub_deadline(deadline: Instant, share: u32) -> Instant {
    let now = Instant::now();
    now + deadline.saturating_duration_since(now) / share
}

/// The shortest prefix of the key's history (cut after a completion line)
/// that is not linearizable; the whole history when none shorter is
/// found in time.
fn shortest_failing_prefix(history: &History, ops: &[&Operation], deadline: Instant) -> View {
    let mut lines: Vec<usize> = ops.iter().filter_map(|op| op.complete).collect();
    lines.sort_unstable();
    let view_at = |k: usize| View {
        cut: lines.get(k).map(|line| line + 1),
    };
    let Some(last) = lines.len().checked_sub(1) else {
        return View::default();
    };
    // Invariant: prefix `hi` fails (the whole key failed); below `lo` it
    // was linearizable (or undecided).
    let (mut lo, mut hi) = (0usize, last);
    while lo < hi && Instant::now() < deadline {
        let mid = lo + (hi - lo) / 2;
        let search_ops = view_ops(history, ops, view_at(mid), |_| false);
        match search(history.model, &search_ops, sub_deadline(deadline, 2), false) {
            Outcome::NotLinearizable { .. } => hi = mid,
            Outcome::Linearizable | Outcome::Unknown => lo = mid + 1,
        }
    }
    view_at(hi)
}

/// The key's operations in `view`; those `relax` picks are relaxed.
fn view_ops<'a>(
    history: &History,
    ops: &[&'a Operation],
    view: View,
    relax: impl Fn(usize) -> bool,
) -> Vec<SearchOp<'a>> {
    view_ops_at(history, ops, view, relax).0
}

/// As [`view_ops`], with each search op's position in `ops`.
fn view_ops_at<'a>(
    history: &History,
    ops: &[&'a Operation],
    view: View,
    relax: impl Fn(usize) -> bool,
) -> (Vec<SearchOp<'a>>, Vec<usize>) {
    ops.iter()
        .enumerate()
        .filter_map(|(i, op)| Some((op.search_op(history.model, view, relax(i))?, i)))
        .unzip()
}

/// Relaxes every operation that constrains the search but is not kept.
fn relax_all_but<'a>(
    ops: &'a [&Operation],
    view: View,
    kept: &'a [usize],
) -> impl Fn(usize) -> bool + 'a {
    move |i| !kept.contains(&i) && ops.get(i).is_some_and(|op| op.constrains(view))
}

/// Delta debugging: removes chunks of `window` (halving their size down to
/// single operations, repeating singles until nothing more goes) while the
/// rest, with what was removed relaxed, is still not linearizable.
fn shrink(
    history: &History,
    ops: &[&Operation],
    view: View,
    mut window: Vec<usize>,
    deadline: Instant,
) -> Vec<usize> {
    // Each trial may take a few times what proving the prefix invalid
    // takes: relaxed operations can make a search much harder, and one
    // hard trial must not use up the time of all the others.
    let started = Instant::now();
    let _ = search(
        history.model,
        &view_ops(history, ops, view, |_| false),
        deadline,
        false,
    );
    let trial = (started.elapsed() * 4).max(Duration::from_millis(20));
    let fails = |kept: &[usize]| {
        let search_ops = view_ops(history, ops, view, relax_all_but(ops, view, kept));
        let until = deadline.min(Instant::now() + trial);
        matches!(
            search(history.model, &search_ops, until, false),
            Outcome::NotLinearizable { .. }
        )
    };
    // The operation that completes last often fails on its own (a read of
    // a value nobody wrote): one cheap trial before delta debugging.
    let last = window
        .iter()
        .copied()
        .max_by_key(|&i| ops.get(i).and_then(|op| op.complete));
    if let Some(last) = last {
        if fails(&[last]) {
            return vec![last];
        }
    }
    let mut chunk = (window.len() / 2).max(1);
    loop {
        let mut removed = false;
        let mut start = 0;
        while start < window.len() {
            if Instant::now() >= deadline {
                return window;
            }
            let end = (start + chunk).min(window.len());
            let rest: Vec<usize> = window
                .iter()
                .enumerate()
                .filter(|&(j, _)| j < start || j >= end)
                .map(|(_, &i)| i)
                .collect();
            if !rest.is_empty() && fails(&rest) {
                window = rest;
                removed = true;
            } else {
                start = end;
            }
        }
        if chunk == 1 && !removed {
            return window;
        }
        chunk = (chunk / 2).max(1);
    }
}

/// The explanation: the window's operations, and how far a linearization
/// of them gets.
fn describe(
    history: &History,
    key: usize,
    ops: &[&Operation],
    view: View,
    kept: &[usize],
    deadline: Instant,
) -> String {
    let window: Vec<&Operation> = kept.iter().filter_map(|&i| ops.get(i).copied()).collect();
    let (subject, of_it) = match history.keys.get(key).cloned().flatten() {
        Some(k) => (format!("Key {k:?}"), "of this key"),
        None => ("The history".to_string(), "in the history"),
    };
    let others = ops
        .iter()
        .filter(|op| op.visible(view))
        .count()
        .saturating_sub(window.len());
    let until = match view.cut {
        Some(cut) => format!("up to line {cut}"),
        None => "to the end".to_string(),
    };
    let mut text = format!(
        "{subject} ({}, initially {}): these {} operation{} cannot be linearized, whether or \
         not any of the {others} other operation{} {of_it} {until} took effect (lines count \
         from 1):\n",
        history.model,
        history.model.initial(),
        window.len(),
        plural(window.len()),
        plural(others),
    );
    for op in &window {
        text += &format!("  {}\n", describe_op(op));
    }
    text += &longest_attempt(history, ops, view, kept, deadline);
    text
}

/// How far a linearization gets: the search, with the window trusted and
/// the other operations relaxed, remembers its longest order.
fn longest_attempt(
    history: &History,
    ops: &[&Operation],
    view: View,
    kept: &[usize],
    deadline: Instant,
) -> String {
    /// Steps of the longest order worth showing.
    const SHOWN: usize = 12;
    let (search_ops, positions) = view_ops_at(history, ops, view, relax_all_but(ops, view, kept));
    let Outcome::NotLinearizable { longest, state } =
        search(history.model, &search_ops, sub_deadline(deadline, 1), true)
    else {
        return String::new();
    };
    let position = |i: usize| positions.get(i).copied();
    let steps: Vec<String> = longest
        .iter()
        .filter(|&&(_, took_effect)| took_effect)
        .filter_map(|&(i, _)| {
            let at = position(i)?;
            let op = ops.get(at)?;
            let note = if kept.contains(&at) {
                ""
            } else {
                " (outside the window)"
            };
            Some(format!("  {}{note}\n", describe_op(op)))
        })
        .collect();
    let placed: Vec<usize> = longest.iter().filter_map(|&(i, _)| position(i)).collect();
    let stuck: Vec<String> = kept
        .iter()
        .filter(|at| !placed.contains(at))
        .filter_map(|&at| ops.get(at))
        .filter(|op| op.search_op(history.model, view, false).is_some())
        .map(|op| format!("  {}\n", describe_op(op)))
        .collect();
    let mut text = String::new();
    if steps.is_empty() {
        text += &format!(
            "No order gets anywhere: the state stays the initial {}",
            history.model.initial()
        );
    } else {
        let skipped = steps.len().saturating_sub(SHOWN);
        text += "The longest linearization found (operations outside the window taking effect \
                 where that helps)";
        if skipped > 0 {
            text += &format!(", its last {SHOWN} of {} steps", steps.len());
        }
        text += ":\n";
        for step in steps.iter().skip(skipped) {
            text += step;
        }
        text += &format!("It leaves the state {state}");
    }
    text += ", and none of the window's other operations can come next:\n";
    for op in stuck {
        text += &op;
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

/// `write 3 -> ok`, `read -> 3`, `cas [1,2] -> fail (compared unequal)`.
fn short_op(op: &Operation) -> String {
    let call = match (&op.action, &op.value) {
        (Action::Read { .. }, Value::Null) => op.f.clone(),
        (_, value) => format!("{} {value}", op.f),
    };
    let outcome = match op.completion.type_name() {
        "ok" => match &op.action {
            Action::Read { .. } => op
                .result
                .as_ref()
                .map_or_else(|| "ok".to_string(), Value::to_string),
            _ => "ok".to_string(),
        },
        "fail" => match (&op.action, op.completion) {
            (Action::Cas { .. }, Completion::Fail { error: false }) => {
                "fail (compared unequal)".to_string()
            }
            _ => "fail (did not happen)".to_string(),
        },
        _ => "info (unknown)".to_string(),
    };
    format!("{call} -> {outcome}")
}

/// One window line: process, operation, result, lines.
fn describe_op(op: &Operation) -> String {
    let lines = match (op.completion, op.complete) {
        (Completion::Ok | Completion::Fail { .. }, Some(c)) => {
            format!("lines {}-{}", op.invoke + 1, c + 1)
        }
        (_, Some(c)) => format!("invoked line {}, info line {}", op.invoke + 1, c + 1),
        (_, None) => format!("invoked line {}, never completed", op.invoke + 1),
    };
    format!("process {}: {}, {lines}", op.process, short_op(op))
}
