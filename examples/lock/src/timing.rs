//! The lease timing: how long a server keeps a grant without a refresh, how
//! often the holder refreshes, and how long the holder may rely on a grant.

use std::time::Duration;

/// The timing of leases, shared by clients and servers.
///
/// A server keeps a grant for [`lease`](Self::lease) after its last refresh,
/// measured on its own clock. A holder relies on its lock only for
/// [`validity`](Self::validity) after it *sent* the last refresh round that a
/// quorum confirmed, measured on its own clock. With clocks whose rates differ
/// from the real rate by at most `max_drift`, validity ends, in real time,
/// before any server of that quorum can have expired the grant (see the
/// README's safety argument).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeaseTiming {
    /// How long a server keeps a grant after its last refresh. Default 30 s.
    /// Longer means fewer refreshes and a longer wait for a lock whose holder
    /// died; shorter means more refresh traffic.
    pub lease: Duration,
    /// How often the holder refreshes. Default 5 s. Must leave room for a
    /// refresh round within the validity: `refresh_interval + call_deadline
    /// < validity()`.
    pub refresh_interval: Duration,
    /// Deadline of every lock, refresh and unlock call. Default 2 s. Bounds
    /// how long one unreachable server can hold up a round.
    pub call_deadline: Duration,
    /// The largest difference between any node clock's rate and the real
    /// rate, as a fraction (0.01 = 1%). Default 0.01, far above what NTP or
    /// even an undisciplined quartz clock drifts (about 1e-4).
    pub max_drift: f64,
    /// Subtracted from the validity: the time the application may take
    /// between checking [`LockGuard::is_held`](crate::LockGuard::is_held) and
    /// finishing the action it guards. Default 1 s.
    pub margin: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming {
            lease: Duration::from_secs(30),
            refresh_interval: Duration::from_secs(5),
            call_deadline: Duration::from_secs(2),
            max_drift: 0.01,
            margin: Duration::from_secs(1),
        }
    }
}

/// Why a [`LeaseTiming`] is unsafe or unusable.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TimingError {
    /// The drift is negative, not a number, or so large that no lease is safe.
    #[error("max_drift {0} is not in [0, 0.5)")]
    Drift(f64),
    /// The margin eats the whole lease.
    #[error("the margin {margin:?} leaves no validity out of a lease of {lease:?}")]
    NoValidity {
        /// The lease.
        lease: Duration,
        /// The margin.
        margin: Duration,
    },
    /// A refresh round could not finish before the validity of the last one
    /// runs out, so a holder would lose every lock between two refreshes.
    #[error(
        "refresh_interval {refresh:?} + call_deadline {deadline:?} must be under the validity {validity:?}"
    )]
    RefreshTooSlow {
        /// The refresh interval.
        refresh: Duration,
        /// The call deadline.
        deadline: Duration,
        /// The validity these settings give.
        validity: Duration,
    },
    /// A zero refresh interval or call deadline.
    #[error("refresh_interval and call_deadline must be above zero")]
    Zero,
}

impl LeaseTiming {
    /// How long after sending a refresh round (or lock round) that a quorum
    /// confirmed the holder may rely on its lock, on its own clock:
    /// `lease * (1 - max_drift) / (1 + max_drift) - margin`.
    ///
    /// A server's clock running fast by `max_drift` expires the grant after
    /// `lease / (1 + max_drift)` of real time; the holder's clock running slow
    /// counts the validity over at most `validity / (1 - max_drift)` of real
    /// time. The first is longer than the second by the margin, stretched.
    pub fn validity(&self) -> Duration {
        let drift = self.max_drift.clamp(0.0, 0.5);
        let scaled = self.lease.mul_f64((1.0 - drift) / (1.0 + drift));
        scaled.saturating_sub(self.margin)
    }

    /// Checks that the settings make sense together.
    pub fn check(&self) -> Result<(), TimingError> {
        if !(0.0..0.5).contains(&self.max_drift) {
            return Err(TimingError::Drift(self.max_drift));
        }
        if self.refresh_interval.is_zero() || self.call_deadline.is_zero() {
            return Err(TimingError::Zero);
        }
        let validity = self.validity();
        if validity.is_zero() {
            return Err(TimingError::NoValidity {
                lease: self.lease,
                margin: self.margin,
            });
        }
        if self.refresh_interval + self.call_deadline >= validity {
            return Err(TimingError::RefreshTooSlow {
                refresh: self.refresh_interval,
                deadline: self.call_deadline,
                validity,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_validity_leaves_drift_and_margin() {
        let timing = LeaseTiming::default();
        timing.check().unwrap();
        let validity = timing.validity();
        // 30 s * 0.99 / 1.01 - 1 s = 28.406 s.
        assert!(validity > Duration::from_millis(28_400), "{validity:?}");
        assert!(validity < Duration::from_millis(28_410), "{validity:?}");
        // In real time the holder's validity (its clock 1% slow) still ends
        // before a 1% fast server expires the grant.
        let holder_real = validity.as_secs_f64() / 0.99;
        let server_real = timing.lease.as_secs_f64() / 1.01;
        assert!(holder_real + timing.margin.as_secs_f64() / 0.99 <= server_real + 1e-9);
    }

    #[test]
    fn unsafe_settings_are_refused() {
        let base = LeaseTiming::default();
        let slow = LeaseTiming {
            refresh_interval: Duration::from_secs(27),
            ..base
        };
        assert!(matches!(
            slow.check(),
            Err(TimingError::RefreshTooSlow { .. })
        ));
        let drift = LeaseTiming {
            max_drift: 0.7,
            ..base
        };
        assert_eq!(drift.check(), Err(TimingError::Drift(0.7)));
        let margin = LeaseTiming {
            margin: Duration::from_secs(40),
            ..base
        };
        assert!(matches!(
            margin.check(),
            Err(TimingError::NoValidity { .. })
        ));
        let nan = LeaseTiming {
            max_drift: f64::NAN,
            ..base
        };
        assert!(matches!(nan.check(), Err(TimingError::Drift(_))));
    }
}
