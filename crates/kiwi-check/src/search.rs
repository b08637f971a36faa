//! The Wing–Gong–Lowe search for one key, as Porcupine does it: the
//! history as a linked list of call and return entries, ordered by time;
//! linearizing an operation lifts its two entries out of the list, and
//! backtracking puts them back. Every (set of linearized operations, model
//! state) pair is explored once: a cache keyed by the bitset and the state
//! cuts the otherwise exponential search. Iterative (an explicit stack of
//! calls), bounded by a deadline.
//!
//! States are interned (see `states`): the cache key is (bitset, state id).

use std::time::Instant;

use crate::cache::Cache;
use crate::entries::{EntryList, NIL};
use crate::hash::FastMap;
use crate::model::ModelKind;
use crate::prune::{self, Lookahead};
use crate::states::{States, Step};
use crate::value::Value;

/// The return time of an operation whose outcome is unknown: after
/// everything else.
pub(crate) const PENDING: u64 = u64::MAX;

/// What an operation does to a key's state, as the search sees it (the
/// values borrowed from the parsed history).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Effect<'a> {
    /// Must observe exactly this state; changes nothing.
    Read(&'a Value),
    /// Replaces the state.
    Write(&'a Value),
    /// Must compare equal to `expected`, then sets `new`.
    CasSwapped { expected: &'a Value, new: &'a Value },
    /// Must compare unequal; changes nothing.
    CasUnequal(&'a Value),
    /// Outcome unknown: sets `new` if the state equals `expected`.
    CasIfEqual { expected: &'a Value, new: &'a Value },
    /// Appends to the state.
    Append(&'a Value),
}

/// One operation of the search: it takes effect once, between `call` and
/// `ret` (history lines; `ret` is [`PENDING`] when unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SearchOp<'a> {
    pub call: u64,
    pub ret: u64,
    pub effect: Effect<'a>,
    /// It may also take no effect at all (a relaxed operation).
    pub optional: bool,
}

/// The verdict of one search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Linearizable,
    /// `longest`: the longest order found that respects the model and real
    /// time, when asked for: indices into the searched ops, each with
    /// whether it took effect (an optional operation may not); `state`:
    /// the state it leads to.
    NotLinearizable {
        longest: Vec<(usize, bool)>,
        state: Value,
    },
    /// The deadline passed, or the cache grew past its memory bound.
    Unknown,
}

/// How many steps between two looks at the clock.
const CLOCK_EVERY: u64 = 1 << 10;

/// Checks whether `ops` (one key's operations) can be linearized from the
/// model's initial state.
pub(crate) fn search(
    model: ModelKind,
    ops: &[SearchOp],
    deadline: Instant,
    track_longest: bool,
) -> Outcome {
    let kept = prune::observable(model, ops);
    let ops: Vec<SearchOp> = kept.iter().filter_map(|&i| ops.get(i).copied()).collect();
    match search_observable(model, &ops, deadline, track_longest) {
        Outcome::NotLinearizable { longest, state } => Outcome::NotLinearizable {
            longest: longest
                .into_iter()
                .filter_map(|(i, took_effect)| Some((*kept.get(i)?, took_effect)))
                .collect(),
            state,
        },
        other => other,
    }
}

fn search_observable(
    model: ModelKind,
    ops: &[SearchOp],
    deadline: Instant,
    track_longest: bool,
) -> Outcome {
    let Ok(n) = u32::try_from(ops.len()) else {
        return Outcome::Unknown;
    };
    if n >= NIL / 2 {
        return Outcome::Unknown;
    }
    let mut states = States::new(model);
    let steps: Vec<Step> = ops.iter().map(|op| states.step(op)).collect();
    let mut lookahead = Lookahead::new(model, ops, &steps, &states);
    let mut linearized = Linearized::new(ops);
    let mut list = EntryList::new(ops);
    let mut cache = Cache::new();
    let mut calls: Vec<Frame> = Vec::new();
    let mut state = states.initial;
    let mut longest: Vec<(usize, bool)> = Vec::new();
    let mut longest_state = state;
    let mut entry = list.first();
    let mut resume_alternative = 0usize;
    let mut iterations = 0u64;
    while !list.is_empty() {
        iterations += 1;
        if iterations.is_multiple_of(CLOCK_EVERY) && Instant::now() >= deadline {
            return Outcome::Unknown;
        }
        let Some(op) = list.call(entry) else {
            // A return entry: its operation had to be linearized by now.
            if track_longest && calls.len() > longest.len() {
                longest = calls
                    .iter()
                    .map(|f| (f.op as usize, f.alternative == 0))
                    .collect();
                longest_state = state;
            }
            let Some(top) = calls.pop() else {
                return Outcome::NotLinearizable {
                    longest,
                    state: states.value(longest_state),
                };
            };
            entry = top.entry;
            state = top.state;
            linearized.remove(top.op);
            lookahead.restored(top.op);
            list.unlift(entry);
            resume_alternative = top.alternative + 1;
            continue;
        };
        if !linearized.may_go(op) {
            entry = list.next(entry);
            continue;
        }
        let start = std::mem::take(&mut resume_alternative);
        let successors = states.successors(state, op, &steps);
        let mut descended = false;
        for (alternative, next_state) in successors.into_iter().enumerate().skip(start) {
            let Some(mut next_state) = next_state else {
                continue;
            };
            if next_state != state {
                match lookahead.judge(&states, op, next_state) {
                    Some(judged) => next_state = judged,
                    None => continue,
                }
            }
            linearized.add(op);
            let hash = linearized.hash ^ state_hash(next_state);
            match cache.insert(hash, &linearized.bits, next_state, &linearized.counts) {
                None => return Outcome::Unknown,
                Some(false) => linearized.remove(op),
                Some(true) => {
                    calls.push(Frame {
                        entry,
                        op,
                        state,
                        alternative,
                    });
                    state = next_state;
                    lookahead.linearized(op);
                    list.lift(entry);
                    entry = list.first();
                    descended = true;
                    break;
                }
            }
        }
        if !descended {
            entry = list.next(entry);
        }
    }
    Outcome::Linearizable
}

/// A linearized operation on the stack: its call entry, its operation, the
/// state before it, and which of its successor states was taken.
struct Frame {
    entry: u32,
    op: u32,
    state: u32,
    alternative: usize,
}

/// Which operations are linearized: for completed operations, a bitset;
/// for those with an unknown outcome, how many of each class of identical
/// effects (they can trade places in any linearization, so the search
/// takes each class in invoke order: without that, k of them make k!
/// orders of one outcome). `hash` is a Zobrist hash of both: the xor of
/// the members', updated in O(1).
struct Linearized {
    slots: Vec<Slot>,
    bits: Vec<u64>,
    hash: u64,
    counts: Vec<u32>,
}

#[derive(Clone, Copy)]
enum Slot {
    Completed(u32),
    Pending { class: u32, rank: u32 },
}

impl Linearized {
    fn new(ops: &[SearchOp<'_>]) -> Linearized {
        let mut slots = vec![Slot::Completed(0); ops.len()];
        let mut completed = 0u32;
        let mut pending: Vec<u32> = Vec::new();
        for (i, op) in (0u32..).zip(ops) {
            if op.ret == PENDING && !op.optional {
                pending.push(i);
            } else if let Some(slot) = slots.get_mut(i as usize) {
                *slot = Slot::Completed(completed);
                completed += 1;
            }
        }
        pending.sort_by_key(|&i| ops.get(i as usize).map(|op| op.call));
        let mut classes: FastMap<Effect<'_>, (u32, u32)> = FastMap::default();
        for i in pending {
            let Some(op) = ops.get(i as usize) else {
                continue;
            };
            let next_class = classes.len() as u32;
            let (class, size) = classes.entry(op.effect).or_insert((next_class, 0));
            if let Some(slot) = slots.get_mut(i as usize) {
                *slot = Slot::Pending {
                    class: *class,
                    rank: *size,
                };
            }
            *size += 1;
        }
        Linearized {
            slots,
            bits: vec![0; (completed as usize).div_ceil(64)],
            hash: 0,
            counts: vec![0; classes.len()],
        }
    }

    /// Whether `op` may be linearized next (the earlier ones of its class
    /// first).
    fn may_go(&self, op: u32) -> bool {
        match self.slots.get(op as usize) {
            Some(Slot::Pending { class, rank }) => self.counts.get(*class as usize) == Some(rank),
            _ => true,
        }
    }

    fn add(&mut self, op: u32) {
        self.toggle(op, true);
    }

    fn remove(&mut self, op: u32) {
        self.toggle(op, false);
    }

    fn toggle(&mut self, op: u32, add: bool) {
        match self.slots.get(op as usize) {
            Some(&Slot::Completed(bit)) => {
                if let Some(word) = self.bits.get_mut((bit / 64) as usize) {
                    *word ^= 1 << (bit % 64);
                }
                self.hash ^= mix(u64::from(bit));
            }
            Some(&Slot::Pending { class, rank }) => {
                self.hash ^= mix(u64::from(class) << 32 | u64::from(rank) | 1 << 63);
                if let Some(count) = self.counts.get_mut(class as usize) {
                    *count = if add {
                        count.saturating_add(1)
                    } else {
                        count.saturating_sub(1)
                    };
                }
            }
            None => {}
        }
    }
}

/// SplitMix64's finalizer: a well-mixed 64-bit hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn state_hash(state: u32) -> u64 {
    mix(u64::from(state) ^ 0x5EED_0F57_A7E5_0000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn op(call: u64, ret: u64, effect: Effect<'_>) -> SearchOp<'_> {
        SearchOp {
            call,
            ret,
            effect,
            optional: false,
        }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    fn ints(n: i64) -> Vec<Value> {
        (0..n).map(Value::Int).collect()
    }

    #[test]
    fn sequential_register() {
        let v = ints(2);
        let ops = [
            op(0, 1, Effect::Write(&v[1])),
            op(2, 3, Effect::Read(&v[1])),
        ];
        assert_eq!(
            search(ModelKind::Register, &ops, later(), false),
            Outcome::Linearizable
        );
        let stale = [
            op(0, 1, Effect::Write(&v[1])),
            op(2, 3, Effect::Read(&Value::Null)),
        ];
        assert!(matches!(
            search(ModelKind::Register, &stale, later(), true),
            Outcome::NotLinearizable { .. }
        ));
    }

    #[test]
    fn concurrent_write_may_go_either_way() {
        let v = ints(2);
        // write 1 overlaps both reads: read null then read 1 is fine ...
        let ops = [
            op(0, 5, Effect::Write(&v[1])),
            op(1, 2, Effect::Read(&Value::Null)),
            op(3, 4, Effect::Read(&v[1])),
        ];
        assert_eq!(
            search(ModelKind::Register, &ops, later(), false),
            Outcome::Linearizable
        );
        // ... but not read 1 then read null.
        let ops = [
            op(0, 5, Effect::Write(&v[1])),
            op(1, 2, Effect::Read(&v[1])),
            op(3, 4, Effect::Read(&Value::Null)),
        ];
        match search(ModelKind::Register, &ops, later(), true) {
            Outcome::NotLinearizable { longest, state } => {
                assert_eq!(longest, vec![(0, true), (1, true)]);
                assert_eq!(state, Value::Int(1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn optional_operations_may_not_happen() {
        let v = ints(2);
        let mut write = op(0, 1, Effect::Write(&v[1]));
        let read = op(2, 3, Effect::Read(&Value::Null));
        assert!(matches!(
            search(ModelKind::Register, &[write, read], later(), false),
            Outcome::NotLinearizable { .. }
        ));
        write.optional = true;
        assert_eq!(
            search(ModelKind::Register, &[write, read], later(), false),
            Outcome::Linearizable
        );
    }

    #[test]
    fn appends_build_states() {
        let v = ints(3);
        let read = Value::List(vec![Value::Int(2), Value::Int(1)]);
        let ops = [
            op(0, 3, Effect::Append(&v[1])),
            op(1, 4, Effect::Append(&v[2])),
            op(5, 6, Effect::Read(&read)),
        ];
        assert_eq!(
            search(ModelKind::ListAppend, &ops, later(), false),
            Outcome::Linearizable
        );
        let wrong = Value::List(vec![Value::Int(1)]);
        let ops = [
            op(0, 3, Effect::Append(&v[1])),
            op(1, 4, Effect::Append(&v[2])),
            op(5, 6, Effect::Read(&wrong)),
        ];
        assert!(matches!(
            search(ModelKind::ListAppend, &ops, later(), false),
            Outcome::NotLinearizable { .. }
        ));
    }

    #[test]
    fn past_deadline_is_unknown() {
        // Many concurrent writes and an impossible read: exhausting the
        // search takes more than 1024 steps.
        let v = ints(100);
        let mut ops: Vec<SearchOp> = (0..16)
            .map(|i| op(i, 100 + i, Effect::Write(&v[i as usize])))
            .collect();
        ops.push(op(200, 201, Effect::Read(&v[99])));
        assert_eq!(
            search(ModelKind::Register, &ops, Instant::now(), false),
            Outcome::Unknown
        );
    }
}
