//! grid on async-std: internode RPC over one multiplexed, two-way connection
//! per pair of servers.
//!
//! This crate is the async-std [`Runtime`] for [`grid`] and its API
//! re-exported with async-std filled in: write `grid_async_std::Manager`.
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052): it receives no
//! further fixes. This crate stays for applications already built on it; new
//! applications should prefer `grid-tokio`, or drive `grid-proto` from their
//! own event loop.
//!
//! ```
//! use std::time::Duration;
//! use grid_async_std::{AsyncStd, Bytes, Ctx, Manager, Router};
//!
//! const ECHO: u16 = 1;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # async_std::task::block_on(async {
//! let a = async_std::net::TcpListener::bind("127.0.0.1:0").await?;
//! let b = async_std::net::TcpListener::bind("127.0.0.1:0").await?;
//! let names = [a.local_addr()?.to_string(), b.local_addr()?.to_string()];
//! let mut nodes = Vec::new();
//! for (name, listener) in names.iter().zip([a, b]) {
//!     let node = Manager::builder(name)
//!         .peers(names.clone())
//!         .secret(b"a shared cluster secret")
//!         .listener(AsyncStd::listener(listener))
//!         .router(Router::new().single(ECHO, |_ctx: Ctx, request: Bytes| async move { Ok(request) }))
//!         .start()
//!         .await?;
//!     nodes.push(node);
//! }
//! nodes[0].wait_all_connected(Duration::from_secs(5)).await?;
//! let reply = nodes[0].peer(&names[1])?.request(ECHO, "hello").await?;
//! assert_eq!(reply, "hello");
//! for node in nodes {
//!     node.shutdown(Duration::from_secs(1)).await;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(()) })
//! # }
//! ```

mod tcp;
#[cfg(feature = "tls")]
mod tls_stream;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

pub use grid::*;

use self::tcp::AsyncStdTcp;

/// The async-std runtime for grid: async-std tasks and TCP, async-io timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStd;

/// A grid node on async-std.
pub type Manager = grid::Manager<AsyncStd>;

/// Builder of a [`Manager`] on async-std.
pub type ManagerBuilder = grid::ManagerBuilder<AsyncStd>;

struct AsyncIoTimer(async_io::Timer);

impl Timer for AsyncIoTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

struct AsyncStdListener(async_std::net::TcpListener);

impl Listener for AsyncStdListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Incoming>> {
        Box::pin(async move {
            let (stream, addr) = self.0.accept().await?;
            Ok(Incoming::ready(Accepted::plain(AsyncStd::io(stream), addr)))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl AsyncStd {
    /// Wraps a bound async-std listener (see [`grid::ManagerBuilder::listener`]).
    pub fn listener(listener: async_std::net::TcpListener) -> Box<dyn Listener> {
        Box::new(AsyncStdListener(listener))
    }

    /// Wraps a connected async-std TCP stream for [`grid::Manager::accept`].
    pub fn io(stream: async_std::net::TcpStream) -> BoxIo {
        let _ = stream.set_nodelay(true);
        Box::new(AsyncStdTcp(stream))
    }
}

impl Runtime for AsyncStd {
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        async_std::task::spawn(future);
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        Box::new(AsyncIoTimer(async_io::Timer::at(deadline)))
    }

    fn connect(&self, addr: &str) -> BoxFuture<'static, io::Result<BoxIo>> {
        let addr = addr.to_string();
        Box::pin(async move {
            let stream = async_std::net::TcpStream::connect(addr).await?;
            Ok(AsyncStd::io(stream))
        })
    }

    fn bind(&self, addr: &str) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        let addr = addr.to_string();
        Box::pin(async move {
            let listener = async_std::net::TcpListener::bind(addr).await?;
            Ok(AsyncStd::listener(listener))
        })
    }
}
