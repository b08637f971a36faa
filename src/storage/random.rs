//! Randomness of commands. A standalone node draws from the thread's
//! generator; applying a replicated entry draws from a generator seeded by
//! the entry's log index, so every node makes the same picks (SPOP removes
//! the same members everywhere) and the replicas never diverge.

use rand::RngCore;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator a command's random picks come from.
#[derive(Debug, Clone)]
pub enum CommandRng {
    /// The thread-local generator, fetched at each draw (so a context stays
    /// `Send`).
    Thread,
    /// Reproducible from its seed: the same on every node of a cluster.
    Seeded(Box<ChaCha8Rng>),
}

impl CommandRng {
    /// A generator every node builds identically from `seed`.
    pub fn seeded(seed: u64) -> CommandRng {
        CommandRng::Seeded(Box::new(ChaCha8Rng::seed_from_u64(seed)))
    }
}

impl RngCore for CommandRng {
    fn next_u32(&mut self) -> u32 {
        match self {
            CommandRng::Thread => rand::rng().next_u32(),
            CommandRng::Seeded(r) => r.next_u32(),
        }
    }

    fn next_u64(&mut self) -> u64 {
        match self {
            CommandRng::Thread => rand::rng().next_u64(),
            CommandRng::Seeded(r) => r.next_u64(),
        }
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        match self {
            CommandRng::Thread => rand::rng().fill_bytes(dst),
            CommandRng::Seeded(r) => r.fill_bytes(dst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn seeded_generators_agree() {
        let mut a = CommandRng::seeded(42);
        let mut b = CommandRng::seeded(42);
        let xs: Vec<u64> = (0..16).map(|_| a.random_range(0..1000)).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.random_range(0..1000)).collect();
        assert_eq!(xs, ys);
        let mut c = CommandRng::seeded(43);
        let zs: Vec<u64> = (0..16).map(|_| c.random_range(0..1000)).collect();
        assert_ne!(xs, zs);
    }
}
