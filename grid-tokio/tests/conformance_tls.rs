//! The grid conformance suite on tokio over mutual TLS: every node's
//! certificate names it and comes from one CA made at start.
#![cfg(feature = "tls")]

use std::io;
use std::sync::OnceLock;

use grid::conformance::TestTransport;
use grid_tokio::tls::DemoCa;
use grid_tokio::{BoxFuture, Connector, Listener, Tokio};

fn cluster_ca() -> &'static DemoCa {
    static CA: OnceLock<DemoCa> = OnceLock::new();
    CA.get_or_init(|| DemoCa::new("conformance CA").expect("make the CA"))
}

/// A TLS listener whose certificate names the address it is bound to, which
/// is the node's name in the suite.
fn bind(addr: &str) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
    let addr = addr.to_string();
    Box::pin(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let name = listener.local_addr()?.to_string();
        let tls = cluster_ca()
            .node_config(&[&name])
            .map_err(|error| io::Error::other(error.to_string()))?;
        Ok(Tokio::tls_listener(listener, &tls))
    })
}

fn connector(name: &str) -> Connector {
    let tls = cluster_ca()
        .node_config(&[name])
        .expect("issue the node's certificate");
    Tokio::tls_connector(&tls)
}

/// Each test on its own single-threaded tokio runtime.
fn block_on(test: grid::BoxFuture<'static, ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(test)
}

grid::conformance_tests!(
    grid_tokio::Tokio,
    block_on,
    transport = TestTransport { bind, connector },
    ignore_hostile = "the hostile peer speaks grid over plain TCP; the plain suite runs it"
);
