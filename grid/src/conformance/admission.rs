//! Admission after the handshake: strangers, wrong-side dialers and
//! replacement churn are refused with their own close codes, and the cluster's
//! real connections are unaffected. Part of the `suite` list.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::{join, join_all, select, Either};
use grid_proto::{dials, CloseReason, Config, Connection as Proto, Refusal, Role};

use crate::conformance::cluster::{handlers::ECHO, Cluster};
use crate::conformance::TestRuntime;
use crate::driver::{Driver, Exit, Host};
use crate::manager::DEFAULT_REPLACE_INTERVAL;
use crate::runtime::sleep_until;
use crate::shared::Shared;

/// Dials `addr` with a bare protocol connection that calls itself `name`, and
/// returns why the connection ended.
async fn raw_dial<R: TestRuntime>(rt: &R, addr: &str, name: &str) -> CloseReason {
    struct NoHandlers;
    impl Host for NoHandlers {
        fn on_dispatched(
            &self,
            _shared: &std::sync::Arc<Shared>,
            _dispatched: &mut crate::shared::Dispatched,
        ) {
        }
    }
    let io = rt.connect(addr).await.expect("connect");
    let now = Instant::now();
    let mut config = Config::new(
        name,
        1,
        b"conformance secret".to_vec(),
        Role::Dialer,
        [7; 32],
    );
    config.timeouts = super::cluster::test_timeouts();
    let shared = Shared::new(Proto::new(config, now), io);
    let mut driver = Driver::new(shared, rt.timer(now));
    loop {
        match std::future::poll_fn(|cx| driver.poll_drive(cx, &NoHandlers)).await {
            Exit::Connected(_) => continue,
            Exit::Closed(reason) => return reason,
        }
    }
}

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

/// Connections that claim a connected node's name, opened every 50 ms, replace
/// its connection at most once per replace interval: the legitimate node's
/// calls fail at most once per interval, and the churners are refused with
/// `ReplacingTooOften`.
pub async fn replacement_churn_is_rate_limited<R: TestRuntime>(rt: R) {
    const CHURN: Duration = Duration::from_millis(2500);
    const EVERY: Duration = Duration::from_millis(50);
    const HOLD: Duration = Duration::from_millis(400);
    let cluster = Cluster::start(&rt, 2).await;
    // `claimed` dials `target`, so `target` admits a dialer with its name.
    let (claimed, target) = if dials(&cluster.names[0], &cluster.names[1]) {
        (0, 1)
    } else {
        (1, 0)
    };
    let start = Instant::now();
    let churning = AtomicBool::new(true);
    let failures = AtomicUsize::new(0);
    let successes = AtomicUsize::new(0);
    let churners = (0..CHURN.as_millis() / EVERY.as_millis()).map(|i| {
        let rt = &rt;
        let addr = cluster.names[target].clone();
        let name = cluster.names[claimed].clone();
        async move {
            sleep_until(rt, start + EVERY * i as u32).await;
            let dial = std::pin::pin!(raw_dial(rt, &addr, &name));
            let hold = std::pin::pin!(sleep_until(rt, Instant::now() + HOLD));
            match select(dial, hold).await {
                Either::Left((reason, _)) => Some(reason),
                Either::Right(_) => None,
            }
        }
    });
    let churn = async {
        let ends = join_all(churners).await;
        churning.store(false, Ordering::Relaxed);
        ends
    };
    let legitimate = async {
        let peer = cluster.conn(claimed, target);
        while churning.load(Ordering::Relaxed) {
            match peer.request(ECHO, "legit").await {
                Ok(_) => successes.fetch_add(1, Ordering::Relaxed),
                Err(_) => {
                    // A refused dialer never counts itself connected, so
                    // this waits out the interval instead of failing again.
                    let _ = cluster
                        .node(claimed)
                        .wait_connected(&cluster.names[target], Duration::from_secs(5))
                        .await;
                    failures.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
    };
    let (ends, ()) = join(churn, legitimate).await;
    let elapsed = start.elapsed();
    let failures = failures.into_inner();
    let allowed =
        (elapsed.as_secs_f64() / DEFAULT_REPLACE_INTERVAL.as_secs_f64()).ceil() as usize + 1;
    assert!(
        failures <= allowed,
        "{failures} failed calls in {elapsed:?}, more than one per {DEFAULT_REPLACE_INTERVAL:?}"
    );
    assert!(successes.into_inner() > 0);
    let too_often = ends
        .iter()
        .filter(|end| {
            matches!(
                end,
                Some(CloseReason::Refused(Refusal::ReplacingTooOften, _))
            )
        })
        .count();
    assert!(too_often > 0, "no churner was refused: {ends:?}");
    // Once the churn stops, the legitimate node is connected again.
    cluster
        .node(claimed)
        .wait_connected(&cluster.names[target], Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        cluster
            .conn(claimed, target)
            .request(ECHO, "after")
            .await
            .unwrap(),
        "after"
    );
    cluster.shutdown().await;
}
