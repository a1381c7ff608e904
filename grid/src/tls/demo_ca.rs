//! A cluster CA made at start, and node certificates it issues (feature
//! `demo-ca`): for tests and demos, never for production, where the CA's key
//! lives elsewhere and certificates are issued by the operator's tooling.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::config::TlsConfig;
use super::identity::node_uri;

/// A throwaway certificate authority.
pub struct DemoCa {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

/// A node's certificate and key, PEM-encoded.
#[derive(Clone, Debug)]
pub struct NodeCredentials {
    /// The node's certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl DemoCa {
    /// A new CA with a fresh key, called `name`.
    pub fn new(name: &str) -> Result<DemoCa, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let certificate = params.self_signed(&key)?;
        Ok(DemoCa { certificate, key })
    }

    /// The CA's certificate, PEM-encoded: every node's trust anchor.
    pub fn ca_pem(&self) -> String {
        self.certificate.pem()
    }

    /// A certificate for a node, naming the nodes `nodes` (usually one)
    /// with `grid://<node>` URI names, valid for dialing and accepting.
    pub fn issue(&self, nodes: &[&str]) -> Result<NodeCredentials, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(
            DnType::CommonName,
            nodes.first().copied().unwrap_or("grid node"),
        );
        for node in nodes {
            params
                .subject_alt_names
                .push(SanType::URI(node_uri(node).try_into()?));
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let certificate = params.signed_by(&key, &self.certificate, &self.key)?;
        Ok(NodeCredentials {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The TLS configuration of a node whose certificate names `nodes`.
    pub fn node_config(&self, nodes: &[&str]) -> Result<TlsConfig, Box<dyn std::error::Error>> {
        let credentials = self.issue(nodes)?;
        Ok(TlsConfig::new(
            self.ca_pem(),
            credentials.cert_pem,
            credentials.key_pem,
        )?)
    }
}

impl std::fmt::Debug for DemoCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoCa").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::identity_of;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    #[test]
    fn an_issued_certificate_names_its_nodes() {
        let ca = DemoCa::new("test CA").unwrap();
        let credentials = ca.issue(&["10.0.0.1:7000", "[::1]:7000"]).unwrap();
        let der = CertificateDer::from_pem_slice(credentials.cert_pem.as_bytes()).unwrap();
        let identity = identity_of(&[der]).unwrap();
        assert_eq!(identity.nodes(), ["10.0.0.1:7000", "[::1]:7000"]);
        let config = ca.node_config(&["10.0.0.1:7000"]).unwrap();
        assert_eq!(config.nodes(), ["10.0.0.1:7000"]);
    }

    #[test]
    fn a_certificate_without_a_node_name_is_a_clear_error() {
        let ca = DemoCa::new("test CA").unwrap();
        let credentials = ca.issue(&[]).unwrap();
        let error =
            TlsConfig::new(ca.ca_pem(), credentials.cert_pem, credentials.key_pem).unwrap_err();
        assert!(error.to_string().contains("grid://"), "{error}");
        let error = TlsConfig::new("", "", "").unwrap_err();
        assert!(error.to_string().contains("CA certificate"), "{error}");
    }
}
