//! `flinkguard up`, `status` and `down` against a real Flink 2.3 in a temp dir.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{expect_input_error, flinkguard, flinkguard_ok};
use flinkguard_testkit::{TestDist, free_ports, tls::listening_addresses};

fn status_json(dir: &Path) -> (Option<i32>, serde_json::Value) {
    let out = flinkguard(dir, &["status", "--json"]);
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).expect("status --json"),
    )
}

fn pid_exists(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn up_then_down_leaves_nothing_and_status_tells_the_truth() {
    // Installed (or found cached) the way `up` would; done first so its time is not `up`'s.
    TestDist::default_version();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    flinkguard_ok(d, &["init", "--quiet"]);
    // Free ports instead of 8081/6123, so the test cannot collide with anything on the machine.
    let ports = free_ports(4).unwrap();
    let config = fs::read_to_string(d.join("flinkguard.yaml")).unwrap();
    fs::write(
        d.join("flinkguard.yaml"),
        config
            .replace("rest_port: 8081", &format!("rest_port: {}", ports[0]))
            .replace("rpc_port: 6123", &format!("rpc_port: {}", ports[1]))
            .replace(
                "listen: 127.0.0.1:8443",
                &format!("listen: 127.0.0.1:{}", ports[2]),
            )
            .replace(
                "admin_listen: 127.0.0.1:8444",
                &format!("admin_listen: 127.0.0.1:{}", ports[3]),
            ),
    )
    .unwrap();

    let (code, before) = status_json(d);
    assert_eq!(code, Some(1), "nothing runs yet: {before}");
    assert_eq!(before["running"], false);

    let out = flinkguard_ok(d, &["up"]);
    assert!(out.contains("Hardened Flink 2.3.0 is running"), "{out}");
    // The curl command `up` prints works as printed: through the gateway, with the admin's
    // client certificate.
    let curl_line = out
        .lines()
        .find(|l| l.trim_start().starts_with("curl "))
        .expect("up prints a curl command");
    let args: Vec<&str> = curl_line.split_whitespace().skip(1).collect();
    let answer = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(&args)
        .current_dir(d)
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer.stdout);
    assert!(
        answer.ends_with("\n200") && answer.contains("\"taskmanagers\":1"),
        "{curl_line}\n{answer}"
    );
    // Flink's REST endpoint itself admits only the gateway's upstream identity: not plain
    // http (Flink answers a redirect to https, nothing else), not TLS without a client
    // certificate, not a foreign self-signed one (another PKI's upstream identity, same
    // subject), not a user's certificate from flinkguard's CA. Real curl, trusting the pinned
    // upstream certificate so only the client side can fail.
    flinkguard_ok(d, &["pki", "issue-client", "--user", "mallory"]);
    let foreign = tempfile::tempdir().unwrap();
    flinkguard_ok(foreign.path(), &["init", "--quiet"]);
    let foreign_cert = foreign.path().join("pki/upstream/upstream.crt");
    let foreign_key = foreign.path().join("pki/upstream/upstream.key");
    let direct = |url: &str, extra: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
            .args(["--cacert", "pki/upstream/upstream.crt"])
            .args(extra)
            .arg(url)
            .current_dir(d)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
        (code.to_owned(), body.to_owned())
    };
    let rest = format!("https://127.0.0.1:{}/overview", ports[0]);
    let (code, body) = direct(&format!("http://127.0.0.1:{}/overview", ports[0]), &[]);
    assert!(
        (code == "301" || code == "000") && body.is_empty(),
        "plain http: {code} {body}"
    );
    for (who, extra) in [
        ("no client certificate", vec![]),
        (
            "a foreign self-signed certificate",
            vec![
                "--cert",
                foreign_cert.to_str().unwrap(),
                "--key",
                foreign_key.to_str().unwrap(),
            ],
        ),
        (
            "a user's certificate from flinkguard's CA",
            vec![
                "--cert",
                "pki/clients/mallory/client.crt",
                "--key",
                "pki/clients/mallory/client.key",
            ],
        ),
        (
            "the admin's certificate from flinkguard's CA",
            vec![
                "--cert",
                "pki/clients/admin/client.crt",
                "--key",
                "pki/clients/admin/client.key",
            ],
        ),
    ] {
        let (code, body) = direct(&rest, &extra);
        assert_eq!(code, "000", "Flink REST answered {who}: {body}");
    }
    // Positive control: the gateway's identity gets in, so the refusals above are real.
    let (code, body) = direct(
        &rest,
        &[
            "--cert",
            "pki/upstream/upstream.crt",
            "--key",
            "pki/upstream/upstream.key",
        ],
    );
    assert!(
        code == "200" && body.contains("\"taskmanagers\":1"),
        "{code} {body}"
    );
    // And mallory's request through the gateway reaches Flink (authorized by policy: 403,
    // not a TLS failure), while the admin's works (200, above).
    let through = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--cacert", "pki/ca.crt"])
        .args(["--cert", "pki/clients/mallory/client.crt"])
        .args(["--key", "pki/clients/mallory/client.key"])
        .arg(format!("https://localhost:{}/overview", ports[2]))
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&through.stdout), "403");

    // Without a certificate the gateway answers 401; REST itself is on loopback only.
    let anonymous = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            "pki/ca.crt",
            &format!("https://localhost:{}/overview", ports[2]),
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&anonymous.stdout), "401");
    let audit = fs::read_to_string(d.join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 3, "{audit}");
    // The admin listener: Flink is reachable behind the gateway, and both requests are counted.
    assert!(
        out.contains(&format!("http://127.0.0.1:{}/healthz", ports[3])),
        "{out}"
    );
    let admin = |path: &str| {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}"])
            .arg(format!("http://127.0.0.1:{}{path}", ports[3]))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(admin("/healthz"), "ok\n\n200");
    assert_eq!(admin("/readyz"), "ready\n\n200");
    let metrics = admin("/metrics");
    for line in [
        "flinkguard_requests_total{operation=\"cluster.read\",decision=\"allow\",status=\"200\"} 1",
        "flinkguard_requests_total{operation=\"none\",decision=\"deny\",status=\"401\"} 1",
        "flinkguard_authentication_failures_total{reason=\"no_credentials\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }

    let (code, running) = status_json(d);
    assert_eq!(code, Some(0), "{running}");
    assert_eq!(running["running"], true);
    assert_eq!(running["rest"]["taskmanagers"], 1);
    assert_eq!(
        running["rest_url"],
        format!("https://127.0.0.1:{}", ports[0]),
        "status checks Flink over mutual TLS: {running}"
    );
    let pids: Vec<u64> = running["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "JobManager, TaskManager, gateway: {running}");
    assert!(pids.iter().all(|&pid| pid_exists(pid)));
    // REST listens on loopback only.
    assert_eq!(
        listening_addresses(ports[0]),
        vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    // The rendered config holds passwords: owner-only.
    let conf = d.join(".flinkguard/conf/config.yaml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&conf).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // What an outsider finds: `probe` (the admin's certificate is used only to discover the
    // ports) reports every FLIP-26 threat CLOSED, on the gateway, on Flink's own REST port
    // behind it, and on every internal port.
    let gateway_url = format!("https://127.0.0.1:{}", ports[2]);
    let admin_tls = [
        "--ca",
        "pki/ca.crt",
        "--cert",
        "pki/clients/admin/client.crt",
        "--key",
        "pki/clients/admin/client.key",
    ];
    let mut probe = vec![
        "probe",
        "--cluster",
        gateway_url.as_str(),
        "--format",
        "json",
    ];
    probe.extend(admin_tls);
    let out = flinkguard(d, &probe);
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let threats = report["threats"].as_array().unwrap();
    assert_eq!(threats.len(), 4, "{report:#}");
    assert!(
        threats.iter().all(|t| t["status"] == "CLOSED"),
        "{report:#}"
    );
    let probed: Vec<&str> = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    for port in [ports[0], ports[1], ports[2]] {
        assert!(
            probed.iter().any(|e| e.ends_with(&format!(":{port}"))),
            "port {port} not probed: {probed:?}"
        );
    }
    // And `audit --rest` reads the running cluster's effective configuration through the
    // gateway: nothing above LOW.
    let mut audit = vec!["audit", "--rest", gateway_url.as_str(), "--format", "json"];
    audit.extend(admin_tls);
    let out = flinkguard(d, &audit);
    let findings: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(out.status.code(), Some(0), "{findings:#}");
    assert!(
        findings
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] == "low"),
        "{findings:#}"
    );

    // A second `up` does not start a second cluster.
    let again = flinkguard_ok(d, &["up"]);
    assert!(again.contains("already running"), "{again}");
    let (_, still) = status_json(d);
    assert_eq!(still["processes"], running["processes"]);

    // Killing the TaskManager behind flinkguard's back: status must notice.
    let tm = pids[1];
    Command::new("kill")
        .arg("-9")
        .arg(tm.to_string())
        .status()
        .unwrap();
    for _ in 0..50 {
        if !pid_exists(tm)
            || fs::read_to_string(format!("/proc/{tm}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (code, degraded) = status_json(d);
    assert_eq!(code, Some(1), "{degraded}");
    assert_eq!(degraded["running"], false);

    let out = flinkguard_ok(d, &["down"]);
    assert!(out.contains("Stopped"), "{out}");
    for pid in pids {
        assert!(
            !pid_exists(pid)
                || fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z"),
            "pid {pid} survived `down`"
        );
    }
    let (code, after) = status_json(d);
    assert_eq!(code, Some(1));
    assert_eq!(after["running"], false);
    assert!(!d.join(".flinkguard/state.json").exists());
    // `down` again is harmless.
    assert!(flinkguard_ok(d, &["down"]).contains("Nothing to stop"));
}

#[test]
fn up_refuses_a_busy_port_and_missing_java_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    flinkguard_ok(d, &["init", "--quiet"]);
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let config = fs::read_to_string(d.join("flinkguard.yaml")).unwrap();
    fs::write(
        d.join("flinkguard.yaml"),
        config.replace("rest_port: 8081", &format!("rest_port: {port}")),
    )
    .unwrap();
    TestDist::default_version();
    expect_input_error(
        &flinkguard(d, &["up"]),
        &[&format!("port {port}"), "flink.rest_port"],
    );
    assert!(!d.join(".flinkguard/state.json").exists());

    let out = Command::new(env!("CARGO_BIN_EXE_flinkguard"))
        .arg("up")
        .current_dir(d)
        .env("PATH", "/nonexistent")
        .env_remove("JAVA_HOME")
        .output()
        .unwrap();
    expect_input_error(&out, &["Java", "openjdk-17"]);
}
