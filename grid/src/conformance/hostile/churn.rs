//! An insider with the cluster secret claims a legitimate node's name over
//! and over: each connection would replace the legitimate one and fail its
//! calls, so replacements must be rate-limited per name.

use std::time::{Duration, Instant};

use super::arena::{Arena, ArenaOptions};
use super::attacks::settle;
use super::observe::LegitCalls;
use super::peer::Ending;
use super::wire::close_code;
use crate::conformance::TestRuntime;
use crate::manager::DEFAULT_REPLACE_INTERVAL;

/// Connections claiming the legitimate node's name, one after another for
/// three seconds: those within the replacement interval are refused with
/// `ReplacingTooOften`, so the legitimate node loses its connection (and its
/// calls fail) at most once per interval, and most of its calls succeed.
pub async fn replacement_churn_is_rate_limited<R: TestRuntime>(rt: R) {
    const CHURN: Duration = Duration::from_secs(3);
    let arena = Arena::start(&rt, ArenaOptions::default()).await;
    let legit = LegitCalls::start(&rt, arena.legit_to_victim());
    let reconnects_before = arena.legit_to_victim().stats().reconnects;

    let started = Instant::now();
    let (mut attempts, mut admitted, mut refused) = (0u32, 0u32, 0u32);
    while started.elapsed() < CHURN {
        attempts += 1;
        // A refusal comes at once, possibly before the victim's own proof
        // (a Close discards what was queued); a connection still open after a
        // moment was admitted, replacing the legitimate one or taking its
        // name while it was away.
        let ending = match arena.connect_as(&arena.legit_name.clone()).await {
            Ok(mut impostor) => match impostor.next(Duration::from_millis(50)).await {
                None => {
                    impostor.hang_up().await;
                    None
                }
                Some(outcome) => Some(outcome),
            },
            Err(ending) => Some(Err(ending)),
        };
        match ending {
            None => admitted += 1,
            Some(Err(Ending::Closed { code, .. })) if code == close_code::REPLACING_TOO_OFTEN => {
                refused += 1;
            }
            // Admitted, then replaced in turn by the legitimate node's
            // reconnect.
            Some(Err(Ending::Closed { code, .. })) if code == close_code::REPLACED => {
                admitted += 1;
            }
            Some(other) => panic!("an impostor's connection ended otherwise: {other:?}"),
        }
    }

    assert!(
        refused > 0,
        "no impostor was refused in {attempts} attempts"
    );

    settle(&rt).await;
    arena
        .legit
        .wait_connected(&arena.victim_name, Duration::from_secs(5))
        .await
        .expect("the legitimate node is connected after the churn");
    let reconnects = arena.legit_to_victim().stats().reconnects - reconnects_before;
    let report = legit.finish().await;
    let intervals = (CHURN.as_secs_f64() / DEFAULT_REPLACE_INTERVAL.as_secs_f64()).ceil() as u64;
    let summary = format!(
        "{attempts} impostors ({admitted} admitted, {refused} refused) over {CHURN:?}, \
         replacement interval {DEFAULT_REPLACE_INTERVAL:?}: the legitimate node reconnected \
         {reconnects} times, its calls failed in {} outages, {} of {} succeeded; \
         first failure: {:?}",
        report.outages(),
        report.ok(),
        report.outcomes.len(),
        report.failures().first()
    );
    assert!(reconnects <= intervals + 1, "{summary}");
    assert!(report.outages() as u64 <= intervals + 1, "{summary}");
    assert!(report.ok() * 4 >= report.outcomes.len() * 3, "{summary}");
    arena.shutdown().await;
}
