//! The gateway as a server under stress, against a real Flink 2.3: certificate renewal under
//! load, time limits, the connection limit, broken request framing, graceful shutdown.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;
mod gatewaykit;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{flinkguard_ok, set_policy};
use flinkguard_testkit::{ClusterBuilder, FlinkCluster, TestDist};
use gatewaykit::{GatewayProcess, audit_lines, edit_config, point_at, raw_tls, read_to_close};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

const NO_JOB: &str = "00000000000000000000000000000000";

/// A PKI and flinkguard.yaml in `d` pointing at `cluster`, with `root` an admin.
fn prepare(d: &Path, cluster: &FlinkCluster, edits: &[(&str, &str)]) {
    flinkguard_ok(d, &["init", "--quiet"]);
    point_at(d, cluster.ports().rest, edits);
    set_policy(
        d,
        "policy:\n  bindings:\n  - role: admin\n    users: [root]\n",
    );
    flinkguard_ok(d, &["pki", "issue-client", "--user", "root"]);
}

/// The leaf certificate the gateway serves right now.
fn served_certificate(d: &Path, port: u16) -> Vec<u8> {
    let tls = raw_tls(d, port, None);
    tls.conn.peer_certificates().unwrap()[0].to_vec()
}

fn leaf_on_disk(d: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(d.join("pki/rest.crt"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

#[test]
fn cluster_gateway_renews_its_certificate_under_load_without_failing_a_request() {
    let dist = TestDist::default_version();
    let cluster = ClusterBuilder::new(&dist).taskmanagers(1).start();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    prepare(d, &cluster, &[]);
    let gateway = GatewayProcess::start(d);
    let first = served_certificate(d, gateway.port);
    assert_eq!(first, leaf_on_disk(d));

    // Clients keep requesting, over new and reused connections, HTTP/1.1 and HTTP/2.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = ["--http1.1", "--http2", "--http1.1"]
        .into_iter()
        .map(|version| {
            let stop = stop.clone();
            let dir = d.to_owned();
            let url = gateway.url("/jobs/overview");
            std::thread::spawn(move || {
                let mut codes = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let out = Command::new("curl")
                        .current_dir(&dir)
                        .args(["-s", "--cacert", "pki/ca.crt", version])
                        .args(["--cert", "pki/clients/root/client.crt"])
                        .args(["--key", "pki/clients/root/client.key"])
                        .args(["-w", "\n@%{http_code}\n"])
                        .args(std::iter::repeat_n(&url, 10))
                        .output()
                        .unwrap();
                    codes.extend(
                        String::from_utf8_lossy(&out.stdout)
                            .lines()
                            .filter_map(|l| l.strip_prefix('@'))
                            .map(str::to_owned),
                    );
                }
                codes
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    for round in 1..=3 {
        flinkguard_ok(d, &["pki", "renew-rest"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while gateway
            .log()
            .iter()
            .filter(|l| l.contains("reloaded"))
            .count()
            < round
        {
            assert!(Instant::now() < deadline, "no reload: {:?}", gateway.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    let codes: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let failed: Vec<&String> = codes.iter().filter(|c| *c != "200").collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed, e.g. {:?}",
        failed.len(),
        codes.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(codes.len() >= 60, "only {} requests were made", codes.len());
    // New connections get the newest certificate.
    let served = served_certificate(d, gateway.port);
    assert_ne!(served, first);
    assert_eq!(served, leaf_on_disk(d));
    assert!(
        !gateway.log().iter().any(|l| l.contains("reload failed")),
        "{:?}",
        gateway.log()
    );
    // Exactly one audit line per request.
    assert_eq!(audit_lines(d).len(), codes.len());
}

#[test]
fn cluster_gateway_enforces_time_and_connection_limits_and_drains_on_shutdown() {
    let dist = TestDist::default_version();
    let cluster = ClusterBuilder::new(&dist)
        .taskmanagers(1)
        .config("web.submit.enable", "true")
        .start();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    prepare(
        d,
        &cluster,
        &[
            ("header_read_seconds: 10", "header_read_seconds: 5"),
            // Shorter than header_read_seconds, which also bounds the wait for the next
            // request on an HTTP/1.1 keep-alive connection.
            ("idle_seconds: 120", "idle_seconds: 2"),
            ("request_seconds: 600", "request_seconds: 4"),
            ("max_connections: 1024", "max_connections: 3"),
        ],
    );
    let mut gateway = GatewayProcess::start(d);
    let port = gateway.port;
    let within = |started: Instant, low: u64, high: u64| {
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(low * 1000 - 500) && took < Duration::from_secs(high),
            "took {took:?}, expected {low}..{high} s"
        );
    };

    // A TCP connection that never starts TLS, and a request whose headers never end, are
    // closed after header_read_seconds.
    let started = Instant::now();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(read_to_close(&mut tcp), "");
    within(started, 5, 12);
    let mut slow = raw_tls(d, port, Some("root"));
    let started = Instant::now();
    slow.write_all(b"GET /jobs/overview HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    let answer = read_to_close(&mut slow);
    within(started, 5, 12);
    assert!(!answer.contains("200 OK"), "{answer}");

    // An idle keep-alive connection is closed after idle_seconds.
    let mut idle = raw_tls(d, port, Some("root"));
    idle.write_all(b"GET /jobs/overview HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let answer = read_to_close(&mut idle);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    within(started, 2, 4);

    // A keep-alive connection that goes quiet is parked (hyper's buffers freed) and serves
    // its next request on the same connection.
    let parked = |count: u32| {
        let want = format!("flinkguard_connections_parked {count}\n");
        let deadline = Instant::now() + Duration::from_millis(1500);
        loop {
            let (_, metrics) = gateway.admin("/metrics");
            if metrics.contains(&want) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut kept = raw_tls(d, port, Some("root"));
    let request = b"GET /jobs/overview HTTP/1.1\r\nHost: localhost\r\n\r\n";
    kept.write_all(request).unwrap();
    assert!(read_response(&mut kept).starts_with("HTTP/1.1 200 OK"));
    assert!(parked(1), "an idle keep-alive connection was not parked");
    kept.write_all(request).unwrap();
    let again = read_response(&mut kept);
    assert!(again.starts_with("HTTP/1.1 200 OK"), "{again}");
    assert!(parked(1), "the connection was not parked again");
    // A head sent in two parts with a pause longer than the parking delay: answered on a
    // connection that stays open (a park mid-request would end it with `Connection: close`).
    let (first, second) = request.split_at(20);
    kept.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    kept.write_all(second).unwrap();
    let paused = read_response(&mut kept);
    assert!(paused.starts_with("HTTP/1.1 200 OK"), "{paused}");
    assert!(
        !paused.to_ascii_lowercase().contains("connection: close"),
        "{paused}"
    );
    kept.write_all(request).unwrap();
    let after = read_response(&mut kept);
    assert!(after.starts_with("HTTP/1.1 200 OK"), "{after}");
    // A head trickled a byte at a time, each pause longer than the parking delay, still
    // meets header_read_seconds: a connection is not parked mid-request (a new hyper
    // connection would restart the deadline).
    let started = Instant::now();
    kept.sock
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut answer = Vec::new();
    'trickle: for byte in request.iter().cycle() {
        if kept.write_all(&[*byte]).is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        match std::io::Read::read(&mut kept, &mut buf) {
            Ok(0) => break 'trickle,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break 'trickle,
        }
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "a trickled head held the connection past header_read_seconds"
        );
    }
    within(started, 5, 8);
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains("200 OK"), "{answer}");
    drop(kept);

    // A body that stops arriving: 408 after request_seconds.
    let mut stalled = raw_tls(d, port, Some("root"));
    let started = Instant::now();
    stalled
        .write_all(
            format!(
                "POST /jobs/{NO_JOB}/savepoints HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"cancel"
            )
            .as_bytes(),
        )
        .unwrap();
    let answer = read_to_close(&mut stalled);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("gateway.timeouts.request_seconds"),
        "{answer}"
    );
    within(started, 4, 15);

    // Broken chunked framing: 400, nothing decided on a guess.
    let mut broken = raw_tls(d, port, Some("root"));
    broken
        .write_all(
            format!(
                "POST /jobs/{NO_JOB}/savepoints HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let answer = read_to_close(&mut broken);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // A streamed body cut off mid-way: audited as the client's fault (400), and the next
    // request is served normally.
    let mut cut = raw_tls(d, port, Some("root"));
    cut.write_all(
        b"POST /jars/upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n--x\r\n",
    )
    .unwrap();
    cut.write_all(&[b'a'; 1000]).unwrap();
    cut.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(cut);
    let deadline = Instant::now() + Duration::from_secs(10);
    let cut_line = loop {
        if let Some(line) = audit_lines(d)
            .into_iter()
            .find(|l| l["path"] == "/jars/upload")
        {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no audit line for the cut upload"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(cut_line["status"], 400, "{cut_line}");
    assert!(
        cut_line["reason"].as_str().unwrap().contains("cut off"),
        "{cut_line}"
    );
    assert_eq!(gateway.curl(Some("root"), &[], "/jobs/overview").0, 200);

    // Three connections are the limit: a fourth client waits until one closes.
    let held: Vec<_> = (0..3).map(|_| raw_tls(d, port, Some("root"))).collect();
    let (code, _) = gateway.curl(Some("root"), &["--max-time", "1.5"], "/jobs/overview");
    assert_eq!(code, 0, "a fourth connection was served");
    drop(held);
    assert_eq!(gateway.curl(Some("root"), &[], "/jobs/overview").0, 200);

    // Shutdown drains: an upload in flight completes, new connections are refused.
    let upload = d.join("slow.jar");
    std::fs::write(&upload, vec![b'j'; 200_000]).unwrap();
    let dir = d.to_owned();
    let url = gateway.url("/jars/upload");
    let in_flight = std::thread::spawn(move || {
        gatewaykit::curl(
            &dir,
            Some("root"),
            &["--limit-rate", "100K", "-F", "jarfile=@slow.jar"],
            &url,
        )
    });
    std::thread::sleep(Duration::from_millis(700));
    gateway.signal("TERM");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(gateway.curl(Some("root"), &[], "/jobs/overview").0, 0);
    let (code, body) = in_flight.join().unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("slow.jar"), "{body}");
    assert!(gateway.wait_exit(Duration::from_secs(15)).success());
    let last = audit_lines(d).pop().unwrap();
    assert_eq!(
        (last["path"].as_str(), last["status"].as_u64()),
        (Some("/jars/upload"), Some(200))
    );
}

#[test]
fn cluster_gateway_speaks_https_to_flink_rest_ssl_and_trusts_only_the_pinned_ca() {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    flinkguard_ok(d, &["init", "--quiet"]);
    let pki = d.join("pki");
    let secret = |name: &str| std::fs::read_to_string(pki.join(name)).unwrap();
    let dist = TestDist::default_version();
    // Flink's REST endpoint itself on TLS, with the PKI's REST certificate.
    let cluster = ClusterBuilder::new(&dist)
        .taskmanagers(1)
        .config("security.ssl.rest.enabled", "true")
        .config("security.ssl.rest.keystore", pki.join("rest.p12").display())
        .config(
            "security.ssl.rest.keystore-password",
            secret("rest.password"),
        )
        .config("security.ssl.rest.key-password", secret("rest.password"))
        .config(
            "security.ssl.rest.truststore",
            pki.join("rest-truststore.p12").display(),
        )
        .config(
            "security.ssl.rest.truststore-password",
            secret("rest-truststore.password"),
        )
        .rest_tls(pki.join("ca.crt"))
        .start();
    point_at(
        d,
        cluster.ports().rest,
        &[("upstream_ca_file: null", "upstream_ca_file: pki/ca.crt")],
    );
    set_policy(
        d,
        "policy:\n  bindings:\n  - role: admin\n    users: [root]\n",
    );
    flinkguard_ok(d, &["pki", "issue-client", "--user", "root"]);
    let gateway = GatewayProcess::start(d);
    let (code, body) = gateway.curl(Some("root"), &[], "/jobs/overview");
    assert_eq!((code, body.as_str()), (200, "{\"jobs\":[]}"));
    assert_eq!(gateway.admin("/readyz").0, 200);

    // Pinned to another CA, the gateway refuses Flink's certificate: 502, and not ready.
    let other = tempfile::tempdir().unwrap();
    flinkguard_ok(other.path(), &["init", "--quiet"]);
    std::fs::copy(other.path().join("pki/ca.crt"), d.join("other-ca.crt")).unwrap();
    edit_config(
        d,
        &[(
            "upstream_ca_file: pki/ca.crt",
            "upstream_ca_file: other-ca.crt",
        )],
    );
    gateway.wait_for_log("reloaded", Duration::from_secs(10));
    let (code, body) = gateway.curl(Some("root"), &[], "/jobs/overview");
    assert_eq!(code, 502, "{body}");
    assert!(body.to_lowercase().contains("certificate"), "{body}");
    let (code, body) = gateway.admin("/readyz");
    assert_eq!(code, 503, "{body}");
}

/// Reads one HTTP/1.1 response with a `Content-Length` (what the gateway answers for Flink's
/// JSON), leaving the connection open.
fn read_response(stream: &mut impl std::io::Read) -> String {
    let mut all = Vec::new();
    let mut byte = [0u8; 1];
    while !all.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed mid-head");
        all.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&all).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    all.extend_from_slice(&body);
    String::from_utf8_lossy(&all).into_owned()
}

/// `audit_durability: unsynced_lost_on_machine_crash` is announced at start, and a SIGKILL of
/// the gateway loses no line of a request that was answered, in the file or on stdout: each line
/// is written before its answer, only its sync to disk is skipped. Denied requests never reach
/// Flink, so none runs.
#[test]
fn gateway_unsynced_audit_is_announced_and_keeps_answered_lines_through_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    flinkguard_ok(d, &["init", "--quiet"]);
    edit_config(
        d,
        &[(
            "audit_durability: synced",
            "audit_durability: unsynced_lost_on_machine_crash",
        )],
    );
    flinkguard_ok(d, &["pki", "issue-client", "--user", "nobody"]);
    let (mut gateway, stdout) = GatewayProcess::start_with_stdout(d);
    let warning = gateway.wait_for_log("WARNING: audit_durability", Duration::from_secs(10));
    assert!(warning.contains("power loss"), "{warning}");
    for _ in 0..20 {
        assert_eq!(gateway.curl(Some("nobody"), &[], "/jobs/overview").0, 403);
    }
    gateway.signal("KILL");
    gateway.wait_exit(Duration::from_secs(10));
    let lines = audit_lines(d);
    assert_eq!(lines.len(), 20, "{lines:?}");
    for line in &lines {
        assert_eq!(
            (line["user"].as_str(), line["status"].as_u64()),
            (Some("nobody"), Some(403))
        );
    }
    // audit_stdout is on in `init`'s configuration: the same lines, copied by the same task.
    let copied: Vec<serde_json::Value> = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(copied, lines);
}
