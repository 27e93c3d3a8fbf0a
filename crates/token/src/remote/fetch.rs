//! One JWKS fetch: a single HTTP/1.1 GET on a fresh connection, TLS verified against the
//! configured roots, no redirects, status 200 only, the body capped at [`MAX_JWKS_BYTES`].
//!
//! A fresh connection per fetch keeps this small: fetches are minutes apart, so a pool would
//! only hold idle sockets open to the identity provider.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, CONTENT_LENGTH, HOST, LOCATION, USER_AGENT};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{JwksUrl, RemoteJwksConfig};
use crate::{KeySet, MAX_JWKS_BYTES, SetupError};

/// Fetches and parses the JWKS behind one URL.
#[derive(Debug)]
pub(crate) struct Fetcher {
    url: JwksUrl,
    /// `None` for plain http (loopback only).
    tls: Option<Tls>,
    timeout: Duration,
}

#[derive(Debug)]
struct Tls {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    /// Where the roots came from, for the hint when the server's certificate is not trusted.
    ca_file: Option<PathBuf>,
}

impl Fetcher {
    /// Reads the CA file (if any) and prepares the TLS client; fetches nothing.
    pub(crate) fn new(config: &RemoteJwksConfig) -> Result<Fetcher, SetupError> {
        let tls = if config.url.is_https() {
            let server_name = ServerName::try_from(config.url.host().to_owned()).map_err(|_| {
                SetupError::InvalidConfig(format!(
                    "JWKS URL `{}`: the host is neither a DNS name nor an IP address",
                    config.url
                ))
            })?;
            Some(Tls {
                config: client_config(config.ca_file.as_deref())?,
                server_name,
                ca_file: config.ca_file.clone(),
            })
        } else {
            if let Some(path) = &config.ca_file {
                return Err(SetupError::InvalidConfig(format!(
                    "a CA file ({}) is set for the JWKS URL `{}`, which is plain http; \
                     use https or remove the CA file",
                    path.display(),
                    config.url
                )));
            }
            None
        };
        Ok(Fetcher {
            url: config.url.clone(),
            tls,
            timeout: config.timeout,
        })
    }

    /// The URL fetched.
    pub(crate) fn url(&self) -> &JwksUrl {
        &self.url
    }

    /// Fetches and parses the key set; the error is a one-line reason (the URL not included).
    pub(crate) async fn fetch(&self) -> Result<KeySet, String> {
        let body = tokio::time::timeout(self.timeout, self.get())
            .await
            .map_err(|_| format!("no complete answer within {} ms", self.timeout.as_millis()))??;
        let text = std::str::from_utf8(&body).map_err(|_| "the document is not UTF-8 text")?;
        KeySet::from_jwks_json(text).map_err(|e| e.to_string())
    }

    async fn get(&self) -> Result<Bytes, String> {
        let (host, port) = (self.url.host(), self.url.port());
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("cannot connect to {host} port {port}: {e}"))?;
        // Best effort: one small request, no need to wait for Nagle.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => self.exchange(TokioIo::new(tcp)).await,
            Some(tls) => {
                let stream = TlsConnector::from(tls.config.clone())
                    .connect(tls.server_name.clone(), tcp)
                    .await
                    .map_err(|e| tls_problem(&e, tls.ca_file.as_deref()))?;
                self.exchange(TokioIo::new(stream)).await
            }
        }
    }

    /// Sends the GET over an established connection and reads the answer.
    async fn exchange<T>(&self, io: T) -> Result<Bytes, String>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        let request = Request::get(self.url.path_and_query())
            .header(HOST, self.url.authority())
            .header(ACCEPT, "application/jwk-set+json, application/json")
            .header(
                USER_AGENT,
                concat!("flinkguard/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let exchange = async move {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("HTTP request failed: {e}"))?;
            read_body(response).await
        };
        // The connection future does the socket I/O; poll it alongside instead of spawning
        // it, so a timeout drops everything at once.
        let mut connection = pin!(connection);
        let mut exchange = pin!(exchange);
        tokio::select! {
            biased;
            result = &mut exchange => result,
            closed = &mut connection => match closed {
                Ok(()) => exchange.await,
                Err(e) => Err(format!("connection failed: {e}")),
            },
        }
    }
}

/// Status 200 and a body of at most [`MAX_JWKS_BYTES`], or why not.
async fn read_body(response: Response<Incoming>) -> Result<Bytes, String> {
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(LOCATION)
            .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
        return Err(match location {
            Some(location) => format!(
                "the server answers HTTP {status} redirecting to {location:?}; redirects are \
                 not followed, configure that URL instead"
            ),
            None => format!("the server answers HTTP {status} (a redirect without Location)"),
        });
    }
    if status != StatusCode::OK {
        return Err(format!("the server answers HTTP {status}, not 200 OK"));
    }
    let too_large = || format!("the document is larger than {MAX_JWKS_BYTES} bytes");
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_JWKS_BYTES as u64) {
        return Err(too_large());
    }
    match Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
    {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(format!("reading the response failed: {e}")),
    }
}

/// The TLS client: TLS 1.3 and 1.2 with aws-lc-rs, HTTP/1.1 by ALPN, and the roots in
/// `ca_file` only when it is given (an identity provider with a private CA should not also
/// be trusted under every public CA), else the Mozilla roots shipped with `webpki-roots`
/// (the same on every host and in minimal containers without a CA bundle).
fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, SetupError> {
    let roots = match ca_file {
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
        Some(path) => {
            let invalid = |problem: String| SetupError::InvalidFile {
                path: path.to_owned(),
                problem,
            };
            let pem_error = |e: pem::Error| match e {
                pem::Error::Io(e) => SetupError::file("read", path, e),
                e => invalid(format!("not a PEM file of CA certificates: {e}")),
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(pem_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(pem_error)?;
            if certs.is_empty() {
                return Err(invalid(
                    "holds no CERTIFICATE; give the PEM of the CA that issued the identity \
                     provider's certificate"
                        .into(),
                ));
            }
            let mut roots = RootCertStore::empty();
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| invalid(format!("a certificate is not usable as a CA: {e}")))?;
            }
            roots
        }
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|_| SetupError::Crypto("the TLS provider supports neither TLS 1.3 nor 1.2"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A handshake failure, with the fix when the server's certificate is the problem.
fn tls_problem(error: &io::Error, ca_file: Option<&Path>) -> String {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(_)) => {
            let fix = match ca_file {
                Some(path) => format!(
                    "it must be issued for this host by a CA in {}",
                    path.display()
                ),
                None => "if the identity provider uses a private CA, set the CA file to that \
                         CA's PEM"
                    .to_owned(),
            };
            format!(
                "TLS handshake failed, the server's certificate is not trusted ({error}); {fix}"
            )
        }
        _ => format!("TLS handshake failed: {error}"),
    }
}
