//! What the operator sees in the log when a node has the wrong cluster
//! secret, when a node drains, and when a handler panics: captured with a
//! small subscriber installed for this test binary alone.
//!
//! `cargo test -p grid-tokio --test failure_log -- --nocapture` prints the
//! lines at INFO and above.

use std::fmt::{Debug, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use grid_tokio::{Bytes, Ctx, Error, Manager, Router};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Keeps every event at INFO and above as `LEVEL message field=value ...`.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl Capture {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The lines that name one of `nodes`.
    fn lines_about(&self, nodes: &[String]) -> Vec<String> {
        let mut lines = self.lines();
        lines.retain(|line| nodes.iter().any(|node| line.contains(node.as_str())));
        lines
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::INFO
    }
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let line = format!("{}{}", event.metadata().level(), fields.0);
        println!("{line}");
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}
}

struct Fields(String);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.0, " {value:?}");
            }
            name => {
                let _ = write!(self.0, " {name}={value:?}");
            }
        }
    }
}

async fn node(name: &str, peers: &[String], secret: &str) -> Manager {
    let router = Router::new()
        .single(1, |_ctx: Ctx, request: Bytes| async move { Ok(request) })
        .single(2, |_ctx: Ctx, _request: Bytes| async move {
            if true {
                panic!("secret handler state");
            }
            Ok(Bytes::new())
        });
    Manager::builder(name)
        .peers(peers.to_vec())
        .secret(secret)
        .router(router)
        .start()
        .await
        .expect("start")
}

/// The subscriber of this test binary, shared by its tests: each reads the
/// lines that name its own nodes.
fn capture() -> Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            tracing::subscriber::set_global_default(capture.clone()).expect("one subscriber");
            capture
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_sees_wrong_secret_drain_and_panic_at_info_and_above() {
    let capture = capture();

    let names = grid::conformance::free_loopback_addresses(2);
    let a = node(&names[0], &names, "the cluster's secret 0123").await;
    let b = node(&names[1], &names, "a different secret 45678").await;
    // Several dial attempts (backoff from 100 ms) fail in this time.
    let waited = a
        .wait_connected(&names[1], Duration::from_millis(1500))
        .await;
    let error = a
        .peer(&names[1])
        .unwrap()
        .request(1, "x")
        .await
        .unwrap_err();
    println!("wait_connected on {}: {}", names[0], waited.unwrap_err());
    println!("a call from {}: {error}", names[0]);
    let waited = b.wait_connected(&names[0], Duration::from_millis(10)).await;
    let error2 = b
        .peer(&names[0])
        .unwrap()
        .request(1, "x")
        .await
        .unwrap_err();
    println!("wait_connected on {}: {}", names[1], waited.unwrap_err());
    println!("a call from {}: {error2}", names[1]);

    let lines = capture.lines_about(&names);
    let warns: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("WARN") && line.contains("secret"))
        .collect();
    // One side's secret was refused, the other saw a proof it could not
    // verify: each says so once, not once per attempt.
    assert!(
        warns.iter().any(|l| l.contains("secret was refused")),
        "{lines:#?}"
    );
    assert!(
        warns
            .iter()
            .any(|l| l.contains("does not know the cluster secret")),
        "{lines:#?}"
    );
    assert_eq!(
        warns.len(),
        2,
        "rate limited to one per peer and kind: {lines:#?}"
    );
    assert!(
        matches!(error, Error::Unauthenticated(_)) || matches!(error2, Error::Unauthenticated(_)),
        "{error:?} / {error2:?}"
    );

    // A connected pair: a panic is logged with handler and peer, the caller
    // gets no panic text; a drain is logged at start and end.
    let c = node(&names[1], &names, "the cluster's secret 0123");
    b.shutdown(Duration::ZERO).await;
    let c = c.await;
    a.wait_connected(&names[1], Duration::from_secs(10))
        .await
        .unwrap();
    let error = a.peer(&names[1]).unwrap().request(2, "").await.unwrap_err();
    assert!(
        !error.to_string().contains("secret handler state"),
        "{error}"
    );
    c.shutdown(Duration::from_secs(1)).await;
    let lines = capture.lines_about(&names);
    assert!(
        lines.iter().any(|l| l.starts_with("ERROR")
            && l.contains("handler panicked")
            && l.contains("handler=2")
            && l.contains("secret handler state")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("INFO") && l.contains("draining")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("INFO") && l.contains("drained")),
        "{lines:#?}"
    );
    a.shutdown(Duration::ZERO).await;
}

/// A node whose certificate another CA issued (it trusts the cluster's CA,
/// as a node handed the wrong certificate would), in both roles: what each
/// side logs at INFO and above, and what a caller on the correct node gets.
#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_sees_a_certificate_from_another_ca_at_info_and_above() {
    for wrong_node_dials in [false, true] {
        certificate_from_another_ca(wrong_node_dials).await;
    }
}

#[cfg(feature = "tls")]
async fn certificate_from_another_ca(wrong_node_dials: bool) {
    use grid_tokio::tls::{DemoCa, TlsConfig};
    use grid_tokio::Tokio;

    let capture = capture();
    let ca = DemoCa::new("cluster CA").unwrap();
    let other_ca = DemoCa::new("another CA").unwrap();
    let mut listeners = Vec::new();
    let mut names = Vec::new();
    for _ in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        names.push(listener.local_addr().unwrap().to_string());
        listeners.push(listener);
    }
    // names[0] is the correct node, names[1] the one with the wrong
    // certificate; which of them dials is the dial rule's choice.
    if grid_proto::dials(&names[1], &names[0]) != wrong_node_dials {
        names.swap(0, 1);
        listeners.swap(0, 1);
    }
    println!(
        "-- the node with the wrong certificate {}",
        if wrong_node_dials {
            "dials"
        } else {
            "is dialed"
        }
    );
    let good = ca.node_config(&[&names[0]]).unwrap();
    let wrong = other_ca.issue(&[&names[1]]).unwrap();
    let wrong = TlsConfig::new(ca.ca_pem(), wrong.cert_pem, wrong.key_pem).unwrap();
    let mut nodes = Vec::new();
    for (listener, (name, tls)) in listeners.into_iter().zip(names.iter().zip([good, wrong])) {
        let node = Manager::builder(name.as_str())
            .peers(names.clone())
            .secret("the cluster's secret 0123")
            .listener(Tokio::tls_listener(listener, &tls))
            .connector(Tokio::tls_connector(&tls))
            .router(Router::new().single(1, |_ctx: Ctx, request: Bytes| async move { Ok(request) }))
            .start()
            .await
            .unwrap();
        nodes.push(node);
    }
    let waited = nodes[0]
        .wait_connected(&names[1], Duration::from_millis(1500))
        .await
        .unwrap_err();
    let error = nodes[0]
        .peer(&names[1])
        .unwrap()
        .request(1, "x")
        .await
        .unwrap_err();
    println!("wait_connected on the correct node: {waited}");
    println!(
        "a call from the correct node: {error} (retryable: {})",
        error.is_retryable()
    );
    let lines = capture.lines_about(&names);
    let warns: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("WARN") && line.contains("cluster's CA"))
        .collect();
    // Each side says so once, not once per redial: the acceptor that
    // rejects the certificate, and the dialer whose handshake failed.
    assert_eq!(warns.len(), 2, "{lines:#?}");
    assert!(
        warns
            .iter()
            .all(|line| line.contains("UnknownIssuer") || line.contains("UnknownCA")),
        "{lines:#?}"
    );
    // A caller gets the retryable `Disconnected`: a certificate is fixed
    // by the operator, not by the caller, and the node may come back with
    // the right one.
    assert_eq!(error, Error::Disconnected);
    if !wrong_node_dials {
        // The correct node dialed and rejected the certificate itself: its
        // wait names the reason.
        assert!(waited.to_string().contains("cluster's CA"), "{waited}");
    }
    for node in nodes {
        node.shutdown(Duration::ZERO).await;
    }
}
