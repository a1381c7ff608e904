//! Accepting: the loop that takes connections from the node's listener and
//! runs each on a task of its own, until the node shuts down.
//!
//! The loop itself never waits for a peer: a transport handshake (TLS) runs
//! on the connection's task, and one handshake timeout bounds it and grid's
//! handshake together, so a client that connects and sends nothing delays
//! nobody else.

use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{select, Either};
use grid_proto::Role;
use tracing::Instrument;

use super::connection::run_connection;
use super::handshakes::{Pending, TOO_MANY_HANDSHAKES};
use super::node::ManagerInner;
use super::opened::{Opened, Reporter};
use crate::runtime::{sleep_until, Listener, Runtime};
use crate::transport::Incoming;

/// Accepts until shutdown, then says the listener is closed.
pub(super) async fn accept_loop<R: Runtime>(
    inner: Arc<ManagerInner<R>>,
    listener: Box<dyn Listener>,
) {
    accept_until_shutdown(&inner, listener).await;
    // The listener is closed now: a node restarted on the same address can bind.
    inner.listener_closed.raise();
}

async fn accept_until_shutdown<R: Runtime>(
    inner: &Arc<ManagerInner<R>>,
    mut listener: Box<dyn Listener>,
) {
    loop {
        let accepted = {
            let accept = listener.accept();
            let stop = inner.shutdown.wait();
            match select(accept, pin!(stop)).await {
                Either::Left((accepted, _)) => accepted,
                Either::Right(_) => return,
            }
        };
        match accepted {
            Ok(incoming) => {
                let addr = incoming.addr();
                let Some(pending) = inner.handshakes.begin() else {
                    // Closed at once: a flood of silent clients costs this
                    // node a bounded number of sockets and tasks, and an
                    // honest dialer retries after its backoff.
                    refuse_over_limit(inner, addr);
                    continue;
                };
                let inner = inner.clone();
                let span = tracing::debug_span!("grid.accept", node = %inner.name, %addr);
                inner
                    .runtime
                    .clone()
                    .spawn(serve_incoming(inner, incoming, pending).instrument(span));
            }
            Err(error) => {
                tracing::warn!(node = %inner.name, %error, "accept failed");
                // Accept errors (e.g. out of file descriptors) persist for a while.
                sleep_until(
                    &inner.runtime,
                    inner.runtime.now() + Duration::from_millis(50),
                )
                .await;
            }
        }
    }
}

/// Finishes the transport's handshake within the handshake timeout, then
/// runs grid's handshake and the connection in the time left.
async fn serve_incoming<R: Runtime>(
    inner: Arc<ManagerInner<R>>,
    incoming: Incoming,
    pending: Pending,
) {
    let started = inner.runtime.now();
    let addr = incoming.addr();
    let timeout = sleep_until(&inner.runtime, started + inner.timeouts.handshake);
    let stop = inner.shutdown.wait();
    let finished = match select(select(pin!(incoming.finish()), pin!(timeout)), pin!(stop)).await {
        Either::Left((Either::Left((finished, _)), _)) => finished,
        Either::Left((Either::Right(_), _)) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "transport handshake timed out",
        )),
        Either::Right(_) => return,
    };
    match finished {
        Ok(accepted) => {
            let opened = Opened {
                io: accepted.io,
                identity: accepted.identity,
                started,
                outcome: Reporter::default(),
                pending: Some(pending),
            };
            run_connection(&inner, opened, Role::Acceptor, None).await;
        }
        // A transport that rejected the peer's credentials (a certificate
        // from another CA) says so with `PermissionDenied`: a misconfigured
        // or hostile node the operator should hear about. Anything else is
        // what scanners and dropped connections look like.
        // Rate-limited as one party: before its credentials pass, a caller
        // has no name worth keying on, and a redialing misconfigured node
        // would otherwise log a WARN per attempt.
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            match inner
                .log_limit
                .warn("(unverified)", "credentials rejected", inner.runtime.now())
            {
                Some(suppressed) => tracing::warn!(
                    node = %inner.name, %addr, %error, suppressed,
                    "refusing a connection: its credentials were rejected"
                ),
                None => tracing::debug!(
                    node = %inner.name, %addr, %error,
                    "refusing a connection: its credentials were rejected"
                ),
            }
        }
        Err(error) => {
            tracing::debug!(node = %inner.name, %addr, %error, "transport handshake failed");
        }
    }
}

/// Logs a connection closed because too many are in their handshake: at
/// WARN once per interval, since a flood is what it looks like.
fn refuse_over_limit<R: Runtime>(inner: &ManagerInner<R>, addr: impl std::fmt::Display) {
    let now = inner.runtime.now();
    match inner.log_limit.warn("(unverified)", "handshake limit", now) {
        Some(suppressed) => tracing::warn!(
            node = %inner.name, %addr, suppressed,
            "closing a connection: {TOO_MANY_HANDSHAKES}"
        ),
        None => tracing::debug!(
            node = %inner.name, %addr,
            "closing a connection: {TOO_MANY_HANDSHAKES}"
        ),
    }
}
