//! Seeded randomness for simulated nodes: the same seed gives the same
//! instance ids, nonces and backoff jitter, so a run replays.

use std::cell::Cell;

/// A small seeded generator (SplitMix64), for a simulated run's choices: the
/// nodes' ids, nonces and jitter, and a test's own (which link to cut, when
/// to crash). Statistically fine for those, and predictable by design, so it
/// is for simulations only.
#[derive(Clone, Debug)]
pub struct SimRandom {
    state: u64,
}

impl SimRandom {
    /// A generator drawing from `seed`.
    pub fn new(seed: u64) -> SimRandom {
        SimRandom { state: seed }
    }

    /// A number below `bound` (nearly uniform for bounds far below 2^64);
    /// 0 for a bound of 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        match bound {
            0 => 0,
            _ => self.next_u64() % bound,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Derives the seed of one part of a simulation (a host, one of its
/// incarnations) from the simulation's seed, so that parts draw independent
/// streams and a crash of one does not shift the others' numbers.
pub(crate) fn derive(seed: u64, parts: &[u64]) -> u64 {
    let mut random = SimRandom::new(seed);
    for part in parts {
        random = SimRandom::new(random.next_u64() ^ part);
    }
    random.next_u64()
}

thread_local! {
    /// Seeds handed to runtimes made with `Default`, in the order they are
    /// made: a simulation runs on one thread, in a replayable order.
    static DEFAULT_SEEDS: Cell<SimRandom> = const { Cell::new(SimRandom { state: 0 }) };
}

/// Restarts this thread's sequence of default seeds from `seed`.
pub(crate) fn reset_default_seeds(seed: u64) {
    DEFAULT_SEEDS.with(|seeds| seeds.set(SimRandom::new(derive(seed, &[u64::MAX]))));
}

/// The next default seed on this thread.
pub(crate) fn next_default_seed() -> u64 {
    DEFAULT_SEEDS.with(|seeds| {
        let mut random = seeds.replace(SimRandom::new(0));
        let seed = random.next_u64();
        seeds.set(random);
        seed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let draw = |seed| {
            let mut buf = [0u8; 20];
            SimRandom::new(seed).fill(&mut buf);
            buf
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn derived_seeds_differ_by_part() {
        assert_eq!(derive(1, &[2, 3]), derive(1, &[2, 3]));
        assert_ne!(derive(1, &[2, 3]), derive(1, &[2, 4]));
        assert_ne!(derive(1, &[2, 3]), derive(2, &[2, 3]));
    }
}
