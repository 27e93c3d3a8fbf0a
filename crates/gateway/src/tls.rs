//! The listener's TLS: TLS 1.3 and 1.2 with rustls' ECDHE + AEAD suites only, client
//! certificates verified against the configured CAs, HTTP/2 and HTTP/1.1 by ALPN.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{GatewayError, GatewaySettings};

fn pem_error(path: &Path, problem: impl std::fmt::Display) -> GatewayError {
    GatewayError::Pem {
        path: path.to_owned(),
        problem: problem.to_string(),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, GatewayError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "holds no CERTIFICATE"));
    }
    Ok(certs)
}

pub(crate) fn server_config(settings: &GatewaySettings) -> Result<Arc<ServerConfig>, GatewayError> {
    // rustls offers only ECDHE key exchange with AEAD ciphers (AES-GCM, ChaCha20-Poly1305).
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for path in &settings.client_ca {
        for cert in certificates(path)? {
            roots.add(cert).map_err(|e| pem_error(path, e))?;
        }
    }
    // A request without a certificate gets an HTTP 401 in Flink's error shape (which Flink's
    // CLI and UI can show) rather than a bare TLS alert; the certificate, when sent, is still
    // verified during the handshake.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    let chain = certificates(&settings.server_cert)?;
    let key = PrivateKeyDer::from_pem_file(&settings.server_key)
        .map_err(|e| pem_error(&settings.server_key, e))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
