//! The load generator every HTTP section uses, so the ratios compare servers and not clients:
//! HTTPS with the client certificate of `pki/clients/admin` (wrk and h2load cannot present one),
//! HTTP/1.1, TLS 1.3 only, session resumption off (every new connection is a full handshake).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// What one connection does in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One connection per worker, reused for every request (reconnects only if the server
    /// closes it).
    KeepAlive,
    /// A new connection, with a full TLS handshake, for every request.
    NewConnection,
}

/// How long and how hard to load one contender.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    pub(crate) connections: usize,
    pub(crate) warmup: Duration,
    pub(crate) measure: Duration,
    pub(crate) mode: Mode,
}

/// What one run measured (requests completed inside the measurement window only).
#[derive(Debug, Clone)]
pub(crate) struct RunResult {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
    /// Every latency of the window, sorted, in microseconds.
    pub(crate) latencies_us: Vec<u32>,
    /// CPU time the measured processes spent inside the window.
    pub(crate) server_cpu: Duration,
}

impl RunResult {
    pub(crate) fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn percentile(&self, p: f64) -> Duration {
        if self.latencies_us.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        Duration::from_micros(u64::from(self.latencies_us[index]))
    }

    /// Server CPU time per 10,000 requests.
    pub(crate) fn cpu_per_10k(&self) -> Duration {
        if self.requests == 0 {
            return Duration::ZERO;
        }
        self.server_cpu.mul_f64(10_000.0 / self.requests as f64)
    }
}

/// A TLS client for one target: the identity of `pki/clients/<user>` and the CA of `pki`.
#[derive(Clone)]
pub(crate) struct Client {
    /// None: plain HTTP (only the real-Flink section's direct reference).
    connector: Option<TlsConnector>,
    server_name: ServerName<'static>,
    path: &'static str,
    /// TLS connections made, and how many of them resumed a session.
    handshakes: Arc<(AtomicU64, AtomicU64)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server_name", &self.server_name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn new(pki: &Path, user: &str, path: &'static str) -> Result<Self> {
        Self::with_resumption(pki, user, path, false)
    }

    /// [`Client::new`], resuming TLS 1.3 sessions when `resume` (the client keeps the
    /// tickets servers send and offers one on its next connection).
    pub(crate) fn with_resumption(
        pki: &Path,
        user: &str,
        path: &'static str,
        resume: bool,
    ) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let ca = pki.join("ca.crt");
        for cert in CertificateDer::pem_file_iter(&ca)
            .with_context(|| format!("reading {}", ca.display()))?
        {
            roots.add(cert?)?;
        }
        let dir = pki.join("clients").join(user);
        let chain = CertificateDer::pem_file_iter(dir.join("client.crt"))
            .with_context(|| format!("reading {}/client.crt", dir.display()))?
            .collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(dir.join("client.key"))
            .with_context(|| format!("reading {}/client.key", dir.display()))?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        // Unless resuming, every new connection costs a full handshake with the client
        // certificate: the case the "handshakes" section measures; nginx and the gateway alike.
        if !resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            connector: Some(TlsConnector::from(Arc::new(config))),
            server_name: ServerName::try_from("localhost")?.to_owned(),
            path,
            handshakes: Arc::default(),
        })
    }

    /// A plain-HTTP client, for a backend that speaks no TLS.
    pub(crate) fn plain(path: &'static str) -> Result<Self> {
        Ok(Self {
            connector: None,
            server_name: ServerName::try_from("localhost")?.to_owned(),
            path,
            handshakes: Arc::default(),
        })
    }

    /// The share of this client's TLS connections so far that resumed a session.
    pub(crate) fn resumed_share(&self) -> f64 {
        let total = self.handshakes.0.load(Ordering::Relaxed);
        let resumed = self.handshakes.1.load(Ordering::Relaxed);
        if total == 0 {
            return 0.0;
        }
        resumed as f64 / total as f64
    }

    /// Connects and completes the TLS and HTTP/1.1 handshakes.
    pub(crate) async fn connect<B>(&self, port: u16) -> Result<SendRequest<B>>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        let Some(connector) = &self.connector else {
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(async move {
                // Ends when the server or the sender closes the connection; either is fine.
                let _ = connection.await;
            });
            return Ok(sender);
        };
        let tls = connector.connect(self.server_name.clone(), tcp).await?;
        self.handshakes.0.fetch_add(1, Ordering::Relaxed);
        if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
            self.handshakes.1.fetch_add(1, Ordering::Relaxed);
        }
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            // Ends when the server or the sender closes the connection; either is fine here.
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// One GET of the path; fails unless the answer is 200 with a body.
    pub(crate) async fn get(
        &self,
        sender: &mut SendRequest<Empty<Bytes>>,
        close: bool,
    ) -> Result<()> {
        sender.ready().await?;
        let mut request = hyper::Request::get(self.path).header("host", "localhost");
        if close {
            request = request.header("connection", "close");
        }
        let response = sender.send_request(request.body(Empty::new())?).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if status != hyper::StatusCode::OK || body.is_empty() {
            bail!(
                "{} answered {status}: {}",
                self.path,
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    }
}

/// The status of one GET of the path on a new connection, run on its own small runtime.
pub(crate) fn status_once(client: &Client, port: u16) -> Result<u16> {
    runtime()?.block_on(async {
        let mut sender = client.connect::<Empty<Bytes>>(port).await?;
        sender.ready().await?;
        let request = hyper::Request::get(client.path)
            .header("host", "localhost")
            .body(Empty::new())?;
        let response = sender.send_request(request).await?;
        Ok(response.status().as_u16())
    })
}

/// Loads `port` as `load` says, reading the servers' CPU time with `cpu` when the measurement
/// window opens and closes.
pub(crate) fn run(
    client: &Client,
    port: u16,
    load: Load,
    cpu: &(dyn Fn() -> Result<Duration> + Sync),
) -> Result<RunResult> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(AtomicU64::new(0));
        let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
        let mut workers = Vec::new();
        for _ in 0..load.connections {
            let client = client.clone();
            let measuring = measuring.clone();
            let stop = stop.clone();
            let errors = errors.clone();
            let first_error = first_error.clone();
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let outcome = async {
                        // A server may close a keep-alive connection (a limit on requests per
                        // connection): open a new one rather than count an error.
                        let mut current = match sender.take() {
                            Some(s) if !s.is_closed() => s,
                            _ => client.connect(port).await?,
                        };
                        let close = load.mode == Mode::NewConnection;
                        client.get(&mut current, close).await?;
                        if !close {
                            sender = Some(current);
                        }
                        anyhow::Ok(())
                    }
                    .await;
                    let took = start.elapsed();
                    match outcome {
                        Ok(()) if measuring.load(Ordering::Relaxed) => {
                            latencies.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX))
                        }
                        Ok(()) => {}
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert_with(|| format!("{e:#}"));
                            // A server that refuses should not turn into a busy loop.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                latencies
            }));
        }
        tokio::time::sleep(load.warmup).await;
        let cpu_start = cpu()?;
        let errors_start = errors.load(Ordering::Relaxed);
        measuring.store(true, Ordering::Relaxed);
        let start = Instant::now();
        tokio::time::sleep(load.measure).await;
        measuring.store(false, Ordering::Relaxed);
        let elapsed = start.elapsed();
        let cpu_end = cpu()?;
        let errors_in_window = errors.load(Ordering::Relaxed) - errors_start;
        stop.store(true, Ordering::Relaxed);
        let mut latencies_us = Vec::new();
        for worker in workers {
            latencies_us.extend(worker.await?);
        }
        latencies_us.sort_unstable();
        if latencies_us.is_empty() {
            let first = first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            bail!(
                "no request to port {port} succeeded: {}",
                first.unwrap_or_else(|| "no error either (window too short?)".into())
            );
        }
        Ok(RunResult {
            requests: latencies_us.len() as u64,
            errors: errors_in_window,
            elapsed,
            latencies_us,
            server_cpu: cpu_end.saturating_sub(cpu_start),
        })
    })
}

/// Opens `count` connections to `port`, each after a full handshake and one request, and keeps
/// them open while `hold` runs (it reads the servers' memory). At most 100 handshakes are in
/// flight at once so the listen backlog never overflows.
pub(crate) fn hold_idle<T>(
    client: &Client,
    port: u16,
    count: usize,
    hold: impl FnOnce() -> Result<T>,
) -> Result<(T, Duration)> {
    let runtime = runtime()?;
    let start = Instant::now();
    let senders = runtime.block_on(async {
        let limit = Arc::new(tokio::sync::Semaphore::new(100));
        let mut tasks = Vec::with_capacity(count);
        for _ in 0..count {
            let client = client.clone();
            let permit = limit.clone().acquire_owned().await?;
            tasks.push(tokio::spawn(async move {
                let mut sender = client.connect(port).await?;
                client.get(&mut sender, false).await?;
                drop(permit);
                anyhow::Ok(sender)
            }));
        }
        let mut senders = Vec::with_capacity(count);
        for task in tasks {
            senders.push(task.await?.context("opening an idle connection")?);
        }
        anyhow::Ok(senders)
    })?;
    let opened = start.elapsed();
    // Let the servers settle (the last responses, audit writes) before reading their memory.
    std::thread::sleep(Duration::from_secs(2));
    let held = hold()?;
    // A server that closed some of them meanwhile would look cheaper than it is.
    let closed = senders.iter().filter(|s| s.is_closed()).count();
    if closed > 0 {
        bail!(
            "{closed} of {count} idle connections were closed by the server before its memory was read"
        );
    }
    drop(senders);
    drop(runtime);
    Ok((held, opened))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    // Two workers: the machine has two cores that the servers share with this generator; the
    // same generator loads every contender, so whatever it costs, it costs each the same.
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
