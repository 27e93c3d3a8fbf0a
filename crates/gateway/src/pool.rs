//! The gateway's connections to Flink's REST endpoint, kept open for reuse.
//!
//! The gateway talks to exactly one upstream, over HTTP/1.1 on loopback. hyper-util's pooled
//! client serves any number of hosts: every check-out and check-in hashes a pool key, and
//! every answer spawns a task that waits for its connection to be ready again. Here the pool
//! is a stack of idle connections behind a mutex, and a connection goes back on the stack
//! when its answer's body has been read to the end (docs/benchmarks.md has the saving).
//!
//! What is kept from hyper-util: a request that was never written because Flink had just
//! closed the idle connection it was given is sent again on another connection; at most
//! [`MAX_IDLE`] idle connections stay open, and none idle for longer than [`IDLE_TIMEOUT`]
//! is reused.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::Body;

/// Idle connections kept for reuse. A burst of concurrent requests opens as many as it needs;
/// afterwards only this many stay, each with its buffers and TLS state.
pub(crate) const MAX_IDLE: usize = 64;

/// An idle connection unused this long is closed rather than reused (hyper-util's default).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Connections to one HTTP/1.1 server, over TLS when `tls` is given.
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    address: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// `Host` for requests that carry none: forwarded requests lose the client's (it names the
    /// gateway), and the gateway's own requests have none.
    host: HeaderValue,
    /// The most recently used on top: its buffers are the warmest, and the ones at the bottom
    /// are the first to time out. Pushed in order of time, so `since` grows from bottom to top.
    idle: Mutex<Vec<Idle>>,
}

/// A connection waiting for its next request, and since when.
struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

/// Why a request got no answer from upstream.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("cannot connect to {address}")]
    Connect {
        address: SocketAddr,
        #[source]
        cause: std::io::Error,
    },
    #[error("TLS handshake with {address} failed")]
    Tls {
        address: SocketAddr,
        #[source]
        cause: std::io::Error,
    },
    #[error("HTTP/1.1 connection to {address} failed")]
    Handshake {
        address: SocketAddr,
        #[source]
        cause: hyper::Error,
    },
    #[error("the request to {address} failed")]
    Send {
        address: SocketAddr,
        #[source]
        cause: hyper::Error,
    },
}

impl Pool {
    pub(crate) fn new(
        address: SocketAddr,
        tls: Option<(TlsConnector, ServerName<'static>)>,
    ) -> Pool {
        // An address's text is always a valid header value; the fallback is never taken.
        let host = HeaderValue::from_str(&address.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        Pool {
            shared: Arc::new(Shared {
                address,
                tls,
                host,
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Sends `request` (its URI in origin form, `/path?query`) on an idle connection, or on a
    /// new one when none is idle. The connection goes back to the pool when the answer's body
    /// has been read to its end; an answer dropped before that closes it.
    ///
    /// Not inlined: the bench counts its calls as the gateway's forwarded requests.
    #[inline(never)]
    pub(crate) fn request(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Result<Response<PooledBody>, UpstreamError>> + Send + 'static {
        let shared = self.shared.clone();
        async move { shared.send(request).await }
    }

    /// How many connections are idle in the pool now.
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.shared.lock().len()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // The vector is consistent between any two statements: a panic elsewhere leaves it usable.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn send(
        self: Arc<Self>,
        mut request: Request<Body>,
    ) -> Result<Response<PooledBody>, UpstreamError> {
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, self.host.clone());
        }
        loop {
            let (mut sender, reused) = match self.check_out().await {
                Some(sender) => (sender, true),
                // Boxed: connecting (TCP, TLS, HTTP/1.1) is rare, and its future is large;
                // unboxed, every request's future would keep room for it and copy it on moves.
                None => (Box::pin(self.connect()).await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    return Ok(response.map(|body| PooledBody {
                        body,
                        return_to: Some((sender, self)),
                    }));
                }
                Err(mut failed) => match failed.take_message() {
                    // Never written: the idle connection was closed as it was taken (Flink
                    // closes idle connections). Another one, ultimately a new one, gets it.
                    Some(unsent) if reused => request = unsent,
                    _ => {
                        return Err(UpstreamError::Send {
                            address: self.address,
                            cause: failed.into_error(),
                        });
                    }
                },
            }
        }
    }

    /// The most recently used idle connection that is still open.
    async fn check_out(&self) -> Option<SendRequest<Body>> {
        loop {
            let mut sender = self.pop_fresh(Instant::now())?;
            // Usually ready at once. A connection checked in as its answer's last bytes were
            // read may wait for its task to take note, which then says whether it stays open.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    /// The top of the stack, unless it has been idle too long: then so has every connection
    /// under it, and all are closed.
    fn pop_fresh(&self, now: Instant) -> Option<SendRequest<Body>> {
        let stale = {
            let mut idle = self.lock();
            let top = idle.pop()?;
            if now.duration_since(top.since) <= IDLE_TIMEOUT {
                return Some(top.sender);
            }
            std::mem::take(&mut *idle)
        };
        drop(stale);
        None
    }

    fn check_in(&self, sender: SendRequest<Body>) {
        self.check_in_at(sender, Instant::now());
    }

    fn check_in_at(&self, sender: SendRequest<Body>, now: Instant) {
        if sender.is_closed() {
            return;
        }
        let closed: Vec<Idle> = {
            let mut idle = self.lock();
            idle.push(Idle { sender, since: now });
            let stale = idle.partition_point(|i| now.duration_since(i.since) > IDLE_TIMEOUT);
            let excess = idle.len().saturating_sub(MAX_IDLE);
            idle.drain(..stale.max(excess)).collect()
        };
        // Dropping a sender wakes its connection's task to close: not while holding the lock.
        drop(closed);
    }

    async fn connect(&self) -> Result<SendRequest<Body>, UpstreamError> {
        let address = self.address;
        let tcp = TcpStream::connect(address)
            .await
            .and_then(|tcp| tcp.set_nodelay(true).map(|()| tcp))
            .map_err(|cause| UpstreamError::Connect { address, cause })?;
        let handshake_failed = |cause| UpstreamError::Handshake { address, cause };
        match &self.tls {
            None => {
                let (sender, connection) = http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(handshake_failed)?;
                tokio::spawn(connection);
                Ok(sender)
            }
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|cause| UpstreamError::Tls { address, cause })?;
                let (sender, connection) = http1::handshake(TokioIo::new(tls))
                    .await
                    .map_err(handshake_failed)?;
                tokio::spawn(connection);
                Ok(sender)
            }
        }
    }
}

/// An answer's body from the pool. Read to its end, it puts its connection back.
pub(crate) struct PooledBody {
    body: Incoming,
    /// Until the body ends; then the connection is free for the next request.
    return_to: Option<(SendRequest<Body>, Arc<Shared>)>,
}

impl PooledBody {
    fn return_connection(&mut self) {
        if let Some((sender, pool)) = self.return_to.take() {
            pool.check_in(sender);
        }
    }

    /// The whole body in one buffer.
    pub(crate) async fn collect_bytes(self) -> Result<Bytes, hyper::Error> {
        Ok(self.collect().await?.to_bytes())
    }
}

impl hyper::body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        let ended = match &frame {
            None => true,
            Some(Ok(_)) => this.body.is_end_stream(),
            // The connection is broken: it is dropped with the body, not reused.
            Some(Err(_)) => false,
        };
        if ended {
            this.return_connection();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // An empty body (a 204, an answer to HEAD) is never polled. A body dropped half read
        // leaves bytes on the connection: its connection is closed instead.
        if self.body.is_end_stream() {
            self.return_connection();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// How the loopback test server answers.
    #[derive(Clone, Copy)]
    enum Answer {
        /// Echoes the request's `Host` header; keeps the connection open.
        Host,
        /// `ok`, then closes the connection 50 ms later without having said so, as a server
        /// closing an idle connection does.
        OkThenClose,
        /// `ok` after 300 ms.
        SlowOk,
        /// 4 MiB.
        Large,
    }

    /// A real HTTP/1.1 server on loopback; counts the connections it accepted.
    async fn server(answer: Answer) -> (Pool, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, answer));
            }
        });
        (Pool::new(address, None), accepted)
    }

    async fn serve(mut stream: TcpStream, answer: Answer) {
        let mut read = Vec::new();
        loop {
            // The tests send heads only (GET, no body).
            let head = loop {
                if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&read[..end]).into_owned();
                    read.drain(..end + 4);
                    break head;
                }
                let mut chunk = [0; 1024];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => read.extend_from_slice(&chunk[..n]),
                }
            };
            let body = match answer {
                Answer::Host => head
                    .lines()
                    .find_map(|l| l.strip_prefix("host: "))
                    .unwrap_or("none")
                    .as_bytes()
                    .to_vec(),
                Answer::OkThenClose => b"ok".to_vec(),
                Answer::SlowOk => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    b"ok".to_vec()
                }
                Answer::Large => vec![b'x'; 4 << 20],
            };
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            if stream.write_all(head.as_bytes()).await.is_err()
                || stream.write_all(&body).await.is_err()
            {
                return;
            }
            if let Answer::OkThenClose = answer {
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
        }
    }

    fn get(path: &str) -> Request<Body> {
        let mut request = Request::new(
            http_body_util::Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *request.uri_mut() = path.parse().unwrap();
        request
    }

    async fn body_of(pool: &Pool, request: Request<Body>) -> String {
        let response = pool.request(request).await.unwrap();
        let body = response.into_body().collect_bytes().await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_answer_is_read() {
        let (pool, accepted) = server(Answer::Host).await;
        for _ in 0..5 {
            body_of(&pool, get("/jobs/overview")).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle(), 1);
    }

    #[tokio::test]
    async fn a_request_without_host_gets_the_upstream_s_and_one_with_host_keeps_it() {
        let (pool, _) = server(Answer::Host).await;
        let expected = pool.shared.address.to_string();
        assert_eq!(body_of(&pool, get("/")).await, expected);
        let mut request = get("/");
        request.headers_mut().insert(
            header::HOST,
            HeaderValue::from_static("flink.example.org:8443"),
        );
        assert_eq!(body_of(&pool, request).await, "flink.example.org:8443");
    }

    #[tokio::test]
    async fn an_answer_dropped_half_read_closes_its_connection() {
        let (pool, accepted) = server(Answer::Large).await;
        let response = pool.request(get("/")).await.unwrap();
        let mut body = response.into_body();
        body.frame().await.unwrap().unwrap();
        drop(body);
        assert_eq!(pool.idle(), 0);
        // Read whole, the next answer's connection (a new one) is kept.
        assert_eq!(body_of(&pool, get("/")).await.len(), 4 << 20);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(pool.idle(), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced() {
        let (pool, accepted) = server(Answer::OkThenClose).await;
        for round in 1..=3 {
            assert_eq!(body_of(&pool, get("/")).await, "ok");
            // The server closes; the pool notices and takes a new connection next time.
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(accepted.load(Ordering::SeqCst), round);
        }
    }

    #[tokio::test]
    async fn a_burst_opens_what_it_needs_and_keeps_max_idle() {
        let (pool, accepted) = server(Answer::SlowOk).await;
        let burst = MAX_IDLE + 6;
        let mut answers = tokio::task::JoinSet::new();
        for _ in 0..burst {
            let answer = pool.request(get("/"));
            answers.spawn(async move { answer.await.unwrap().into_body().collect_bytes().await });
        }
        while let Some(body) = answers.join_next().await {
            assert_eq!(body.unwrap().unwrap(), "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), burst);
        assert_eq!(pool.idle(), MAX_IDLE);
    }

    #[tokio::test]
    async fn connections_idle_past_the_timeout_are_closed_at_the_next_check_in() {
        let (pool, _) = server(Answer::Host).await;
        let first = pool.shared.connect().await.unwrap();
        let second = pool.shared.connect().await.unwrap();
        let start = Instant::now();
        pool.shared.check_in_at(first, start);
        pool.shared
            .check_in_at(second, start + IDLE_TIMEOUT + Duration::from_secs(1));
        assert_eq!(pool.idle(), 1);
        let kept = pool.shared.lock().pop().unwrap();
        assert_eq!(kept.since, start + IDLE_TIMEOUT + Duration::from_secs(1));
    }

    #[tokio::test]
    async fn after_a_quiet_spell_no_idle_connection_is_reused() {
        let (pool, _) = server(Answer::Host).await;
        let start = Instant::now();
        for _ in 0..3 {
            let sender = pool.shared.connect().await.unwrap();
            pool.shared.check_in_at(sender, start);
        }
        assert!(pool.shared.pop_fresh(start + IDLE_TIMEOUT).is_some());
        assert!(
            pool.shared
                .pop_fresh(start + IDLE_TIMEOUT + Duration::from_secs(1))
                .is_none()
        );
        assert_eq!(pool.idle(), 0);
    }
}
