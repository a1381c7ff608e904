//! Token bucket for frames that are cheap to send and cost the receiver work.

use std::time::Instant;

/// Allows a burst of cheap frames and a sustained rate after it.
#[derive(Debug)]
pub(crate) struct CheapFrameBudget {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Option<Instant>,
}

impl CheapFrameBudget {
    pub(crate) fn new(burst: u32, per_second: u32) -> CheapFrameBudget {
        CheapFrameBudget {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_second: f64::from(per_second),
            last: None,
        }
    }

    /// Takes one token; `false` when the budget is exhausted.
    pub(crate) fn spend(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let start = Instant::now();
        let mut budget = CheapFrameBudget::new(3, 10);
        assert!((0..3).all(|_| budget.spend(start)));
        assert!(!budget.spend(start));
        assert!(budget.spend(start + Duration::from_millis(100)));
        assert!(!budget.spend(start + Duration::from_millis(100)));
        // Refill never exceeds the burst.
        let later = start + Duration::from_secs(100);
        assert!((0..3).all(|_| budget.spend(later)));
        assert!(!budget.spend(later));
    }
}
