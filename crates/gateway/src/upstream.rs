//! The connection to Flink's REST endpoint on loopback.
//!
//! By default (what `init` writes) mutual TLS: the gateway presents the PKI's upstream
//! identity as its client certificate and accepts exactly one server certificate, the same
//! self-signed upstream certificate, compared byte for byte. Flink's REST endpoint requires
//! that client certificate, so nothing else on the host (another user, another container of
//! the pod) can reach Flink's REST API around the gateway. Also supported: https verified
//! against a CA (`upstream_ca_file`), and plain http for setups that secure loopback otherwise.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flinkguard_config::LoadedConfig;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use crate::GatewayError;
use crate::error::{Body, error_chain};
use crate::pool::Pool;
use crate::tls::{certificates, check_key_matches, pem_error};

/// Flink's REST endpoint and a pool of connections to it.
pub(crate) struct Upstream {
    pub(crate) address: std::net::SocketAddr,
    /// `http://127.0.0.1:8081` or `https://127.0.0.1:8081`.
    pub(crate) base: String,
    /// Whether the hop to Flink is TLS (`https`).
    pub(crate) tls: bool,
    pub(crate) pool: Pool,
}

/// How the gateway authenticates Flink's REST endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerTrust {
    /// Plain http: no TLS at all.
    Plaintext,
    /// Exactly this certificate (PEM), byte for byte.
    Pinned(PathBuf),
    /// Any certificate chaining to these CAs (PEM).
    Ca(PathBuf),
}

/// The gateway's side of the hop, resolved from `gateway.upstream_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpstreamTls {
    pub(crate) trust: ServerTrust,
    /// Client certificate and key (PEM) presented to Flink.
    pub(crate) client_identity: Option<(PathBuf, PathBuf)>,
}

impl UpstreamTls {
    /// Reads the settings of flinkguard.yaml, paths resolved against its directory.
    pub(crate) fn from_config(loaded: &LoadedConfig) -> UpstreamTls {
        let gateway = &loaded.config.gateway;
        let resolve = |p: &PathBuf| loaded.base_dir.join(p);
        let trust = match (
            &gateway.upstream_server_cert_file,
            &gateway.upstream_ca_file,
        ) {
            (Some(pinned), _) => ServerTrust::Pinned(resolve(pinned)),
            (None, Some(ca)) => ServerTrust::Ca(resolve(ca)),
            (None, None) => ServerTrust::Plaintext,
        };
        let client_identity = gateway
            .upstream_client_cert_file
            .as_ref()
            .zip(gateway.upstream_client_key_file.as_ref())
            .map(|(cert, key)| (resolve(cert), resolve(key)));
        UpstreamTls {
            trust,
            client_identity,
        }
    }

    /// The files a snapshot built from these settings depends on.
    pub(crate) fn sources(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        match &self.trust {
            ServerTrust::Pinned(p) | ServerTrust::Ca(p) => out.push(p.clone()),
            ServerTrust::Plaintext => {}
        }
        if let Some((cert, key)) = &self.client_identity {
            out.extend([cert.clone(), key.clone()]);
        }
        out
    }
}

impl Upstream {
    pub(crate) fn new(port: u16, tls: &UpstreamTls) -> Result<Upstream, GatewayError> {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let connector = match tls.trust {
            ServerTrust::Plaintext => None,
            ServerTrust::Pinned(_) | ServerTrust::Ca(_) => Some((
                tokio_rustls::TlsConnector::from(Arc::new(client_config(tls)?)),
                ServerName::IpAddress(address.ip().into()),
            )),
        };
        let scheme = if connector.is_some() { "https" } else { "http" };
        Ok(Upstream {
            address,
            base: format!("{scheme}://{address}"),
            tls: connector.is_some(),
            pool: Pool::new(address, connector),
        })
    }

    /// The request line's target for `target` (origin form: `/path?query`), checked.
    pub(crate) fn uri_for(&self, target: String) -> Result<http::Uri, http::Error> {
        Ok(http::Uri::from(http::uri::PathAndQuery::try_from(target)?))
    }

    /// Flink's REST endpoint as flinkguard.yaml describes it.
    pub(crate) fn from_config(loaded: &LoadedConfig) -> Result<Upstream, GatewayError> {
        Upstream::new(
            loaded.config.flink.rest_port,
            &UpstreamTls::from_config(loaded),
        )
    }
}

/// Flink's REST endpoint reached exactly as the gateway reaches it (same URL, same TLS, same
/// client identity), for commands that check on Flink directly: `up` waiting for it to be
/// ready, `status`. Blocking.
pub struct FlinkRestClient {
    upstream: Upstream,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for FlinkRestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlinkRestClient")
            .field("base", &self.upstream.base)
            .finish_non_exhaustive()
    }
}

impl FlinkRestClient {
    /// The client flinkguard.yaml's `gateway.upstream_*` settings describe.
    pub fn from_config(loaded: &LoadedConfig) -> Result<FlinkRestClient, GatewayError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| GatewayError::Config(format!("cannot start a runtime: {e}")))?;
        let upstream = Upstream::from_config(loaded)?;
        Ok(FlinkRestClient { upstream, runtime })
    }

    /// `https://127.0.0.1:PORT` (or `http://` when the gateway is configured for plain http).
    pub fn base(&self) -> &str {
        &self.upstream.base
    }

    /// `GET {base}{path}`: the status and the body, or why there was no answer.
    pub fn get(&self, path: &str, timeout: std::time::Duration) -> Result<(u16, String), String> {
        use http_body_util::BodyExt;
        let uri = self
            .upstream
            .uri_for(path.to_owned())
            .map_err(|e| format!("bad URL: {e}"))?;
        let mut request = http::Request::new(
            http_body_util::Empty::<bytes::Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *request.uri_mut() = uri;
        self.runtime.block_on(async {
            let answer = async {
                let response = self
                    .upstream
                    .pool
                    .request(request)
                    .await
                    .map_err(|e| error_chain(&e))?;
                let status = response.status().as_u16();
                let body = response
                    .into_body()
                    .collect_bytes()
                    .await
                    .map_err(|e| error_chain(&e))?;
                Ok((status, String::from_utf8_lossy(&body).into_owned()))
            };
            tokio::time::timeout(timeout, answer)
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?
        })
    }
}

/// Names the setting a missing upstream file comes from and how to make it.
fn missing_file_hint(err: GatewayError, field: &str) -> GatewayError {
    match err {
        GatewayError::Pem { path, problem } if !path.exists() => GatewayError::Pem {
            problem: format!(
                "{problem} (gateway.{field}); `{}` creates the upstream identity in pki/upstream/, or point the setting at the right file",
                flinkguard_pki::CREATE_UPSTREAM_COMMAND
            ),
            path,
        },
        other => other,
    }
}

/// The TLS client side of `tls`: whom to trust, and the certificate to present.
fn client_config(tls: &UpstreamTls) -> Result<rustls::ClientConfig, GatewayError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    let builder = match &tls.trust {
        // An empty trust store: an https URI then fails, the safe way.
        ServerTrust::Plaintext => builder.with_root_certificates(rustls::RootCertStore::empty()),
        ServerTrust::Ca(path) => {
            builder.with_root_certificates(crate::tls::root_store(&[path.to_owned()])?)
        }
        ServerTrust::Pinned(path) => {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(
                    PinnedServerVerifier::from_file(path, provider.clone())
                        .map_err(|e| missing_file_hint(e, "upstream_server_cert_file"))?,
                ))
        }
    };
    let config = match &tls.client_identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates(cert)
                .map_err(|e| missing_file_hint(e, "upstream_client_cert_file"))?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| missing_file_hint(pem_error(key, e), "upstream_client_key_file"))?;
            check_key_matches(&provider, &chain, &key_der, cert, key)?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| pem_error(key, e))?
        }
    };
    Ok(config)
}

/// An HTTP/1.1 client for http:// and https:// URIs; https trusts only the CAs in `ca_file`
/// (with none, an empty trust store: https then fails, the safe way).
pub(crate) fn client_trusting(
    ca_file: Option<&Path>,
) -> Result<Client<HttpsConnector<HttpConnector>, Body>, GatewayError> {
    let config = client_config(&UpstreamTls {
        trust: ca_file.map_or(ServerTrust::Plaintext, |p| ServerTrust::Ca(p.to_owned())),
        client_identity: None,
    })?;
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(crate::pool::MAX_IDLE)
        .build(connector))
}

/// Accepts exactly one server certificate: the pinned one, byte for byte, and nothing it might
/// have signed. The certificate is also checked as webpki checks any other (validity period,
/// the name connected to, serverAuth usage, with itself as the only trust anchor), and the
/// handshake signatures are verified as usual: pinning replaces no check, it adds one.
#[derive(Debug)]
pub(crate) struct PinnedServerVerifier {
    pinned: CertificateDer<'static>,
    webpki: Arc<WebPkiServerVerifier>,
}

impl PinnedServerVerifier {
    pub(crate) fn new(
        pinned: CertificateDer<'static>,
        provider: Arc<CryptoProvider>,
    ) -> Result<PinnedServerVerifier, GatewayError> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(pinned.clone())
            .map_err(|e| GatewayError::Tls(format!("the pinned certificate: {e}")))?;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| GatewayError::Tls(e.to_string()))?;
        Ok(PinnedServerVerifier { pinned, webpki })
    }

    /// The verifier for the single certificate in a PEM file.
    pub(crate) fn from_file(
        path: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<PinnedServerVerifier, GatewayError> {
        let mut certs = certificates(path)?;
        if certs.len() != 1 {
            return Err(pem_error(
                path,
                "must hold exactly one certificate: the one Flink's REST endpoint presents",
            ));
        }
        let pinned = certs.remove(0);
        Self::new(pinned, provider).map_err(|e| pem_error(path, e))
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() != self.pinned.as_ref() {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use flinkguard_pki::{InitRequest, KeyAlgorithm, PkiLayout, ValidityDays};

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    /// A PKI on disk, as `init` makes it.
    fn pki(dir: &Path) -> PkiLayout {
        let generated = flinkguard_pki::generate(&InitRequest {
            cluster_name: "flink".into(),
            hosts: vec!["localhost".parse().unwrap()],
            ips: vec!["127.0.0.1".parse().unwrap()],
            key: KeyAlgorithm::EcdsaP256,
            validity: ValidityDays::default(),
        })
        .unwrap();
        let layout = PkiLayout::new(dir.join("pki"));
        flinkguard_pki::install(&generated, &layout, false).unwrap();
        layout
    }

    fn der(path: &Path) -> CertificateDer<'static> {
        certificates(path).unwrap().remove(0)
    }

    fn verify(
        verifier: &PinnedServerVerifier,
        cert: &CertificateDer<'_>,
        name: &str,
    ) -> Result<ServerCertVerified, rustls::Error> {
        verifier.verify_server_cert(
            cert,
            &[],
            &ServerName::try_from(name.to_owned()).unwrap(),
            &[],
            UnixTime::now(),
        )
    }

    #[test]
    fn the_pinned_self_signed_certificate_is_accepted_for_every_loopback_name() {
        let dir = tempfile::tempdir().unwrap();
        let layout = pki(dir.path());
        let verifier =
            PinnedServerVerifier::from_file(&layout.upstream_cert(), provider()).unwrap();
        let pinned = der(&layout.upstream_cert());
        for name in ["127.0.0.1", "::1", "localhost"] {
            verify(&verifier, &pinned, name).unwrap();
        }
        // webpki still checks the name: the pin does not turn a name check off.
        assert!(verify(&verifier, &pinned, "flink.example.org").is_err());
    }

    #[test]
    fn every_other_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = pki(dir.path());
        let verifier =
            PinnedServerVerifier::from_file(&layout.upstream_cert(), provider()).unwrap();
        // The REST (gateway) certificate, signed by the PKI's CA; the cluster identity; the
        // upstream identity of another PKI with the very same subject.
        let other = tempfile::tempdir().unwrap();
        let other = pki(other.path());
        for refused in [
            der(&layout.rest_cert()),
            der(&layout.internal_cert()),
            der(&other.upstream_cert()),
        ] {
            let err = verify(&verifier, &refused, "127.0.0.1").unwrap_err();
            assert!(
                matches!(
                    err,
                    rustls::Error::InvalidCertificate(
                        CertificateError::ApplicationVerificationFailure
                    )
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_bundle_is_not_a_pin() {
        let dir = tempfile::tempdir().unwrap();
        let layout = pki(dir.path());
        // rest.crt holds the REST certificate and the CA.
        let err = PinnedServerVerifier::from_file(&layout.rest_cert(), provider())
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly one certificate"), "{err}");
    }

    #[test]
    fn missing_upstream_files_name_the_setting_and_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let layout = pki(dir.path());
        let gone = dir.path().join("pki/upstream/nothing.crt");
        for (tls, field) in [
            (
                UpstreamTls {
                    trust: ServerTrust::Pinned(gone.clone()),
                    client_identity: None,
                },
                "gateway.upstream_server_cert_file",
            ),
            (
                UpstreamTls {
                    trust: ServerTrust::Pinned(layout.upstream_cert()),
                    client_identity: Some((gone.clone(), layout.upstream_key())),
                },
                "gateway.upstream_client_cert_file",
            ),
            (
                UpstreamTls {
                    trust: ServerTrust::Pinned(layout.upstream_cert()),
                    client_identity: Some((layout.upstream_cert(), gone.clone())),
                },
                "gateway.upstream_client_key_file",
            ),
        ] {
            let err = client_config(&tls).err().unwrap().to_string();
            assert!(
                err.contains("nothing.crt")
                    && err.contains(field)
                    && err.contains("flinkguard pki create-upstream"),
                "{err}"
            );
        }
        // A key that is not the certificate's.
        let tls = UpstreamTls {
            trust: ServerTrust::Pinned(layout.upstream_cert()),
            client_identity: Some((layout.upstream_cert(), layout.rest_key())),
        };
        let err = client_config(&tls).err().unwrap().to_string();
        assert!(err.contains("is not the key of the certificate"), "{err}");
        client_config(&UpstreamTls {
            trust: ServerTrust::Pinned(layout.upstream_cert()),
            client_identity: Some((layout.upstream_cert(), layout.upstream_key())),
        })
        .unwrap();
    }
}
