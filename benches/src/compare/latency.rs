//! A fixed-size log-linear latency histogram (about 1.6 % precision).
//!
//! Recording is a few integer operations and one increment, so timing every
//! call costs the same small amount for every system compared. Each load
//! worker owns one; they are merged at the end.

use std::time::Duration;

/// Sub-buckets per power of two: values are kept to 1/64 of their magnitude.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Largest power of two recorded (2^36 ns is about 69 s); larger values are
/// clamped into the last bucket.
const MAX_EXPONENT: u32 = 36;
const BUCKETS: usize = ((MAX_EXPONENT - SUB_BITS + 2) as usize) * SUB as usize;

/// Latencies in nanoseconds, bucketed log-linearly.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u32]>,
    total: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
        }
    }
}

fn bucket(nanos: u64) -> usize {
    if nanos < SUB {
        return nanos as usize;
    }
    let exponent = (63 - nanos.leading_zeros()).min(MAX_EXPONENT);
    let nanos = nanos.min((1 << (MAX_EXPONENT + 1)) - 1);
    let shift = exponent - SUB_BITS;
    let sub = (nanos >> shift) - SUB;
    ((shift + 1) as u64 * SUB + sub) as usize
}

/// The midpoint of a bucket's range, in nanoseconds.
fn value(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB {
        return bucket;
    }
    let shift = bucket / SUB - 1;
    let sub = bucket % SUB + SUB;
    (sub << shift) + (1 << shift) / 2
}

impl Histogram {
    /// Counts one latency.
    #[inline]
    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let slot = &mut self.counts[bucket(nanos)];
        *slot = slot.saturating_add(1);
        self.total += 1;
    }

    /// Latencies recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Adds `other`'s counts to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.total += other.total;
    }

    /// The latency below which a fraction `q` (0..=1) of the recorded ones lie.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((self.total as f64 * q).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                return Some(Duration::from_nanos(value(index)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_precise() {
        let mut last = 0;
        for nanos in (0..5_000_000u64).step_by(7) {
            let b = bucket(nanos);
            assert!(b >= last);
            last = b;
            let v = value(b) as f64;
            assert!(
                (v - nanos as f64).abs() <= (nanos as f64 / 60.0).max(1.0),
                "{nanos} -> {v}"
            );
        }
        assert!(bucket(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).unwrap().as_nanos() as f64;
        assert!((p50 - 50_000.0).abs() < 1_000.0, "{p50}");
        let p99 = h.quantile(0.99).unwrap().as_nanos() as f64;
        assert!((p99 - 99_000.0).abs() < 2_000.0, "{p99}");
    }
}
