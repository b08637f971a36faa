//! What the search may leave out without changing its verdict: operations
//! whose effect nobody observes, and states from which the next read can
//! no longer be reached.

use std::collections::BTreeSet;

use crate::hash::{FastMap, FastSet};

use crate::model::ModelKind;
use crate::search::{Effect, SearchOp, PENDING};
use crate::states::{States, Step, OVERWRITTEN};
use crate::value::Value;

/// The operations that can matter (indices into `ops`). An operation whose
/// outcome is unknown (or optional) and whose effect no read or compare
/// observes is left out: placed last, it explains nothing and contradicts
/// nothing; and in any linearization with it, no read sees its effect, so
/// removing it leaves one without. Without this, every such operation
/// multiplies the states the search must visit.
pub(crate) fn observable(model: ModelKind, ops: &[SearchOp<'_>]) -> Vec<usize> {
    let reads = || {
        ops.iter().filter_map(|op| match op.effect {
            Effect::Read(v) => Some(v),
            _ => None,
        })
    };
    let seen: Box<dyn Fn(&SearchOp<'_>) -> bool> = match model {
        ModelKind::Register | ModelKind::CasRegister => {
            let (observed, unequal) = register_observed(ops);
            Box::new(move |op| match op.effect {
                Effect::Write(v) | Effect::CasIfEqual { new: v, .. } => {
                    unequal || observed.contains(v)
                }
                _ => true,
            })
        }
        ModelKind::Kv => {
            let reads = maximal_strings(reads());
            Box::new(move |op| match op.effect {
                // Appended text shows in every read until the next put.
                Effect::Append(Value::Str(x)) => {
                    x.is_empty() || reads.iter().any(|r| r.contains(x.as_str()))
                }
                // A put's value starts every read until the next put; a
                // prefix of a read is a prefix of the maximal read it is in.
                Effect::Write(Value::Str(v)) => reads.iter().any(|r| r.starts_with(v.as_str())),
                _ => true,
            })
        }
        ModelKind::ListAppend => {
            // Reads mostly extend the one before: skip the shared part.
            let mut elements: FastSet<&Value> = FastSet::default();
            let mut last: &[Value] = &[];
            for read in reads() {
                if let Value::List(items) = read {
                    let shared = last.iter().zip(items).take_while(|(a, b)| a == b).count();
                    elements.extend(items.iter().skip(shared));
                    last = items;
                }
            }
            Box::new(move |op| match op.effect {
                Effect::Append(x) => elements.contains(x),
                _ => true,
            })
        }
    };
    (0..ops.len())
        .filter(|&i| ops.get(i).is_some_and(|op| !droppable(op) || seen(op)))
        .collect()
}

/// Whether the search may leave `op` out when nothing observes its effect:
/// its outcome is unknown, or it may not take effect at all.
fn droppable(op: &SearchOp<'_>) -> bool {
    op.ret == PENDING || op.optional
}

/// The distinct read strings that are no prefix of another: whatever is a
/// substring of some read is a substring of one of these.
fn maximal_strings<'a>(reads: impl Iterator<Item = &'a Value>) -> Vec<&'a str> {
    let mut strings: Vec<&str> = reads
        .filter_map(|r| match r {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    strings.sort_unstable();
    strings.dedup();
    // In sorted order, a string that prefixes any other prefixes the next.
    let mut maximal = Vec::new();
    let mut it = strings.iter().peekable();
    while let Some(s) = it.next() {
        if !it.peek().is_some_and(|next| next.starts_with(s)) {
            maximal.push(*s);
        }
    }
    maximal
}

/// Register models: the values whose presence something could observe
/// (a read that returned it, a cas that must have compared equal to it, or
/// a droppable cas that swaps it for an observed value: a chain), and
/// whether a cas that must have compared unequal exists (it observes every
/// value but one, so nothing may be dropped).
fn register_observed<'a>(ops: &[SearchOp<'a>]) -> (FastSet<&'a Value>, bool) {
    let mut observed: FastSet<&Value> = FastSet::default();
    let mut unequal = false;
    // For a droppable cas: its new value -> the values it compares to.
    let mut swaps_to: FastMap<&Value, Vec<&Value>> = FastMap::default();
    for op in ops {
        match op.effect {
            Effect::Read(v) => {
                observed.insert(v);
            }
            Effect::CasSwapped { expected, .. } => {
                observed.insert(expected);
            }
            Effect::CasUnequal(_) => unequal = true,
            Effect::CasIfEqual { expected, new } if droppable(op) => {
                swaps_to.entry(new).or_default().push(expected);
            }
            Effect::CasIfEqual { expected, .. } => {
                observed.insert(expected);
            }
            Effect::Write(_) | Effect::Append(_) => {}
        }
    }
    let mut work: Vec<&Value> = observed.iter().copied().collect();
    while let Some(value) = work.pop() {
        for &expected in swaps_to.get(value).map(Vec::as_slice).unwrap_or_default() {
            if observed.insert(expected) {
                work.push(expected);
            }
        }
    }
    (observed, unequal)
}

/// For the append models: a state that is not a prefix of what the next
/// read returned is a dead end. That read must still be linearized, and
/// until then the state only grows by appends, unless a put comes first;
/// and a put can only be the last one before the read if its value
/// starts what the read returned. Checked against the unlinearized read
/// that returned first, as soon as an operation changes the state, this
/// stops the search from exploring every interleaving of the concurrent
/// operations up to that read.
pub(crate) struct Lookahead {
    enabled: bool,
    /// Unlinearized reads by return time, and by call time.
    reads: BTreeSet<(u64, u32)>,
    reads_by_call: BTreeSet<(u64, u32)>,
    call: Vec<u64>,
    ret: Vec<u64>,
    /// The state each read observed.
    observed: Vec<Option<u32>>,
    /// For each read, the puts (call time, op) whose value starts what it
    /// returned: those may come between now and the read.
    puts_before: Vec<Vec<(u64, u32)>>,
    linearized: Vec<bool>,
    /// Whether state `.0` is a prefix of state `.1`.
    prefix: FastMap<(u32, u32), bool>,
}

impl Lookahead {
    pub(crate) fn new(
        model: ModelKind,
        ops: &[SearchOp<'_>],
        steps: &[Step],
        states: &States<'_>,
    ) -> Lookahead {
        let enabled = matches!(model, ModelKind::Kv | ModelKind::ListAppend);
        let observed: Vec<Option<u32>> = steps
            .iter()
            .map(|step| match step {
                Step::Read(state) => Some(*state),
                _ => None,
            })
            .collect();
        let puts: Vec<(u64, u32, u32)> = ops
            .iter()
            .zip(steps)
            .zip(0u32..)
            .filter_map(|((op, step), i)| match step {
                Step::Write(state) => Some((op.call, i, *state)),
                _ => None,
            })
            .collect();
        let puts_before = if enabled {
            observed
                .iter()
                .map(|read| match read {
                    Some(read) => puts
                        .iter()
                        .filter(|&&(_, _, put)| states.is_prefix(put, *read))
                        .map(|&(call, op, _)| (call, op))
                        .collect(),
                    None => Vec::new(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut lookahead = Lookahead {
            enabled,
            reads: BTreeSet::new(),
            reads_by_call: BTreeSet::new(),
            call: ops.iter().map(|op| op.call).collect(),
            ret: ops.iter().map(|op| op.ret).collect(),
            observed,
            puts_before,
            linearized: vec![false; ops.len()],
            prefix: FastMap::default(),
        };
        if enabled {
            for op in 0..ops.len() as u32 {
                lookahead.restored(op);
            }
        }
        lookahead
    }

    /// `op` was linearized.
    pub(crate) fn linearized(&mut self, op: u32) {
        if !self.enabled {
            return;
        }
        let i = op as usize;
        if let (Some(&call), Some(&ret)) = (self.call.get(i), self.ret.get(i)) {
            self.reads.remove(&(ret, op));
            self.reads_by_call.remove(&(call, op));
        }
        if let Some(flag) = self.linearized.get_mut(i) {
            *flag = true;
        }
    }

    /// `op` was taken back.
    pub(crate) fn restored(&mut self, op: u32) {
        if !self.enabled {
            return;
        }
        let i = op as usize;
        if let (Some(Some(_)), Some(&call), Some(&ret)) =
            (self.observed.get(i), self.call.get(i), self.ret.get(i))
        {
            if ret != PENDING {
                self.reads.insert((ret, op));
                self.reads_by_call.insert((call, op));
            }
        }
        if let Some(flag) = self.linearized.get_mut(i) {
            *flag = false;
        }
    }

    /// What linearizing `op` into state `next` leads to: `None` for a
    /// dead end, else the state to go on from ([`OVERWRITTEN`] when no read
    /// can see it any more).
    pub(crate) fn judge(&mut self, states: &States<'_>, op: u32, next: u32) -> Option<u32> {
        if !self.enabled {
            return Some(next);
        }
        let Some(&(ret, read)) = self.reads.iter().find(|&&(_, r)| r != op) else {
            return Some(next);
        };
        if self.is_prefix(states, next, read) {
            return Some(next);
        }
        // A put must come before that read; is there one that can?
        let put_may_come = self.puts_before.get(read as usize).is_some_and(|puts| {
            puts.iter().any(|&(call, put)| {
                put != op
                    && call < ret
                    && !self.linearized.get(put as usize).copied().unwrap_or(true)
            })
        });
        if !put_may_come {
            return None;
        }
        // Only reads that may come before that one could see this state.
        let seen = self
            .reads_by_call
            .range(..(ret, 0))
            .map(|&(_, r)| r)
            .filter(|&r| r != op)
            .collect::<Vec<u32>>()
            .into_iter()
            .any(|r| self.is_prefix(states, next, r));
        Some(if seen { next } else { OVERWRITTEN })
    }

    /// Whether `state` is a prefix of what `read` returned.
    fn is_prefix(&mut self, states: &States<'_>, state: u32, read: u32) -> bool {
        let Some(Some(target)) = self.observed.get(read as usize).copied() else {
            return true;
        };
        *self
            .prefix
            .entry((state, target))
            .or_insert_with(|| states.is_prefix(state, target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maximal_strings_drop_prefixes() {
        let values: Vec<Value> = ["a", "ab", "abc", "b", "ab", "bd"]
            .iter()
            .map(|s| Value::Str(s.to_string()))
            .collect();
        assert_eq!(maximal_strings(values.iter()), vec!["abc", "bd"]);
    }

    #[test]
    fn unobserved_pending_operations_are_left_out() {
        let (one, two) = (Value::Int(1), Value::Int(2));
        let pending = |effect| SearchOp {
            call: 0,
            ret: PENDING,
            effect,
            optional: false,
        };
        let read = SearchOp {
            call: 1,
            ret: 2,
            effect: Effect::Read(&one),
            optional: false,
        };
        let ops = [
            pending(Effect::Write(&one)),
            pending(Effect::Write(&two)),
            read,
        ];
        assert_eq!(observable(ModelKind::Register, &ops), vec![0, 2]);
        // A droppable cas from 2 to an observed 1 makes 2 observed.
        let cas = pending(Effect::CasIfEqual {
            expected: &two,
            new: &one,
        });
        let ops = [pending(Effect::Write(&two)), cas, read];
        assert_eq!(observable(ModelKind::CasRegister, &ops), vec![0, 1, 2]);
    }
}
