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
