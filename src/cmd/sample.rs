//! Random picks from a collection: HRANDFIELD, SRANDMEMBER, SPOP and
//! ZRANDMEMBER share them (as Kvrocks's `sample_helper.h` serves its
//! types). A pick is a set of positions in the collection's stored order,
//! drawn up front and taken in one ordered pass that keeps only the picked
//! elements and stops after the last one, so no command loads a whole
//! collection to answer a few elements.

use rand::seq::SliceRandom;
use rand::Rng;

use super::{CmdError, CmdResult};

/// The most picks a negative count (repeats allowed) may ask for. Redis
/// has no limit and builds any such reply until memory runs out; Kiwi
/// refuses beyond this.
pub const MAX_REPEATED_PICKS: u64 = 1 << 22;

/// `picks` repeated picks (a negative count's magnitude), or an error when
/// they are more than [`MAX_REPEATED_PICKS`].
pub fn repeated_picks(picks: u64) -> CmdResult<u64> {
    if picks > MAX_REPEATED_PICKS {
        return Err(CmdError::err(format!(
            "value is out of range, value must between -{MAX_REPEATED_PICKS} and {}",
            i64::MAX
        )));
    }
    Ok(picks)
}

/// `k` distinct positions of `0..n` (all of them when `k >= n`), drawn
/// uniformly, ascending.
pub fn distinct_positions(rng: &mut impl Rng, n: u64, k: u64) -> Vec<u64> {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    let k = usize::try_from(k).unwrap_or(usize::MAX).min(n);
    let mut positions: Vec<u64> = rand::seq::index::sample(rng, n, k)
        .into_iter()
        .map(|i| i as u64)
        .collect();
    positions.sort_unstable();
    positions
}

/// `k` positions of `0..n` drawn uniformly and independently (repeats
/// allowed), ascending; none when `n` is 0.
pub fn repeated_positions(rng: &mut impl Rng, n: u64, k: u64) -> Vec<u64> {
    if n == 0 {
        return Vec::new();
    }
    let mut positions: Vec<u64> = (0..k).map(|_| rng.random_range(0..n)).collect();
    positions.sort_unstable();
    positions
}

/// Takes the elements at ascending `positions` (a position may repeat)
/// from one pass over a collection in stored order.
pub struct Picker<'p, T> {
    positions: &'p [u64],
    next: usize,
    index: u64,
    picked: Vec<T>,
}

impl<'p, T: Clone> Picker<'p, T> {
    pub fn new(positions: &'p [u64]) -> Picker<'p, T> {
        Picker {
            positions,
            next: 0,
            index: 0,
            picked: Vec::with_capacity(positions.len().min(1 << 16)),
        }
    }

    /// Offer the pass's next element; `make` builds it only when it is
    /// picked (once, however often it repeats). Answers whether the pass
    /// should go on.
    pub fn offer(&mut self, make: impl FnOnce() -> T) -> bool {
        if self.positions.get(self.next) == Some(&self.index) {
            let item = make();
            while self.positions.get(self.next) == Some(&self.index) {
                self.picked.push(item.clone());
                self.next += 1;
            }
        }
        self.index += 1;
        self.next < self.positions.len()
    }

    /// The picked elements in stored order (fewer than asked when the pass
    /// ended early: the collection held fewer elements than its header said).
    pub fn finish(self) -> Vec<T> {
        self.picked
    }

    /// The picked elements in random order.
    pub fn finish_shuffled(self, rng: &mut impl Rng) -> Vec<T> {
        let mut picked = self.picked;
        picked.shuffle(rng);
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(positions: &[u64], n: u64) -> Vec<u64> {
        let mut picker = Picker::new(positions);
        for i in 0..n {
            if !picker.offer(|| i) {
                break;
            }
        }
        picker.finish()
    }

    #[test]
    fn distinct_positions_are_distinct_sorted_and_in_range() {
        let mut rng = rand::rng();
        for k in 0..=12 {
            let got = distinct_positions(&mut rng, 10, k);
            assert_eq!(got.len() as u64, k.min(10));
            assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
            assert!(got.iter().all(|&x| x < 10));
        }
        // Every position can come up, late ones included.
        let mut seen = [false; 5];
        for _ in 0..500 {
            for x in distinct_positions(&mut rng, 5, 2) {
                seen[x as usize] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn repeated_positions_are_sorted_and_in_range() {
        let mut rng = rand::rng();
        let draws = repeated_positions(&mut rng, 7, 1000);
        assert_eq!(draws.len(), 1000);
        assert!(draws.windows(2).all(|w| w[0] <= w[1]));
        assert!(draws.iter().all(|&d| d < 7));
        assert!(repeated_positions(&mut rng, 1, 5).iter().all(|&d| d == 0));
        assert!(repeated_positions(&mut rng, 0, 5).is_empty());
    }

    #[test]
    fn picker_takes_each_position_as_often_as_drawn() {
        assert_eq!(pick(&[0, 0, 3, 4, 4, 4], 10), vec![0, 0, 3, 4, 4, 4]);
        assert_eq!(pick(&[], 10), Vec::<u64>::new());
        // A pass shorter than the positions: what exists.
        assert_eq!(pick(&[1, 8], 5), vec![1]);
        // The pass stops after the last position.
        let mut built = 0;
        let mut picker = Picker::new(&[2]);
        let mut offered = 0;
        while picker.offer(|| {
            built += 1;
        }) {
            offered += 1;
        }
        assert_eq!((offered, built), (2, 1));
    }

    #[test]
    fn repeated_picks_are_bounded() {
        assert_eq!(repeated_picks(5).ok(), Some(5));
        assert_eq!(
            repeated_picks(MAX_REPEATED_PICKS).ok(),
            Some(MAX_REPEATED_PICKS)
        );
        assert_eq!(
            repeated_picks(MAX_REPEATED_PICKS + 1)
                .err()
                .map(|e| e.to_string()),
            Some(
                "ERR value is out of range, value must between -4194304 and 9223372036854775807"
                    .into()
            )
        );
    }
}
