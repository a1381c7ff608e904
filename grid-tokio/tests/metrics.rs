//! What a node reports through the `metrics` facade, read back from a
//! recorder installed for this test binary alone, and the serialized form of
//! its stats.

use std::collections::HashMap;
use std::time::Duration;

use grid_tokio::{Access, Bytes, Ctx, Error, HandlerError, Manager, Router};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;

const ECHO: u16 = 1;
const FAIL: u16 = 2;
const SLOW: u16 = 3;
const LOCKED: u16 = 4;
const NUMBERS: u16 = 5;

/// What the recorder saw, with each metric named `name{label=value,...}`
/// (labels in the order grid gives them).
#[derive(Default)]
struct Seen {
    counters: HashMap<String, u64>,
    gauges: HashMap<String, f64>,
    histograms: HashMap<String, Vec<f64>>,
}

impl Seen {
    /// Adds what happened since the last snapshot (the recorder resets
    /// counters and histograms when read).
    fn add(&mut self, snapshotter: &Snapshotter) {
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let (kind, key) = key.into_parts();
            let labels: Vec<String> = key
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            match (kind, value) {
                // grid sets the peers' counters to their totals at each
                // sample; the calls' counters it increments.
                (MetricKind::Counter, DebugValue::Counter(n)) if name.starts_with("grid_peer_") => {
                    if !name.starts_with("grid_peer_failures_total") {
                        self.counters.insert(name, n);
                    } else {
                        *self.counters.entry(name).or_default() += n
                    }
                }
                (MetricKind::Counter, DebugValue::Counter(n)) => {
                    *self.counters.entry(name).or_default() += n
                }
                (MetricKind::Gauge, DebugValue::Gauge(v)) => {
                    self.gauges.insert(name, v.into_inner());
                }
                (MetricKind::Histogram, DebugValue::Histogram(values)) => self
                    .histograms
                    .entry(name)
                    .or_default()
                    .extend(values.into_iter().map(|v| v.into_inner())),
                _ => {}
            }
        }
    }

    fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

async fn node(name: &str, peers: &[String]) -> Manager {
    let router = Router::new()
        .single(ECHO, |_ctx: Ctx, request: Bytes| async move { Ok(request) })
        .single(FAIL, |_ctx: Ctx, _request: Bytes| async move {
            Err(HandlerError::from("no such disk"))
        })
        .single(SLOW, |_ctx: Ctx, _request: Bytes| async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(Bytes::new())
        })
        .single(LOCKED, |_ctx: Ctx, _request: Bytes| async move {
            Ok(Bytes::new())
        })
        .restrict(LOCKED, Access::nobody())
        .stream(NUMBERS, 4096, |_ctx, _payload, _rx, mut tx| async move {
            for n in 0..3u8 {
                tx.send(Bytes::from(vec![n])).await.ok();
            }
            Ok(())
        });
    Manager::builder(name)
        .peers(peers.to_vec())
        .secret("metrics test cluster secret")
        .router(router)
        .metrics_interval(Duration::from_millis(50))
        .start()
        .await
        .expect("start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_errors_latency_and_connections_are_reported() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("one recorder");
    let mut seen = Seen::default();

    let names = grid::conformance::free_loopback_addresses(2);
    let (a, b) = (node(&names[0], &names).await, node(&names[1], &names).await);
    a.wait_all_connected(Duration::from_secs(5)).await.unwrap();
    let to_b = a.peer(&names[1]).unwrap();

    for _ in 0..3 {
        to_b.request(ECHO, "hello").await.unwrap();
    }
    assert!(matches!(
        to_b.request(FAIL, "").await,
        Err(Error::Remote(_))
    ));
    assert_eq!(
        to_b.request(SLOW, "")
            .timeout(Duration::from_millis(50))
            .await,
        Err(Error::DeadlineExceeded)
    );
    assert!(matches!(
        to_b.request(LOCKED, "").await,
        Err(Error::PermissionDenied(_))
    ));
    // A hostile or confused caller naming many handlers B does not serve
    // adds one label value on B, not one per id.
    for handler in 100..140 {
        assert_eq!(to_b.request(handler, "").await, Err(Error::UnknownHandler));
    }
    let mut stream = to_b.stream(NUMBERS, "").open().await.unwrap();
    let mut received = 0;
    while let Some(message) = stream.receiver.recv().await {
        message.unwrap();
        received += 1;
    }
    assert_eq!(received, 3);
    // A caller that gives up: its future is dropped before the answer.
    let abandoned = tokio::time::timeout(Duration::from_millis(50), to_b.request(SLOW, "")).await;
    assert!(abandoned.is_err());
    // B's handler sees the cancel and ends.
    tokio::time::sleep(Duration::from_millis(200)).await;
    seen.add(&snapshotter);

    let out = |handler: &str| format!("side=outgoing,kind=request,handler={handler}");
    let inc = |handler: &str| format!("side=incoming,kind=request,handler={handler}");
    assert_eq!(
        seen.counter(&format!("grid_calls_total{{{}}}", out("1"))),
        3
    );
    assert_eq!(
        seen.counter(&format!("grid_calls_total{{{}}}", inc("1"))),
        3
    );
    assert_eq!(
        seen.histograms[&format!("grid_call_duration_seconds{{{}}}", out("1"))].len(),
        3
    );
    for (side, handler, error) in [
        (out("2"), "", "remote"),
        (inc("2"), "", "remote"),
        (out("3"), "", "deadline_exceeded"),
        (out("3"), "", "abandoned"),
        (out("4"), "", "permission_denied"),
        (inc("4"), "", "permission_denied"),
    ] {
        let name = format!("grid_call_errors_total{{{side}{handler},error={error}}}");
        assert!(
            seen.counter(&name) >= 1,
            "{name} not counted: {:#?}",
            seen.counters
        );
    }
    // The deadline passed on B too: its handler was cancelled, twice (the
    // timed-out call and the abandoned one).
    assert_eq!(
        seen.counter(&format!(
            "grid_call_errors_total{{{},error=cancelled}}",
            inc("3")
        )),
        2,
        "{:#?}",
        seen.counters
    );
    assert_eq!(
        seen.counter(&format!(
            "grid_call_errors_total{{{},error=unknown_handler}}",
            inc("unknown")
        )),
        40
    );
    let mut handlers: Vec<&str> = seen
        .counters
        .keys()
        .filter(|name| name.contains("side=incoming"))
        .filter_map(|name| name.split("handler=").nth(1))
        .map(|rest| rest.split([',', '}']).next().unwrap())
        .collect();
    handlers.sort();
    handlers.dedup();
    assert_eq!(handlers, ["1", "2", "3", "4", "5", "unknown"]);
    assert_eq!(
        seen.counter("grid_calls_total{side=outgoing,kind=stream,handler=5}"),
        1
    );
    assert_eq!(
        seen.counter("grid_calls_total{side=incoming,kind=stream,handler=5}"),
        1
    );

    // The peers' connection figures, sampled every 50 ms.
    tokio::time::sleep(Duration::from_millis(150)).await;
    seen.add(&snapshotter);
    let peer_b = format!("peer={}", names[1]);
    assert_eq!(
        seen.gauges[&format!("grid_peer_connected{{{peer_b}}}")],
        1.0
    );
    let sent = seen.counter(&format!("grid_peer_bytes_sent_total{{{peer_b}}}"));
    assert!(sent > 0, "{:#?}", seen.counters);
    assert_eq!(
        seen.counter(&format!("grid_peer_connects_total{{{peer_b}}}")),
        1
    );
    assert!(seen.gauges.contains_key(&format!(
        "grid_peer_calls_in_flight{{{peer_b},direction=outgoing}}"
    )));

    // B goes away: A sees the disconnect, counts it, and keeps the bytes it
    // sent on the old connection in its totals.
    b.shutdown(Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    seen.add(&snapshotter);
    assert_eq!(
        seen.gauges[&format!("grid_peer_connected{{{peer_b}}}")],
        0.0
    );
    assert!(
        seen.counter(&format!(
            "grid_peer_failures_total{{{peer_b},kind=disconnected}}"
        )) >= 1,
        "{:#?}",
        seen.counters
    );
    let stats = to_b.stats();
    assert!(stats.totals.bytes_sent >= sent && stats.protocol.bytes_sent == 0);
    assert!(stats.dial_attempts + stats.connects >= 1);

    // The stats serialize, each instant as an age.
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["state"], "disconnected");
    assert_eq!(json["totals"]["bytes_sent"], stats.totals.bytes_sent);
    // Disconnected, then redialed in vain.
    let kind = json["last_failure"]["kind"].as_str().unwrap();
    assert!(kind == "disconnected" || kind == "dial", "{json:#}");
    assert!(json["last_failure"]["since_secs"].as_f64().unwrap() >= 0.0);
    assert!(json["connected_for_secs"].is_null());
    assert!(json["protocol"]["rtt_secs"].is_null());
    a.shutdown(Duration::from_secs(1)).await;
}
