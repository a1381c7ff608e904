//! Failures an operator and a caller can see: a node with the wrong cluster
//! secret is reported with the cause, in stats, in `wait_connected`'s error
//! and in the error of calls, instead of a retryable `Disconnected` forever.

use std::time::Duration;

use grid_proto::{dials, Error};

use super::nodes::start_nodes;
use crate::conformance::cluster::handlers::ECHO;
use crate::conformance::TestRuntime;
use crate::failure::FailureKind;
use crate::manager::WaitError;
use crate::router::Router;

/// Two nodes with different secrets never connect. The dialer of the pair
/// (whose proof the other refuses, whichever secret is the odd one) fails
/// its calls with a non-retryable error naming the peer and the secret, and
/// both sides' stats and `wait_connected` say why.
pub async fn wrong_secret_is_reported_not_retried<R: TestRuntime>(rt: R) {
    let (names, nodes) = start_nodes(
        &rt,
        &["the cluster's secret 0123", "some other secret 4567"],
        |_| {
            Router::new().single(
                ECHO,
                |_ctx: crate::Ctx, r: bytes::Bytes| async move { Ok(r) },
            )
        },
    )
    .await;
    let (dialer, acceptor) = if dials(&names[0], &names[1]) {
        (0, 1)
    } else {
        (1, 0)
    };

    let waited = nodes[dialer]
        .wait_connected(&names[acceptor], Duration::from_millis(800))
        .await;
    let Err(WaitError::Timeout {
        last_failure: Some(failure),
        ..
    }) = &waited
    else {
        panic!("expected a timeout with its cause, got {waited:?}");
    };
    assert_eq!(failure.kind, FailureKind::SecretRefused, "{failure:?}");
    let text = waited.as_ref().unwrap_err().to_string();
    assert!(text.contains("secret was refused"), "{text}");

    let peer = nodes[dialer].peer(&names[acceptor]).expect("peer");
    let error = peer.request(ECHO, "x").await.unwrap_err();
    match &error {
        Error::Unauthenticated(text) => {
            assert!(text.contains(&names[acceptor]), "{text}");
            assert!(text.contains("secret"), "{text}");
        }
        other => panic!("expected an authentication error, got {other:?}"),
    }
    assert!(!error.is_retryable());
    let stats = peer.stats();
    let failure = stats
        .last_failure
        .expect("the dialer's stats carry the failure");
    assert_eq!(failure.kind, FailureKind::SecretRefused);
    assert!(failure.count >= 1);

    // The acceptor saw a proof it could not verify. Anyone can claim a
    // peer's name without the secret, so its calls stay retryable.
    let peer = nodes[acceptor].peer(&names[dialer]).expect("peer");
    let failure = peer
        .stats()
        .last_failure
        .expect("the acceptor's stats carry it");
    assert_eq!(failure.kind, FailureKind::PeerUnauthenticated);
    assert!(
        failure.reason.contains("does not know the cluster secret"),
        "{failure:?}"
    );
    assert_eq!(peer.request(ECHO, "x").await, Err(Error::Disconnected));
    for node in &nodes {
        node.shutdown(Duration::ZERO).await;
    }
}

/// A peer nobody listens for: `wait_connected` says the dial failed and
/// where, and calls stay retryable.
pub async fn unreachable_peer_names_the_dial_failure<R: TestRuntime>(rt: R) {
    let (names, nodes) =
        start_nodes(&rt, &["one secret for both 0123"; 2], |_| Router::new()).await;
    let (dialer, acceptor) = if dials(&names[0], &names[1]) {
        (0, 1)
    } else {
        (1, 0)
    };
    nodes[acceptor].shutdown(Duration::ZERO).await;
    // The dialer's loop keeps failing now; its last failure is a dial error.
    let mut last = None;
    for _ in 0..50 {
        let waited = nodes[dialer]
            .wait_connected(&names[acceptor], Duration::from_millis(100))
            .await;
        if let Err(WaitError::Timeout {
            last_failure: Some(failure),
            ..
        }) = waited
        {
            if failure.kind == FailureKind::Dial {
                last = Some(failure);
                break;
            }
        }
    }
    let failure = last.expect("a dial failure was recorded");
    assert!(failure.reason.contains(&names[acceptor]), "{failure:?}");
    let peer = nodes[dialer].peer(&names[acceptor]).expect("peer");
    let error = peer.request(1, "x").await.unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    nodes[dialer].shutdown(Duration::ZERO).await;
}
