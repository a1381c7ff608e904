//! Nodes built by a test itself, for tests that need their own handlers or
//! secrets instead of the [`Cluster`](crate::conformance::Cluster)'s.

use crate::conformance::cluster::{test_backoff, test_timeouts};
use crate::manager::{Manager, ManagerBuilder};
use crate::router::Router;
use crate::runtime::Runtime;

/// Starts one node per secret on loopback, all peers of each other, each with
/// the router `router` makes from the node names; returns the names and the
/// nodes, without waiting for them to connect.
pub(super) async fn start_nodes<R: Runtime>(
    rt: &R,
    secrets: &[&str],
    router: impl Fn(&[String]) -> Router,
) -> (Vec<String>, Vec<Manager<R>>) {
    let mut listeners = Vec::new();
    for _ in secrets {
        listeners.push(rt.bind("127.0.0.1:0").await.expect("bind loopback"));
    }
    let names: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").to_string())
        .collect();
    let mut nodes = Vec::new();
    for ((listener, secret), name) in listeners.into_iter().zip(secrets).zip(&names) {
        let node = ManagerBuilder::new(rt.clone(), name.clone())
            .peers(names.clone())
            .secret(secret)
            .timeouts(test_timeouts())
            .backoff(test_backoff())
            .listener(listener)
            .router(router(&names))
            .start()
            .await
            .expect("start node");
        nodes.push(node);
    }
    (names, nodes)
}
