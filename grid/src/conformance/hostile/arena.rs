//! The node under attack, a legitimate node that calls it throughout, and the
//! name the attacker claims.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use grid_proto::{BackoffConfig, Limits, Timeouts};

use super::handshake::dialing_name;
use super::peer::{Ending, RawPeer};
use crate::conformance::cluster::{test_backoff, test_timeouts};
use crate::handler::Ctx;
use crate::manager::{Manager, ManagerBuilder};
use crate::peer::Peer;
use crate::router::Router;
use crate::runtime::Runtime;
use crate::stream::{StreamReceiver, StreamSender};

/// Handler ids the victim serves.
pub mod handlers {
    /// Returns the request.
    pub const ECHO: u16 = 1;
    /// Returns as many bytes as the request's little-endian `u32` says: a
    /// small request with a large answer.
    pub const BLOAT: u16 = 2;
    /// Keeps the request until the call is cancelled.
    pub const HOLD: u16 = 3;
    /// A stream (input window 4) that sends nothing and waits to be cancelled.
    pub const STREAM_HOLD: u16 = 4;
}

/// The cluster secret every node of the arena, and an insider attacker, knows.
pub const SECRET: &[u8] = b"hostile suite secret, 32 bytes!!";

/// How long setting up and checking may take before the test fails.
pub(super) const WAIT: Duration = Duration::from_secs(5);

/// How the victim is configured.
#[derive(Clone, Debug)]
pub(super) struct ArenaOptions {
    pub(super) limits: Limits,
    pub(super) timeouts: Timeouts,
    pub(super) backoff: BackoffConfig,
}

impl Default for ArenaOptions {
    fn default() -> Self {
        ArenaOptions {
            limits: Limits::default(),
            timeouts: test_timeouts(),
            backoff: test_backoff(),
        }
    }
}

/// A victim node, a legitimate node connected to it, and the name an attacker
/// claims (in the victim's peer list, on the side that dials the victim).
pub(super) struct Arena<R: Runtime> {
    rt: R,
    pub(super) victim: Manager<R>,
    pub(super) legit: Manager<R>,
    /// The victim's name, which is also its address.
    pub(super) victim_name: String,
    pub(super) legit_name: String,
    pub(super) attacker_name: String,
    /// `HOLD` handlers running now.
    holding: Arc<AtomicUsize>,
    seed: AtomicUsize,
}

/// Counts a running `HOLD` handler for as long as it lives.
struct Holding(Arc<AtomicUsize>);

impl Drop for Holding {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The handlers a victim serves (see [`handlers`]); `holding` counts the
/// `HOLD` handlers running, each of which keeps its request's payload alive
/// until its call is cancelled.
pub fn victim_router(holding: &Arc<AtomicUsize>) -> Router {
    use handlers::*;
    let holding = holding.clone();
    Router::new()
        .single(ECHO, |_ctx: Ctx, request: Bytes| async move { Ok(request) })
        .single(BLOAT, |_ctx: Ctx, request: Bytes| async move {
            let mut size = [0u8; 4];
            let n = request.len().min(4);
            size[..n].copy_from_slice(&request[..n]);
            Ok(Bytes::from(vec![0x5a; u32::from_le_bytes(size) as usize]))
        })
        .single(HOLD, move |ctx: Ctx, request: Bytes| {
            holding.fetch_add(1, Ordering::SeqCst);
            let running = Holding(holding.clone());
            async move {
                // The request stays alive, as a handler still working on it
                // would keep it.
                let _held = (request, running);
                ctx.cancelled().await;
                Ok(Bytes::new())
            }
        })
        .stream(
            STREAM_HOLD,
            4,
            |ctx: Ctx, _init: Bytes, _rx: StreamReceiver, _tx: StreamSender| async move {
                ctx.cancelled().await;
                Ok(())
            },
        )
}

impl<R: Runtime> Arena<R> {
    /// Starts the victim and the legitimate node and waits until they are
    /// connected.
    pub(super) async fn start(rt: &R, options: ArenaOptions) -> Arena<R> {
        let listener = rt.bind("127.0.0.1:0").await.expect("bind loopback");
        let victim_name = listener.local_addr().expect("local address").to_string();
        // Both other names dial the victim, so the victim accepts them: the
        // attacker needs no listener, and the legitimate node's name can be
        // claimed by a second dialer (a replacement).
        let legit_name = dialing_name("legit", &victim_name);
        let attacker_name = dialing_name("attacker", &victim_name);
        let holding = Arc::new(AtomicUsize::new(0));
        let victim = ManagerBuilder::new(rt.clone(), victim_name.clone())
            .listener(listener)
            .peers([legit_name.clone(), attacker_name.clone()])
            .secret(SECRET)
            .limits(options.limits)
            .timeouts(options.timeouts)
            .backoff(options.backoff)
            .router(victim_router(&holding))
            .start()
            .await
            .expect("start the victim");
        let legit = ManagerBuilder::new(rt.clone(), legit_name.clone())
            .no_listener()
            .peers([victim_name.clone()])
            .secret(SECRET)
            .timeouts(test_timeouts())
            .backoff(test_backoff())
            .start()
            .await
            .expect("start the legitimate node");
        legit
            .wait_connected(&victim_name, WAIT)
            .await
            .expect("the legitimate node connects");
        Arena {
            rt: rt.clone(),
            victim,
            legit,
            victim_name,
            legit_name,
            attacker_name,
            holding,
            seed: AtomicUsize::new(1),
        }
    }

    /// Connects as the attacker and completes the handshake.
    pub(super) async fn attack(&self) -> RawPeer<R> {
        let peer = self
            .connect_as(&self.attacker_name.clone())
            .await
            .unwrap_or_else(|refused| panic!("the attacker's handshake failed: {refused:?}"));
        self.victim
            .wait_connected(&self.attacker_name, WAIT)
            .await
            .expect("the victim installs the attacker's connection");
        peer
    }

    /// Connects as node `name`, with the cluster secret.
    pub(super) async fn connect_as(&self, name: &str) -> Result<RawPeer<R>, Ending> {
        let seed = self.seed.fetch_add(1, Ordering::SeqCst) as u64;
        RawPeer::connect(&self.rt, &self.victim_name, name, SECRET, seed).await
    }

    /// The victim's handle on the attacker's name: its stats are what the
    /// attacker makes the victim hold.
    pub(super) fn attacker_at_victim(&self) -> Peer {
        self.victim
            .peer(&self.attacker_name)
            .expect("attacker is a peer")
    }

    /// The legitimate node's handle for calls to the victim.
    pub(super) fn legit_to_victim(&self) -> Peer {
        self.legit
            .peer(&self.victim_name)
            .expect("victim is a peer")
    }

    /// `HOLD` handlers running at the victim now.
    pub(super) fn holding(&self) -> usize {
        self.holding.load(Ordering::SeqCst)
    }

    /// Stops both nodes.
    pub(super) async fn shutdown(self) {
        self.legit.shutdown(Duration::ZERO).await;
        self.victim.shutdown(Duration::ZERO).await;
    }
}
