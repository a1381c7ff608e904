//! What the tasks sharing a connection know of its driver, under the
//! connection's lock: whether it is running, or parked and how to wake it.

use std::task::Waker;
use std::time::Instant;

use grid_proto::Connection as Proto;

use crate::shared::Inner;

/// The driver as the other tasks of its connection see it.
#[derive(Debug, Default)]
pub(crate) enum DriverLink {
    /// The driver is running, or has been woken to run: whatever is new, it
    /// will see before it parks again.
    #[default]
    Running,
    /// Another task gave the protocol work and woke the parked driver, which
    /// has not run since. Its first poll lets the other ready tasks run
    /// before it writes: tasks woken together (callers handed their answers,
    /// handlers started together) then queue their frames first, and these
    /// leave in one write instead of one system call each, whatever order
    /// the runtime runs woken tasks in.
    Woken,
    /// The driver has taken all the output it saw and waits to be woken: by
    /// the socket, by its timer armed for `armed`, or by whoever gives the
    /// protocol new work through `waker`. It may still be finishing its poll;
    /// a wake then only makes it look once more.
    Parked {
        waker: Waker,
        /// The deadline its timer is armed for.
        armed: Option<Instant>,
    },
}

impl DriverLink {
    /// The driver is about to wait with `waker`, its timer armed for `armed`.
    pub(crate) fn park(&mut self, waker: &Waker, armed: Option<Instant>) {
        match self {
            // Cloning a waker costs a reference count (or more): the one
            // held is kept when it wakes the same task.
            DriverLink::Parked {
                waker: held,
                armed: held_armed,
            } if held.will_wake(waker) => *held_armed = armed,
            _ => {
                *self = DriverLink::Parked {
                    waker: waker.clone(),
                    armed,
                }
            }
        }
    }

    /// The driver runs and sees everything new without being woken: while
    /// it starts handlers outside the lock, their answers need not wake it.
    pub(crate) fn run(&mut self) {
        *self = DriverLink::Running;
    }

    /// The waker of the parked driver.
    pub(crate) fn parked_waker(&self) -> Option<&Waker> {
        match self {
            DriverLink::Parked { waker, .. } => Some(waker),
            DriverLink::Running | DriverLink::Woken => None,
        }
    }

    /// Wakes the driver if it is parked. A driver already running or woken
    /// sees what is new before it parks again.
    pub(crate) fn wake(&mut self) {
        if matches!(self, DriverLink::Parked { .. }) {
            if let DriverLink::Parked { waker, .. } = std::mem::replace(self, DriverLink::Woken) {
                waker.wake();
            }
        }
    }

    /// Whether the driver was woken by another task's work and has not run
    /// since; it counts as running from now on.
    pub(crate) fn take_woken(&mut self) -> bool {
        let woken = matches!(self, DriverLink::Woken);
        if woken {
            *self = DriverLink::Running;
        }
        woken
    }

    /// Whether the parked driver would miss something if not woken: events
    /// to dispatch, output, or a deadline earlier than its timer's. A running
    /// driver misses nothing.
    fn needed(&self, proto: &Proto) -> bool {
        let DriverLink::Parked { armed, .. } = self else {
            return false;
        };
        proto.wants_write()
            || proto.has_events()
            || proto
                .poll_timeout()
                .is_some_and(|at| armed.is_none_or(|armed| at < armed))
    }
}

impl Inner {
    /// Asks the driver to run: the protocol has output or a new timer.
    pub(crate) fn wake_driver(&mut self) {
        self.driver.wake();
    }

    /// Wakes the driver if the protocol has output for it: after a command.
    pub(crate) fn wake_driver_if_output(&mut self) {
        if self.proto.wants_write() {
            self.driver.wake();
        }
    }

    /// Whether the parked driver must be woken to see what changed.
    pub(crate) fn driver_needed(&self) -> bool {
        self.driver.needed(&self.proto)
    }
}
