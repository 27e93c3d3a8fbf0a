//! One client connection: TLS handshake under a deadline, the identity its certificate
//! carries, HTTP/1.1 or HTTP/2 (by ALPN), closed when idle, drained on shutdown.
//!
//! An HTTP/1.1 connection that has been quiet for [`PARK_AFTER`] is *parked*: hyper hands
//! the stream back and is dropped with its buffers (a read buffer, a write buffer and room for
//! one request's future, about 30 KiB), and the connection waits for the client's next bytes
//! holding only its TLS state. The next request starts a fresh hyper connection on the same
//! stream. This is what lets 10,000 idle keep-alive connections fit in little memory; nginx
//! frees its buffers on idle keep-alive connections for the same reason.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::authn::{Connection, principal_from_certificate};
use crate::error::Body;
use crate::metrics::Metrics;
use crate::proxy::{self, State};
use crate::settings::Timeouts;

/// An HTTP/1.1 connection quiet this long gives its HTTP buffers back (see the module docs).
const PARK_AFTER: Duration = Duration::from_millis(200);

/// The longest a closing connection waits to send its TLS close_notify.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Whether a connection moved a byte since it was last looked at, and how many of its
/// requests are in flight. A flag, not a timestamp: reading the clock on every read and write
/// costs more than the periodic look that tells idle from busy.
#[derive(Default)]
struct Activity {
    moved: AtomicBool,
    in_flight: AtomicUsize,
    /// Bytes of a request arrived that hyper has not yet made into one. Such a connection is
    /// not parked: hyper would finish that request with `Connection: close`, and a new hyper
    /// connection must never restart the header deadline of a head already under way.
    partial: AtomicBool,
}

/// When a connection was last seen busy, from periodic looks at its [`Activity`]: a long
/// upload or a streamed log is not idle, a request waiting for Flink is not idle.
struct Quiet {
    since: Instant,
}

impl Quiet {
    fn new() -> Quiet {
        Quiet {
            since: Instant::now(),
        }
    }

    /// How long the connection has been quiet, as of this look.
    fn look(&mut self, activity: &Activity) -> Duration {
        let busy = activity.moved.swap(false, Ordering::Relaxed)
            || activity.in_flight.load(Ordering::Relaxed) > 0;
        if busy {
            self.since = Instant::now();
        }
        self.since.elapsed()
    }
}

/// The TLS stream, noting that bytes moved so an idle connection can be told from a busy one;
/// its reads first yield `unread`, what hyper had read ahead when the connection was parked.
struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
    unread: Bytes,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.unread.is_empty() {
            // Counted as activity when first read.
            let n = self.unread.len().min(buf.remaining());
            buf.put_slice(&self.unread[..n]);
            self.unread.advance(n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.moved.store(true, Ordering::Relaxed);
            if self.activity.in_flight.load(Ordering::Relaxed) == 0 {
                self.activity.partial.store(true, Ordering::Relaxed);
            }
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
            self.activity.moved.store(true, Ordering::Relaxed);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.moved.store(true, Ordering::Relaxed);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Boxed: the TLS state is over a KiB, and a box moves as a pointer through the states of a
/// connection's task instead of taking room in each.
type ClientStream = Box<Watched<TlsStream<TcpStream>>>;

/// Counts a request as in flight until its response headers are returned.
pub(crate) struct InFlight(Arc<Activity>);

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

/// The requests of one connection, each handed to [`proxy::handle`].
#[derive(Clone)]
struct Requests {
    state: Arc<State>,
    connection: Arc<Connection>,
    activity: Arc<Activity>,
}

type Handling =
    Pin<Box<dyn Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Requests {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    // Boxed: hyper keeps room for one call's future for as long as a connection lives, and
    // a request's future is several KiB; a box holds that only while a request runs.
    type Future = Handling;

    fn call(&self, request: Request<Incoming>) -> Handling {
        let in_flight = InFlight::start(&self.activity);
        self.activity.partial.store(false, Ordering::Relaxed);
        // Built straight into its box: a request's future is several KiB, and each move is a
        // copy of all of it.
        Box::pin(proxy::handle(
            self.state.clone(),
            self.connection.clone(),
            request,
            in_flight,
        ))
    }
}

/// Serves one accepted TCP connection until it closes, idles out, or shutdown drains it.
/// `_permit` holds one of `gateway.max_connections` until then.
pub(crate) async fn serve(
    state: Arc<State>,
    tcp: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _open = OpenConnection::count(&state);
    // The snapshot current at accept time: its certificate, CAs and timeouts apply to the
    // whole connection; later reloads apply to later connections.
    let snapshot = state.snapshot.load_full();
    let timeouts = snapshot.timeouts;
    let acceptor = TlsAcceptor::from(snapshot.tls.clone());
    let activity = Arc::new(Activity::default());
    let watched = activity.clone();
    // Boxed, so that the task keeps no room for the handshake once it is done.
    let handshake = Box::pin(async move {
        let tls = tokio::time::timeout(timeouts.header_read, acceptor.accept(tcp))
            .await
            .ok()?
            .ok()?;
        Some(Box::new(Watched {
            inner: tls,
            activity: watched,
            unread: Bytes::new(),
        }))
    });
    let Some(io) = handshake.await else {
        return;
    };
    let tls = io.inner.get_ref().1;
    let identity = tls
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| principal_from_certificate(cert, &snapshot.group_attributes, peer));
    let http2 = tls.alpn_protocol() == Some(b"h2");
    drop(snapshot);
    let requests = Requests {
        state,
        connection: Arc::new(Connection::new(peer, identity)),
        activity,
    };
    if http2 {
        serve_http2(io, requests, timeouts, shutdown).await;
    } else {
        serve_http1(io, requests, timeouts, shutdown).await;
    }
}

/// How often a serving connection looks at its activity: often enough to park after about
/// [`PARK_AFTER`] and to close within a quarter of the idle timeout after it.
fn look_interval(timeouts: &Timeouts) -> Duration {
    (PARK_AFTER / 2).min(timeouts.idle / 4)
}

/// HTTP/1.1, parking the connection whenever it goes quiet.
async fn serve_http1(
    mut io: ClientStream,
    requests: Requests,
    timeouts: Timeouts,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut quiet = Quiet::new();
    loop {
        if io.unread.is_empty() {
            // As while hyper serves: header_read_seconds also bounds the wait for the next
            // request (and for the first one after the handshake).
            let idle_at = quiet.since + timeouts.idle.min(timeouts.header_read);
            match parked(&mut io, idle_at, &mut shutdown, &requests.state.metrics).await {
                Woken::ClientSent => {}
                Woken::Close => return close(&mut io).await,
                Woken::Broken => return,
            }
        }
        let served = serving(io, &requests, &timeouts, &mut quiet, &mut shutdown).await;
        let Some(Served { io: back, parked }) = served else {
            // A broken connection (hyper has answered what it could): nothing to close politely.
            return;
        };
        io = back;
        if !parked {
            return close(&mut io).await;
        }
    }
}

/// What woke a parked connection.
enum Woken {
    ClientSent,
    Close,
    Broken,
}

/// Waits, holding no HTTP buffers, for the client's next bytes; or until `idle_at`, or until
/// the gateway drains.
async fn parked(
    io: &mut ClientStream,
    idle_at: Instant,
    shutdown: &mut watch::Receiver<bool>,
    metrics: &Metrics,
) -> Woken {
    match client_sent_more(io) {
        Ok(true) => return Woken::ClientSent,
        Ok(false) => {}
        Err(()) => return Woken::Broken,
    }
    let _counted = ParkedGauge::count(metrics);
    tokio::select! {
        ready = io.inner.get_ref().0.readable() => match ready {
            Ok(()) => Woken::ClientSent,
            Err(_) => Woken::Broken,
        },
        () = tokio::time::sleep_until(idle_at.into()) => Woken::Close,
        _ = shutdown.changed() => Woken::Close,
    }
}

/// Keeps the parked-connections gauge right however the wait ends.
struct ParkedGauge<'a>(&'a Metrics);

impl ParkedGauge<'_> {
    fn count(metrics: &Metrics) -> ParkedGauge<'_> {
        metrics.parked(1);
        ParkedGauge(metrics)
    }
}

impl Drop for ParkedGauge<'_> {
    fn drop(&mut self) {
        self.0.parked(-1);
    }
}

/// The stream back from hyper, with what hyper read and did not use as its `unread`.
struct Served {
    io: ClientStream,
    /// The gateway parked the connection; otherwise hyper ended it: the client closed it or
    /// asked to (`Connection: close`, HTTP/1.0), it idled out, or the gateway is draining.
    parked: bool,
}

/// [`serve_until_quiet`], boxed: a parked connection's task keeps no room for the serving
/// state (made in a plain function, so that the async caller does not either).
fn serving<'a>(
    io: ClientStream,
    requests: &'a Requests,
    timeouts: &'a Timeouts,
    quiet: &'a mut Quiet,
    shutdown: &'a mut watch::Receiver<bool>,
) -> Pin<Box<dyn Future<Output = Option<Served>> + Send + 'a>> {
    Box::pin(serve_until_quiet(io, requests, timeouts, quiet, shutdown))
}

/// Serves requests with a fresh hyper connection until the connection has been quiet for
/// [`PARK_AFTER`]; `None` if the connection broke.
async fn serve_until_quiet(
    io: ClientStream,
    requests: &Requests,
    timeouts: &Timeouts,
    quiet: &mut Quiet,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Served> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Slowloris: a client gets this long to send a request's headers.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read);
    let mut connection = builder.serve_connection(TokioIo::new(io), requests.clone());
    let mut looks = tokio::time::interval(look_interval(timeouts));
    looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut parking = false;
    let mut draining = false;
    loop {
        tokio::select! {
            served = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => {
                served.ok()?;
                break;
            }
            _ = looks.tick(), if !parking && !draining => {
                let quiet_for = quiet.look(&requests.activity);
                if quiet_for >= timeouts.idle {
                    Pin::new(&mut connection).graceful_shutdown();
                    draining = true;
                } else if quiet_for >= PARK_AFTER
                    && !requests.activity.partial.load(Ordering::Relaxed)
                {
                    Pin::new(&mut connection).graceful_shutdown();
                    parking = true;
                }
            }
            _ = shutdown.changed(), if !draining => {
                Pin::new(&mut connection).graceful_shutdown();
                draining = true;
            }
        }
    }
    let parts = connection.into_parts();
    let mut io = parts.io.into_inner();
    io.unread = joined(parts.read_buf, std::mem::take(&mut io.unread));
    Some(Served {
        io,
        parked: parking && !draining,
    })
}

/// HTTP/2 (its streams have no per-connection buffers worth parking), closed when idle.
async fn serve_http2(
    io: ClientStream,
    requests: Requests,
    timeouts: Timeouts,
    mut shutdown: watch::Receiver<bool>,
) {
    let activity = requests.activity.clone();
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    let mut connection = Box::pin(builder.serve_connection(TokioIo::new(io), requests));
    let mut quiet = Quiet::new();
    let mut looks = tokio::time::interval(look_interval(&timeouts));
    looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = looks.tick(), if !draining => {
                if quiet.look(&activity) >= timeouts.idle {
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

/// Whether the client's next bytes are already here: decrypted and waiting in the TLS state,
/// or a close. `Err` for a TLS error (the connection is over).
fn client_sent_more(io: &mut ClientStream) -> Result<bool, ()> {
    let tls = io.inner.get_mut().1;
    let state = tls.process_new_packets().map_err(|_| ())?;
    Ok(state.plaintext_bytes_to_read() > 0 || state.peer_has_closed())
}

/// Bytes hyper read but did not use, then bytes it never read; copied out, because hyper's
/// bytes (even none) keep its whole read buffer alive, which parking is meant to free.
fn joined(first: Bytes, then: Bytes) -> Bytes {
    if first.is_empty() && then.is_empty() {
        return Bytes::new();
    }
    let mut both = BytesMut::with_capacity(first.len() + then.len());
    both.extend_from_slice(&first);
    both.extend_from_slice(&then);
    both.freeze()
}

/// Ends the connection politely: TLS close_notify, then the TCP close.
async fn close(io: &mut ClientStream) {
    let _ = tokio::time::timeout(CLOSE_GRACE, io.shutdown()).await;
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
#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<A, B, C, D, E, F: Future>(_: impl FnOnce(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A task lives as long as its connection, idle or not: 10,000 idle connections cost
    /// 10,000 of these. The handshake, the TLS state and hyper's connection are boxed; a
    /// future that grew back past this bound has lost one of those boxes.
    #[test]
    fn a_connection_task_stays_small() {
        let size = future_size(serve);
        assert!(size <= 1536, "a connection's task takes {size} bytes");
    }

    #[test]
    fn reads_yield_the_unread_bytes_first() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            use tokio::io::AsyncReadExt;
            let mut stream = Watched {
                inner: &b"TP/1.1\r\n\r\n"[..],
                activity: Arc::default(),
                unread: Bytes::from_static(b"GET / HT"),
            };
            let mut all = String::new();
            stream.read_to_string(&mut all).await.unwrap();
            assert_eq!(all, "GET / HTTP/1.1\r\n\r\n");
        });
    }

    #[test]
    fn joined_lets_go_of_hyper_s_read_buffer() {
        let mut buffer = BytesMut::with_capacity(8192);
        buffer.extend_from_slice(b"GET");
        let hyper_s = buffer.freeze().slice(3..);
        let kept = joined(hyper_s, Bytes::new());
        assert!(kept.is_empty());
        // A new, empty Bytes points at no allocation; a slice of hyper's would.
        assert_eq!(kept.as_ptr(), Bytes::new().as_ptr());
    }

    #[test]
    fn joined_keeps_the_order_of_the_stream() {
        let both = joined(Bytes::from_static(b"ab"), Bytes::from_static(b"cd"));
        assert_eq!(&both[..], b"abcd");
        assert_eq!(&joined(Bytes::new(), Bytes::from_static(b"x"))[..], b"x");
        assert_eq!(&joined(Bytes::from_static(b"y"), Bytes::new())[..], b"y");
    }
}
