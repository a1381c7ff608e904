//! The driver's read step: bytes from the socket into the protocol.

use std::io;
use std::sync::MutexGuard;
use std::task::{Context, Poll};
use std::time::Instant;

use grid_proto::Connection as Proto;

use crate::shared::{Inner, Shared};

/// Size of the socket read buffer.
const READ_BUFFER: usize = 64 * 1024;

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
    /// The protocol offers the rest of a large payload to read into.
    in_place: bool,
    /// The last read went into a payload's own buffer.
    in_place_last: bool,
}

impl Reader {
    pub(super) fn new() -> Reader {
        Reader {
            buf: vec![0u8; READ_BUFFER].into_boxed_slice(),
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
            SHORT_READ
        } else {
            READ_BUFFER
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
    pub(super) fn feed(&self, proto: &mut Proto, read: Read, now: Instant) -> bool {
        match read {
            Read::InPlace(n) => proto.handle_input_in_place(now, n),
            Read::Buffered(n) => proto.handle_input(now, &self.buf[..n]),
            Read::Failed(reason) => proto.handle_transport_closed(reason),
            Read::Skipped | Read::Waiting => return false,
        }
        true
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
