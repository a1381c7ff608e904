//! grid on tokio: internode RPC over one multiplexed, two-way connection per
//! pair of servers.
//!
//! This crate is the tokio [`Runtime`] for [`grid`] and its
//! API re-exported with tokio filled in: write `grid_tokio::Manager`.
//!
//! Two nodes in one process, a request each way:
//!
//! ```
//! use std::time::Duration;
//! use grid_tokio::{Bytes, Ctx, Manager, Router, Tokio};
//!
//! const ECHO: u16 = 1;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Bind first, so the nodes' names (their addresses) are known up front.
//! let a = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let b = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let names = [a.local_addr()?.to_string(), b.local_addr()?.to_string()];
//! let mut nodes = Vec::new();
//! for (name, listener) in names.iter().zip([a, b]) {
//!     let node = Manager::builder(name)
//!         .peers(names.clone())
//!         .secret(b"a shared cluster secret")
//!         .listener(Tokio::listener(listener))
//!         .router(Router::new().single(ECHO, |ctx: Ctx, request: Bytes| async move {
//!             Ok(Bytes::from(format!("{} from {}", String::from_utf8_lossy(&request), ctx.peer())))
//!         }))
//!         .start()
//!         .await?;
//!     nodes.push(node);
//! }
//! nodes[0].wait_all_connected(Duration::from_secs(5)).await?;
//! let reply = nodes[0].peer(&names[1])?.request(ECHO, "hello").await?;
//! assert_eq!(reply, format!("hello from {}", names[0]));
//! for node in nodes {
//!     node.shutdown(Duration::from_secs(1)).await;
//! }
//! # Ok(()) }
//! ```

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

#[cfg(feature = "http")]
pub mod http;
mod tcp;
#[cfg(feature = "tls")]
mod tls_stream;

pub use grid::*;

use crate::tcp::TokioTcp;

/// The tokio runtime for grid: tasks on the current tokio runtime, tokio timers
/// and tokio TCP.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

/// A grid node on tokio.
pub type Manager = grid::Manager<Tokio>;

/// Builder of a [`Manager`] on tokio.
pub type ManagerBuilder = grid::ManagerBuilder<Tokio>;

struct TokioTimer(Pin<Box<tokio::time::Sleep>>);

impl Timer for TokioTimer {
    fn reset(&mut self, deadline: Instant) {
        if self.0.deadline().into_std() != deadline {
            self.0.as_mut().reset(deadline.into());
        }
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

struct TokioListener(tokio::net::TcpListener);

impl Listener for TokioListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Incoming>> {
        Box::pin(async move {
            let (stream, addr) = self.0.accept().await?;
            stream.set_nodelay(true)?;
            Ok(Incoming::ready(Accepted::plain(
                Box::new(TokioTcp(stream)),
                addr,
            )))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Tokio {
    /// Wraps a bound tokio listener, e.g. to learn its port before building
    /// the node (see [`grid::ManagerBuilder::listener`]).
    pub fn listener(listener: tokio::net::TcpListener) -> Box<dyn Listener> {
        Box::new(TokioListener(listener))
    }

    /// Wraps a connected tokio TCP stream for [`grid::Manager::accept`].
    pub fn io(stream: tokio::net::TcpStream) -> BoxIo {
        let _ = stream.set_nodelay(true);
        Box::new(TokioTcp(stream))
    }

    /// Wraps any byte stream with tokio's I/O traits (a TLS stream, a
    /// simulated socket) as the byte stream grid runs over, keeping its
    /// vectored writes.
    pub fn compat<T>(stream: T) -> BoxIo
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        Box::new(TokioTcp(stream))
    }
}

impl Runtime for Tokio {
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(future);
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        Box::new(TokioTimer(Box::pin(tokio::time::sleep_until(
            deadline.into(),
        ))))
    }

    /// tokio's clock, which its timers follow: with tokio's time paused
    /// (`tokio::time::pause`, or a simulator built on it) grid's deadlines
    /// and keepalives follow it too.
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn connect(&self, addr: &str) -> BoxFuture<'static, io::Result<BoxIo>> {
        let addr = addr.to_string();
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            Ok(Tokio::io(stream))
        })
    }

    fn bind(&self, addr: &str) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        let addr = addr.to_string();
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            Ok(Tokio::listener(listener))
        })
    }
}
