//! Mutual TLS with node identities on tokio: who is admitted, who is refused
//! and why, what a handler sees, and that a stalled TLS client holds up
//! nobody.
#![cfg(feature = "tls")]

use std::time::{Duration, Instant};

use grid_tokio::tls::{DemoCa, TlsConfig};
use grid_tokio::{
    AcceptOutcome, Bytes, CloseReason, Ctx, Error, Manager, Refusal, Router, Timeouts, Tokio,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const WHO: u16 = 1;
const SECRET: &str = "a shared cluster secret";

/// Answers with the caller's claimed name and the names its certificate carries.
fn who_router() -> Router {
    Router::new().single(WHO, |ctx: Ctx, _request: Bytes| async move {
        let names = ctx
            .peer_identity()
            .map(|identity| identity.nodes().join(","))
            .unwrap_or_else(|| "none".to_string());
        Ok(Bytes::from(format!("{} {names}", ctx.peer())))
    })
}

async fn tls_node(name: &str, peers: &[&str], listener: TcpListener, tls: &TlsConfig) -> Manager {
    Manager::builder(name)
        .peers(peers.iter().copied())
        .secret(SECRET)
        .listener(Tokio::tls_listener(listener, tls))
        .connector(Tokio::tls_connector(tls))
        .router(who_router())
        .start()
        .await
        .expect("start node")
}

async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let name = listener.local_addr().unwrap().to_string();
    (listener, name)
}

/// Two names of which `dialer` dials `acceptor` by the dial rule.
fn dialer_and_acceptor(a: String, b: String) -> (String, String) {
    if grid_proto::dials(&a, &b) {
        (a, b)
    } else {
        (b, a)
    }
}

#[tokio::test]
async fn nodes_with_certificates_from_the_cluster_ca_connect_and_see_each_others_identity() {
    let ca = DemoCa::new("cluster CA").unwrap();
    let (la, a) = bind().await;
    let (lb, b) = bind().await;
    let node_a = tls_node(&a, &[&b], la, &ca.node_config(&[&a]).unwrap()).await;
    let node_b = tls_node(&b, &[&a], lb, &ca.node_config(&[&b]).unwrap()).await;
    node_a
        .wait_all_connected(Duration::from_secs(5))
        .await
        .unwrap();
    node_b
        .wait_all_connected(Duration::from_secs(5))
        .await
        .unwrap();
    // Each side's handler sees the other's verified names, whichever side dialed.
    let reply = node_a.peer(&b).unwrap().request(WHO, "").await.unwrap();
    assert_eq!(reply, format!("{a} {a}"));
    let reply = node_b.peer(&a).unwrap().request(WHO, "").await.unwrap();
    assert_eq!(reply, format!("{b} {b}"));
    node_a.shutdown(Duration::ZERO).await;
    node_b.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_on_both_sides() {
    let ca = DemoCa::new("cluster CA").unwrap();
    let rogue_ca = DemoCa::new("another CA").unwrap();
    let (la, a) = bind().await;
    let node_a = tls_node(&a, &["127.0.0.1:1"], la, &ca.node_config(&[&a]).unwrap()).await;
    // A node that trusts the cluster CA but whose own certificate another
    // CA issued: the acceptor rejects it during the TLS handshake.
    let rogue = rogue_ca.issue(&["127.0.0.1:1"]).unwrap();
    let rogue = TlsConfig::new(ca.ca_pem(), rogue.cert_pem, rogue.key_pem).unwrap();
    let error = dial_and_read(&rogue, &a).await;
    assert_eq!(
        error.kind(),
        std::io::ErrorKind::PermissionDenied,
        "{error}"
    );
    assert!(error.to_string().contains("cluster's CA"), "{error}");
    // A dialer that trusts only the other CA rejects the node's certificate.
    let outsider = rogue_ca.node_config(&["127.0.0.1:1"]).unwrap();
    let error = match (Tokio::tls_connector(&outsider))(&a).await {
        Ok(_) => panic!("a certificate from another CA was accepted"),
        Err(error) => error,
    };
    assert_eq!(
        error.kind(),
        std::io::ErrorKind::PermissionDenied,
        "{error}"
    );
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    node_a.shutdown(Duration::ZERO).await;
}

/// Dials `addr` over TLS with `config` and reads until the connection fails:
/// with TLS 1.3 the server rejects a client certificate after the client
/// has finished its side of the handshake, so the rejection arrives as the
/// first read's error.
async fn dial_and_read(config: &TlsConfig, addr: &str) -> std::io::Error {
    use futures_util::AsyncReadExt as _;
    let mut dialed = match (Tokio::tls_connector(config))(addr).await {
        Ok(dialed) => dialed,
        Err(error) => return error,
    };
    let mut buf = [0u8; 64];
    match dialed.io.read(&mut buf).await {
        Ok(n) => panic!("read {n} bytes from a node that should have refused the certificate"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn a_node_whose_certificate_names_another_node_is_refused_with_identity_mismatch() {
    let ca = DemoCa::new("cluster CA").unwrap();
    let (dialer, acceptor) =
        dialer_and_acceptor("node-1:7000".to_string(), "node-2:7000".to_string());
    let (listener, addr) = bind().await;
    let acceptor_tls = ca.node_config(&[&acceptor]).unwrap();
    let acceptor_node = Manager::builder(&acceptor)
        .peers([&dialer])
        .secret(SECRET)
        .no_listener()
        .start()
        .await
        .unwrap();
    // The dialer knows the secret, but its certificate names a third node.
    let impostor = Manager::builder(&dialer)
        .peers([&acceptor])
        .peer_address(&acceptor, &addr)
        .secret(SECRET)
        .no_listener()
        .connector(Tokio::tls_connector(
            &ca.node_config(&["node-3:7000"]).unwrap(),
        ))
        .start()
        .await
        .unwrap();
    let (stream, remote) = listener.accept().await.unwrap();
    let accepted = Tokio::tls_accept(stream, remote, &acceptor_tls)
        .await
        .unwrap();
    assert_eq!(accepted.identity.as_ref().unwrap().nodes(), ["node-3:7000"]);
    let outcome = acceptor_node
        .accept(accepted.io, accepted.addr, accepted.identity)
        .await;
    match outcome {
        AcceptOutcome::Refused {
            peer,
            refusal,
            reason,
        } => {
            assert_eq!(peer, dialer);
            assert_eq!(refusal, Refusal::IdentityMismatch);
            assert!(
                reason.contains(&dialer) && reason.contains("node-3:7000"),
                "{reason}"
            );
        }
        other => panic!("expected an identity mismatch, got {other:?}"),
    }
    assert!(!acceptor_node.peer(&dialer).unwrap().is_connected());
    assert_eq!(
        impostor.peer(&acceptor).unwrap().request(WHO, "").await,
        Err(Error::Disconnected)
    );
    impostor.shutdown(Duration::ZERO).await;
    acceptor_node.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_dialer_does_not_run_its_handshake_with_a_node_that_is_not_the_one_dialed() {
    let ca = DemoCa::new("cluster CA").unwrap();
    let (dialer, acceptor) =
        dialer_and_acceptor("node-1:7000".to_string(), "node-2:7000".to_string());
    let (listener, addr) = bind().await;
    // The node at the dialed address holds a valid certificate, for another node.
    let wrong_tls = ca.node_config(&["node-3:7000"]).unwrap();
    let wrong_node = Manager::builder(&acceptor)
        .peers([&dialer])
        .secret(SECRET)
        .no_listener()
        .start()
        .await
        .unwrap();
    let dialing = Manager::builder(&dialer)
        .peers([&acceptor])
        .peer_address(&acceptor, &addr)
        .secret(SECRET)
        .no_listener()
        .connector(Tokio::tls_connector(&ca.node_config(&[&dialer]).unwrap()))
        .start()
        .await
        .unwrap();
    let (stream, remote) = listener.accept().await.unwrap();
    let accepted = Tokio::tls_accept(stream, remote, &wrong_tls).await.unwrap();
    let outcome = wrong_node
        .accept(accepted.io, accepted.addr, accepted.identity)
        .await;
    // The dialer hung up without a Hello: no proof of the secret reached the node.
    assert!(
        matches!(outcome, AcceptOutcome::Failed(CloseReason::Transport(_))),
        "{outcome:?}"
    );
    assert!(!dialing.peer(&acceptor).unwrap().is_connected());
    dialing.shutdown(Duration::ZERO).await;
    wrong_node.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_silent_client_delays_no_other_connection_and_is_dropped_at_the_handshake_timeout() {
    let ca = DemoCa::new("cluster CA").unwrap();
    let (la, a) = bind().await;
    let (lb, b) = bind().await;
    let (acceptor, dialer) = if grid_proto::dials(&a, &b) {
        ((lb, b), (la, a))
    } else {
        ((la, a), (lb, b))
    };
    let handshake = Duration::from_secs(3);
    let timeouts = Timeouts {
        handshake,
        ..Timeouts::default()
    };
    let start = |(listener, name): (TcpListener, String), peer: String| {
        let tls = ca.node_config(&[&name]).unwrap();
        let timeouts = timeouts.clone();
        async move {
            Manager::builder(&name)
                .peers([peer])
                .secret(SECRET)
                .timeouts(timeouts)
                .listener(Tokio::tls_listener(listener, &tls))
                .connector(Tokio::tls_connector(&tls))
                .start()
                .await
                .unwrap()
        }
    };
    let acceptor_name = acceptor.1.clone();
    let dialer_name = dialer.1.clone();
    let acceptor_node = start(acceptor, dialer_name.clone()).await;
    // Connects and sends nothing, not even a TLS ClientHello.
    let mut silent = tokio::net::TcpStream::connect(&acceptor_name)
        .await
        .unwrap();
    let began = Instant::now();
    let dialer_node = start(dialer, acceptor_name.clone()).await;
    dialer_node
        .wait_connected(&acceptor_name, Duration::from_secs(2))
        .await
        .expect("the dialer was held up by the silent client");
    assert!(began.elapsed() < handshake);
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(handshake * 2, silent.read(&mut buf))
        .await
        .expect("the silent client outlived the handshake timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(began.elapsed() >= handshake - Duration::from_millis(200));
    dialer_node.shutdown(Duration::ZERO).await;
    acceptor_node.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_handler_restricted_to_certified_nodes_admits_only_callers_whose_certificate_names_them()
{
    let ca = DemoCa::new("cluster CA").unwrap();
    let (la, a) = bind().await;
    let (lb, b) = bind().await;
    let (lc, c) = bind().await;
    let node_a = tls_node(&a, &[&b, &c], la, &ca.node_config(&[&a]).unwrap()).await;
    let node_b = tls_node(&b, &[&a, &c], lb, &ca.node_config(&[&b]).unwrap()).await;
    let tls_c = ca.node_config(&[&c]).unwrap();
    let node_c = Manager::builder(&c)
        .peers([a.clone(), b.clone()])
        .secret(SECRET)
        .listener(Tokio::tls_listener(lc, &tls_c))
        .connector(Tokio::tls_connector(&tls_c))
        .router(who_router().restrict(WHO, grid_tokio::Access::certified([a.clone()])))
        .start()
        .await
        .expect("start node");
    for node in [&node_a, &node_b, &node_c] {
        node.wait_all_connected(Duration::from_secs(5))
            .await
            .unwrap();
    }
    let reply = node_a.peer(&c).unwrap().request(WHO, "").await.unwrap();
    assert_eq!(reply, format!("{a} {a}"));
    match node_b.peer(&c).unwrap().request(WHO, "").await {
        Err(error @ Error::PermissionDenied(_)) => assert!(!error.is_retryable(), "{error}"),
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    for node in [node_a, node_b, node_c] {
        node.shutdown(Duration::ZERO).await;
    }
}
