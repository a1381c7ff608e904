//! An async-std TCP stream as the byte stream grid runs over.
//!
//! async-std's own `poll_close` only flushes, which leaves the connection's
//! write side open; grid shuts it at close, so that the peer reads the end of
//! the stream right after the final `Close` frame.

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_std::net::TcpStream;
use futures_io::{AsyncRead, AsyncWrite};

/// An async-std TCP stream whose close shuts its write side.
pub(crate) struct AsyncStdTcp(pub(crate) TcpStream);

impl AsyncRead for AsyncStdTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for AsyncStdTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream = &mut self.get_mut().0;
        std::task::ready!(Pin::new(&mut *stream).poll_flush(cx))?;
        Poll::Ready(stream.shutdown(Shutdown::Write))
    }
}
