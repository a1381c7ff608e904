//! What grid needs from an async runtime, and nothing more.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

/// A boxed future, as returned by the [`Runtime`] and [`Listener`] methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A byte stream grid can run a connection over: a TCP socket, a TLS stream, an
/// upgraded HTTP connection, an in-memory pipe.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`].
pub type BoxIo = Box<dyn Io>;

/// A listening socket.
pub trait Listener: Send + 'static {
    /// Waits for the next incoming connection.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxIo, SocketAddr)>>;
    /// The address it listens on.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A resettable timer.
pub trait Timer: Send + 'static {
    /// Moves the deadline.
    fn reset(&mut self, deadline: Instant);
    /// Ready once the deadline has passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// An async runtime: spawn a task, a timer, connect, listen.
///
/// Everything else grid does is written once on top of this, so a new runtime
/// costs one small implementation of this trait. Connections opened by
/// [`Runtime::connect`] should have `TCP_NODELAY` set: grid coalesces its own
/// writes, and Nagle's algorithm would only add latency to small calls.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// Runs a task in the background.
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// A timer that first expires at `deadline`.
    fn timer(&self, deadline: Instant) -> Box<dyn Timer>;

    /// Opens a TCP connection to `addr` (`host:port`).
    fn connect(&self, addr: &str) -> BoxFuture<'static, io::Result<BoxIo>>;

    /// Listens for TCP connections on `addr` (`host:port`).
    fn bind(&self, addr: &str) -> BoxFuture<'static, io::Result<Box<dyn Listener>>>;
}

/// Waits until `deadline` on `runtime`'s timer.
pub async fn sleep_until<R: Runtime>(runtime: &R, deadline: Instant) {
    let mut timer = runtime.timer(deadline);
    std::future::poll_fn(|cx| timer.poll_expired(cx)).await
}

/// Makes timers on a runtime that is not named: what a connection's shared
/// state, which is not generic over the runtime, keeps to bound a wait.
pub(crate) type MakeTimer = Arc<dyn Fn(Instant) -> Box<dyn Timer> + Send + Sync>;

/// The [`MakeTimer`] of `runtime`.
pub(crate) fn make_timer<R: Runtime>(runtime: &R) -> MakeTimer {
    let runtime = runtime.clone();
    Arc::new(move |deadline| runtime.timer(deadline))
}
