//! Property tests: random operation sequences applied to both sides of a
//! simulated [`Pair`], checked against a model of what each side's application
//! believes.
//!
//! Every step applies one operation to one side (open a request or stream,
//! accept, send, read, stop reading, finish, respond, fail, cancel in either role, drain,
//! close), or to the pair (advance the virtual clock, change chunking and
//! latency), or writes a few transmit buffers of one side by hand, as a driver
//! with a slow socket does; then it usually drives the pipes. Every event is
//! checked against the model as it is taken, and after every step the model is
//! compared with what the connections report. At the end both applications end
//! everything they hold and the pair settles.
//!
//! The properties, and the model that checks them, are in
//! [`crate::sim::model`].
//!
//! The runs are deterministic: proptest uses a fixed seed, the simulator a seed
//! drawn by proptest, and no failure-persistence files are written.

mod flow;
mod harness;
mod ops;

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestRunner};

use harness::Harness;
use ops::{steps, Features, Step, BASIC};

/// The suite's fixed cases and seed; `GRID_PROPTEST_CASES` and
/// `GRID_PROPTEST_SEED` (added to each test's seed) override them for longer,
/// different runs by hand.
fn proptest_config(cases: u32, seed: u64) -> ProptestConfig {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let cases = env("GRID_PROPTEST_CASES").map_or(cases, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let seed = seed.wrapping_add(env("GRID_PROPTEST_SEED").unwrap_or(0));
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    }
}

/// Connections closed for `LimitExceeded`, over all runs of the process.
static LIMIT_CLOSES: AtomicUsize = AtomicUsize::new(0);

fn run_case(seed: u64, features: Features, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut harness = Harness::new(seed, features);
    let result = harness.run(steps);
    LIMIT_CLOSES.fetch_add(harness.model.limit_closes, Ordering::Relaxed);
    result.map_err(|violation| TestCaseError::fail(violation.0))
}

// ----- the tests -----

const DRAINS: Features = Features {
    drain: true,
    ..BASIC
};

const INTERLEAVED: Features = Features {
    drain: true,
    write_one: true,
    race: true,
    ..BASIC
};

const FEW_CALLS: Features = Features {
    drain: true,
    write_one: true,
    abandon: true,
    few_calls: true,
    ..BASIC
};

const SMALL_LIMITS: Features = Features {
    small_limits: true,
    ..BASIC
};

proptest! {
    #![proptest_config(proptest_config(64, 0x6772_6964_0001))]

    /// Properties 1 to 6 over requests, streams, cancels, deadlines (clamped
    /// ones too), chunking, latency and rare closes.
    #[test]
    fn calls_end_once_credits_hold_and_sides_agree(seed in any::<u64>(), steps in steps(BASIC)) {
        run_case(seed, BASIC, &steps)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(64, 0x6772_6964_0002))]

    /// The same properties with graceful drains in the mix, and: a drain that
    /// completes before its deadline cuts no call on either side, even when a
    /// cancel (or reset) of the last call completes it.
    #[test]
    fn properties_hold_through_drains(seed in any::<u64>(), steps in steps(DRAINS)) {
        run_case(seed, DRAINS, &steps)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(64, 0x6772_6964_0003))]

    /// The same properties (drains included) when transmit buffers are written
    /// a few at a time with commands in between, as a driver with a slow socket
    /// does: control frames, ends of calls (`Race`) and closes (`CloseMidWrite`)
    /// meet messages cut between fragments; a close in the middle of a message
    /// still reaches the peer, and a message cut because its call ended leaves
    /// nothing behind.
    #[test]
    fn properties_hold_with_interleaved_writes(seed in any::<u64>(), steps in steps(INTERLEAVED)) {
        run_case(seed, INTERLEAVED, &steps)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(64, 0x6772_6964_0006))]

    /// The interleaved-writes properties when each side accepts only two
    /// incoming calls, and openers abandon streams in the middle of messages and
    /// retry at once (`Abandon`): calls over the limit are refused with
    /// `Overloaded`, and the connection never closes for a limit.
    #[test]
    fn properties_hold_with_few_calls(seed in any::<u64>(), steps in steps(FEW_CALLS)) {
        run_case(seed, FEW_CALLS, &steps)?;
    }
}

/// Property 4 with `max_buffered_bytes` of 64 KiB and messages up to 100 KB
/// (and small message, call and send-buffer limits): buffered bytes never
/// exceed the limit; the receiver closes with `LimitExceeded` instead (and that
/// happens in some runs).
#[test]
fn buffered_bytes_stay_within_small_limits() {
    let before = LIMIT_CLOSES.load(Ordering::Relaxed);
    let mut runner = TestRunner::new(proptest_config(64, 0x6772_6964_0004));
    let result = runner.run(&(any::<u64>(), steps(SMALL_LIMITS)), |(seed, steps)| {
        run_case(seed, SMALL_LIMITS, &steps)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    assert!(
        LIMIT_CLOSES.load(Ordering::Relaxed) > before,
        "no run reached max_buffered_bytes"
    );
}
