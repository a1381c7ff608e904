//! grid: internode RPC over one multiplexed, two-way connection per pair of
//! servers, written once for any async runtime.
//!
//! Users depend on a runtime crate (`grid-tokio`, `grid-async-std`), which
//! re-exports this API with its runtime filled in; this crate is also how a
//! new runtime is added: implement the small [`Runtime`] trait (spawn, timer,
//! connect, bind) and everything else comes for free.
//!
//! # How it fits together
//!
//! - A [`Manager`] is one node. It knows its name, every peer, the cluster
//!   secret and its handlers. For each peer exactly one side dials (decided by
//!   [`grid_proto::dials`]); it reconnects forever with jittered backoff.
//! - A [`Router`] holds the node's handlers, by handler id and subroute; the
//!   builder takes it with [`ManagerBuilder::router`].
//! - [`Manager::peer`] gives a cheap [`Peer`] handle per peer: calls go
//!   through whichever connection to it is current, and fail at once with
//!   [`Error::Disconnected`] while the peer is down.
//! - Each transport connection runs a `grid_proto` state machine behind one
//!   mutex, moved by a driver task that reads, writes and keeps time. Callers
//!   and handlers lock only to issue a command; nobody holds the lock across an
//!   await or a socket operation.
//! - Incoming calls run their handler in a task of their own. A cancel from
//!   the caller, the deadline, or the connection going away drops the
//!   handler's future and fires [`Ctx::cancelled`].
//!
//! # Example
//!
//! Generic over the runtime; with `grid-tokio` it is `grid_tokio::Manager`.
//!
//! ```no_run
//! use std::time::Duration;
//! use grid::{Bytes, Ctx, HandlerError, Manager, Router, Runtime};
//!
//! const ECHO: u16 = 1;
//! const WALK: u16 = 2;
//!
//! async fn node<R: Runtime + Default>() -> Result<(), Box<dyn std::error::Error>> {
//!     let router = Router::new()
//!         .single(ECHO, |_ctx: Ctx, request: Bytes| async move { Ok(request) })
//!         .stream(WALK, grid::DEFAULT_STREAM_WINDOW, |_ctx, root: Bytes, _input, mut output: grid::StreamSender| async move {
//!             for entry in ["a", "b", "c"] {
//!                 let path = format!("{}/{entry}", String::from_utf8_lossy(&root));
//!                 output.send(Bytes::from(path)).await.map_err(|e| HandlerError::from(e.to_string()))?;
//!             }
//!             Ok(())
//!         });
//!     let node = Manager::<R>::builder("10.0.0.1:7000")
//!         .peers(["10.0.0.1:7000", "10.0.0.2:7000"])
//!         .secret(b"a shared cluster secret")
//!         .router(router)
//!         .start()
//!         .await?;
//!     node.wait_all_connected(Duration::from_secs(10)).await?;
//!     let peer = node.peer("10.0.0.2:7000")?;
//!     let reply = peer.request(ECHO, "ping").timeout(Duration::from_millis(200)).await?;
//!     assert_eq!(reply, "ping");
//!     let mut walk = peer.stream(WALK, "/data").open().await?;
//!     while let Some(path) = walk.receiver.recv().await {
//!         println!("{:?}", path?);
//!     }
//!     node.shutdown(Duration::from_secs(5)).await;
//!     Ok(())
//! }
//! ```

mod access;
mod call;
#[cfg(feature = "conformance")]
pub mod conformance;
mod deadline;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "demo")]
mod demo_transport;
mod driver;
mod failure;
mod handler;
mod identity;
mod manager;
mod peer;
mod peer_stats;
mod route_table;
mod router;
pub mod runtime;
mod serve;
mod shared;
mod stream;
mod telemetry;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;
pub mod typed;

pub use access::{Access, Principal};
pub use bytes::Bytes;
pub use call::{Request, RequestFuture};
pub use failure::{FailureKind, PeerFailure};
pub use grid_proto::{BackoffConfig, CloseReason, Error, Limits, Refusal, Stats, Timeouts};
pub use handler::{Ctx, HandlerError, HandlerId};
pub use identity::PeerIdentity;
#[cfg(feature = "metrics")]
pub use manager::DEFAULT_METRICS_INTERVAL;
pub use manager::{
    AcceptOutcome, Connector, Manager, ManagerBuilder, StartError, UnknownPeer, WaitError,
    DEFAULT_MAX_PENDING_HANDSHAKES, DEFAULT_REPLACE_INTERVAL,
};
#[allow(deprecated)]
pub use peer::{Connection, ConnectionState, ConnectionStats};
pub use peer::{Peer, DEFAULT_CONNECT_WAIT};
pub use peer_stats::{PeerState, PeerStats, PeerTotals};
pub use router::{DuplicateHandler, Route, Router, TypedRoute};
pub use runtime::{BoxFuture, BoxIo, Io, Listener, Runtime, Timer};
pub use stream::{
    SendError, Stream, StreamReceiver, StreamRequest, StreamSender, DEFAULT_STREAM_WINDOW,
};
pub use transport::{Accepted, Dialed, Incoming};
