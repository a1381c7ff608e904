//! What a failed TLS handshake tells the operator and the caller.

use std::io;

use rustls::AlertDescription;

/// Turns a TLS handshake's failure into an error that says what was wrong
/// with the credentials, with kind `PermissionDenied` when a certificate was
/// rejected (either side's), so that grid logs it as a refusal rather than
/// as noise; other failures pass unchanged.
pub fn handshake_error(error: io::Error) -> io::Error {
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return error;
    };
    let message = match tls {
        rustls::Error::InvalidCertificate(reason) => format!(
            "the peer's certificate was rejected ({reason}): is it issued by the cluster's CA?"
        ),
        rustls::Error::NoCertificatesPresented => {
            "the peer presented no certificate: every node needs one from the cluster's CA"
                .to_string()
        }
        rustls::Error::AlertReceived(alert) if rejects_certificate(*alert) => format!(
            "the peer rejected this node's certificate (TLS alert {alert:?}): \
             is it issued by the cluster's CA?"
        ),
        _ => return error,
    };
    io::Error::new(io::ErrorKind::PermissionDenied, message)
}

fn rejects_certificate(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateRequired
            | AlertDescription::AccessDenied
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_rejections_become_permission_denied_with_the_reason() {
        let rejected = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let error = handshake_error(rejected);
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
        assert!(error.to_string().contains("cluster's CA"), "{error}");
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::UnknownCA),
        );
        assert_eq!(
            handshake_error(alert).kind(),
            io::ErrorKind::PermissionDenied
        );
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "eof");
        assert_eq!(handshake_error(eof).kind(), io::ErrorKind::UnexpectedEof);
    }
}
