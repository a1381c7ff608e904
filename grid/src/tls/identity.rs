//! From a verified certificate to the node names it is issued for.

use rustls::pki_types::CertificateDer;

use crate::identity::PeerIdentity;

/// The scheme of the URI names that name nodes: `grid://<node name>`.
pub const NODE_URI_SCHEME: &str = "grid://";

/// The URI subject alternative name a node's certificate carries to name the
/// node `node`: `grid://<node>`.
pub fn node_uri(node: &str) -> String {
    format!("{NODE_URI_SCHEME}{node}")
}

/// The identity a verified certificate chain proves: the node names of the
/// end-entity certificate's `grid://` URI names (others are ignored), and
/// the certificate itself. `None` if there is no certificate, or it cannot be
/// parsed (rustls has already verified it, so this is a certificate no
/// handshake would have accepted).
pub fn identity_of(chain: &[CertificateDer<'_>]) -> Option<PeerIdentity> {
    let leaf = chain.first()?;
    let parsed = webpki::EndEntityCert::try_from(leaf).ok()?;
    let nodes: Vec<String> = parsed
        .valid_uri_names()
        .filter_map(|uri| uri.strip_prefix(NODE_URI_SCHEME))
        .filter(|node| !node.is_empty())
        .map(str::to_string)
        .collect();
    Some(PeerIdentity::new(nodes).with_certificate(leaf.to_vec()))
}

/// The identity of a peer whose TLS handshake succeeded, from the chain it
/// presented; an error if it presented none (which a verifying handshake
/// does not allow), so that a connection never runs unidentified over TLS.
pub fn verified_identity(chain: Option<&[CertificateDer<'_>]>) -> std::io::Result<PeerIdentity> {
    chain.and_then(identity_of).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the peer presented no usable certificate",
        )
    })
}
