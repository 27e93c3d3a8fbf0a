//! The gateway: a TLS side-car in front of Flink's REST API and Web UI.
//!
//! Data flows one way: request → parse the target once ([`RequestTarget`]) → authenticate
//! (client certificate) → classify by the route catalogue → decide by policy → audit →
//! forward exactly that target to Flink on loopback → stream the answer back. Denied
//! requests never reach Flink.
//!
//! This is the first slice of the gateway: mTLS authentication, authorization by operation,
//! audit lines on stdout, streamed forwarding over plain HTTP to Flink on loopback.
#![forbid(unsafe_code)]

mod audit;
mod authn;
mod error;
mod proxy;
mod settings;
mod tls;

pub use settings::{GatewayError, GatewaySettings};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A TLS handshake that takes longer than this is dropped (slowloris).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/1 request headers must arrive within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` completes; returns the address it listened on through `bound`.
pub async fn run(
    settings: GatewaySettings,
    bound: impl FnOnce(std::net::SocketAddr),
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    let acceptor = TlsAcceptor::from(tls::server_config(&settings)?);
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| GatewayError::Listen(settings.listen, e))?;
    bound(
        listener
            .local_addr()
            .map_err(|e| GatewayError::Listen(settings.listen, e))?,
    );
    let audit = audit::AuditSink::open(settings.audit_stdout, settings.audit_file.as_deref())
        .map_err(|source| GatewayError::Audit {
            path: settings.audit_file.clone().unwrap_or_default(),
            source,
        })?;
    let state = Arc::new(proxy::State::new(settings, audit));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else { continue };
                let acceptor = acceptor.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
                        return;
                    };
                    let identity = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|cert| authn::principal_from_certificate(cert, peer));
                    let connection = Arc::new(proxy::Connection { peer, identity });
                    let service = hyper::service::service_fn(move |request| {
                        proxy::handle(state.clone(), connection.clone(), request)
                    });
                    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    // Slowloris: a client gets this long to send a request's headers.
                    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
                    let _ = builder
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        }
    }
}
