//! grid: internode RPC over one multiplexed, two-way connection per pair of
//! servers, written once for any async runtime.
//!
//! Users depend on a runtime crate (`grid-tokio`, `grid-async-std`), which
//! re-exports this API with its runtime filled in.

mod call;
#[cfg(feature = "conformance")]
pub mod conformance;
mod driver;
mod handler;
mod manager;
mod peer;
pub mod runtime;
mod shared;
mod stream;

pub use bytes::Bytes;
pub use call::{Request, RequestFuture};
pub use grid_proto::{BackoffConfig, CloseReason, Error, Limits, Stats, Timeouts};
pub use handler::{Ctx, DuplicateHandler, HandlerError, HandlerId};
pub use manager::{Connector, Manager, ManagerBuilder, StartError, UnknownPeer};
pub use peer::{Connection, ConnectionState, ConnectionStats, DEFAULT_CONNECT_WAIT};
pub use runtime::{BoxFuture, BoxIo, Io, Listener, Runtime, Timer};
pub use stream::{Stream, StreamReceiver, StreamRequest, StreamSender, DEFAULT_STREAM_CAPACITY};
