//! Reconnect backoff schedule.
//!
//! After a connection to a peer fails, the dialling side waits before the
//! next attempt. The wait grows exponentially so that an unreachable peer is
//! not hammered, and it is jittered so that many nodes losing the same peer
//! at the same moment do not all retry in lockstep.
//!
//! The schedule is a pure function of the attempt number and a seeded
//! [`Rng`]: no clock is read here. The runtime asks for a delay and arms its
//! own timer.
//!
//! # Schedule
//!
//! For attempt `n` (0 for the first retry after a failure) the *ceiling* is
//! `min(max, initial × multiplier^n)`, computed without overflow for every
//! `n`. The delay uses "equal jitter": `ceiling/2 + uniform[0, ceiling/2]`,
//! so it always lies in `[ceiling/2, ceiling]`. Keeping half the ceiling
//! fixed guarantees real back-off even on unlucky draws, while the random
//! half decorrelates nodes.
//!
//! # Degenerate configurations
//!
//! * `multiplier` 0 or 1: the ceiling stays at `initial` (clamped to `max`)
//!   for every attempt, i.e. constant jittered retry. A literal multiplier of
//!   0 would collapse the delay to zero after the first attempt and turn a
//!   dead peer into a busy loop, so 0 is treated like 1.
//! * `initial` zero: every ceiling, and so every delay, is zero. This disables
//!   backoff entirely (immediate retry), which is useful in tests; the runtime
//!   should not ship such a configuration.
//! * `max` below `initial`: `max` wins, so the ceiling is `max` throughout.
//! * `max` zero: every delay is zero.

use crate::rng::Rng;
use std::time::Duration;

/// Parameters of the reconnect backoff schedule.
///
/// See the [module documentation](self) for the formula and for how
/// degenerate values are handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Ceiling of the first retry delay.
    pub initial: Duration,
    /// Upper bound of every ceiling, however many attempts have failed.
    pub max: Duration,
    /// Factor by which the ceiling grows after each failed attempt; 0 is
    /// treated as 1.
    pub multiplier: u32,
}

impl Default for BackoffConfig {
    /// 100 ms initial ceiling, 10 s cap, doubling.
    ///
    /// Most disconnects are blips (a restarted process, a dropped NAT entry),
    /// so the first retry comes after at most 100 ms and the link heals before
    /// callers notice. Doubling reaches the cap on the eighth retry, after at
    /// most 12.7 s of cumulative waiting, and the 10 s cap keeps a long outage cheap
    /// — one dial per peer every 5–10 s — while still noticing within seconds
    /// when the peer returns.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            multiplier: 2,
        }
    }
}

impl BackoffConfig {
    /// Returns the ceiling for `attempt`: `min(max, initial ×
    /// multiplier^attempt)`, saturating instead of overflowing.
    ///
    /// The delay handed out for that attempt lies in `[ceiling/2, ceiling]`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        if self.multiplier <= 1 || self.initial.is_zero() {
            return self.initial.min(self.max);
        }
        let mut ceiling = self.initial;
        // With multiplier >= 2 and initial >= 1 ns the value passes `max`
        // (at most ~2^94 ns) within a hundred or so steps, so this loop is
        // short even for attempt = u32::MAX.
        for _ in 0..attempt {
            if ceiling >= self.max {
                break;
            }
            ceiling = match ceiling.checked_mul(self.multiplier) {
                Some(next) => next,
                // The true product exceeds Duration::MAX, hence also `max`.
                None => return self.max,
            };
        }
        ceiling.min(self.max)
    }
}

/// Returns the jittered delay for `attempt` under `config`, drawing the
/// jitter from `rng`.
///
/// The result lies in `[c/2, c]` where `c` is
/// [`config.ceiling(attempt)`](BackoffConfig::ceiling). Never panics.
pub fn delay_for_attempt(config: &BackoffConfig, attempt: u32, rng: &mut Rng) -> Duration {
    let ceiling = config.ceiling(attempt);
    let fixed = ceiling / 2;
    // `ceiling - fixed` rather than `ceiling / 2` so that an odd nanosecond
    // count can still reach the ceiling itself.
    let span = (ceiling - fixed).as_nanos();
    let jitter = nanos_to_duration(uniform_inclusive(rng, span));
    fixed.saturating_add(jitter)
}

/// Uniform value in `0..=bound`.
fn uniform_inclusive(rng: &mut Rng, bound: u128) -> u128 {
    match u64::try_from(bound) {
        Ok(b) if b < u64::MAX => u128::from(rng.below(b + 1)),
        // Only reachable with ceilings above ~584 years, i.e. configs whose
        // `max` is effectively unbounded; masked rejection keeps the result
        // uniform and terminates after fewer than two tries on average.
        _ => {
            let mask = u128::MAX >> bound.leading_zeros();
            loop {
                let draw = ((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())) & mask;
                if draw <= bound {
                    return draw;
                }
            }
        }
    }
}

/// Converts nanoseconds to a [`Duration`]; only called with values no larger
/// than some existing `Duration`'s nanosecond count, so the seconds fit.
fn nanos_to_duration(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it always fits a u32.
    let sub = (nanos % NANOS_PER_SEC) as u32;
    Duration::new(secs, sub)
}

/// Reconnect backoff state for one peer: a [`BackoffConfig`], the number of
/// consecutive failed attempts, and the jitter source.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
    rng: Rng,
}

impl Backoff {
    /// Creates a schedule at attempt 0 whose jitter is determined by `seed`.
    ///
    /// Give each peer a different seed (derived from the node's seed and the
    /// peer's name, say) so that nodes which lose a peer together spread their
    /// retries instead of repeating each other's delays.
    pub fn new(config: BackoffConfig, seed: u64) -> Self {
        Self {
            config,
            attempt: 0,
            rng: Rng::new(seed),
        }
    }

    /// Returns the delay before the next reconnect attempt and advances the
    /// attempt counter (saturating at `u32::MAX`, where the ceiling is long
    /// since capped).
    pub fn next_delay(&mut self) -> Duration {
        let delay = delay_for_attempt(&self.config, self.attempt, &mut self.rng);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Restarts the schedule at attempt 0; call after a connection succeeds.
    ///
    /// The random stream is deliberately not rewound: replaying the same
    /// jitter after every recovery would re-synchronise nodes whose seeds
    /// happen to have produced close delays.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Number of delays handed out since creation or the last
    /// [`reset`](Self::reset), i.e. the attempt number the next
    /// [`next_delay`](Self::next_delay) will use.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The configuration this schedule follows.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn assert_within(delay: Duration, ceiling: Duration) {
        assert!(
            delay >= ceiling / 2 && delay <= ceiling,
            "delay {delay:?} outside [{:?}, {ceiling:?}]",
            ceiling / 2
        );
    }

    #[test]
    fn default_values() {
        let c = BackoffConfig::default();
        assert_eq!(c.initial, ms(100));
        assert_eq!(c.max, Duration::from_secs(10));
        assert_eq!(c.multiplier, 2);
    }

    #[test]
    fn default_ceilings_double_then_cap() {
        let c = BackoffConfig::default();
        let expected = [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000];
        for (attempt, &want) in expected.iter().enumerate() {
            assert_eq!(c.ceiling(attempt as u32), ms(want), "attempt {attempt}");
        }
    }

    #[test]
    fn delays_within_half_ceiling_and_ceiling() {
        let config = BackoffConfig::default();
        for seed in 0..50 {
            let mut backoff = Backoff::new(config, seed);
            for attempt in 0..20 {
                assert_eq!(backoff.attempt(), attempt);
                let delay = backoff.next_delay();
                assert_within(delay, config.ceiling(attempt));
            }
        }
    }

    #[test]
    fn jitter_covers_the_range() {
        // Equal jitter should use the whole upper half, not collapse to one end.
        let config = BackoffConfig::default();
        let mut rng = Rng::new(1);
        let delays: Vec<Duration> = (0..1000)
            .map(|_| delay_for_attempt(&config, 0, &mut rng))
            .collect();
        let lo = *delays.iter().min().unwrap();
        let hi = *delays.iter().max().unwrap();
        assert!(lo < ms(55), "min {lo:?}");
        assert!(hi > ms(95), "max {hi:?}");
    }

    #[test]
    fn capped_at_max_for_huge_attempts() {
        let config = BackoffConfig::default();
        let mut rng = Rng::new(9);
        for attempt in [31, 32, 64, 1000, u32::MAX - 1, u32::MAX] {
            assert_eq!(config.ceiling(attempt), config.max);
            let delay = delay_for_attempt(&config, attempt, &mut rng);
            assert_within(delay, config.max);
        }
    }

    #[test]
    fn huge_multiplier_and_unbounded_max_do_not_panic() {
        let mut rng = Rng::new(4);
        let config = BackoffConfig {
            initial: Duration::from_secs(1),
            max: Duration::MAX,
            multiplier: u32::MAX,
        };
        for attempt in [0, 1, 2, 3, 4, 100, u32::MAX] {
            let ceiling = config.ceiling(attempt);
            assert_within(delay_for_attempt(&config, attempt, &mut rng), ceiling);
        }
        assert_eq!(config.ceiling(u32::MAX), Duration::MAX);

        let config = BackoffConfig {
            initial: Duration::MAX,
            max: Duration::MAX,
            multiplier: 2,
        };
        assert_eq!(config.ceiling(0), Duration::MAX);
        assert_eq!(config.ceiling(u32::MAX), Duration::MAX);
        assert_within(delay_for_attempt(&config, 7, &mut rng), Duration::MAX);
    }

    #[test]
    fn exact_growth_beyond_u32_factor() {
        // 2^40 overflows a u32 factor, but 2^40 ns (~18 min) is far below an
        // unbounded max; the ceiling must be exact, not prematurely capped.
        let config = BackoffConfig {
            initial: Duration::from_nanos(1),
            max: Duration::MAX,
            multiplier: 2,
        };
        assert_eq!(config.ceiling(40), Duration::from_nanos(1 << 40));
        assert_eq!(config.ceiling(63), Duration::from_nanos(1 << 63));
        assert_eq!(
            config.ceiling(64),
            Duration::new(18_446_744_073, 709_551_616)
        );
    }

    #[test]
    fn same_seed_same_sequence() {
        let config = BackoffConfig::default();
        let mut a = Backoff::new(config, 1234);
        let mut b = Backoff::new(config, 1234);
        for _ in 0..30 {
            assert_eq!(a.next_delay(), b.next_delay());
        }
    }

    #[test]
    fn different_seeds_differ() {
        let config = BackoffConfig::default();
        let mut a = Backoff::new(config, 1);
        let mut b = Backoff::new(config, 2);
        let sa: Vec<Duration> = (0..10).map(|_| a.next_delay()).collect();
        let sb: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert_ne!(sa, sb);
    }

    #[test]
    fn pure_function_matches_stateful_schedule() {
        let config = BackoffConfig::default();
        let mut backoff = Backoff::new(config, 77);
        let mut rng = Rng::new(77);
        for attempt in 0..15 {
            assert_eq!(
                backoff.next_delay(),
                delay_for_attempt(&config, attempt, &mut rng)
            );
        }
    }

    #[test]
    fn reset_starts_over() {
        let config = BackoffConfig::default();
        let mut backoff = Backoff::new(config, 5);
        for _ in 0..12 {
            backoff.next_delay();
        }
        assert_eq!(backoff.attempt(), 12);
        backoff.reset();
        assert_eq!(backoff.attempt(), 0);
        for attempt in 0..5 {
            assert_within(backoff.next_delay(), config.ceiling(attempt));
        }
        assert_eq!(backoff.attempt(), 5);
    }

    #[test]
    fn attempt_counter_saturates() {
        let mut backoff = Backoff::new(BackoffConfig::default(), 0);
        backoff.attempt = u32::MAX;
        let delay = backoff.next_delay();
        assert_eq!(backoff.attempt(), u32::MAX);
        assert_within(delay, backoff.config().max);
    }

    #[test]
    fn zero_initial_means_no_delay() {
        let config = BackoffConfig {
            initial: Duration::ZERO,
            ..BackoffConfig::default()
        };
        let mut backoff = Backoff::new(config, 3);
        for _ in 0..10 {
            assert_eq!(backoff.next_delay(), Duration::ZERO);
        }
        assert_eq!(config.ceiling(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn multiplier_zero_and_one_are_constant() {
        for multiplier in [0, 1] {
            let config = BackoffConfig {
                multiplier,
                ..BackoffConfig::default()
            };
            for attempt in [0, 1, 2, 10, u32::MAX] {
                assert_eq!(config.ceiling(attempt), ms(100), "multiplier {multiplier}");
            }
            let mut backoff = Backoff::new(config, 8);
            for _ in 0..20 {
                assert_within(backoff.next_delay(), ms(100));
            }
        }
    }

    #[test]
    fn max_below_initial_wins() {
        let config = BackoffConfig {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(1),
            multiplier: 2,
        };
        for attempt in [0, 1, 5, u32::MAX] {
            assert_eq!(config.ceiling(attempt), Duration::from_secs(1));
        }
        let zero_max = BackoffConfig {
            max: Duration::ZERO,
            ..BackoffConfig::default()
        };
        assert_eq!(
            delay_for_attempt(&zero_max, 3, &mut Rng::new(0)),
            Duration::ZERO
        );
    }

    #[test]
    fn odd_nanosecond_ceiling_can_be_reached() {
        // A 3 ns ceiling has fixed part 1 ns and span 2 ns, so 1, 2 and 3 ns
        // must all occur.
        let config = BackoffConfig {
            initial: Duration::from_nanos(3),
            max: Duration::from_nanos(3),
            multiplier: 2,
        };
        let mut rng = Rng::new(10);
        let mut seen = [false; 4];
        for _ in 0..200 {
            let nanos = delay_for_attempt(&config, 0, &mut rng).as_nanos() as usize;
            seen[nanos] = true;
        }
        assert_eq!(seen, [false, true, true, true]);
    }

    proptest::proptest! {
        #[test]
        fn any_config_any_attempt_stays_in_bounds(
            initial_ns: u64,
            max_secs: u64,
            max_sub in 0u32..1_000_000_000,
            multiplier: u32,
            attempt: u32,
            seed: u64,
        ) {
            let config = BackoffConfig {
                initial: Duration::from_nanos(initial_ns),
                max: Duration::new(max_secs, max_sub),
                multiplier,
            };
            let ceiling = config.ceiling(attempt);
            proptest::prop_assert!(ceiling <= config.max);
            proptest::prop_assert!(ceiling >= config.initial.min(config.max));
            let delay = delay_for_attempt(&config, attempt, &mut Rng::new(seed));
            proptest::prop_assert!(delay >= ceiling / 2 && delay <= ceiling);
        }

        #[test]
        fn ceiling_is_monotonic(initial_ns: u64, max_ns: u64, multiplier: u32, attempt in 0u32..200) {
            let config = BackoffConfig {
                initial: Duration::from_nanos(initial_ns),
                max: Duration::from_nanos(max_ns),
                multiplier,
            };
            proptest::prop_assert!(config.ceiling(attempt) <= config.ceiling(attempt + 1));
        }
    }
}
