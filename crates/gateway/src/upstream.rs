//! The connection to Flink's REST endpoint on loopback: plain http, or https verified
//! against one pinned CA when Flink's REST SSL is on.

use std::path::Path;
use std::sync::Arc;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::GatewayError;
use crate::error::Body;

/// Flink's REST endpoint and a pool of connections to it.
pub(crate) struct Upstream {
    pub(crate) address: std::net::SocketAddr,
    /// `http://127.0.0.1:8081` or `https://127.0.0.1:8081`.
    pub(crate) base: String,
    pub(crate) client: Client<HttpsConnector<HttpConnector>, Body>,
}

impl Upstream {
    pub(crate) fn new(port: u16, pinned_ca: Option<&Path>) -> Result<Upstream, GatewayError> {
        let scheme = if pinned_ca.is_some() { "https" } else { "http" };
        Ok(Upstream {
            address: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            base: format!("{scheme}://127.0.0.1:{port}"),
            client: client_trusting(pinned_ca)?,
        })
    }
}

/// An HTTP/1.1 client for http:// and https:// URIs; https trusts only the CAs in `ca_file`
/// (with none, an empty trust store: https then fails, the safe way).
pub(crate) fn client_trusting(
    ca_file: Option<&Path>,
) -> Result<Client<HttpsConnector<HttpConnector>, Body>, GatewayError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = match ca_file {
        Some(path) => crate::tls::root_store(&[path.to_owned()])?,
        None => rustls::RootCertStore::empty(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}
