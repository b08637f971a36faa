//! The set of (linearized operations, state) pairs the search has visited.
//!
//! Bitsets are stored run-length encoded: the search linearizes roughly in
//! time order, so a visited set is mostly a run of ones, a few scattered
//! words, then zeros, and a history of thousands of operations on one key
//! costs a few words per entry instead of thousands of bits.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The cache stops growing (the search then answers Unknown) past this
/// many 64-bit words of encoded bitsets, 512 MiB.
const WORDS_LIMIT: usize = 1 << 26;

const NONE: u32 = u32::MAX;

pub(crate) struct Cache {
    /// Encoded bitsets back to back; entry `i` is `words[start[i]..start[i + 1]]`.
    words: Vec<u64>,
    start: Vec<usize>,
    /// The nonzero counts of linearized operations with an unknown outcome,
    /// per class, as (class, count), back to back likewise.
    counts: Vec<(u32, u32)>,
    counts_start: Vec<usize>,
    states: Vec<u32>,
    /// The next entry with the same hash.
    chain: Vec<u32>,
    heads: HashMap<u64, u32, BuildHasherDefault<PrehashedHasher>>,
    scratch: Vec<u64>,
}

impl Cache {
    pub(crate) fn new() -> Cache {
        Cache {
            words: Vec::new(),
            start: vec![0],
            counts: Vec::new(),
            counts_start: vec![0],
            states: Vec::new(),
            chain: Vec::new(),
            heads: HashMap::default(),
            scratch: Vec::new(),
        }
    }

    /// Records (`bits`, `state`, `counts`), whose hash is `hash`:
    /// `Some(true)` if it is new, `Some(false)` if it was there, `None` when
    /// the cache is full.
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        bits: &[u64],
        state: u32,
        counts: &[u32],
    ) -> Option<bool> {
        encode(bits, &mut self.scratch);
        let head = self.heads.get(&hash).copied().unwrap_or(NONE);
        let mut at = head;
        while at != NONE {
            let i = at as usize;
            if self.states.get(i) == Some(&state)
                && self.words.get(span(&self.start, i)?) == Some(self.scratch.as_slice())
            {
                let visited = self.counts.get(span(&self.counts_start, i)?)?;
                let nonzero = counts.iter().filter(|&&n| n > 0).count();
                let same = visited.len() == nonzero
                    && visited
                        .iter()
                        .all(|&(class, n)| counts.get(class as usize) == Some(&n));
                if same {
                    return Some(false);
                }
            }
            at = self.chain.get(i).copied().unwrap_or(NONE);
        }
        if self.words.len() + self.scratch.len() + self.counts.len() > WORDS_LIMIT
            || self.states.len() >= NONE as usize
        {
            return None;
        }
        let index = self.states.len() as u32;
        self.words.extend_from_slice(&self.scratch);
        self.start.push(self.words.len());
        self.counts.extend(
            (0u32..)
                .zip(counts)
                .filter(|&(_, &n)| n > 0)
                .map(|(class, &n)| (class, n)),
        );
        self.counts_start.push(self.counts.len());
        self.states.push(state);
        self.chain.push(head);
        self.heads.insert(hash, index);
        Some(true)
    }
}

/// Entry `i`'s range in an arena whose entries start at `starts`.
fn span(starts: &[usize], i: usize) -> Option<std::ops::Range<usize>> {
    Some(*starts.get(i)?..*starts.get(i + 1)?)
}

/// Run-length encoding: (word, how many times) pairs; trailing zero words
/// are left out.
fn encode(bits: &[u64], out: &mut Vec<u64>) {
    out.clear();
    let end = bits.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
    let mut words = bits.iter().take(end).peekable();
    while let Some(&word) = words.next() {
        let mut run = 1u64;
        while words.next_if(|&&next| next == word).is_some() {
            run += 1;
        }
        out.push(word);
        out.push(run);
    }
}

/// The cache's keys are already well-mixed hashes: use them as they are.
#[derive(Default)]
struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_runs_and_drops_trailing_zeros() {
        let mut out = Vec::new();
        encode(&[u64::MAX, u64::MAX, 5, 0, 0], &mut out);
        assert_eq!(out, vec![u64::MAX, 2, 5, 1]);
        encode(&[0, 0], &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn remembers_pairs() {
        let mut cache = Cache::new();
        assert_eq!(cache.insert(7, &[1, 0], 3, &[]), Some(true));
        assert_eq!(cache.insert(7, &[1, 0], 3, &[]), Some(false));
        // Same hash, different set or state: new.
        assert_eq!(cache.insert(7, &[2, 0], 3, &[]), Some(true));
        assert_eq!(cache.insert(7, &[1, 0], 4, &[]), Some(true));
        assert_eq!(cache.insert(7, &[2, 0], 3, &[]), Some(false));
    }

    #[test]
    fn counts_are_part_of_the_key() {
        let mut cache = Cache::new();
        assert_eq!(cache.insert(1, &[1], 0, &[1, 0]), Some(true));
        assert_eq!(cache.insert(1, &[1], 0, &[1, 0]), Some(false));
        assert_eq!(cache.insert(1, &[1], 0, &[2, 0]), Some(true));
        assert_eq!(cache.insert(1, &[1], 0, &[0, 0]), Some(true));
        assert_eq!(cache.insert(1, &[1], 0, &[]), Some(false));
    }
}
