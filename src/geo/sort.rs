//! The sorts Redis orders search results with, so that ties (points at
//! the same distance) come out in Redis's order: glibc's `qsort` (a merge
//! sort) when every result is returned, and Redis's partial quicksort
//! (`pqsort`, Bentley–McIlroy with a range of interest) when COUNT keeps
//! only the first ones. Both are exact ports of the comparisons they make.

use std::cmp::Ordering;

/// Sort `v` so that positions `lo..=hi` hold what a full sort would put
/// there, exactly as Redis's `pqsort` leaves them (ties included).
pub fn partial_sort<T>(v: &mut [T], cmp: impl Fn(&T, &T) -> Ordering, lo: usize, hi: usize) {
    let gt = |v: &[T], a: usize, b: usize| cmp(&v[a], &v[b]) == Ordering::Greater;
    let lt = |v: &[T], a: usize, b: usize| cmp(&v[a], &v[b]) == Ordering::Less;
    let med3 = |v: &[T], a: usize, b: usize, c: usize| {
        if lt(v, a, b) {
            if lt(v, b, c) {
                b
            } else if lt(v, a, c) {
                c
            } else {
                a
            }
        } else if gt(v, b, c) {
            b
        } else if lt(v, a, c) {
            a
        } else {
            c
        }
    };
    // Whether the run `start..start + n` holds part of `lo..=hi`.
    let wanted = |start: usize, n: usize| {
        let end = start + n;
        !((lo < start && hi < start) || (lo >= end && hi >= end))
    };
    // Runs still to sort; the recursion of the C code, made explicit.
    let mut runs = vec![(0usize, v.len())];
    while let Some((mut a, mut n)) = runs.pop() {
        loop {
            if n < 7 {
                for m in a + 1..a + n {
                    let mut l = m;
                    while l > a && gt(v, l - 1, l) {
                        v.swap(l, l - 1);
                        l -= 1;
                    }
                }
                break;
            }
            let mut pm = a + n / 2;
            if n > 7 {
                let mut pl = a;
                let mut pn = a + n - 1;
                if n > 40 {
                    let d = n / 8;
                    pl = med3(v, pl, pl + d, pl + 2 * d);
                    pm = med3(v, pm - d, pm, pm + d);
                    pn = med3(v, pn - 2 * d, pn - d, pn);
                }
                pm = med3(v, pl, pm, pn);
            }
            v.swap(a, pm);
            let (mut pa, mut pb) = (a + 1, a + 1);
            let (mut pc, mut pd) = (a + n - 1, a + n - 1);
            loop {
                while pb <= pc {
                    match cmp(&v[pb], &v[a]) {
                        Ordering::Greater => break,
                        Ordering::Equal => {
                            v.swap(pa, pb);
                            pa += 1;
                        }
                        Ordering::Less => {}
                    }
                    pb += 1;
                }
                while pb <= pc {
                    match cmp(&v[pc], &v[a]) {
                        Ordering::Less => break,
                        Ordering::Equal => {
                            v.swap(pc, pd);
                            pd -= 1;
                        }
                        Ordering::Greater => {}
                    }
                    pc -= 1;
                }
                if pb > pc {
                    break;
                }
                v.swap(pb, pc);
                pb += 1;
                pc -= 1;
            }
            // Move the pivot's equals from both ends to the middle.
            let pn = a + n;
            let r = (pa - a).min(pb - pa);
            swap_runs(v, a, pb - r, r);
            let r = (pd - pc).min(pn - pd - 1);
            swap_runs(v, pb, pn - r, r);
            let r = pb - pa;
            if r > 1 && wanted(a, r) {
                runs.push((a, r));
            }
            let r = pd - pc;
            if r > 1 && wanted(pn - r, r) {
                a = pn - r;
                n = r;
                continue;
            }
            break;
        }
    }
}

/// Sort `v` stably as glibc's `qsort` does (its top-down merge sort: the
/// first half sorted, then the second, then merged taking from the first
/// half unless its element compares greater). A comparator that is not a
/// total order (a NaN distance) gives glibc's result, never a panic.
pub fn merge_sort<T>(v: &mut Vec<T>, cmp: impl Fn(&T, &T) -> Ordering) {
    let n = v.len();
    if n < 2 {
        return;
    }
    // Sort positions, then move the elements once (glibc sorts pointers
    // for large elements, with the same comparisons).
    let mut idx: Vec<usize> = (0..n).collect();
    let mut tmp: Vec<usize> = Vec::with_capacity(n);
    // Post-order walk of the halving tree without recursion: a run is
    // pushed once to split it and once more to merge its sorted halves.
    let mut stack = vec![(0usize, n, false)];
    while let Some((start, len, halves_sorted)) = stack.pop() {
        if len < 2 {
            continue;
        }
        let n1 = len / 2;
        if !halves_sorted {
            stack.push((start, len, true));
            stack.push((start + n1, len - n1, false));
            stack.push((start, n1, false));
            continue;
        }
        tmp.clear();
        let (mut i, mut j) = (start, start + n1);
        let (end1, end2) = (start + n1, start + len);
        while i < end1 && j < end2 {
            if cmp(&v[idx[i]], &v[idx[j]]) != Ordering::Greater {
                tmp.push(idx[i]);
                i += 1;
            } else {
                tmp.push(idx[j]);
                j += 1;
            }
        }
        tmp.extend_from_slice(&idx[i..end1]);
        let placed = tmp.len();
        idx[start..start + placed].copy_from_slice(&tmp);
    }
    // Apply the permutation: the element at sorted position k is v[idx[k]].
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    v.extend(
        idx.iter()
            .filter_map(|&k| slots.get_mut(k).and_then(Option::take)),
    );
}

/// Swap the `n` elements from `a` with the `n` from `b`, pairwise in order.
fn swap_runs<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn merge_sort_is_stable() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for _ in 0..200 {
            let len = rng.random_range(0..150);
            let v: Vec<(u32, usize)> = (0..len).map(|i| (rng.random_range(0..10), i)).collect();
            let mut want = v.clone();
            want.sort_by_key(|p| p.0);
            let mut got = v;
            merge_sort(&mut got, |a, b| a.0.cmp(&b.0));
            assert_eq!(got, want);
        }
    }

    #[test]
    fn inconsistent_comparisons_do_not_panic() {
        // NaN distances compare "less" both ways, as in Redis's comparator.
        let less_unless_greater = |a: &f64, b: &f64| {
            if a > b {
                Ordering::Greater
            } else if a == b {
                Ordering::Equal
            } else {
                Ordering::Less
            }
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..200 {
            let len = rng.random_range(1..120);
            let v: Vec<f64> = (0..len)
                .map(|_| {
                    if rng.random_range(0..4) == 0 {
                        f64::NAN
                    } else {
                        f64::from(rng.random_range(0..8u8))
                    }
                })
                .collect();
            let mut a = v.clone();
            merge_sort(&mut a, less_unless_greater);
            assert_eq!(a.len(), len);
            let mut b = v;
            let hi = rng.random_range(0..len);
            partial_sort(&mut b, less_unless_greater, 0, hi);
            assert_eq!(b.len(), len);
        }
    }

    #[test]
    fn the_wanted_positions_are_sorted() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..300 {
            let len = rng.random_range(1..200);
            let v: Vec<u32> = (0..len).map(|_| rng.random_range(0..20)).collect();
            let mut sorted = v.clone();
            sorted.sort();
            let hi = rng.random_range(0..len);
            let mut part = v.clone();
            partial_sort(&mut part, |a, b| a.cmp(b), 0, hi);
            assert_eq!(part[..=hi], sorted[..=hi]);
            let mut multiset = part.clone();
            multiset.sort();
            assert_eq!(multiset, sorted);
        }
    }
}
