//! Unsigned big integers, just enough for exact `long double` parsing,
//! rounding and printing (see [`super::long_double`]).

use std::cmp::Ordering;

/// Unsigned big integer, little-endian 64-bit limbs, no high zero limbs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Big(Vec<u64>);

impl Big {
    pub(super) fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    pub(super) fn bit_len(&self) -> usize {
        match self.0.last() {
            Some(top) => self.0.len() * 64 - top.leading_zeros() as usize,
            None => 0,
        }
    }

    pub(super) fn bit(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|l| l >> (i % 64) & 1 == 1)
    }

    /// Whether any bit below position `i` is set.
    pub(super) fn any_below(&self, i: usize) -> bool {
        let whole = (i / 64).min(self.0.len());
        if self.0[..whole].iter().any(|&l| l != 0) {
            return true;
        }
        let part = i % 64;
        part != 0
            && self
                .0
                .get(whole)
                .is_some_and(|l| l & ((1u64 << part) - 1) != 0)
    }

    pub(super) fn low_u64(&self) -> u64 {
        self.0.first().copied().unwrap_or(0)
    }

    /// The low 64 bits of `self >> n`.
    pub(super) fn shr_low_u64(&self, n: usize) -> u64 {
        let (limb, bits) = (n / 64, n % 64);
        let lo = self.0.get(limb).copied().unwrap_or(0);
        let hi = self.0.get(limb + 1).copied().unwrap_or(0);
        if bits == 0 {
            lo
        } else {
            (lo >> bits) | (hi << (64 - bits))
        }
    }

    pub(super) fn shr(&self, n: usize) -> Big {
        let (limbs, bits) = (n / 64, n % 64);
        let mut b = Big((limbs..self.0.len())
            .map(|i| self.shr_low_u64(i * 64 + bits))
            .collect());
        b.trim();
        b
    }

    pub(super) fn shl(&self, n: usize) -> Big {
        if self.0.is_empty() {
            return Big::default();
        }
        let (limbs, bits) = (n / 64, n % 64);
        let mut out = vec![0u64; limbs];
        if bits == 0 {
            out.extend_from_slice(&self.0);
        } else {
            let mut carry = 0;
            for &l in &self.0 {
                out.push((l << bits) | carry);
                carry = l >> (64 - bits);
            }
            out.push(carry);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    pub(super) fn add(&self, other: &Big) -> Big {
        let n = self.0.len().max(other.0.len());
        let mut out = Vec::with_capacity(n + 1);
        let mut carry = false;
        for i in 0..n {
            let a = self.0.get(i).copied().unwrap_or(0);
            let b = other.0.get(i).copied().unwrap_or(0);
            let (s, c1) = a.overflowing_add(b);
            let (s, c2) = s.overflowing_add(u64::from(carry));
            out.push(s);
            carry = c1 || c2;
        }
        out.push(u64::from(carry));
        let mut b = Big(out);
        b.trim();
        b
    }

    /// `self - other`, for `self >= other`.
    pub(super) fn sub(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = false;
        for (i, &a) in self.0.iter().enumerate() {
            let b = other.0.get(i).copied().unwrap_or(0);
            let (d, b1) = a.overflowing_sub(b);
            let (d, b2) = d.overflowing_sub(u64::from(borrow));
            out.push(d);
            borrow = b1 || b2;
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    pub(super) fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    pub(super) fn mul_small(&self, m: u64) -> Big {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        let mut carry = 0u128;
        for &l in &self.0 {
            let p = u128::from(l) * u128::from(m) + carry;
            out.push(p as u64);
            carry = p >> 64;
        }
        out.push(carry as u64);
        let mut b = Big(out);
        b.trim();
        b
    }

    pub(super) fn mul(&self, other: &Big) -> Big {
        let mut out = vec![0u64; self.0.len() + other.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u128;
            for (j, &b) in other.0.iter().enumerate() {
                let t = u128::from(a) * u128::from(b) + u128::from(out[i + j]) + carry;
                out[i + j] = t as u64;
                carry = t >> 64;
            }
            out[i + other.0.len()] = carry as u64;
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    pub(super) fn pow10(n: usize) -> Big {
        let mut b = Big::from_u64(1);
        for _ in 0..n / 19 {
            b = b.mul_small(10u64.pow(19));
        }
        b.mul_small(10u64.pow((n % 19) as u32))
    }

    /// Quotient and remainder by shift-and-subtract; used only where
    /// the quotient is a few dozen bits long.
    pub(super) fn div_rem(&self, d: &Big) -> (Big, Big) {
        let mut r = self.clone();
        let mut q = Big::default();
        if self.bit_len() < d.bit_len() {
            return (q, r);
        }
        for i in (0..=self.bit_len() - d.bit_len()).rev() {
            let shifted = d.shl(i);
            if r.cmp(&shifted) != Ordering::Less {
                r = r.sub(&shifted);
                q = q.add(&Big::from_u64(1).shl(i));
            }
        }
        (q, r)
    }

    /// Divide in place by `d`, returning the remainder.
    fn div_small(&mut self, d: u64) -> u64 {
        let mut rem = 0u128;
        for l in self.0.iter_mut().rev() {
            let cur = (rem << 64) | u128::from(*l);
            *l = (cur / u128::from(d)) as u64;
            rem = cur % u128::from(d);
        }
        self.trim();
        rem as u64
    }

    pub(super) fn to_decimal(&self) -> String {
        const CHUNK: u64 = 10_000_000_000_000_000_000; // 10^19
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.0.is_empty() {
            chunks.push(n.div_small(CHUNK));
        }
        let mut s = chunks
            .pop()
            .map_or_else(|| "0".to_string(), |top| top.to_string());
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:019}"));
        }
        s
    }
}
