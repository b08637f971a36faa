//! The PRNG behind Redis's `math.random` / `math.randomseed`.
//!
//! Redis replaces Lua's libc-backed `math.random` with its own `lrand48`
//! (src/rand.c), so the same seed gives the same sequence everywhere. That
//! generator is the classic 48-bit linear congruential one:
//! `x = (0x5DEECE66D * x + 0xB) mod 2^48`, returning the top 31 bits, seeded
//! as `seed << 16 | 0x330E`, starting from `0x1234ABCD330E` when never seeded.

const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const INCREMENT: u64 = 0xB;
const MASK_48: u64 = (1 << 48) - 1;
const UNSEEDED: u64 = 0x1234_ABCD_330E;

/// `REDIS_LRAND48_MAX`: `math.random` divides by it.
pub const LRAND48_MAX: i32 = i32::MAX;

/// Redis's lrand48 state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lrand48 {
    state: u64,
}

impl Default for Lrand48 {
    fn default() -> Self {
        Lrand48 { state: UNSEEDED }
    }
}

impl Lrand48 {
    /// `redisSrand48(seed)`.
    pub fn seeded(seed: i32) -> Lrand48 {
        Lrand48 {
            state: (u64::from(seed as u32) << 16) | 0x330E,
        }
    }

    /// `redisLrand48()`: the next value in `0..2^31`.
    pub fn next_i32(&mut self) -> i32 {
        self.state = (self.state.wrapping_mul(MULTIPLIER).wrapping_add(INCREMENT)) & MASK_48;
        // 31 bits always fit an i32.
        (self.state >> 17) as i32
    }

    /// The number `math.random` starts from: in `[0, 1)`.
    pub fn next_fraction(&mut self) -> f64 {
        f64::from(self.next_i32() % LRAND48_MAX) / f64::from(LRAND48_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unnecessary_cast)]
    fn matches_libc_lrand48_after_srand48() {
        // glibc's srand48/lrand48 is the same generator (POSIX defines it).
        extern "C" {
            fn srand48(seed: std::os::raw::c_long);
            fn lrand48() -> std::os::raw::c_long;
        }
        for seed in [0i32, 1, -1, 42, 123_456_789, i32::MIN, i32::MAX] {
            let mut ours = Lrand48::seeded(seed);
            // SAFETY: libc's generator, used only by this test thread's check;
            // the values are compared, never trusted.
            unsafe { srand48(std::os::raw::c_long::from(seed)) };
            for _ in 0..100 {
                let theirs = unsafe { lrand48() };
                assert_eq!(i64::from(ours.next_i32()), theirs as i64, "seed {seed}");
            }
        }
    }
}
