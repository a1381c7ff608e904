//! Dialing: for each peer this node dials (by the dial rule), one loop that
//! connects, runs the connection to its end, and reconnects with backoff
//! until the node shuts down.

use std::io;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::future::{select, Either};
use grid_proto::{Backoff, Role};
use tracing::Instrument;

use super::connection::run_connection;
use super::node::ManagerInner;
use super::opened::{Opened, Reporter};
use crate::failure::FailureKind;
use crate::runtime::{random_u64, sleep_until, BoxFuture, Runtime};
use crate::transport::Dialed;

/// Opens a byte stream to a peer address; replaces plain TCP (e.g. for TLS).
/// A connector that verifies the identity of the node it reached (a TLS
/// server certificate) says so in [`Dialed::identity`], and grid then runs
/// its handshake only if that identity names the peer it dialed. A plain
/// byte stream converts with `Dialed::from(io)`.
pub type Connector = Arc<dyn Fn(&str) -> BoxFuture<'static, io::Result<Dialed>> + Send + Sync>;

/// Keeps a connection to `peer` up until the node shuts down.
pub(super) async fn dial_loop<R: Runtime>(inner: Arc<ManagerInner<R>>, peer: String) {
    let mut backoff = Backoff::new(inner.backoff, random_u64(&inner.runtime));
    let addr = inner
        .addresses
        .get(&peer)
        .cloned()
        .unwrap_or_else(|| peer.clone());
    let slot = inner.peers.get(&peer).cloned();
    while !inner.shutdown.is_set() {
        if let Some(slot) = &slot {
            slot.dial_attempts.fetch_add(1, Ordering::Relaxed);
        }
        let started = inner.runtime.now();
        let connect = (inner.connector)(&addr);
        let timeout = sleep_until(
            &inner.runtime,
            inner.runtime.now() + inner.timeouts.handshake,
        );
        let stop = inner.shutdown.wait();
        let outcome = match select(select(connect, pin!(timeout)), pin!(stop)).await {
            Either::Left((Either::Left((result, _)), _)) => result,
            Either::Left((Either::Right(_), _)) => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            }
            Either::Right(_) => return,
        };
        match outcome {
            Ok(dialed) => {
                let span = tracing::debug_span!("grid.dial", node = %inner.name, %peer);
                let opened = Opened {
                    io: dialed.io,
                    identity: dialed.identity,
                    started,
                    outcome: Reporter::default(),
                    pending: None,
                };
                let established = run_connection(&inner, opened, Role::Dialer, Some(peer.clone()))
                    .instrument(span)
                    .await;
                if established {
                    backoff.reset();
                }
            }
            Err(error) if !inner.shutdown.is_set() => {
                let reason = format!("cannot reach {addr}: {error}");
                inner.report_failure(Some(&peer), FailureKind::Dial, false, &reason);
            }
            Err(_) => {}
        }
        let delay = backoff.next_delay();
        let sleep = sleep_until(&inner.runtime, inner.runtime.now() + delay);
        let stop = inner.shutdown.wait();
        if let Either::Right(_) = select(pin!(sleep), pin!(stop)).await {
            return;
        }
    }
}
