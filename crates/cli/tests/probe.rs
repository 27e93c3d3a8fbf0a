//! `flinkguard probe` against real Flink 2.3: with Flink's default security settings every
//! threat is OPEN (anonymous job submission, plaintext internal endpoints); with the
//! configuration `flinkguard flink-config` renders, every threat is CLOSED even without a
//! gateway: the internal endpoints speak TLS 1.3 only, require the cluster identity and refuse
//! foreign certificates, and REST admits only the gateway's upstream identity.

// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::{expect_input_error, flinkguard, flinkguard_ok, password};
use flinkguard_testkit::{ClusterBuilder, ClusterPorts, FlinkVersion, TestDist};
use serde_json::Value;

/// Runs `flinkguard probe --format json` and returns (exit code, report).
fn probe_json(dir: &std::path::Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["probe", "--format", "json"];
    all.extend_from_slice(args);
    let started = Instant::now();
    let out = flinkguard(dir, &all);
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    eprintln!(
        "probe {args:?}: {took:?} (report says {} ms)\n{}",
        report["elapsed_ms"],
        serde_json::to_string_pretty(&report).unwrap()
    );
    // A generous bound, only to catch a hang; the 10-second goal is measured, not asserted.
    assert!(took < Duration::from_secs(30), "probe took {took:?}");
    (out.status.code().unwrap(), report)
}

fn threat(report: &Value, name: &str) -> String {
    report["threats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["threat"] == name)
        .unwrap_or_else(|| panic!("no threat {name}"))["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn endpoint(report: &Value, port: u16) -> Value {
    report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["endpoint"]
                .as_str()
                .unwrap()
                .ends_with(&format!(":{port}"))
        })
        .unwrap_or_else(|| panic!("port {port} not probed: {report}"))
        .clone()
}

fn findings<'a>(report: &'a Value, id: &str, port: u16) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["id"] == id
                && f["endpoint"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!(":{port}"))
        })
        .collect()
}

fn internal_ports(ports: &ClusterPorts) -> Vec<(&'static str, u16)> {
    let mut all = vec![
        ("JobManager RPC", ports.jm_rpc),
        ("blob server", ports.blob),
    ];
    all.extend(ports.tm_rpc.iter().map(|&p| ("TaskManager RPC", p)));
    all.extend(ports.tm_data.iter().map(|&p| ("TaskManager data", p)));
    all
}

#[test]
fn default_flink_is_open_everywhere() {
    let dist = TestDist::default_version();
    let cluster = ClusterBuilder::new(&dist).taskmanagers(1).start();
    let ports = cluster.ports().clone();
    let work = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", ports.rest);
    let (code, report) = probe_json(work.path(), &["--cluster", &url]);
    assert_eq!(code, 1, "OPEN threats exit 1");
    for name in [
        "unauthorized job control",
        "unauthorized state access",
        "secret exposure",
        "impersonation of cluster components",
    ] {
        assert_eq!(threat(&report, name), "OPEN", "{name}");
    }
    let submission = findings(&report, "FG-PROBE-001", ports.rest);
    assert_eq!(submission[0]["status"], "OPEN", "{submission:?}");
    assert!(
        submission[0]["evidence"]
            .as_str()
            .unwrap()
            .contains("JobSubmitRequestBody")
    );
    assert_eq!(
        findings(&report, "FG-PROBE-008", ports.rest)[0]["status"],
        "OPEN"
    );
    assert!(
        findings(&report, "FG-PROBE-008", ports.rest)[0]["evidence"]
            .as_str()
            .unwrap()
            .contains("2.3.0")
    );
    assert_eq!(
        findings(&report, "FG-PROBE-009", ports.rest)[0]["status"],
        "CLOSED"
    );
    // Every internal endpoint discovered through REST, and each in plaintext.
    for (name, port) in internal_ports(&ports) {
        let e = endpoint(&report, port);
        assert_eq!(e["role"], name);
        assert_eq!(e["transport"], "plaintext", "{name}: {e}");
        assert_eq!(
            findings(&report, "FG-PROBE-020", port)[0]["status"],
            "OPEN",
            "{name}"
        );
    }
    // The human table: grouped by threat, OPEN first, no colour when not a terminal.
    let table =
        String::from_utf8(flinkguard(work.path(), &["probe", "--cluster", &url]).stdout).unwrap();
    assert!(
        table.contains("OPEN       unauthorized job control"),
        "{table}"
    );
    assert!(!table.contains('\x1b'), "no colour into a pipe");
    assert!(table.contains("Probed 5 endpoint(s) in"), "{table}");
    // Only the targets given, without discovery.
    let jm = format!("127.0.0.1:{}", ports.jm_rpc);
    let (code, only) = probe_json(work.path(), &["--target", &jm]);
    assert_eq!(code, 1);
    assert_eq!(only["endpoints"].as_array().unwrap().len(), 1);
    assert_eq!(threat(&only, "unauthorized job control"), "NOT TESTED");
    assert_eq!(threat(&only, "impersonation of cluster components"), "OPEN");
}

#[test]
fn flinkguard_internal_tls_is_closed_on_every_internal_endpoint() {
    let dist = TestDist::get(FlinkVersion::DEFAULT);
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    flinkguard_ok(d, &["init", "--quiet", "--key", "ecdsa-p256"]);
    // Flink's REST speaks mutual TLS with the gateway's upstream identity only, as rendered;
    // the testkit uses that identity to wait for the cluster.
    let prepared = ClusterBuilder::new(&dist)
        .taskmanagers(1)
        .rest_upstream_identity(&d.join("pki"))
        .prepare();
    let rest_port = prepared.ports().rest;
    let config = fs::read_to_string(d.join("flinkguard.yaml")).unwrap();
    fs::write(
        d.join("flinkguard.yaml"),
        config.replace("rest_port: 8081", &format!("rest_port: {rest_port}")),
    )
    .unwrap();
    let conf = prepared.config_path().to_str().unwrap().to_owned();
    flinkguard_ok(
        d,
        &[
            "flink-config",
            "--flink-version",
            &FlinkVersion::DEFAULT.to_string(),
            "--merge",
            &conf,
            "--out",
            &conf,
        ],
    );
    let cluster = prepared.start();
    let ports = cluster.ports().clone();
    // Anonymous discovery cannot read ports from a REST endpoint that demands a certificate:
    // discovery uses the upstream identity (the only one REST admits, trusted as pinned); the
    // probes themselves stay anonymous.
    let url = format!("https://127.0.0.1:{rest_port}");
    let upstream = d.join("pki/upstream");
    let (cert, key) = (upstream.join("upstream.crt"), upstream.join("upstream.key"));
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let args = [
        "--cluster",
        url.as_str(),
        "--cert",
        cert,
        "--key",
        key,
        "--ca",
        cert,
    ];
    let (code, report) = probe_json(d, &args);
    assert_eq!(
        code, 0,
        "every threat CLOSED, even without a gateway in front"
    );
    assert_eq!(
        threat(&report, "impersonation of cluster components"),
        "CLOSED"
    );
    for (name, port) in internal_ports(&ports) {
        let e = endpoint(&report, port);
        assert_eq!(e["role"], name);
        assert_eq!(e["transport"], "tls", "{name}: {e}");
        assert_eq!(e["client_certificate_required"], true, "{name}: {e}");
        let versions: Vec<&str> = e["tls_versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(
            versions,
            vec!["TLSv1.3"],
            "{name}: flinkguard renders TLS 1.3 only"
        );
        assert_eq!(
            e["server_certificate"]["self_signed"], true,
            "the cluster identity"
        );
        let foreign = findings(&report, "FG-PROBE-022", port);
        assert_eq!(foreign.len(), 2, "ECDSA and RSA foreign certificates");
        for id in [
            "FG-PROBE-010",
            "FG-PROBE-011",
            "FG-PROBE-012",
            "FG-PROBE-021",
            "FG-PROBE-022",
        ] {
            for f in findings(&report, id, port) {
                assert_eq!(f["status"], "CLOSED", "{name} {id}: {f}");
            }
        }
    }
    // REST itself admits only the gateway's identity: nothing anonymous gets through.
    let rest = endpoint(&report, rest_port);
    assert_eq!(rest["client_certificate_required"], true, "{rest}");
    for id in [
        "FG-PROBE-001",
        "FG-PROBE-002",
        "FG-PROBE-003",
        "FG-PROBE-007",
    ] {
        assert_eq!(
            findings(&report, id, rest_port)[0]["status"],
            "CLOSED",
            "{id}"
        );
    }
}

/// Internal SSL on with Flink's default protocol (TLS 1.2) and a suite list that adds Flink
/// 1.x's old default `TLS_RSA_WITH_AES_128_CBC_SHA` to a strong one: the raw ClientHello
/// scanner against Java enumerates both (the server's order) and flags the CBC one, with
/// TLS 1.0, 1.1 and 1.3 refused. (Flink 2.3's own default list is
/// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, `..._256_GCM_SHA384`: the probe found exactly those.)
#[test]
fn weak_internal_suite_is_found() {
    let dist = TestDist::default_version();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    flinkguard_ok(d, &["init", "--quiet", "--key", "rsa-3072"]);
    let keystore = d.join("pki/internal.p12").display().to_string();
    let pass = password(&d.join("pki/internal.password"));
    let cluster = ClusterBuilder::new(&dist)
        .taskmanagers(1)
        .config("security.ssl.internal.enabled", "true")
        .config("security.ssl.internal.keystore", &keystore)
        .config("security.ssl.internal.truststore", &keystore)
        .config("security.ssl.internal.keystore-password", &pass)
        .config("security.ssl.internal.truststore-password", &pass)
        .config("security.ssl.internal.key-password", &pass)
        .config(
            "security.ssl.algorithms",
            "TLS_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        )
        .start();
    let ports = cluster.ports().clone();
    let jm = format!("127.0.0.1:{}", ports.jm_rpc);
    let (code, report) = probe_json(d, &["--target", &jm]);
    assert_eq!(code, 1);
    let e = endpoint(&report, ports.jm_rpc);
    assert_eq!(e["transport"], "tls");
    assert_eq!(e["client_certificate_required"], true);
    let versions = e["tls_versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "{e}");
    assert_eq!(versions[0]["version"], "TLSv1.2");
    let mut suites: Vec<&str> = versions[0]["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    suites.sort();
    assert_eq!(
        suites,
        vec![
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_RSA_WITH_AES_128_CBC_SHA"
        ]
    );
    let weak = findings(&report, "FG-PROBE-012", ports.jm_rpc);
    assert_eq!(weak[0]["status"], "OPEN");
    let evidence = weak[0]["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("TLS_RSA_WITH_AES_128_CBC_SHA"),
        "{evidence}"
    );
    assert!(!evidence.contains("GCM"), "{evidence}");
    assert_eq!(
        findings(&report, "FG-PROBE-011", ports.jm_rpc)[0]["status"],
        "CLOSED"
    );
    assert_eq!(threat(&report, "secret exposure"), "OPEN");
    assert_eq!(
        threat(&report, "impersonation of cluster components"),
        "CLOSED"
    );
}

#[test]
fn bad_input_exits_2_naming_the_flag() {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    expect_input_error(
        &flinkguard(d, &["probe", "--target", "nonsense"]),
        &["--target", "HOST:PORT"],
    );
    expect_input_error(
        &flinkguard(d, &["probe", "--cluster", "ftp://127.0.0.1:1"]),
        &["--cluster", "http://HOST:PORT"],
    );
    expect_input_error(&flinkguard(d, &["probe"]), &["--cluster", "--target"]);
    expect_input_error(
        &flinkguard(
            d,
            &[
                "probe",
                "--cluster",
                "https://127.0.0.1:1",
                "--cert",
                "missing.pem",
                "--key",
                "missing-key.pem",
            ],
        ),
        &["--cert", "missing.pem"],
    );
    fs::write(d.join("junk.pem"), "not a certificate").unwrap();
    expect_input_error(
        &flinkguard(
            d,
            &[
                "probe",
                "--cluster",
                "https://127.0.0.1:1",
                "--ca",
                "junk.pem",
            ],
        ),
        &["--ca"],
    );
}
