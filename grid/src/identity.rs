//! A peer's verified identity: the node names its transport vouches for.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// Who the transport proved the other side to be, e.g. the node names a TLS
/// certificate that chains to the cluster's CA is issued for.
///
/// The cluster secret only proves membership of the cluster, so a peer that
/// knows it could claim any node's name. With an identity, grid refuses a
/// peer whose claimed name is not among [`PeerIdentity::nodes`]
/// (`Refusal::IdentityMismatch`), and a handler can read it from
/// [`Ctx::peer_identity`](crate::Ctx::peer_identity).
#[derive(Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    nodes: Arc<[String]>,
    certificate: Option<Bytes>,
}

impl PeerIdentity {
    /// An identity valid for the node names `nodes`.
    pub fn new<I, S>(nodes: I) -> PeerIdentity
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PeerIdentity {
            nodes: nodes.into_iter().map(Into::into).collect(),
            certificate: None,
        }
    }

    /// The same identity, carrying the verified certificate (DER) it came
    /// from, for applications that look at more than the node names.
    pub fn with_certificate(mut self, der: impl Into<Bytes>) -> PeerIdentity {
        self.certificate = Some(der.into());
        self
    }

    /// The node names this identity is valid for.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// Whether this identity may use the node name `node`.
    pub fn names(&self, node: &str) -> bool {
        self.nodes.iter().any(|name| name == node)
    }

    /// The verified end-entity certificate, DER-encoded, if there was one.
    pub fn certificate(&self) -> Option<&Bytes> {
        self.certificate.as_ref()
    }
}

impl fmt::Debug for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerIdentity")
            .field("nodes", &self.nodes)
            .field("certificate", &self.certificate.as_ref().map(Bytes::len))
            .finish()
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.nodes.as_ref() {
            [] => f.write_str("an identity naming no node"),
            [one] => write!(f, "{one:?}"),
            many => write!(f, "{many:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_only_the_nodes_it_lists() {
        let identity = PeerIdentity::new(["10.0.0.1:7000", "node-1:7000"]);
        assert!(identity.names("10.0.0.1:7000"));
        assert!(identity.names("node-1:7000"));
        assert!(!identity.names("10.0.0.1:7001"));
        assert!(!identity.names(""));
        assert!(!PeerIdentity::new(Vec::<String>::new()).names(""));
    }
}
