//! Admission after the handshake: strangers and wrong-side dialers are
//! refused with their own close codes, and the cluster's real connections are
//! unaffected. (Replacement churn is an attack of the hostile suite.)

use grid_proto::{dials, CloseReason, Refusal};

use crate::conformance::bare::raw_dial;
use crate::conformance::cluster::{handlers::ECHO, Cluster};
use crate::conformance::TestRuntime;

/// A node that is not in the peer list, or that dials from the wrong side, is
/// refused after the handshake with a reason, and the cluster is unaffected.
pub async fn strangers_and_wrong_side_dialers_are_refused<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    match raw_dial(&rt, &cluster.names[0], "127.0.0.1:9").await {
        CloseReason::Refused(Refusal::NotAPeer, text) => {
            assert!(text.contains("is not a peer"), "{text}")
        }
        other => panic!("stranger: {other:?}"),
    }
    let (target, claimed) = if dials(&cluster.names[0], &cluster.names[1]) {
        (0, 1)
    } else {
        (1, 0)
    };
    match raw_dial(&rt, &cluster.names[target], &cluster.names[claimed]).await {
        CloseReason::Refused(Refusal::WrongSide, text) => {
            assert!(text.contains("wrong side"), "{text}")
        }
        other => panic!("wrong side: {other:?}"),
    }
    // The real connection between the two was not disturbed.
    assert_eq!(
        cluster.conn(0, 1).request(ECHO, "fine").await.unwrap(),
        "fine"
    );
    assert_eq!(cluster.conn(0, 1).stats().reconnects, 0);
    cluster.shutdown().await;
}
