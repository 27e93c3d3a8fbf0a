//! The listener's TLS: TLS 1.3 and 1.2 with rustls' ECDHE + AEAD suites only, client
//! certificates verified against the configured CAs, HTTP/2 and HTTP/1.1 by ALPN.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::GatewayError;

pub(crate) fn pem_error(path: &Path, problem: impl std::fmt::Display) -> GatewayError {
    GatewayError::Pem {
        path: path.to_owned(),
        problem: problem.to_string(),
    }
}

pub(crate) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, GatewayError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "holds no CERTIFICATE"));
    }
    Ok(certs)
}

/// The roots in these PEM bundles.
pub(crate) fn root_store(paths: &[PathBuf]) -> Result<RootCertStore, GatewayError> {
    let mut roots = RootCertStore::empty();
    for path in paths {
        for cert in certificates(path)? {
            roots.add(cert).map_err(|e| pem_error(path, e))?;
        }
    }
    Ok(roots)
}

pub(crate) fn server_config(
    cert_path: &Path,
    key_path: &Path,
    client_ca: &[PathBuf],
    require_client_certificate: bool,
) -> Result<Arc<ServerConfig>, GatewayError> {
    // rustls offers only ECDHE key exchange with AEAD ciphers (AES-GCM, ChaCha20-Poly1305).
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = Arc::new(root_store(client_ca)?);
    let builder = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
    // Optional: a request without a certificate gets an HTTP 401 in Flink's error shape (which
    // Flink's CLI and UI can show) rather than a bare TLS alert, and may use a bearer token; a
    // certificate, when sent, is still verified during the handshake.
    let builder = if require_client_certificate {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    let verifier = builder
        .build()
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    let chain = certificates(cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| pem_error(key_path, e))?;
    check_key_matches(&provider, &chain, &key, cert_path, key_path)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A certificate and key replaced one after the other may briefly not match: refused here, so
/// a reload keeps the last good snapshot instead of failing every request.
pub(crate) fn check_key_matches(
    provider: &CryptoProvider,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), GatewayError> {
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| pem_error(key_path, e))?;
    CertifiedKey::new(chain.to_vec(), signing_key)
        .keys_match()
        .map_err(|_| {
            pem_error(
                key_path,
                format!(
                    "is not the key of the certificate in {}",
                    cert_path.display()
                ),
            )
        })
}
