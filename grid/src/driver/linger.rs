//! The last step of a connection that closed with a reason: its final frame
//! (`Close` or `Reject`) has been written, the write side is shut, and input
//! is read and thrown away for a short while before the socket is dropped.
//!
//! Dropping a TCP socket whose receive buffer holds unread bytes makes the
//! kernel answer with a reset instead of an orderly close, and discard what
//! it had not yet sent; a peer that was still sending also fails its next
//! write. Either way the peer may never read the frame that says why the
//! connection ended. Reading until the peer closes its side (it does as soon
//! as it reads the `Close`) avoids that; the wait is bounded in time and in
//! bytes, so a peer that never stops sending cannot hold the socket open.

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::timer::DriverTimer;
use super::writer::Socket;

/// Longest time input is discarded after the write side is shut.
pub(super) const LINGER_TIME: Duration = Duration::from_secs(2);

/// Most input discarded after the write side is shut. Enough for whatever a
/// fast peer has in flight (socket buffers on both ends) when it reads the
/// `Close`; a peer that sends more than that is not stopping.
pub(super) const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// Why lingering ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LingerEnd {
    /// The peer closed its side (or the socket failed): the socket can go.
    PeerClosed,
    /// [`LINGER_TIME`] passed first.
    TimedOut,
    /// The peer sent more than [`LINGER_BYTES`].
    TooMuchInput,
}

/// Shuts the write side and discards input until the peer closes its side.
#[derive(Debug)]
pub(super) struct Linger {
    deadline: Instant,
    /// The write side's shutdown has completed (or failed).
    shut: bool,
    discarded: usize,
}

impl Linger {
    /// Lingers from `now` for at most [`LINGER_TIME`].
    pub(super) fn new(now: Instant) -> Linger {
        Linger {
            deadline: now + LINGER_TIME,
            shut: false,
            discarded: 0,
        }
    }

    /// Moves the linger on: shuts the write side, reads into `scratch` and
    /// drops what it read. Ready once the socket can be dropped; otherwise
    /// the socket or the timer holds `cx`'s waker.
    pub(super) fn poll(
        &mut self,
        socket: &mut Socket,
        scratch: &mut [u8],
        timer: &mut DriverTimer,
        now: Instant,
        cx: &mut Context<'_>,
    ) -> Poll<LingerEnd> {
        if !self.shut {
            match socket.poll_shutdown(cx) {
                Poll::Ready(Ok(())) => self.shut = true,
                // The peer cannot read anything more from this socket.
                Poll::Ready(Err(_)) => return Poll::Ready(LingerEnd::PeerClosed),
                // A buffering stream (TLS) still writes its own close; its
                // socket holds the waker. Reading goes on meanwhile.
                Poll::Pending => {}
            }
        }
        loop {
            match socket.poll_read(cx, scratch) {
                // The peer closed its side, or the socket failed: either
                // way nothing more is coming, and nothing is left unread.
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    return Poll::Ready(LingerEnd::PeerClosed)
                }
                Poll::Ready(Ok(n)) => {
                    self.discarded += n;
                    if self.discarded >= LINGER_BYTES {
                        return Poll::Ready(LingerEnd::TooMuchInput);
                    }
                }
                Poll::Pending => break,
            }
        }
        if now >= self.deadline || timer.arm(cx, self.deadline, now) {
            return Poll::Ready(LingerEnd::TimedOut);
        }
        Poll::Pending
    }
}
