//! A dialer's TLS stream whose errors say what was wrong with the
//! certificates. In TLS 1.3 the client finishes its handshake before the
//! server has checked the client's certificate, so a server's rejection
//! arrives as the first read's error, long after the connector returned.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use super::errors::handshake_error;
use crate::runtime::BoxIo;

/// `io`, with its errors passed through [`handshake_error`].
pub fn explained(io: BoxIo) -> BoxIo {
    Box::new(Explained(io))
}

struct Explained(BoxIo);

fn explain<T>(poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
    poll.map(|result| result.map_err(handshake_error))
}

impl AsyncRead for Explained {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        explain(Pin::new(&mut self.0).poll_read(cx, buf))
    }
}

impl AsyncWrite for Explained {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        explain(Pin::new(&mut self.0).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        explain(Pin::new(&mut self.0).poll_write_vectored(cx, bufs))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        explain(Pin::new(&mut self.0).poll_flush(cx))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        explain(Pin::new(&mut self.0).poll_close(cx))
    }
}
