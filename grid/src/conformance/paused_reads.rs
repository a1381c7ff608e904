//! A byte stream whose reads can be paused while its writes go on: a peer
//! that keeps sending but has stopped reading for a while (a long pause in
//! its reading task), seen from the other end of the connection.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::BoxIo;

/// Pauses and resumes the reads of a [`PausedReads`] stream.
#[derive(Clone, Default)]
pub(crate) struct ReadSwitch {
    paused: Arc<AtomicBool>,
    /// The reader parked while paused.
    waker: Arc<Mutex<Option<Waker>>>,
}

impl ReadSwitch {
    /// Stops handing out input; the socket's receive buffer fills, and the
    /// peer's writes stall once it is full.
    pub(crate) fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Hands out input again, waking the reader.
    pub(crate) fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
        let waker = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// `io` with reads under the control of a [`ReadSwitch`].
pub(crate) struct PausedReads {
    io: BoxIo,
    switch: ReadSwitch,
}

impl PausedReads {
    /// Wraps `io`; its reads follow `switch`.
    pub(crate) fn new(io: BoxIo, switch: ReadSwitch) -> PausedReads {
        PausedReads { io, switch }
    }
}

impl AsyncRead for PausedReads {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.switch.paused.load(Ordering::SeqCst) {
            *this.switch.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
            // Resumed in between: the waker just stored may never be woken.
            if this.switch.paused.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for PausedReads {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_close(cx)
    }
}
