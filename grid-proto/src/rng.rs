//! A tiny deterministic pseudo-random number generator.
//!
//! grid-proto never reads entropy itself: the embedding runtime hands it a
//! seed, and everything random (reconnect jitter) is derived from that
//! seed through [`Rng`] (the handshake nonce is derived from the connection's
//! 32-byte seed by SHA-256 instead, see `handshake.rs`). This keeps the protocol core reproducible in tests
//! and simulations — the same seed replays the same run.
//!
//! The generator is **SplitMix64** (Steele, Lea and Flood, "Fast splittable
//! pseudorandom number generators", OOPSLA 2014, with the output mixer
//! constants from Vigna's reference implementation). It was chosen over
//! xoshiro256** because it accepts every 64-bit seed, including 0, without a
//! separate seeding step, its whole state is one `u64`, and its 2^64 period is
//! far beyond anything a connection's lifetime can consume.
//!
//! It is **not** cryptographically secure: its output reveals its state. Never
//! use it as the sole source of a secret; it is only for mixing and spreading.

/// Deterministic SplitMix64 pseudo-random number generator.
///
/// Two generators built from the same seed produce identical streams on every
/// platform, which the wire-level tests and simulations rely on.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

/// Weyl-sequence increment: the odd integer closest to 2^64 / φ, so that
/// successive states are spread evenly around the 64-bit ring.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl Rng {
    /// Creates a generator whose whole future output is determined by `seed`.
    ///
    /// Every seed, including 0, yields a full-quality stream.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Returns the next 64 uniformly distributed pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fills `buf` with pseudo-random bytes.
    ///
    /// Each 8-byte chunk takes one [`next_u64`](Self::next_u64) output in
    /// little-endian order; a trailing partial chunk still consumes a whole
    /// output. Fixing this layout keeps the byte stream identical across
    /// platforms regardless of their native endianness.
    pub fn fill_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// Returns a uniformly distributed value in `0..bound`, or 0 when `bound`
    /// is 0.
    ///
    /// Uses Lemire's multiply-and-reject method ("Fast Random Integer
    /// Generation in an Interval", 2019): a plain `% bound` would favour small
    /// values whenever `bound` does not divide 2^64. Rejection is rare (at most
    /// one chance in two, typically far less), so the expected number of draws
    /// is just above one.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let mut product = u128::from(self.next_u64()) * u128::from(bound);
        let mut low = product as u64;
        if low < bound {
            // 2^64 mod bound: the number of low-half values that would make
            // some outcomes one draw more likely than others.
            let threshold = bound.wrapping_neg() % bound;
            while low < threshold {
                product = u128::from(self.next_u64()) * u128::from(bound);
                low = product as u64;
            }
        }
        (product >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_splitmix64() {
        // Known-answer vectors (Vigna's splitmix64.c for seed 0, Rosetta
        // Code's SplitMix64 task for seed 1234567) pin the stream so that a
        // mistyped constant or shift cannot slip through unnoticed.
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);

        let mut rng = Rng::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(rng.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let mut c = Rng::new(43);
        let sa: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let sb: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        let sc: Vec<u64> = (0..16).map(|_| c.next_u64()).collect();
        assert_eq!(sa, sb);
        assert_ne!(sa, sc);
    }

    #[test]
    fn clone_forks_identical_stream() {
        let mut a = Rng::new(7);
        a.next_u64();
        let mut b = a.clone();
        for _ in 0..8 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn fill_bytes_is_little_endian_words() {
        let mut words = Rng::new(99);
        let mut bytes = Rng::new(99);
        let mut buf = [0u8; 19];
        bytes.fill_bytes(&mut buf);
        let w0 = words.next_u64().to_le_bytes();
        let w1 = words.next_u64().to_le_bytes();
        let w2 = words.next_u64().to_le_bytes();
        assert_eq!(&buf[0..8], &w0);
        assert_eq!(&buf[8..16], &w1);
        assert_eq!(&buf[16..19], &w2[..3]);
        // The partial chunk consumed a whole word, so both streams are aligned.
        assert_eq!(words.next_u64(), bytes.next_u64());
    }

    #[test]
    fn fill_bytes_empty_consumes_nothing() {
        let mut a = Rng::new(5);
        let mut b = Rng::new(5);
        a.fill_bytes(&mut []);
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn below_zero_and_one() {
        let mut rng = Rng::new(3);
        for _ in 0..100 {
            assert_eq!(rng.below(0), 0);
            assert_eq!(rng.below(1), 0);
        }
    }

    #[test]
    fn below_stays_in_range_for_awkward_bounds() {
        let mut rng = Rng::new(11);
        // Bounds just above a power of two maximise the rejection zone.
        for bound in [2, 3, 7, 1000, (1 << 63) + 1, u64::MAX - 1, u64::MAX] {
            for _ in 0..1000 {
                assert!(rng.below(bound) < bound);
            }
        }
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut rng = Rng::new(2024);
        let mut counts = [0u32; 6];
        let draws = 60_000;
        for _ in 0..draws {
            counts[rng.below(6) as usize] += 1;
        }
        // Expected 10_000 per bucket, standard deviation ≈ 91; ±500 is more
        // than five sigma, and the seed is fixed so this cannot flake.
        for (value, &count) in counts.iter().enumerate() {
            assert!((9_500..=10_500).contains(&count), "value {value}: {count}");
        }
    }

    #[test]
    fn below_has_no_modulo_bias_at_large_bound() {
        // With bound = 2^63 + 2^62, `next_u64() % bound` would land in the
        // lower third of the range twice as often as in the upper ranges.
        // Unbiased sampling puts a third of draws below 2^62.
        let bound = (1u64 << 63) + (1u64 << 62);
        let mut rng = Rng::new(77);
        let draws = 30_000;
        let low = (0..draws)
            .filter(|_| rng.below(bound) < (1u64 << 62))
            .count();
        assert!((9_500..=10_500).contains(&low), "low-third draws: {low}");
    }

    proptest::proptest! {
        #[test]
        fn below_in_range(seed: u64, bound in 1u64..) {
            let mut rng = Rng::new(seed);
            proptest::prop_assert!(rng.below(bound) < bound);
        }
    }
}
