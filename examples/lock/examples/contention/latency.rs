//! Acquire latencies, summarised.

use std::time::Duration;

/// Latencies of one run.
#[derive(Default)]
pub(crate) struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    pub(crate) fn record(&mut self, latency: Duration) {
        self.samples.push(latency);
    }

    pub(crate) fn extend(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }

    /// The latency that a fraction `q` of the samples do not exceed
    /// (nearest rank); zero without samples.
    pub(crate) fn quantile(&mut self, q: f64) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        self.samples.sort_unstable();
        let rank = (q * self.samples.len() as f64).ceil() as usize;
        self.samples[rank.clamp(1, self.samples.len()) - 1]
    }
}
