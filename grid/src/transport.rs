//! The socket of one connection and the bytes it has not yet accepted.
//!
//! It has a lock of its own, apart from the protocol's, so that whoever holds
//! the protocol's output can write it: the driver as a rule, and a caller
//! whose request is the only call on an idle connection (it saves the
//! driver's trip through the scheduler). Bytes leave in the order they were
//! taken from the protocol because only the holder of this lock writes, and
//! nobody writes new bytes while older ones wait here.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::BoxIo;

/// No more output is taken from the protocol while this many bytes wait for
/// the socket, so the protocol's own send-buffer limit applies.
const WRITE_QUEUE_LIMIT: usize = 256 * 1024;

/// Buffers written in one vectored write.
const MAX_IOVECS: usize = 64;

/// A socket failed: the text says how.
#[derive(Debug)]
pub(crate) struct TransportFailed(pub(crate) &'static str);

/// A connection's socket and its write queue.
pub(crate) struct Transport {
    io: BoxIo,
    writes: VecDeque<Bytes>,
    queued: usize,
    failed: bool,
}

impl Transport {
    pub(crate) fn new(io: BoxIo) -> Transport {
        Transport {
            io,
            writes: VecDeque::new(),
            queued: 0,
            failed: false,
        }
    }

    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }

    /// Whether more output may be queued.
    pub(crate) fn has_room(&self) -> bool {
        self.queued < WRITE_QUEUE_LIMIT && !self.failed
    }

    /// Queues bytes taken from the protocol.
    pub(crate) fn push(&mut self, bytes: Bytes) {
        self.queued += bytes.len();
        self.writes.push_back(bytes);
    }

    /// Nothing waits to be written.
    pub(crate) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The socket failed: nothing more can be written.
    pub(crate) fn has_failed(&self) -> bool {
        self.failed
    }

    /// Writes queued bytes until the socket would block (then `cx` is woken
    /// when it takes more); whether anything was written.
    pub(crate) fn write(&mut self, cx: &mut Context<'_>) -> Result<bool, TransportFailed> {
        let mut wrote = false;
        while !self.writes.is_empty() && !self.failed {
            let polled = if self.writes.len() == 1 {
                // One buffer (a small call's frame, most often): a plain
                // write is a `send`, cheaper in the kernel than `writev`.
                Pin::new(&mut self.io).poll_write(cx, &self.writes[0])
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let mut count = 0;
                for (slot, bytes) in slices.iter_mut().zip(&self.writes) {
                    *slot = IoSlice::new(bytes);
                    count += 1;
                }
                Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count])
            };
            match polled {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Err(self.fail("write failed")),
                Poll::Ready(Ok(written)) => {
                    wrote = true;
                    self.consume(written);
                }
                Poll::Pending => break,
            }
        }
        // Flushed even when the socket stopped taking bytes: a buffering
        // stream (TLS) must not sit on what it already accepted.
        if wrote && !self.failed {
            if let Poll::Ready(Err(_)) = Pin::new(&mut self.io).poll_flush(cx) {
                return Err(self.fail("flush failed"));
            }
        }
        Ok(wrote)
    }

    /// Starts closing the socket; whatever is still queued is dropped.
    pub(crate) fn close(&mut self, cx: &mut Context<'_>) {
        let _ = Pin::new(&mut self.io).poll_close(cx);
    }

    fn consume(&mut self, mut written: usize) {
        self.queued -= written;
        while written > 0 {
            let Some(front) = self.writes.front_mut() else {
                break;
            };
            if written >= front.len() {
                written -= front.len();
                self.writes.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }

    fn fail(&mut self, what: &'static str) -> TransportFailed {
        self.failed = true;
        self.writes.clear();
        self.queued = 0;
        TransportFailed(what)
    }
}
