//! TLS as every remote party of the engine uses it (FTPS, PostgreSQL, HTTPS): certificates are
//! verified against the system's roots plus an optional `ca_file`, and only a pipeline file that
//! says `tls_insecure = true` turns verification off. One place, so that no connection is
//! quietly laxer than another.
//!
//! The cryptography is the process's default rustls provider, which the binary installs (ring)
//! when it starts; code that runs without it — unit tests, other programs using the library —
//! gets ring as well, without installing anything process-wide.

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// The TLS client settings for `section` (as named in errors): the system's roots plus `ca_file`, or no verification at all.
pub fn client_config(
    section: &str,
    ca_file: Option<PathBuf>,
    insecure: bool,
) -> Result<Arc<rustls::ClientConfig>> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|err| {
            Error::config(
                format!("{section} tls"),
                format!("cannot set up TLS: {err}"),
            )
        })?;
    if insecure {
        return Ok(Arc::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth(),
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(
        system_roots = added,
        "loaded the system's certificate roots"
    );
    if let Some(path) = ca_file {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let location = format!("{section} ca_file");
        let text = std::fs::read(&path).map_err(|err| {
            Error::config(
                &location,
                format!("cannot read the certificate file {}: {err}", path.display()),
            )
        })?;
        let certs = CertificateDer::pem_slice_iter(&text)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|err| {
                Error::config(
                    &location,
                    format!("{} is not a PEM certificate file: {err}", path.display()),
                )
            })?;
        if certs.is_empty() {
            return Err(Error::config(
                &location,
                format!(
                    "{} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
                    path.display()
                ),
            ));
        }
        for cert in certs {
            roots.add(cert).map_err(|err| {
                Error::config(
                    &location,
                    format!("{} holds an unusable certificate: {err}", path.display()),
                )
            })?;
        }
    }
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// The process's default crypto provider, or ring when none was installed.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// `tls_insecure = true`: any certificate is accepted (the handshake's signatures are still
/// checked, so the connection is encrypted, just not authenticated).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
