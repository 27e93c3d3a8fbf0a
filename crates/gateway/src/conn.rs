//! One client connection: TLS handshake under a deadline, the identity its certificate
//! carries, HTTP/1.1 or HTTP/2, closed when idle, drained on shutdown.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio_rustls::TlsAcceptor;

use crate::authn::{Connection, principal_from_certificate};
use crate::proxy::{self, State};

/// When a connection last moved a byte, and how many of its requests are in flight.
struct Activity {
    opened: Instant,
    last_millis: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn touch(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(now, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.opened + std::time::Duration::from_millis(self.last_millis.load(Ordering::Relaxed))
    }
}

/// The TLS stream, noting every byte moved so an idle connection can be told from a busy one
/// (a long upload or a streamed log is not idle).
struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Counts a request as in flight until its response headers are returned.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one accepted TCP connection until it closes, idles out, or shutdown drains it.
/// `_permit` holds one of `gateway.max_connections` until then.
pub(crate) async fn serve(
    state: Arc<State>,
    tcp: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _open = OpenConnection::count(&state);
    // The snapshot current at accept time: its certificate, CAs and timeouts apply to the
    // whole connection; later reloads apply to later connections.
    let snapshot = state.snapshot.load_full();
    let timeouts = snapshot.timeouts;
    let acceptor = TlsAcceptor::from(snapshot.tls.clone());
    let Ok(Ok(tls)) = tokio::time::timeout(timeouts.header_read, acceptor.accept(tcp)).await else {
        return;
    };
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| principal_from_certificate(cert, &snapshot.group_attributes, peer));
    drop(snapshot);
    let connection = Arc::new(Connection { peer, identity });
    let activity = Arc::new(Activity {
        opened: Instant::now(),
        last_millis: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
    });
    let io = Watched {
        inner: tls,
        activity: activity.clone(),
    };
    let service_activity = activity.clone();
    let service = hyper::service::service_fn(move |request| {
        let in_flight = InFlight::start(&service_activity);
        let response = proxy::handle(state.clone(), connection.clone(), request);
        async move {
            let response = response.await;
            drop(in_flight);
            response
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Slowloris: a client gets this long to send a request's headers.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let idle_at = activity.last() + timeouts.idle;
        tokio::select! {
            _ = connection.as_mut() => return,
            () = tokio::time::sleep_until(idle_at.into()), if !draining => {
                if activity.last() + timeouts.idle <= Instant::now()
                    && activity.in_flight.load(Ordering::Relaxed) == 0
                {
                    connection.as_mut().graceful_shutdown();
                    draining = true;
                }
            }
            _ = shutdown.changed(), if !draining => {
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// Keeps the open-connections gauge right however the connection ends.
struct OpenConnection(Arc<State>);

impl OpenConnection {
    fn count(state: &Arc<State>) -> OpenConnection {
        state.metrics.connection_opened();
        OpenConnection(state.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.metrics.connection_closed();
    }
}
