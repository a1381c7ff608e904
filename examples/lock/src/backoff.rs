//! The wait between two attempts at a contended lock: exponential, capped,
//! with full jitter, from a seeded generator so a simulator can replay it.

use std::time::Duration;

/// How long to wait between attempts at a lock that is held or whose
/// servers are unreachable.
///
/// The `k`-th wait (from 0) is drawn uniformly from
/// `[0, min(max, initial * 2^k)]`. The jitter spreads contending clients
/// apart, so that after a release one of them usually finds every server
/// free, instead of all splitting the grants between them and retrying in
/// step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryBackoff {
    /// Upper bound of the first wait. Default 5 ms.
    pub initial: Duration,
    /// Largest upper bound. Default 500 ms.
    pub max: Duration,
}

impl Default for RetryBackoff {
    fn default() -> Self {
        RetryBackoff {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(500),
        }
    }
}

impl RetryBackoff {
    /// The wait before attempt `attempt + 1`, given a uniform random `u64`.
    pub fn wait(&self, attempt: u32, random: u64) -> Duration {
        let bound = self
            .initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        let nanos = bound.as_nanos().min(u64::MAX as u128) as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(random % (nanos + 1))
    }
}

/// SplitMix64: a tiny, well-distributed generator. Enough for jitter and
/// lock ids; nothing here needs unpredictability.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A seed from the operating system, for clients not given one.
pub(crate) fn os_seed() -> u64 {
    let mut bytes = [0u8; 8];
    // Without OS randomness, ids still differ between the clients of one
    // process through the address of the buffer and a counter.
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        return SplitMix64::new(n ^ (bytes.as_ptr() as u64)).next_u64();
    }
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_the_cap_and_stay_within_bounds() {
        let backoff = RetryBackoff::default();
        let mut rng = SplitMix64::new(7);
        for attempt in 0..40 {
            let bound = (Duration::from_millis(5) * 2u32.pow(attempt.min(20))).min(backoff.max);
            for _ in 0..50 {
                assert!(backoff.wait(attempt, rng.next_u64()) <= bound);
            }
        }
        assert_eq!(
            backoff.wait(30, u64::MAX - 1),
            Duration::from_nanos((u64::MAX - 1) % 500_000_001)
        );
    }

    #[test]
    fn jitter_spreads_waits() {
        let backoff = RetryBackoff::default();
        let mut rng = SplitMix64::new(1);
        let waits: Vec<Duration> = (0..100).map(|_| backoff.wait(6, rng.next_u64())).collect();
        let short = waits
            .iter()
            .filter(|w| **w < Duration::from_millis(160))
            .count();
        assert!(
            (20..80).contains(&short),
            "{short} of 100 below half the bound"
        );
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..10 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }
}
