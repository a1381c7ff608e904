//! A node's TLS configuration: the cluster CA, the node's certificate chain
//! and key, as rustls client and server configurations.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::identity::{identity_of, NODE_URI_SCHEME};
use super::verifier::ClusterCaVerifier;

/// Why a [`TlsConfig`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A PEM input holds no item of the kind expected.
    #[error("no {what} found in the PEM given for the {what}")]
    Missing {
        /// What was looked for: `CA certificate`, `certificate chain`, `private key`.
        what: &'static str,
    },
    /// A PEM input could not be read.
    #[error("cannot read the {what} PEM: {detail}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The node's certificate names no node.
    #[error(
        "the node's certificate names no node: it needs a URI subject alternative name \
         {NODE_URI_SCHEME}<node name>, e.g. {NODE_URI_SCHEME}10.0.0.1:7000"
    )]
    NoNodeName,
    /// rustls refused the certificates or key (e.g. a key that does not
    /// match the certificate, an unsupported algorithm).
    #[error("TLS configuration rejected: {0}")]
    Rustls(String),
}

/// A node's mutual-TLS configuration: the CA every node's certificate must
/// chain to, and this node's certificate chain (naming the node with a
/// `grid://<node name>` URI name) and private key. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    nodes: Arc<[String]>,
}

impl TlsConfig {
    /// A configuration from PEM text: the cluster CA certificate(s), this
    /// node's certificate chain (its own certificate first), and its private
    /// key (PKCS#8, PKCS#1 or SEC1).
    pub fn new(
        ca_pem: impl AsRef<[u8]>,
        cert_chain_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Result<TlsConfig, TlsConfigError> {
        let roots = Arc::new(root_store(ca_pem.as_ref())?);
        let chain = certificates(cert_chain_pem.as_ref(), "certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_ref()).map_err(|error| match error {
            rustls::pki_types::pem::Error::NoItemsFound => TlsConfigError::Missing {
                what: "private key",
            },
            other => TlsConfigError::Pem {
                what: "private key",
                detail: other.to_string(),
            },
        })?;
        let nodes: Arc<[String]> = match identity_of(&chain) {
            Some(identity) if !identity.nodes().is_empty() => identity.nodes().into(),
            _ => return Err(TlsConfigError::NoNodeName),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let rejected = |error: rustls::Error| TlsConfigError::Rustls(error.to_string());
        let mut client = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(rejected)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ClusterCaVerifier {
                roots: roots.clone(),
                provider: provider.clone(),
            }))
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(rejected)?;
        // Nodes are named by URI, not by host name: nothing to indicate.
        client.enable_sni = false;
        let client_verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|error| TlsConfigError::Rustls(error.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(rejected)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain, key)
            .map_err(rejected)?;
        Ok(TlsConfig {
            client: Arc::new(client),
            server: Arc::new(server),
            nodes,
        })
    }

    /// The rustls configuration for dialing.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// The rustls configuration for accepting.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// The node names this node's own certificate carries.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The server name a dialer hands rustls. Not sent (no SNI) and not
    /// checked against the certificate: grid checks the node name instead.
    pub fn server_name() -> ServerName<'static> {
        ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into())
    }
}

fn root_store(pem: &[u8]) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(pem, "CA certificate")? {
        roots
            .add(certificate)
            .map_err(|error| TlsConfigError::Pem {
                what: "CA certificate",
                detail: error.to_string(),
            })?;
    }
    Ok(roots)
}

fn certificates(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsConfigError::Pem {
            what,
            detail: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(TlsConfigError::Missing { what });
    }
    Ok(certificates)
}
