//! Mutual TLS with node identities on async-std.
#![cfg(feature = "tls")]

use std::time::Duration;

use async_std::net::TcpListener;
use grid_async_std::tls::{DemoCa, TlsConfig};
use grid_async_std::{AsyncStd, Bytes, Ctx, Manager, Router};

const WHO: u16 = 1;

async fn node(listener: TcpListener, peer: &str, tls: &TlsConfig) -> Manager {
    let name = listener.local_addr().unwrap().to_string();
    Manager::builder(name)
        .peers([peer])
        .secret("a shared cluster secret")
        .listener(AsyncStd::tls_listener(listener, tls))
        .connector(AsyncStd::tls_connector(tls))
        .router(
            Router::new().single(WHO, |ctx: Ctx, _request: Bytes| async move {
                let identity = ctx.peer_identity().expect("a TLS peer has an identity");
                Ok(Bytes::from(identity.nodes().join(",")))
            }),
        )
        .start()
        .await
        .unwrap()
}

#[async_std::test]
async fn nodes_connect_over_tls_and_see_each_others_certificate_names() {
    let ca = DemoCa::new("cluster CA").unwrap();
    let la = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = la.local_addr().unwrap().to_string();
    let b = lb.local_addr().unwrap().to_string();
    let node_a = node(la, &b, &ca.node_config(&[&a]).unwrap()).await;
    let node_b = node(lb, &a, &ca.node_config(&[&b]).unwrap()).await;
    node_a
        .wait_all_connected(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(node_a.peer(&b).unwrap().request(WHO, "").await.unwrap(), a);
    assert_eq!(node_b.peer(&a).unwrap().request(WHO, "").await.unwrap(), b);
    node_a.shutdown(Duration::ZERO).await;
    node_b.shutdown(Duration::ZERO).await;
}

#[async_std::test]
async fn a_node_with_a_certificate_from_another_ca_never_connects() {
    let ca = DemoCa::new("cluster CA").unwrap();
    let rogue_ca = DemoCa::new("another CA").unwrap();
    let la = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = la.local_addr().unwrap().to_string();
    let b = lb.local_addr().unwrap().to_string();
    let rogue = rogue_ca.issue(&[&b]).unwrap();
    let rogue = TlsConfig::new(ca.ca_pem(), rogue.cert_pem, rogue.key_pem).unwrap();
    let node_a = node(la, &b, &ca.node_config(&[&a]).unwrap()).await;
    let node_b = node(lb, &a, &rogue).await;
    assert!(node_a
        .wait_connected(&b, Duration::from_millis(500))
        .await
        .is_err());
    assert!(!node_b.peer(&a).unwrap().is_connected());
    node_a.shutdown(Duration::ZERO).await;
    node_b.shutdown(Duration::ZERO).await;
}
