//! The gateway's first slice against a real Flink 2.3 and real curl: mTLS authentication,
//! authorization by the operation a request really performs, strict targets, audit lines.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;
mod gatewaykit;

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::Command;

use common::{flinkguard_ok, set_policy};
use flinkguard_testkit::{ClusterBuilder, TestDist};
use gatewaykit::{GatewayProcess, curl, point_at};

#[test]
fn cluster_gateway_authenticates_authorizes_and_audits() {
    let dist = TestDist::default_version();
    let cluster = ClusterBuilder::new(&dist).taskmanagers(1).start();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    flinkguard_ok(d, &["init", "--quiet"]);
    point_at(
        d,
        cluster.ports().rest,
        &[("max_body_bytes: 104857600", "max_body_bytes: 4096")],
    );
    set_policy(
        d,
        "policy:\n  bindings:\n  - role: viewer\n    groups: [analysts]\n  - role: admin\n    users: [root]\n",
    );
    flinkguard_ok(
        d,
        &[
            "pki",
            "issue-client",
            "--user",
            "alice",
            "--group",
            "analysts",
        ],
    );
    flinkguard_ok(d, &["pki", "issue-client", "--user", "root"]);
    flinkguard_ok(d, &["pki", "issue-client", "--user", "mallory"]);

    let (gateway, stdout) = GatewayProcess::start_with_stdout(d);
    let port = gateway.port;
    let base = format!("https://localhost:{port}");
    let mut requests = 0;
    let mut get = |user: Option<&str>, extra: &[&str], path: &str| {
        requests += 1;
        curl(d, user, extra, &format!("{base}{path}"))
    };

    // No certificate: 401 in Flink's error shape.
    let (code, body) = get(None, &[], "/jobs/overview");
    assert_eq!(code, 401, "{body}");
    assert!(
        body.starts_with("{\"errors\":[\"flinkguard: authentication required"),
        "{body}"
    );
    // A viewer reads, over HTTP/2 and HTTP/1.1.
    assert_eq!(
        get(Some("alice"), &["--http2"], "/jobs/overview"),
        (200, "{\"jobs\":[]}".to_owned())
    );
    assert_eq!(get(Some("alice"), &["--http1.1"], "/v1/overview").0, 200);
    assert_eq!(get(Some("alice"), &[], "/").0, 200, "the Web UI");
    // ... but cannot upload, cancel through a GET, run main() through `plan`, or read secrets.
    for (method, path, operation) in [
        ("POST", "/jars/upload", "jars.upload"),
        (
            "GET",
            "/jobs/00000000000000000000000000000000/yarn-cancel",
            "jobs.cancel",
        ),
        ("GET", "/jars/x.jar/plan", "jars.run"),
        ("GET", "/jobmanager/config", "cluster.config"),
    ] {
        let (code, body) = get(Some("alice"), &["-X", method], path);
        assert_eq!(code, 403, "{method} {path}: {body}");
        assert!(body.contains(operation), "{body}");
    }
    // A savepoint that cancels is a cancel, decided on the body.
    let (code, body) = get(
        Some("alice"),
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            "{\"cancel-job\": true}",
        ],
        "/jobs/00000000000000000000000000000000/savepoints",
    );
    assert_eq!(code, 403);
    assert!(body.contains("jobs.cancel"), "{body}");
    // Identity headers from a client are ignored, not honoured.
    assert_eq!(
        get(
            Some("alice"),
            &["-H", "X-Forwarded-User: root"],
            "/jobmanager/config"
        )
        .0,
        403
    );
    // A user without a binding gets nothing; an admin gets the config.
    assert_eq!(get(Some("mallory"), &[], "/jobs/overview").0, 403);
    let (code, body) = get(Some("root"), &[], "/jobmanager/config");
    assert_eq!(code, 200);
    assert!(body.contains("rest.port"), "{body}");
    // Targets Flink could read differently are refused before anything else.
    for path in [
        "/jobs%2foverview",
        "/jobs/../jobmanager/config",
        "/jobs;x/overview",
        "/jobs//overview",
        "/jobs/%252e%252e",
    ] {
        let (code, body) = get(Some("root"), &[], path);
        assert_eq!(code, 400, "{path}: {body}");
    }
    // A body over gateway.max_body_bytes is refused by its declared length, before it is read.
    let big = d.join("big.jar");
    fs::write(&big, vec![b'x'; 10_000]).unwrap();
    let (code, body) = get(
        Some("root"),
        // With `Expect: 100-continue` curl sends the body only once the gateway asks for it:
        // the 413 arrives first, proof that the body was never read.
        &[
            "--http1.1",
            "-H",
            "Expect: 100-continue",
            "-X",
            "POST",
            "--data-binary",
            &format!("@{}", big.display()),
        ],
        "/jars/upload",
    );
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("gateway.max_body_bytes"), "{body}");
    // Unknown routes are denied, never handed to Flink's static-file handler.
    assert_eq!(get(Some("root"), &[], "/jobmanager/secrets").0, 404);

    // Service tokens from `flinkguard token issue`, decided by the same policy.
    let issue = |args: &[&str]| {
        flinkguard_ok(d, &[&["token", "issue", "--ttl", "10m"], args].concat())
            .trim()
            .to_owned()
    };
    let admin_token = issue(&["--user", "root"]);
    let viewer_token = issue(&["--user", "ci-reader", "--group", "analysts"]);
    let other_audience = issue(&["--user", "root", "--audience", "someone-else"]);
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    assert_eq!(
        get(None, &["-H", &bearer(&admin_token)], "/jobmanager/config").0,
        200
    );
    assert_eq!(
        get(None, &["-H", &bearer(&viewer_token)], "/jobs/overview").0,
        200
    );
    let (code, body) = get(
        None,
        &["-H", &bearer(&viewer_token), "-X", "POST"],
        "/jars/upload",
    );
    assert_eq!(code, 403, "{body}");
    let (code, body) = get(None, &["-H", &bearer(&other_audience)], "/jobs/overview");
    assert_eq!(code, 401, "{body}");
    // `alg: none` with the admin's claims: refused.
    let payload = admin_token.split('.').nth(1).unwrap();
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    assert_eq!(
        get(None, &["-H", &bearer(&unsigned)], "/jobs/overview").0,
        401
    );
    let tampered = admin_token.replacen(payload, viewer_token.split('.').nth(1).unwrap(), 1);
    assert_eq!(
        get(None, &["-H", &bearer(&tampered)], "/jobs/overview").0,
        401
    );

    // A certificate from another CA is refused during the handshake.
    let other = tempfile::tempdir().unwrap();
    flinkguard_ok(other.path(), &["init", "--quiet"]);
    flinkguard_ok(other.path(), &["pki", "issue-client", "--user", "root"]);
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(d.join("pki/ca.crt"))
        .arg("--cert")
        .arg(other.path().join("pki/clients/root/client.crt"))
        .arg("--key")
        .arg(other.path().join("pki/clients/root/client.key"))
        .arg(format!("{base}/jobs/overview"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "000",
        "a foreign certificate must not get an HTTP answer"
    );

    // Flink gone: an allowed request gets 502 in Flink's error shape, audited as allowed.
    drop(cluster);
    let (code, body) = get(Some("root"), &[], "/overview");
    assert_eq!(code, 502, "{body}");
    assert!(
        body.starts_with("{\"errors\":[\"flinkguard: Flink is not reachable"),
        "{body}"
    );

    drop(gateway);
    let audit: Vec<serde_json::Value> = BufReader::new(stdout)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(
        audit.len(),
        requests,
        "one audit line per request that reached HTTP"
    );
    let denied = audit.iter().filter(|l| l["decision"] == "deny").count();
    assert!(denied >= 10, "{denied} denials audited");
    let cancel = audit
        .iter()
        .find(|l| l["path"].as_str().unwrap().ends_with("yarn-cancel"))
        .unwrap();
    assert_eq!(
        (
            cancel["user"].as_str(),
            cancel["operation"].as_str(),
            cancel["status"].as_u64()
        ),
        (Some("alice"), Some("jobs.cancel"), Some(403))
    );
    assert_eq!(cancel["job_id"], "00000000000000000000000000000000");
    let last = audit.last().unwrap();
    assert_eq!(
        (last["decision"].as_str(), last["status"].as_u64()),
        (Some("allow"), Some(502)),
        "{last}"
    );
}
