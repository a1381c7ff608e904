//! What a test watches during an attack: the legitimate node's calls, and
//! the victim's accounting of the attacker's connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grid_proto::{Error, Stats};

use super::arena::handlers::ECHO;
use super::mailbox::{mailbox, Mailbox};
use crate::peer::Peer;
use crate::peer_stats::PeerState;
use crate::runtime::{sleep_until, Runtime};

/// A loop of echo calls from the legitimate node to the victim, one every
/// few milliseconds, for as long as the attack lasts.
pub(super) struct LegitCalls {
    stop: Arc<AtomicBool>,
    report: Mailbox<LegitReport>,
}

/// The outcome of every call the legitimate node made, in order.
#[derive(Debug, Default)]
pub(super) struct LegitReport {
    pub(super) outcomes: Vec<Result<(), Error>>,
}

impl LegitReport {
    /// Calls that succeeded.
    pub(super) fn ok(&self) -> usize {
        self.outcomes.iter().filter(|o| o.is_ok()).count()
    }

    /// Calls that failed, with their errors.
    pub(super) fn failures(&self) -> Vec<&Error> {
        self.outcomes
            .iter()
            .filter_map(|o| o.as_ref().err())
            .collect()
    }

    /// Runs of consecutive failed calls: each is one outage the legitimate
    /// node lived through.
    pub(super) fn outages(&self) -> usize {
        let mut outages = 0;
        let mut failing = false;
        for outcome in &self.outcomes {
            if outcome.is_err() && !failing {
                outages += 1;
            }
            failing = outcome.is_err();
        }
        outages
    }

    /// Fails the test unless every call succeeded, and enough of them ran to
    /// show the victim kept serving.
    pub(super) fn assert_all_succeeded(&self, at_least: usize) {
        assert!(
            self.failures().is_empty(),
            "the legitimate node's calls failed during the attack: {} of {}: {:?}",
            self.failures().len(),
            self.outcomes.len(),
            self.failures()
        );
        assert!(
            self.ok() >= at_least,
            "only {} legitimate calls ran during the attack (at least {at_least} expected)",
            self.ok()
        );
    }
}

impl LegitCalls {
    /// Starts calling `peer` (the victim, from the legitimate node).
    pub(super) fn start<R: Runtime>(rt: &R, peer: Peer) -> LegitCalls {
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, report) = mailbox();
        let runtime = rt.clone();
        let stopped = stop.clone();
        rt.spawn(async move {
            let mut report = LegitReport::default();
            let mut n = 0u64;
            while !stopped.load(Ordering::SeqCst) {
                n += 1;
                let body = format!("legit {n}");
                let outcome = peer
                    .request(ECHO, body.clone())
                    .timeout(Duration::from_secs(2))
                    .await
                    .and_then(|answer| {
                        if answer == body.as_bytes() {
                            Ok(())
                        } else {
                            Err(Error::Protocol("echo answered something else".into()))
                        }
                    });
                report.outcomes.push(outcome);
                sleep_until(&runtime, Instant::now() + Duration::from_millis(10)).await;
            }
            sender.send(report);
        });
        LegitCalls { stop, report }
    }

    /// Stops calling and returns what happened.
    pub(super) async fn finish(mut self) -> LegitReport {
        self.stop.store(true, Ordering::SeqCst);
        self.report.recv().await.unwrap_or_default()
    }
}

/// Samples the victim's stats of one peer every few milliseconds while that
/// peer is connected.
pub(super) struct Watch {
    stop: Arc<AtomicBool>,
    samples: Mailbox<Samples>,
}

/// The stats sampled while the connection was up.
#[derive(Debug, Default)]
pub(super) struct Samples {
    pub(super) stats: Vec<Stats>,
}

impl Samples {
    /// The largest value of `metric` seen.
    pub(super) fn peak(&self, metric: impl Fn(&Stats) -> usize) -> usize {
        self.stats.iter().map(metric).max().unwrap_or(0)
    }

    /// Prints, on one line, the peak of each byte count the victim accounted
    /// to the attacker during `test` (shown by `cargo test -- --nocapture`),
    /// so the figures of every attack can be quoted side by side. They are
    /// the largest of samples taken 5 ms apart: a peak shorter than that,
    /// common in these fast tests, is missed (the `memory_under_attack`
    /// example of grid-tokio measures peaks with default limits).
    pub(super) fn print_peaks(&self, test: &str) {
        println!(
            "hostile {test}: peak outbound backlog {} B, control backlog {} B, \
             held request bytes {} B, buffered {} B; incoming calls {}, refused {} (largest of {} samples 5 ms apart)",
            self.peak(|s| s.outbound_backlog),
            self.peak(|s| s.control_backlog),
            self.peak(|s| s.held_request_bytes),
            self.peak(|s| s.buffered_bytes),
            self.peak(|s| s.incoming_calls),
            self.peak_count(|s| s.refused_overloaded),
            self.stats.len(),
        );
    }

    /// The largest value of a `u64` counter seen.
    pub(super) fn peak_count(&self, metric: impl Fn(&Stats) -> u64) -> u64 {
        self.stats.iter().map(metric).max().unwrap_or(0)
    }
}

impl Watch {
    /// Starts sampling `peer`'s stats (the victim's handle on the attacker).
    pub(super) fn start<R: Runtime>(rt: &R, peer: Peer) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, samples) = mailbox();
        let runtime = rt.clone();
        let stopped = stop.clone();
        rt.spawn(async move {
            let mut samples = Samples::default();
            while !stopped.load(Ordering::SeqCst) {
                let stats = peer.stats();
                // A closed connection's counters are what it held when the
                // check that closed it ran, not what it was allowed to hold.
                if stats.state != PeerState::Disconnected {
                    samples.stats.push(stats.protocol);
                }
                sleep_until(&runtime, Instant::now() + Duration::from_millis(5)).await;
            }
            sender.send(samples);
        });
        Watch { stop, samples }
    }

    /// Stops sampling and returns the samples.
    pub(super) async fn finish(mut self) -> Samples {
        self.stop.store(true, Ordering::SeqCst);
        self.samples.recv().await.unwrap_or_default()
    }
}

/// Waits until `condition` holds, checking every few milliseconds; fails the
/// test with `what` after `timeout`.
pub(super) async fn eventually<R: Runtime>(
    rt: &R,
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        // Polling: the victim's counters are not events a test can await.
        sleep_until(rt, Instant::now() + Duration::from_millis(5)).await;
    }
}
