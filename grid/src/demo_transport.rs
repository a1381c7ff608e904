//! How the demo's nodes listen and dial when not over the runtime's plain
//! TCP (e.g. mutual TLS with certificates made at start).

use std::io;

use crate::manager::Connector;
use crate::runtime::{BoxFuture, Listener};

/// Listens at an address for a node whose name is the bound address.
pub type DemoBind =
    Box<dyn Fn(&str) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> + Send + Sync>;

/// The connector of the node the argument names.
pub type DemoConnector = Box<dyn Fn(&str) -> Connector + Send + Sync>;

/// The transport the demo runs over.
pub struct DemoTransport {
    /// What it is, for the demo's first line.
    pub description: String,
    /// Listens for a node.
    pub bind: DemoBind,
    /// A node's connector.
    pub connector: DemoConnector,
}

impl std::fmt::Debug for DemoTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoTransport")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "demo-ca")]
impl DemoTransport {
    /// Mutual TLS with a CA made now: each node gets a certificate naming
    /// it when it binds (its name is the address it is bound to). The
    /// runtime brings its TCP listener (`bind` returns it with its bound
    /// address), its TLS listener over it (`tls_listener`) and its TLS
    /// connector.
    pub fn mutual_tls<T, B, L>(
        bind: B,
        tls_listener: L,
        tls_connector: fn(&crate::tls::TlsConfig) -> Connector,
    ) -> Result<DemoTransport, Box<dyn std::error::Error>>
    where
        T: Send + 'static,
        B: Fn(String) -> BoxFuture<'static, io::Result<(T, String)>> + Send + Sync + 'static,
        L: Fn(T, &crate::tls::TlsConfig) -> Box<dyn Listener> + Send + Sync + 'static,
    {
        use std::sync::Arc;

        let ca = Arc::new(crate::tls::DemoCa::new("grid demo CA")?);
        let for_bind = ca.clone();
        let tls_listener = Arc::new(tls_listener);
        Ok(DemoTransport {
            description: "mutual TLS, each node's certificate from a CA made at start".to_string(),
            bind: Box::new(move |addr: &str| {
                let (ca, tls_listener) = (for_bind.clone(), tls_listener.clone());
                let bound = bind(addr.to_string());
                Box::pin(async move {
                    let (listener, name) = bound.await?;
                    let tls = ca
                        .node_config(&[&name])
                        .map_err(|error| io::Error::other(error.to_string()))?;
                    Ok(tls_listener(listener, &tls))
                })
            }),
            connector: Box::new(move |name: &str| match ca.node_config(&[name]) {
                Ok(tls) => tls_connector(&tls),
                // Not reachable with a name the demo bound; a connector that
                // fails every dial says why instead of panicking.
                Err(error) => {
                    let error = error.to_string();
                    Arc::new(move |_addr: &str| {
                        let error = io::Error::other(error.clone());
                        Box::pin(async move { Err(error) })
                    })
                }
            }),
        })
    }
}
