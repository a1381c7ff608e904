//! The driver's read step: bytes from the socket into the protocol.

use std::io;
use std::sync::MutexGuard;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use grid_proto::Connection as Proto;

use crate::shared::{Inner, Shared};

/// Size of the socket read buffer while traffic flows: a read takes many
/// frames at once.
const READ_BUFFER: usize = 64 * 1024;

/// Size of the socket read buffer of a quiet connection (handshake, pings, a
/// call now and then). A read that fills it grows it to [`READ_BUFFER`]:
/// traffic has started. A node with many peers keeps most connections quiet,
/// and each then holds only this much.
const QUIET_READ_BUFFER: usize = 2048;

/// A grown read buffer goes back to [`QUIET_READ_BUFFER`] once no read needed
/// more for this long; the driver notices at its next wake-up, at the latest
/// the next keepalive.
const QUIET_AFTER: Duration = Duration::from_secs(2);

/// Size of a read that follows one into a large payload's own buffer.
const SHORT_READ: usize = 4096;

/// What a read found.
#[derive(Debug)]
pub(super) enum Read {
    /// No read was made: the connection is closing.
    Skipped,
    /// Nothing to read: the socket holds the driver's waker.
    Waiting,
    /// Bytes read into the reader's own buffer.
    Buffered(usize),
    /// Bytes read straight into a large payload's buffer.
    InPlace(usize),
    /// The socket closed or failed: the text says how.
    Failed(String),
}

/// Reads a connection's socket, into its own buffer or into the buffer of the
/// large payload being received.
pub(super) struct Reader {
    buf: Box<[u8]>,
    /// When a read last needed more than a quiet connection's buffer.
    last_busy: Option<Instant>,
    /// The protocol offers the rest of a large payload to read into.
    in_place: bool,
    /// The last read went into a payload's own buffer.
    in_place_last: bool,
}

impl Reader {
    pub(super) fn new() -> Reader {
        Reader {
            buf: vec![0u8; QUIET_READ_BUFFER].into_boxed_slice(),
            last_busy: None,
            in_place: false,
            in_place_last: false,
        }
    }

    /// Reads what the socket has. A read into a payload's buffer is made
    /// under the connection's lock, which is returned to go on with.
    pub(super) fn read<'s>(
        &mut self,
        shared: &'s Shared,
        cx: &mut Context<'_>,
    ) -> (Read, Option<MutexGuard<'s, Inner>>) {
        if self.in_place {
            // A large payload is being received: read straight into its
            // buffer, which only the lock reaches. A non-blocking read is a
            // copy at memory speed, never a wait.
            let mut inner = shared.lock();
            if let Some(space) = inner.proto.input_space() {
                let polled = shared.writer.lock().poll_read(cx, space);
                return (self.outcome(polled, true), Some(inner));
            }
        }
        // Right after a large payload, the next is likely large too: a short
        // read takes its header and lets the rest of it go straight into its
        // own buffer instead of through this one.
        let limit = if self.in_place_last {
            SHORT_READ.min(self.buf.len())
        } else {
            self.buf.len()
        };
        let polled = shared.writer.lock().poll_read(cx, &mut self.buf[..limit]);
        (self.outcome(polled, false), None)
    }

    fn outcome(&mut self, polled: Poll<io::Result<usize>>, in_place: bool) -> Read {
        match polled {
            Poll::Ready(Ok(0)) => Read::Failed("connection closed by peer".to_string()),
            Poll::Ready(Ok(n)) => {
                self.in_place_last = in_place;
                if in_place {
                    Read::InPlace(n)
                } else {
                    Read::Buffered(n)
                }
            }
            Poll::Ready(Err(error)) => Read::Failed(error.to_string()),
            Poll::Pending => Read::Waiting,
        }
    }

    /// Hands what was read to the protocol; whether there was anything.
    pub(super) fn feed(&mut self, proto: &mut Proto, read: Read, now: Instant) -> bool {
        match &read {
            Read::InPlace(n) => proto.handle_input_in_place(now, *n),
            Read::Buffered(n) => proto.handle_input(now, &self.buf[..*n]),
            Read::Failed(reason) => proto.handle_transport_closed(reason.as_str()),
            Read::Skipped | Read::Waiting => {}
        }
        // Only once the input is fed: the buffer may be replaced.
        self.fit_buffer(&read, now);
        !matches!(read, Read::Skipped | Read::Waiting)
    }

    /// Grows the read buffer when traffic starts, and gives the room back
    /// once the connection has been quiet for [`QUIET_AFTER`].
    fn fit_buffer(&mut self, read: &Read, now: Instant) {
        match *read {
            Read::Buffered(n) if n > QUIET_READ_BUFFER / 2 || n == self.buf.len() => {
                self.last_busy = Some(now);
                if n == self.buf.len() && self.buf.len() < READ_BUFFER {
                    self.buf = vec![0u8; READ_BUFFER].into_boxed_slice();
                }
            }
            Read::InPlace(_) => self.last_busy = Some(now),
            Read::Waiting
                if self.buf.len() > QUIET_READ_BUFFER
                    && self
                        .last_busy
                        .is_none_or(|busy| now.saturating_duration_since(busy) >= QUIET_AFTER) =>
            {
                self.buf = vec![0u8; QUIET_READ_BUFFER].into_boxed_slice();
            }
            _ => {}
        }
    }

    /// The read buffer, for input that is read only to be discarded.
    pub(super) fn scratch(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Notes whether the protocol offers a payload's buffer to read into.
    pub(super) fn set_input_space(&mut self, offered: bool) {
        self.in_place = offered;
    }
}
