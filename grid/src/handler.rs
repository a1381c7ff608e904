//! What a handler is given and returns: the handler id it is registered
//! under, the context each call's handler sees, and the error it may answer
//! with. Registration is in [`crate::Router`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use grid_proto::{CallId, Error};

use crate::identity::PeerIdentity;
use crate::shared::Shared;

/// Identifies a handler on every node of the cluster.
pub type HandlerId = u16;

/// The error a handler returns; its caller receives the bytes as
/// [`Error::Remote`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandlerError(pub Bytes);

impl HandlerError {
    /// An error carrying `message`.
    pub fn new(message: impl Into<Bytes>) -> HandlerError {
        HandlerError(message.into())
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl std::error::Error for HandlerError {}

impl From<&str> for HandlerError {
    fn from(message: &str) -> Self {
        HandlerError(Bytes::copy_from_slice(message.as_bytes()))
    }
}

impl From<String> for HandlerError {
    fn from(message: String) -> Self {
        HandlerError(Bytes::from(message))
    }
}

/// What a handler knows about the call it serves.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) peer: Arc<str>,
    pub(crate) subroute: Bytes,
    pub(crate) deadline: Instant,
    pub(crate) id: CallId,
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("peer", &self.peer)
            .field("subroute", &self.subroute)
            .field("deadline", &self.deadline)
            .field("id", &self.id)
            .finish()
    }
}

impl Ctx {
    /// Node name of the caller.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The caller's identity as its transport verified it (the node names
    /// of its TLS certificate), if the transport verifies one. grid has
    /// already checked that it names [`Ctx::peer`].
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.shared.identity.as_ref()
    }

    /// The subroute the caller addressed (empty for none).
    pub fn subroute(&self) -> &[u8] {
        &self.subroute
    }

    /// When the caller stops waiting: its relative deadline, counted from
    /// arrival and clamped to this node's maximum.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the call was cancelled: by the caller, its deadline, or the
    /// connection going away.
    pub fn is_cancelled(&self) -> bool {
        self.shared
            .lock()
            .proto
            .incoming_cancelled(self.id)
            .is_some()
    }

    /// Resolves with the reason once the call is cancelled. The handler's
    /// future is dropped at that point anyway; this is for work it handed to
    /// other tasks.
    pub fn cancelled(&self) -> impl Future<Output = Error> + Send + 'static {
        let shared = self.shared.clone();
        let id = self.id;
        std::future::poll_fn(move |cx| {
            let mut inner = shared.lock();
            if let Some(reason) = inner.proto.incoming_cancelled(id) {
                return Poll::Ready(reason);
            }
            let slot = inner.incoming.entry(id).or_default();
            if !slot.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                slot.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}
