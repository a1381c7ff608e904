//! One connection's life, whichever side opened it: the handshake, admission
//! (is the other side a peer, on the right side of the dial rule, and is this
//! node still running?), install as the peer's current connection (closing
//! the one it replaces, at most once per replace interval), serving until it
//! closes, and uninstall.

use std::sync::Arc;

use grid_proto::{dials, Config, Connection as Proto, Refusal, Role};

use super::node::ManagerInner;
use super::opened::{identity_refusal, remaining, Opened};
use super::outcome::AcceptOutcome;
use crate::driver::{Driver, Exit};
use crate::failure::FailureKind;
use crate::identity::PeerIdentity;
use crate::peer::{Install, PeerSlot};
use crate::runtime::{clock, Runtime};
use crate::serve::Serve;
use crate::shared::Shared;

/// Runs one connection to its end. Returns whether it was established.
pub(super) async fn run_connection<R: Runtime>(
    inner: &Arc<ManagerInner<R>>,
    opened: Opened,
    role: Role,
    expected_peer: Option<String>,
) -> bool {
    let Opened {
        io,
        identity,
        started,
        outcome: mut opened,
        pending,
    } = opened;
    let now = inner.runtime.now();
    if let Some(expected) = &expected_peer {
        // Checked before grid's handshake: the proof of the secret never
        // goes to a node that is not the one dialed.
        if let Some((_, reason)) = identity_refusal(identity.as_ref(), expected) {
            tracing::warn!(node = %inner.name, peer = %expected, %reason, "not the node dialed, closing");
            return false;
        }
    }
    let mut seed = [0u8; 32];
    inner.runtime.fill_random(&mut seed);
    let mut config = Config::new(
        &*inner.name,
        inner.instance_id,
        inner.secret.clone(),
        role,
        seed,
    );
    config.expected_peer = expected_peer.clone();
    config.limits = inner.limits.clone();
    config.timeouts = remaining(&inner.timeouts, started, now);
    let shared = Shared::new(
        Proto::new(config, now),
        io,
        clock(&inner.runtime),
        identity.clone(),
    );
    {
        let mut connections = inner.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections.retain(|weak| weak.strong_count() > 0);
        connections.push(Arc::downgrade(&shared));
    }
    let mut driver = Driver::new(shared.clone(), inner.runtime.timer(now));
    let host = Serve {
        runtime: inner.runtime.clone(),
        router: inner.router.clone(),
        telemetry: inner.telemetry.clone(),
    };
    let peer = match std::future::poll_fn(|cx| driver.poll_drive(cx, &host)).await {
        Exit::Closed(reason) => {
            // The dialer knows whom it dialed; an acceptor knows the name
            // the other side claimed in its `Hello`, if it got that far.
            let claimed = shared
                .lock()
                .proto
                .peer()
                .map(|peer| peer.node_name.clone());
            let peer = expected_peer.or(claimed);
            if !inner.shutdown.is_set() {
                let kind = FailureKind::of(&reason, false);
                inner.report_failure(peer.as_deref(), kind, false, &reason);
            }
            opened.report(AcceptOutcome::Failed(reason));
            return false;
        }
        Exit::Connected(peer) => peer,
    };
    drop(pending);
    let slot = inner.peers.get(&peer.node_name).cloned();
    let refused = refusal(inner, role, &peer.node_name, &slot, identity.as_ref());
    if let Some((refusal, reason)) = &refused {
        opened.report(AcceptOutcome::Refused {
            peer: peer.node_name.clone(),
            refusal: *refusal,
            reason: reason.clone(),
        });
    }
    let installed = match (refused, slot) {
        (None, Some(slot)) => {
            match slot.install(
                shared.clone(),
                peer.instance_id,
                inner.runtime.now(),
                inner.replace_interval,
            ) {
                Install::Fresh => {
                    tracing::info!(node = %inner.name, peer = %peer.node_name, "connected");
                    Some(slot)
                }
                Install::Replaced(old) => {
                    let old_instance = old.lock().proto.peer().map(|info| info.instance_id);
                    tracing::warn!(
                        node = %inner.name,
                        peer = %peer.node_name,
                        old_instance = ?old_instance,
                        new_instance = peer.instance_id,
                        "a new connection replaced the peer's live connection"
                    );
                    old.command(|inner, _| {
                        inner
                            .proto
                            .refuse(Refusal::Replaced, "replaced by a new connection")
                    });
                    Some(slot)
                }
                Install::TooSoon { first } => {
                    // A churning impostor would flood the log: one WARN per
                    // replacement interval says it is happening.
                    if first {
                        tracing::warn!(
                            node = %inner.name,
                            peer = %peer.node_name,
                            instance = peer.instance_id,
                            "refusing a connection: the peer's connection was replaced too recently"
                        );
                    } else {
                        tracing::debug!(
                            node = %inner.name,
                            peer = %peer.node_name,
                            instance = peer.instance_id,
                            "refusing a connection: the peer's connection was replaced too recently"
                        );
                    }
                    shared.command(|inner, _| {
                        inner.proto.refuse(
                            Refusal::ReplacingTooOften,
                            "replaced too recently, retry later",
                        )
                    });
                    None
                }
            }
        }
        (refusal, _) => {
            let (refusal, reason) = refusal.unwrap_or((Refusal::NotAPeer, "refused".to_string()));
            if refusal == Refusal::ShuttingDown {
                tracing::debug!(node = %inner.name, peer = %peer.node_name, %reason, "refusing connection");
            } else {
                let kind = FailureKind::Refused(refusal);
                let text = format!("refused by this node: {reason}");
                inner.report_failure(Some(&peer.node_name), kind, false, &text);
            }
            shared.command(|inner, _| inner.proto.refuse(refusal, reason));
            None
        }
    };
    opened.report(match installed {
        Some(_) => AcceptOutcome::Admitted {
            peer: peer.node_name.clone(),
        },
        None => AcceptOutcome::Refused {
            peer: peer.node_name.clone(),
            refusal: Refusal::ReplacingTooOften,
            reason: "replaced too recently, retry later".to_string(),
        },
    });
    let exit = std::future::poll_fn(|cx| driver.poll_drive(cx, &host)).await;
    if let Some(slot) = &installed {
        slot.retire(&shared);
        if let Exit::Closed(reason) = exit {
            let kind = FailureKind::of(&reason, true);
            inner.report_failure(Some(&peer.node_name), kind, true, &reason);
        }
    }
    installed.is_some()
}

/// Why an authenticated connection from `peer` is not admitted, if it is not.
fn refusal<R: Runtime>(
    inner: &ManagerInner<R>,
    role: Role,
    peer: &str,
    slot: &Option<Arc<PeerSlot>>,
    identity: Option<&PeerIdentity>,
) -> Option<(Refusal, String)> {
    if let Some(refused) = identity_refusal(identity, peer) {
        return Some(refused);
    }
    match slot {
        None => Some((
            Refusal::NotAPeer,
            format!("{:?} is not a peer of {:?}", peer, inner.name),
        )),
        Some(_) if role == Role::Acceptor && !dials(peer, &inner.name) => Some((
            Refusal::WrongSide,
            format!(
                "wrong side: {:?} dials {:?}, not the other way round (are the peer lists the same on both nodes?)",
                inner.name, peer
            ),
        )),
        Some(_) if inner.shutdown.is_set() => {
            Some((Refusal::ShuttingDown, "node is shutting down".to_string()))
        }
        Some(_) => None,
    }
}
