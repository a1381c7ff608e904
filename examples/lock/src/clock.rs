//! Where the lock service reads the time.
//!
//! Every decision about a lease (when a server expires a holder, until when a
//! holder may rely on its lock, when the next refresh is due) reads the time
//! through [`Clock`], never from `Instant::now()` directly, so a simulated
//! runtime can drive it with virtual time.

use std::sync::Arc;
use std::time::Instant;

/// A monotonic clock.
///
/// The safety argument (see the crate documentation) assumes that every
/// node's clock advances at the real rate within
/// [`LeaseTiming::max_drift`](crate::LeaseTiming::max_drift); clocks need not
/// agree on the time of day, since no instant ever crosses the network.
///
/// Deadlines read from it are handed to the [`grid::Runtime`]'s timers, so it
/// must count the same time as the runtime: the system clock for tokio or
/// async-std, the virtual clock for a simulated runtime.
pub trait Clock: Send + Sync + 'static {
    /// The current instant. Never goes backwards.
    fn now(&self) -> Instant;
}

/// The operating system's monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock shared by the server, the client and every lease they hold.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock as a [`SharedClock`].
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}
