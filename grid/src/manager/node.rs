//! The running node: [`Manager`], the handle the application keeps, and the
//! state its loops and connections share.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::Poll;
use std::time::Duration;

use futures_channel::oneshot;
use futures_util::future::{join_all, select, Either};
use grid_proto::{BackoffConfig, CloseReason, Limits, Role, Timeouts};
use tracing::Instrument;

use super::builder::ManagerBuilder;
use super::connection::run_connection;
use super::dial::Connector;
use super::handshakes::{Handshakes, TOO_MANY_HANDSHAKES};
use super::log_limit::LogLimit;
use super::opened::{Opened, Reporter};
use super::outcome::AcceptOutcome;
use super::signal::Signal;
use crate::failure::PeerFailure;
use crate::identity::PeerIdentity;
use crate::peer::{Peer, PeerSlot};
use crate::peer_stats::PeerStats;
use crate::router::Router;
use crate::runtime::{sleep_until, BoxIo, Runtime};
use crate::shared::Shared;
use crate::telemetry::Telemetry;

/// Why waiting for a connection ended without one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The name is not a peer of this node.
    #[error(transparent)]
    UnknownPeer(#[from] UnknownPeer),
    /// The peer did not connect in time.
    #[error("{peer:?} did not connect within {waited:?}{}", last_failure_text(.last_failure))]
    Timeout {
        /// The peer.
        peer: String,
        /// How long this side waited.
        waited: Duration,
        /// The peer's last failure to connect (or disconnect), if any: why
        /// it is not connected.
        last_failure: Option<PeerFailure>,
    },
}

fn last_failure_text(failure: &Option<PeerFailure>) -> String {
    failure
        .as_ref()
        .map(|failure| format!("; last failure: {failure}"))
        .unwrap_or_default()
}

/// A name that is not in the peer list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a peer of this node")]
pub struct UnknownPeer(pub String);

/// What the node's loops, connections and handles share.
pub(super) struct ManagerInner<R: Runtime> {
    pub(super) runtime: R,
    pub(super) name: Arc<str>,
    pub(super) instance_id: u64,
    pub(super) secret: Arc<[u8]>,
    pub(super) limits: Limits,
    pub(super) timeouts: Timeouts,
    pub(super) backoff: BackoffConfig,
    /// Shortest time between two replacements of a peer's live connection.
    pub(super) replace_interval: Duration,
    pub(super) router: Arc<Router>,
    pub(super) addresses: HashMap<String, String>,
    /// Ordered by name, not hashed: the order peers are dialed in and
    /// dropped in (their last connection's sockets closing) is then the
    /// same in every run, which a simulated run needs to replay.
    pub(super) peers: BTreeMap<String, Arc<PeerSlot>>,
    pub(super) local_addr: Option<SocketAddr>,
    pub(super) connector: Connector,
    pub(super) shutdown: Signal,
    /// Raised once the accept loop has dropped the listener (at once when the
    /// node does not listen).
    pub(super) listener_closed: Signal,
    /// Every connection alive, for shutdown.
    pub(super) connections: Mutex<Vec<Weak<Shared>>>,
    /// Which failing peers were reported at WARN lately.
    pub(super) log_limit: LogLimit,
    /// The node's metric handles.
    pub(super) telemetry: Arc<Telemetry>,
    /// Incoming connections in their handshake.
    pub(super) handshakes: Handshakes,
}

/// A node of the cluster: its handlers, and a connection to every peer.
///
/// Cheap to clone. See the crate documentation for an example.
pub struct Manager<R: Runtime> {
    pub(super) inner: Arc<ManagerInner<R>>,
}

impl<R: Runtime> Clone for Manager<R> {
    fn clone(&self) -> Self {
        Manager {
            inner: self.inner.clone(),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Manager<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("name", &self.inner.name)
            .field("peers", &self.inner.peers.len())
            .finish()
    }
}

impl<R: Runtime + Default> Manager<R> {
    /// Starts building a node named `name` (by default also the address it
    /// listens on and the name its peers know it by).
    pub fn builder(name: impl Into<String>) -> ManagerBuilder<R> {
        ManagerBuilder::new(R::default(), name)
    }
}

impl<R: Runtime> Manager<R> {
    /// Starts building a node named `name` on `runtime`.
    pub fn builder_on(runtime: R, name: impl Into<String>) -> ManagerBuilder<R> {
        ManagerBuilder::new(runtime, name)
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The address the node listens on, if it listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.local_addr
    }

    /// The handle for calls to `peer`.
    pub fn peer(&self, peer: &str) -> Result<Peer, UnknownPeer> {
        self.inner
            .peers
            .get(peer)
            .map(|slot| Peer { slot: slot.clone() })
            .ok_or_else(|| UnknownPeer(peer.to_string()))
    }

    /// The old name of [`Manager::peer`].
    #[deprecated(note = "renamed to `Manager::peer`")]
    pub fn connection(&self, peer: &str) -> Result<Peer, UnknownPeer> {
        self.peer(peer)
    }

    /// Names of all peers.
    pub fn peers(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.peers.keys().cloned().collect();
        names.sort();
        names
    }

    /// Waits until `peer` is connected, at most `timeout`.
    pub async fn wait_connected(&self, peer: &str, timeout: Duration) -> Result<(), WaitError> {
        let slot = self
            .inner
            .peers
            .get(peer)
            .ok_or_else(|| WaitError::UnknownPeer(UnknownPeer(peer.to_string())))?
            .clone();
        let connected = std::future::poll_fn(|cx| {
            if slot.poll_connected(cx.waker()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let deadline = sleep_until(&self.inner.runtime, self.inner.runtime.now() + timeout);
        match select(pin!(connected), pin!(deadline)).await {
            Either::Left(_) => Ok(()),
            Either::Right(_) => Err(WaitError::Timeout {
                peer: peer.to_string(),
                waited: timeout,
                last_failure: slot.last_failure(),
            }),
        }
    }

    /// Waits until every peer is connected, at most `timeout` in total.
    pub async fn wait_all_connected(&self, timeout: Duration) -> Result<(), WaitError> {
        let deadline = self.inner.runtime.now() + timeout;
        for peer in self.peers() {
            let left = deadline.saturating_duration_since(self.inner.runtime.now());
            self.wait_connected(&peer, left).await?;
        }
        Ok(())
    }

    /// Statistics of every peer, sorted by name.
    pub fn stats(&self) -> Vec<PeerStats> {
        let mut stats: Vec<PeerStats> = self
            .inner
            .peers
            .values()
            .map(|slot| Peer { slot: slot.clone() }.stats())
            .collect();
        stats.sort_by(|a, b| a.peer.cmp(&b.peer));
        stats
    }

    /// Runs a connection over a byte stream accepted elsewhere (e.g. an HTTP
    /// upgrade on the server's main port) from `remote_addr`, whose transport
    /// verified `identity` if it verifies one. The peer authenticates as
    /// usual, within the handshake timeout, and a peer whose claimed name
    /// `identity` does not name is refused.
    ///
    /// Resolves once the peer is admitted or refused, or the handshake
    /// failed; an admitted connection goes on serving on a task of its own.
    pub async fn accept(
        &self,
        io: BoxIo,
        remote_addr: SocketAddr,
        identity: Option<PeerIdentity>,
    ) -> AcceptOutcome {
        let inner = self.inner.clone();
        let Some(pending) = inner.handshakes.begin() else {
            return AcceptOutcome::Failed(CloseReason::LimitExceeded(
                TOO_MANY_HANDSHAKES.to_string(),
            ));
        };
        let (sender, receiver) = oneshot::channel();
        let opened = Opened {
            io,
            identity,
            started: inner.runtime.now(),
            outcome: Reporter::to(sender),
            pending: Some(pending),
        };
        let span = tracing::debug_span!("grid.accept", node = %inner.name, addr = %remote_addr);
        self.inner.runtime.spawn(
            async move {
                run_connection(&inner, opened, Role::Acceptor, None).await;
            }
            .instrument(span),
        );
        receiver.await.unwrap_or_else(|_| {
            AcceptOutcome::Failed(CloseReason::Local("the connection's task ended".into()))
        })
    }

    /// Stops the node gracefully: stops accepting and dialing, tells every
    /// peer it is draining (their new calls to it fail with the retryable
    /// [`Error::Draining`](crate::Error::Draining)), lets calls in flight finish for up to
    /// `drain_timeout`, then closes every connection.
    pub async fn shutdown(&self, drain_timeout: Duration) {
        self.inner.shutdown.raise();
        let live = self.live_connections();
        let now = self.inner.runtime.now();
        tracing::info!(
            node = %self.inner.name,
            connections = live.len(),
            ?drain_timeout,
            "draining: new calls are refused, calls in flight may finish"
        );
        for shared in &live {
            shared.command(|inner, now| inner.proto.begin_drain(now, drain_timeout));
        }
        // Each connection closes by itself once its calls are done (or its
        // drain deadline passes); a little grace covers the final round trip.
        let all_closed = join_all(live.iter().map(|shared| shared.closed()));
        let limit = sleep_until(
            &self.inner.runtime,
            now + drain_timeout + Duration::from_millis(100),
        );
        let _ = select(pin!(all_closed), pin!(limit)).await;
        let cut = live
            .iter()
            .filter(|shared| !shared.lock().proto.is_closed())
            .count();
        for shared in &live {
            shared.command(|inner, _| inner.proto.close("node shut down"));
        }
        self.inner.listener_closed.wait().await;
        tracing::info!(
            node = %self.inner.name,
            took = ?self.inner.runtime.now().saturating_duration_since(now),
            closed_before_done = cut,
            "drained: node stopped"
        );
    }

    fn live_connections(&self) -> Vec<Arc<Shared>> {
        let connections = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        connections.iter().filter_map(Weak::upgrade).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names before the rename still compile (with a deprecation
    /// warning) for the release that keeps them.
    #[allow(deprecated, dead_code)]
    fn old_names_still_compile<R: Runtime>(node: &Manager<R>) -> Option<crate::ConnectionState> {
        let peer: crate::Connection = node.connection("10.0.0.2:7000").ok()?;
        let stats: crate::ConnectionStats = peer.stats();
        Some(stats.state)
    }
}
