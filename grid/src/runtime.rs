//! What grid needs from an async runtime, and nothing more.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

use crate::transport::Incoming;

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
    /// Waits for the next incoming connection. A transport with a handshake
    /// of its own (TLS) returns it unfinished ([`Incoming::handshake`]): grid
    /// runs it on the connection's task, so one slow client never delays
    /// the next accept.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Incoming>>;
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

    /// The time now, on the clock the runtime's timers follow. grid reads
    /// time only here, so a simulated runtime with a virtual clock controls
    /// every deadline, keepalive and backoff. The default is the system's
    /// monotonic clock.
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Fills `buf` with random bytes: instance ids, backoff jitter and
    /// handshake nonces. The default is the operating system's randomness;
    /// a simulated runtime may return seeded bytes to replay a run, which is
    /// fine for a simulation and must never be done in production, since
    /// predictable nonces weaken the handshake.
    fn fill_random(&self, buf: &mut [u8]) {
        os_random(buf);
    }
}

/// A random `u64` from `runtime`: an instance id, a backoff seed.
pub(crate) fn random_u64<R: Runtime>(runtime: &R) -> u64 {
    let mut bytes = [0u8; 8];
    runtime.fill_random(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// Fills `buf` with the operating system's randomness.
fn os_random(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        // No OS randomness is a broken platform; std's hasher keys (seeded
        // once per thread, then varied) still let the node start, with
        // weaker nonces.
        use std::hash::{BuildHasher, RandomState};
        for (i, chunk) in buf.chunks_mut(8).enumerate() {
            let value = RandomState::new().hash_one((i, chunk.as_ptr() as usize));
            chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// Waits until `deadline` on `runtime`'s timer.
pub async fn sleep_until<R: Runtime>(runtime: &R, deadline: Instant) {
    let mut timer = runtime.timer(deadline);
    std::future::poll_fn(|cx| timer.poll_expired(cx)).await
}

/// A runtime's clock and timers, for what is not generic over the runtime
/// (a connection's shared state, a peer's handle): it reads the time and
/// bounds its waits on the runtime it runs on.
pub(crate) trait Clock: Send + Sync + 'static {
    /// The runtime's time now.
    fn now(&self) -> Instant;
    /// A timer that first expires at `deadline`.
    fn timer(&self, deadline: Instant) -> Box<dyn Timer>;
}

impl<R: Runtime> Clock for R {
    fn now(&self) -> Instant {
        Runtime::now(self)
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        Runtime::timer(self, deadline)
    }
}

/// A shared [`Clock`].
pub(crate) type SharedClock = Arc<dyn Clock>;

/// The clock of `runtime`.
pub(crate) fn clock<R: Runtime>(runtime: &R) -> SharedClock {
    Arc::new(runtime.clone())
}
