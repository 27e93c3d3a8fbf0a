//! Section `uploads`: a large jar to a real Flink's `POST /jars/upload`, through the gateway
//! (mTLS, policy, audit) and direct to Flink's plain-HTTP REST port, alternating.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use flinkguard_testkit::{ClusterBuilder, TestDist};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::load::Client;
use super::{Options, fmt, median, servers};

const MIB: u64 = 1024 * 1024;

/// A multipart/form-data body holding one file of `size` bytes named `bench.jar`, generated as
/// it is sent (1 MiB at a time, the same buffer each time) so the generator's own memory stays
/// flat and only the servers' copies count.
#[derive(Debug)]
struct Upload {
    parts: std::vec::IntoIter<Bytes>,
    remaining: u64,
}

const BOUNDARY: &str = "flinkguard-bench-0123456789abcdef";

impl Upload {
    fn new(size: u64) -> Self {
        let head = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"jarfile\"; \
             filename=\"bench.jar\"\r\nContent-Type: application/x-java-archive\r\n\r\n"
        );
        let tail = format!("\r\n--{BOUNDARY}--\r\n");
        let chunk = Bytes::from(vec![0x5a; MIB as usize]);
        let mut parts = vec![Bytes::from(head)];
        let mut left = size;
        while left > 0 {
            let n = left.min(MIB);
            parts.push(chunk.slice(..n as usize));
            left -= n;
        }
        parts.push(Bytes::from(tail));
        let remaining = parts.iter().map(|p| p.len() as u64).sum();
        Self {
            parts: parts.into_iter(),
            remaining,
        }
    }
}

impl Body for Upload {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.parts.next().map(|part| {
            self.remaining -= part.len() as u64;
            Ok(Frame::data(part))
        }))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }
}

/// One upload; returns how long it took until Flink's answer was read.
async fn upload(tls: Option<&Client>, port: u16, size: u64) -> Result<Duration> {
    let start = Instant::now();
    let body = Upload::new(size);
    let length = body.remaining;
    let request = hyper::Request::post("/jars/upload")
        .header("host", "localhost")
        .header("content-length", length)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)?;
    let response = match tls {
        Some(client) => {
            let mut sender = client.connect::<Upload>(port).await?;
            sender.ready().await?;
            sender.send_request(request).await?
        }
        None => {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(async move {
                // Ends when either side closes; the answer below tells whether it worked.
                let _ = connection.await;
            });
            sender.ready().await?;
            sender.send_request(request).await?
        }
    };
    let status = response.status();
    let answer = response.into_body().collect().await?.to_bytes();
    let took = start.elapsed();
    if status != hyper::StatusCode::OK || !answer.windows(7).any(|w| w == b"success") {
        bail!(
            "POST /jars/upload answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    Ok(took)
}

/// Removes the uploaded jars so repetitions do not fill the disk; returns their sizes, which
/// prove the whole file arrived.
fn remove_jars(dir: &Path) -> Vec<u64> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut sizes = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sizes.extend(remove_jars(&path));
        } else if path.extension().is_some_and(|e| e == "jar") {
            sizes.push(entry.metadata().map(|m| m.len()).unwrap_or(0));
            let _ = fs::remove_file(path);
        }
    }
    sizes
}

/// Section `uploads`.
pub(crate) fn uploads(binary: &Path, options: &Options) -> Result<String> {
    let size = if options.quick { 128 * MIB } else { 1024 * MIB };
    let dir = super::TempDir::new()?;
    let pki = servers::init_flinkguard(binary, dir.path())?;
    eprintln!("  starting a Flink cluster (testkit)");
    let cluster = ClusterBuilder::new(&TestDist::default_version())
        // Flink refuses bodies above 100 MiB by default; the bench sends more.
        .config("rest.server.max-content-length", i32::MAX)
        .prepare()
        .try_start()
        .map_err(|e| anyhow::anyhow!("the Flink cluster did not start: {e}"))?;
    let flink_port = cluster.ports().rest;
    let gateway = servers::start_gateway(
        binary,
        dir.path(),
        flink_port,
        &[("max_body_bytes: 104857600", "max_body_bytes: 2147483648")],
    )?;
    let client = Client::new(&pki, "admin", "/jars/upload")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let upload_dir = cluster.dir().join("tmp/upload");
    let (mut direct, mut ours) = (Vec::new(), Vec::new());
    for repetition in 0..options.runs {
        for through_gateway in [false, true] {
            let took = runtime
                .block_on(if through_gateway {
                    upload(Some(&client), gateway.port, size)
                } else {
                    upload(None, flink_port, size)
                })
                .with_context(|| {
                    format!(
                        "uploading {} MiB {}",
                        size / MIB,
                        if through_gateway {
                            "through the gateway"
                        } else {
                            "to Flink"
                        }
                    )
                })?;
            let stored = remove_jars(&upload_dir);
            if stored != [size] {
                bail!(
                    "after an upload of {size} bytes, Flink's upload directory {} held jars of \
                     {stored:?} bytes",
                    upload_dir.display()
                );
            }
            eprintln!(
                "  {:<10} run {}: {:.0} MiB/s",
                if through_gateway {
                    "flinkguard"
                } else {
                    "direct"
                },
                repetition + 1,
                size as f64 / MIB as f64 / took.as_secs_f64()
            );
            if through_gateway {
                ours.push(took);
            } else {
                direct.push(took);
            }
        }
    }
    let peak = gateway.memory("VmHWM")? as f64 / MIB as f64;
    let (direct, ours) = (median(direct), median(ours));
    let rate = |d: Duration| size as f64 / MIB as f64 / d.as_secs_f64();
    let ratio = rate(ours) / rate(direct);
    let mut out = String::from("### Uploads: a jar to a real Flink's `POST /jars/upload`\n\n");
    let _ = writeln!(
        out,
        "A {} MiB file (`bench.jar`, multipart/form-data, generated while sent) to Flink {}'s \
         `POST /jars/upload` (testkit cluster, `rest.server.max-content-length` raised), \
         direct over plain HTTP and through the gateway (mTLS as `admin`, policy, audit to a \
         file, `max_body_bytes` 2 GiB). One upload at a time, median of {} each, alternating; \
         the time ends when Flink's answer is read. Peak RSS is the gateway's VmHWM over the \
         section.\n\n\
         | contender | time | throughput |\n|---|---|---|\n\
         | direct to Flink (plain HTTP) | {} | {:.0} MiB/s |\n\
         | through flinkguard (mTLS) | {} | {:.0} MiB/s |\n\n\
         - flinkguard / direct: **{ratio:.2}×** (target ≥ 0.9×: {})\n\
         - gateway peak RSS: **{peak:.1} MiB** (target < 64 MiB: {})\n\n\
         Reproduce: `cargo xtask bench --only uploads --write`{}.\n",
        size / MIB,
        cluster.dist().version,
        options.runs,
        fmt(direct),
        rate(direct),
        fmt(ours),
        rate(ours),
        if ratio >= 0.9 { "met" } else { "NOT met" },
        if peak < 64.0 { "met" } else { "NOT met" },
        if options.quick {
            " (this run: `--quick`, a smaller file)"
        } else {
            ""
        }
    );
    drop(gateway);
    drop(cluster);
    Ok(out)
}
