//! The `metrics` feature on async-std: calls counted on both sides with
//! their latency, the peers' connection figures published, and the stats'
//! serialized form.

use std::time::Duration;

use grid_async_std::{Bytes, Ctx, Error, Manager, Router};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

async fn node(name: &str, peers: &[String]) -> Manager {
    Manager::builder(name)
        .peers(peers.to_vec())
        .secret("metrics test cluster secret")
        .router(Router::new().single(1, |_ctx: Ctx, request: Bytes| async move { Ok(request) }))
        .metrics_interval(Duration::from_millis(50))
        .start()
        .await
        .expect("start")
}

#[async_std::test]
async fn calls_and_connections_are_reported() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("one recorder");
    let names = grid::conformance::free_loopback_addresses(2);
    let a = node(&names[0], &names).await;
    let b = node(&names[1], &names).await;
    a.wait_all_connected(Duration::from_secs(5)).await.unwrap();
    b.wait_all_connected(Duration::from_secs(5)).await.unwrap();
    let to_b = a.peer(&names[1]).unwrap();
    for _ in 0..4 {
        to_b.request(1, "hi").await.unwrap();
    }
    assert_eq!(to_b.request(9, "").await, Err(Error::UnknownHandler));
    async_std::task::sleep(Duration::from_millis(200)).await;

    let mut found = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (_, key) = key.into_parts();
        let labels: Vec<String> = key
            .labels()
            .map(|label| format!("{}={}", label.key(), label.value()))
            .collect();
        found.push((format!("{}{{{}}}", key.name(), labels.join(",")), value));
    }
    let value = |name: &str| {
        found
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("{name} missing: {found:#?}"))
    };
    assert_eq!(
        value("grid_calls_total{side=outgoing,kind=request,handler=1}"),
        &DebugValue::Counter(4)
    );
    assert_eq!(
        value("grid_calls_total{side=incoming,kind=request,handler=1}"),
        &DebugValue::Counter(4)
    );
    match value("grid_call_duration_seconds{side=outgoing,kind=request,handler=1}") {
        DebugValue::Histogram(values) => assert_eq!(values.len(), 4),
        other => panic!("not a histogram: {other:?}"),
    }
    assert_eq!(
        value("grid_call_errors_total{side=incoming,kind=request,handler=unknown,error=unknown_handler}"),
        &DebugValue::Counter(1)
    );
    assert_eq!(
        value(&format!("grid_peer_connected{{peer={}}}", names[1])),
        &DebugValue::Gauge(1.0.into())
    );

    let json = serde_json::to_value(a.stats()).unwrap();
    assert_eq!(json[0]["peer"], names[1]);
    assert_eq!(json[0]["state"], "connected");
    assert!(json[0]["connected_for_secs"].as_f64().unwrap() >= 0.0);
    assert!(json[0]["totals"]["bytes_sent"].as_u64().unwrap() > 0);
    assert!(json[0]["protocol"]["incoming_calls"].is_u64());
    a.shutdown(Duration::from_secs(1)).await;
    b.shutdown(Duration::from_secs(1)).await;
}
