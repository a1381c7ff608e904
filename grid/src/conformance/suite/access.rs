//! Per-handler access: a route restricted to some peers serves them, and
//! every other caller gets a permission error that names the handler and the
//! caller and is not retryable.

use std::time::Duration;

use bytes::Bytes;
use grid_proto::Error;

use super::nodes::start_nodes;
use crate::access::Access;
use crate::conformance::TestRuntime;
use crate::handler::Ctx;
use crate::router::Router;
use crate::stream::{StreamReceiver, StreamSender};

const ADMIN: u16 = 40;
const ADMIN_STREAM: u16 = 41;
const OPEN: u16 = 42;

/// Node 1's `ADMIN` handlers admit node 0 only; node 2 is refused, on single
/// requests and streams alike, while its other calls go on.
pub async fn restricted_handlers_refuse_other_peers<R: TestRuntime>(rt: R) {
    let (names, nodes) = start_nodes(&rt, &["access secret 0123"; 3], |names| {
        Router::new()
            .single(
                ADMIN,
                |_ctx: Ctx, request: Bytes| async move { Ok(request) },
            )
            .single(OPEN, |_ctx: Ctx, request: Bytes| async move { Ok(request) })
            .stream(
                ADMIN_STREAM,
                crate::DEFAULT_STREAM_WINDOW,
                |_ctx: Ctx, init: Bytes, _rx: StreamReceiver, mut tx: StreamSender| async move {
                    tx.send(init)
                        .await
                        .map_err(|e| crate::HandlerError::from(e.to_string()))
                },
            )
            .restrict(ADMIN, Access::peers([names[0].clone()]))
            .restrict(ADMIN_STREAM, Access::peers([names[0].clone()]))
    })
    .await;
    for node in &nodes {
        node.wait_all_connected(Duration::from_secs(10))
            .await
            .expect("connected");
    }
    let admitted = nodes[0].peer(&names[1]).expect("peer");
    let stranger = nodes[2].peer(&names[1]).expect("peer");

    assert_eq!(admitted.request(ADMIN, "ok").await.unwrap(), "ok");
    let mut stream = admitted.stream(ADMIN_STREAM, "hi").open().await.unwrap();
    assert_eq!(stream.receiver.recv().await.unwrap().unwrap(), "hi");

    let error = stranger.request(ADMIN, "no").await.unwrap_err();
    match &error {
        Error::PermissionDenied(text) => {
            assert!(text.contains(&format!("handler {ADMIN}")), "{text}");
            assert!(text.contains(&names[2]), "{text}");
        }
        other => panic!("expected a permission error, got {other:?}"),
    }
    assert!(!error.is_retryable());
    let refused = match stranger.stream(ADMIN_STREAM, "no").open().await {
        Ok(mut stream) => stream.receiver.recv().await.and_then(Result::err),
        Err(error) => Some(error),
    };
    assert!(
        matches!(refused, Some(Error::PermissionDenied(_))),
        "{refused:?}"
    );
    // An open handler on the same node still serves the refused peer.
    assert_eq!(stranger.request(OPEN, "fine").await.unwrap(), "fine");
    for node in &nodes {
        node.shutdown(Duration::ZERO).await;
    }
}
