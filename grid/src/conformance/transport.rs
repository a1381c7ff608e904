//! The transport the suite's nodes run over: plain TCP from the runtime by
//! default, or one a test binary installs (TLS), so that the same suite
//! checks grid over it.
//!
//! Installed per process, since the tests only take a runtime: a test binary
//! runs the suite over one transport. The fault-injecting proxy forwards
//! bytes, so it works unchanged over any transport.

use std::io;
use std::sync::OnceLock;

use crate::manager::Connector;
use crate::runtime::{BoxFuture, BoxIo, Listener, Runtime};

/// Listens at an address (see [`TestTransport::bind`]).
pub type BindFn = fn(&str) -> BoxFuture<'static, io::Result<Box<dyn Listener>>>;

/// How the suite's nodes listen and dial instead of plain TCP.
#[derive(Clone, Copy, Debug)]
pub struct TestTransport {
    /// Listens at `addr` (`127.0.0.1:0` or a node's address) for a node whose
    /// name will be the bound address.
    pub bind: BindFn,
    /// The connector of the node named by the argument.
    pub connector: fn(&str) -> Connector,
}

static TRANSPORT: OnceLock<TestTransport> = OnceLock::new();

/// Runs every conformance test of this process over `transport`. Called by
/// [`conformance_tests!`](crate::conformance_tests) with `transport = ..`;
/// the first call wins.
pub fn use_transport(transport: TestTransport) {
    let _ = TRANSPORT.set(transport);
}

fn installed() -> Option<&'static TestTransport> {
    TRANSPORT.get()
}

/// Listens at `addr` for a node, over the installed transport.
pub(crate) async fn bind_node<R: Runtime>(rt: &R, addr: &str) -> io::Result<Box<dyn Listener>> {
    match installed() {
        Some(transport) => (transport.bind)(addr).await,
        None => rt.bind(addr).await,
    }
}

/// The connector node `name` dials with, if not the runtime's TCP.
pub(crate) fn connector_for(name: &str) -> Option<Connector> {
    installed().map(|transport| (transport.connector)(name))
}

/// Connects to `addr` as node `name` would, over the installed transport.
pub(crate) async fn dial_as<R: Runtime>(rt: &R, addr: &str, name: &str) -> io::Result<BoxIo> {
    match connector_for(name) {
        Some(connector) => connector(addr).await.map(|dialed| dialed.io),
        None => rt.connect(addr).await,
    }
}
