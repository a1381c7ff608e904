//! A call's deadline while the call waits to be opened.
//!
//! A deadline bounds the whole await, not only the time on the wire: it starts
//! when the call is created, so time spent waiting for room in a full send
//! buffer counts, and what the opener announces is the time left. The timer
//! that ends such a wait is made only once the send buffer is found full, so
//! the common path, where the call opens at once, costs no timer.

use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use grid_proto::{CommandError, Connection as Proto, Error};

use crate::call::refused_call;
use crate::runtime::Timer;
use crate::shared::{Inner, Shared};

/// When a call was created and the deadline its caller asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallDeadline {
    created: Instant,
    timeout: Option<Duration>,
}

impl CallDeadline {
    /// A call created at `now`, with the connection's default deadline until
    /// [`set_timeout`](Self::set_timeout) says otherwise.
    pub(crate) fn starting_at(now: Instant) -> CallDeadline {
        CallDeadline {
            created: now,
            timeout: None,
        }
    }

    /// The deadline, relative to the call's creation.
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = Some(timeout);
    }

    /// The time left at `now`: what the call announces when it opens. Clamped
    /// to the connection's maximum first, so that even a huge timeout ends at
    /// a point in time a timer can wait for.
    fn left(&self, proto: &Proto, now: Instant) -> Duration {
        let timeouts = &proto.config().timeouts;
        let timeout = self
            .timeout
            .unwrap_or(timeouts.default_deadline)
            .min(timeouts.max_deadline);
        timeout.saturating_sub(now.saturating_duration_since(self.created))
    }
}

/// The timer of a call waiting for room in the send buffer: absent until the
/// first wait, then armed once, for the call's deadline (which never moves).
#[derive(Default)]
pub(crate) struct RoomWait {
    timer: Option<Box<dyn Timer>>,
}

impl std::fmt::Debug for RoomWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomWait")
            .field("armed", &self.timer.is_some())
            .finish()
    }
}

/// How the connection's lock is taken to open the call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OpenLock {
    /// [`Shared::command`].
    Command,
    /// [`Shared::command_opening_call`]: a lone call may write its own frame.
    OpeningCall,
}

enum Attempt<T> {
    Done(Result<T, Error>),
    NoRoom { expiry: Instant },
}

/// Opens a call with `open`, which is given the time left and the caller's
/// waker; waits out a full send buffer until the call's
/// deadline, then fails with [`Error::DeadlineExceeded`] without the call
/// ever being sent.
pub(crate) fn poll_open<T>(
    shared: &Shared,
    lock: OpenLock,
    deadline: &CallDeadline,
    room: &mut RoomWait,
    cx: &mut Context<'_>,
    open: impl FnOnce(&mut Inner, Instant, Duration, &Waker) -> Result<T, CommandError>,
) -> Poll<Result<T, Error>> {
    let attempt = |inner: &mut Inner, now: Instant| {
        let left = deadline.left(&inner.proto, now);
        match open(inner, now, left, cx.waker()) {
            Ok(opened) => Attempt::Done(Ok(opened)),
            Err(CommandError::SendBufferFull) if left.is_zero() => {
                Attempt::Done(Err(Error::DeadlineExceeded))
            }
            Err(CommandError::SendBufferFull) => {
                inner.wait_writable(cx.waker());
                Attempt::NoRoom { expiry: now + left }
            }
            Err(refused) => Attempt::Done(Err(refused_call(refused))),
        }
    };
    let attempt = match lock {
        OpenLock::Command => shared.command(attempt),
        OpenLock::OpeningCall => shared.command_opening_call(attempt),
    };
    match attempt {
        Attempt::Done(result) => Poll::Ready(result),
        // Polled outside the lock: a timer belongs to the runtime, and nothing
        // of the runtime's is touched under the connection's lock.
        Attempt::NoRoom { expiry } => {
            let timer = room.timer.get_or_insert_with(|| shared.timer(expiry));
            // Room that appears after the deadline is no use: the protocol
            // refuses a call with under 1 ms left as expired anyway.
            timer
                .poll_expired(cx)
                .map(|()| Err(Error::DeadlineExceeded))
        }
    }
}
