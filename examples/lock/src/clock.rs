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

/// The clock of a grid [`Runtime`](grid::Runtime): the one its timers
/// follow, which on a simulated runtime is the virtual clock.
#[derive(Clone, Default)]
pub struct RuntimeClock<R>(pub R);

impl<R> std::fmt::Debug for RuntimeClock<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuntimeClock")
    }
}

impl<R: grid::Runtime> Clock for RuntimeClock<R> {
    fn now(&self) -> Instant {
        self.0.now()
    }
}

/// The clock of `runtime` as a [`SharedClock`]: what a node on a simulated
/// runtime gives its lock server and clients, so that leases follow the
/// time its timers follow.
pub fn runtime_clock<R: grid::Runtime>(runtime: &R) -> SharedClock {
    Arc::new(RuntimeClock(runtime.clone()))
}

/// A clock shared by the server, the client and every lease they hold.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock as a [`SharedClock`].
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}
