//! The search's view of a history: call and return entries in time order,
//! as doubly linked lists over arrays, so linearizing an operation lifts
//! its entries out in O(1) and backtracking puts them back (Porcupine's
//! lift/unlift, dancing links). Operations whose outcome is unknown return
//! at infinity: after every other entry.

use crate::search::SearchOp;

pub(crate) const NIL: u32 = u32::MAX;

/// Call and return entries; index `len` is the head.
pub(crate) struct EntryList {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// For a call entry, its return entry; `NIL` for a return entry.
    matching: Vec<u32>,
    /// The operation of each entry.
    ops: Vec<u32>,
    head: u32,
}

impl EntryList {
    pub(crate) fn new(ops: &[SearchOp<'_>]) -> EntryList {
        // (time, return after call, op): distinct lines give distinct
        // times; pending returns all come last.
        let mut events: Vec<(u64, bool, u32)> = ops
            .iter()
            .zip(0u32..)
            .flat_map(|(op, i)| [(op.call, false, i), (op.ret.max(op.call), true, i)])
            .collect();
        events.sort_unstable();
        let len = events.len();
        let head = len as u32;
        let mut list = EntryList {
            next: (1..=len as u32).chain([0]).collect(),
            prev: std::iter::once(head).chain(0..len as u32).collect(),
            matching: vec![NIL; len + 1],
            ops: events.iter().map(|&(_, _, op)| op).collect(),
            head,
        };
        if let Some(last) = list.next.get_mut(len.saturating_sub(1)) {
            *last = NIL;
        }
        if let Some(head_prev) = list.prev.get_mut(len) {
            *head_prev = NIL;
        }
        // Each operation's call comes before its return in `events`.
        let mut call_of = vec![NIL; ops.len()];
        for (index, &(_, is_return, op)) in (0u32..).zip(events.iter()) {
            if is_return {
                let call = call_of[op as usize];
                list.matching[call as usize] = index;
            } else {
                call_of[op as usize] = index;
            }
        }
        list
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first() == NIL
    }

    pub(crate) fn first(&self) -> u32 {
        self.next.get(self.head as usize).copied().unwrap_or(NIL)
    }

    pub(crate) fn next(&self, entry: u32) -> u32 {
        self.next.get(entry as usize).copied().unwrap_or(NIL)
    }

    /// The operation of `entry` when it is a call entry.
    pub(crate) fn call(&self, entry: u32) -> Option<u32> {
        let matching = *self.matching.get(entry as usize)?;
        (matching != NIL).then(|| self.ops[entry as usize])
    }

    /// Takes a call entry and its return entry out of the list.
    pub(crate) fn lift(&mut self, entry: u32) {
        let (e, m) = (entry as usize, self.matching[entry as usize] as usize);
        let (prev, next) = (self.prev[e], self.next[e]);
        self.next[prev as usize] = next;
        self.prev[next as usize] = prev;
        let (prev, next) = (self.prev[m], self.next[m]);
        self.next[prev as usize] = next;
        if next != NIL {
            self.prev[next as usize] = prev;
        }
    }

    /// Puts back what `lift(entry)` took out (the reverse order).
    pub(crate) fn unlift(&mut self, entry: u32) {
        let m = self.matching[entry as usize];
        let (prev, next) = (self.prev[m as usize], self.next[m as usize]);
        self.next[prev as usize] = m;
        if next != NIL {
            self.prev[next as usize] = m;
        }
        let (prev, next) = (self.prev[entry as usize], self.next[entry as usize]);
        self.next[prev as usize] = entry;
        self.prev[next as usize] = entry;
    }
}
