//! The write side of one connection's socket: the bytes the socket has not
//! yet accepted, and the rule for who may write them.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes};
use futures_io::{AsyncRead, AsyncWrite};
use grid_proto::Connection as Proto;

use crate::runtime::BoxIo;
use crate::shared::{Inner, Shared};

/// No more output is taken from the protocol while this many bytes wait for
/// the socket, so the protocol's own send-buffer limit applies, and a socket
/// that stops accepting bytes stops `poll_transmit` too: the protocol's
/// write-stall rules (`Timeouts::write_stall`) see the peer stop reading.
const WRITE_QUEUE_LIMIT: usize = 256 * 1024;

/// Buffers written in one vectored write.
const MAX_IOVECS: usize = 64;

/// A socket failed: the text says how.
#[derive(Debug)]
pub(crate) struct SocketFailed(pub(crate) &'static str);

/// Owns a connection's socket and the output it has not yet accepted, and
/// decides who writes it.
///
/// The driver writes as a rule. The one exception: a caller whose request is
/// the only call in flight, on a connection whose driver is parked with
/// nothing queued here, writes its own frame with a non-blocking send
/// ([`Writer::write_lone_call`]); the driver would only have been woken to
/// write those same bytes, one trip through the scheduler later. Should the
/// socket be full, the send registers the *driver's* waker, since it is the
/// driver that writes the rest.
///
/// Bytes still leave in the order the protocol produced them:
/// - output is taken from the protocol only under the connection lock and
///   only by a holder of this writer's lock, who keeps this lock until those
///   bytes are handed to the socket or queued here;
/// - the driver waits for this lock before taking output, so whatever it
///   takes goes behind whatever a caller took before it; and while the driver
///   holds it, between taking and writing, a caller's `try_lock` fails and
///   the caller wakes the driver instead of writing;
/// - a caller writes only when nothing is queued here, so no older byte is
///   still waiting, and holds the connection lock throughout, so nobody takes
///   newer output in between.
///
/// The socket's read side is the driver's alone; it passes through this lock
/// only because a runtime's socket is one object. This lock is taken after
/// the connection's when both are held, never before. A caller only ever
/// tries it: if the driver holds it, the driver is reading or writing and,
/// woken by the caller, takes the caller's output itself.
pub(crate) struct Writer {
    socket: Mutex<Socket>,
}

impl Writer {
    /// Takes ownership of `io`.
    pub(crate) fn new(io: BoxIo) -> Writer {
        Writer {
            socket: Mutex::new(Socket {
                io,
                writes: VecDeque::new(),
                queued: 0,
                failed: false,
                write_calls: 0,
            }),
        }
    }

    /// The socket and its write queue, for the driver. A panic while it was
    /// held does not poison it: the queue is consistent between calls.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Socket> {
        self.socket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// After a command that opened a call: writes the protocol's output in
    /// the driver's place if the rule in [`Writer`] allows it.
    pub(crate) fn write_lone_call(&self, inner: &mut Inner, now: Instant) {
        if inner.proto.in_flight().0 != 1 {
            // With other calls in flight the driver writes, so that their
            // frames share one write instead of taking a system call each.
            return;
        }
        // Borrowed, not cloned: only the protocol is changed while it is held.
        let Some(driver) = inner.driver.parked_waker() else {
            // The driver is running: it takes the output itself.
            return;
        };
        let Ok(mut socket) = self.socket.try_lock() else {
            return;
        };
        if !socket.is_empty() || socket.has_failed() {
            return;
        }
        socket.take_output(&mut inner.proto, now);
        let written = socket.write(&mut Context::from_waker(driver));
        let left = !socket.is_empty();
        drop(socket);
        if let Err(SocketFailed(what)) = written {
            inner.proto.handle_transport_closed(what);
        }
        if left {
            inner.wake_driver();
        }
    }
}

impl Shared {
    /// Runs `command`, which opens a call, and writes its output at once if
    /// the call is alone (see [`Writer`]); otherwise wakes the driver if it
    /// needs to run.
    pub(crate) fn command_opening_call<T>(
        &self,
        command: impl FnOnce(&mut Inner, Instant) -> T,
    ) -> T {
        let mut inner = self.lock();
        let now = self.now();
        let result = command(&mut inner, now);
        if inner.proto.wants_write() {
            self.writer.write_lone_call(&mut inner, now);
            if inner.driver_needed() {
                inner.wake_driver();
            }
        }
        result
    }
}

/// A connection's socket and its write queue, behind the [`Writer`]'s lock.
pub(crate) struct Socket {
    io: BoxIo,
    writes: VecDeque<Bytes>,
    queued: usize,
    failed: bool,
    /// Writes the socket accepted: system calls, for a TCP socket.
    write_calls: u64,
}

impl Socket {
    /// Reads into `buf`; `cx` is woken when there is more to read.
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }

    /// Queues the protocol's output while there is room; whether all of it
    /// was taken.
    pub(crate) fn take_output(&mut self, proto: &mut Proto, now: Instant) -> bool {
        while self.has_room() {
            let Some(bytes) = proto
                .wants_write()
                .then(|| proto.poll_transmit(now))
                .flatten()
            else {
                return true;
            };
            self.push(bytes);
        }
        false
    }

    /// Whether more output may be queued.
    fn has_room(&self) -> bool {
        self.queued < WRITE_QUEUE_LIMIT && !self.failed
    }

    fn push(&mut self, bytes: Bytes) {
        self.queued += bytes.len();
        self.writes.push_back(bytes);
    }

    /// Nothing waits to be written.
    pub(crate) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Writes the socket accepted so far.
    pub(crate) fn write_calls(&self) -> u64 {
        self.write_calls
    }

    /// The socket failed: nothing more can be written.
    pub(crate) fn has_failed(&self) -> bool {
        self.failed
    }

    /// Writes queued bytes until the socket would block (then `cx` is woken
    /// when it takes more); whether anything was written.
    pub(crate) fn write(&mut self, cx: &mut Context<'_>) -> Result<bool, SocketFailed> {
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
                    self.write_calls += 1;
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

    /// Shuts the write side (for TCP, sends FIN); reading goes on.
    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
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

    fn fail(&mut self, what: &'static str) -> SocketFailed {
        self.failed = true;
        self.writes.clear();
        self.queued = 0;
        SocketFailed(what)
    }
}
