//! `flinkguard policy check`: decisions explained, like `kubectl auth can-i`.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;

use common::{expect_input_error, flinkguard, flinkguard_ok, set_policy};

const POLICY: &str = "policy:
  roles:
    auditor: [logs.read, cluster.config]
  bindings:
  - role: viewer
    groups: [analysts]
  - role: developer
    users: [dev]
  - role: auditor
    groups: [audit]
";

fn setup(dir: &Path) {
    flinkguard_ok(dir, &["init", "--quiet"]);
    set_policy(dir, POLICY);
}

fn check(dir: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut full = vec!["policy", "check", "--json"];
    full.extend_from_slice(args);
    let out = flinkguard(dir, &full);
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr))),
    )
}

#[test]
fn decisions_follow_roles_and_what_routes_really_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let viewer = ["--user", "ann", "--group", "analysts"];

    let (code, out) = check(d, &[&viewer[..], &["GET /jobs/overview"]].concat());
    assert_eq!(
        (code, out["operation"].as_str(), out["decision"].as_str()),
        (Some(0), Some("jobs.read"), Some("allow")),
        "{out}"
    );
    let (code, out) = check(d, &[&viewer[..], &["POST /jars/upload"]].concat());
    assert_eq!(
        (code, out["operation"].as_str(), out["decision"].as_str()),
        (Some(1), Some("jars.upload"), Some("deny")),
        "{out}"
    );
    // Routes whose method lies are classified by what they do.
    let (code, out) = check(
        d,
        &[&viewer[..], &["GET /v1/jobs/4f2a/yarn-cancel"]].concat(),
    );
    assert_eq!(
        (code, out["operation"].as_str()),
        (Some(1), Some("jobs.cancel")),
        "{out}"
    );
    let (_, out) = check(d, &[&viewer[..], &["GET /jars/x.jar/plan"]].concat());
    assert_eq!(out["operation"], "jars.run", "{out}");
    let (_, out) = check(d, &["--user", "dev", "GET /jobs/4f2a/jobmanager/config"]);
    assert_eq!(
        (out["operation"].as_str(), out["decision"].as_str()),
        (Some("cluster.config"), Some("deny")),
        "{out}"
    );
    let (code, out) = check(
        d,
        &["--user", "x", "--group", "audit", "GET /jobmanager/config"],
    );
    assert_eq!(
        (code, out["detail"]["role"].as_str()),
        (Some(0), Some("auditor")),
        "{out}"
    );
    // Nobody without a binding; unknown routes are denied.
    assert_eq!(
        check(d, &["--user", "stranger", "GET /jobs/overview"]).0,
        Some(1)
    );
    let (code, out) = check(d, &["--user", "dev", "GET /etc/passwd"]);
    assert_eq!(
        (code, out["operation"].clone()),
        (Some(1), serde_json::Value::Null),
        "{out}"
    );

    let text = flinkguard(
        d,
        &[
            "policy",
            "check",
            "--user",
            "ann",
            "--group",
            "analysts",
            "POST /jobs/4f2a/savepoints",
        ],
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("jobs.savepoint") && text.contains("cancel-job"),
        "{text}"
    );
}

#[test]
fn ambiguous_paths_and_bad_policies_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    expect_input_error(
        &flinkguard(
            d,
            &["policy", "check", "--user", "a", "GET /jobs%2foverview"],
        ),
        &["400"],
    );
    expect_input_error(
        &flinkguard(d, &["policy", "check", "--user", "a", "TRACE /jobs"]),
        &["TRACE"],
    );
    expect_input_error(
        &flinkguard(d, &["policy", "check", "--user", "a", "/jobs"]),
        &["METHOD /path"],
    );
    let config = fs::read_to_string(d.join("flinkguard.yaml")).unwrap();
    fs::write(
        d.join("flinkguard.yaml"),
        config.replace("role: developer", "role: root"),
    )
    .unwrap();
    expect_input_error(
        &flinkguard(d, &["policy", "check", "--user", "a", "GET /"]),
        &["flinkguard.yaml", "policy.bindings[1]", "root"],
    );
    fs::write(
        d.join("flinkguard.yaml"),
        config.replace("logs.read, cluster.config", "logs.read, jobs.nuke"),
    )
    .unwrap();
    expect_input_error(
        &flinkguard(d, &["policy", "check", "--user", "a", "GET /"]),
        &["jobs.nuke"],
    );
}

#[test]
fn jobs_adopt_gives_a_job_an_owner_and_audits_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    flinkguard_ok(d, &["init", "--quiet"]);
    let job = "4f2a9c0e0d1b4e6f8a7b6c5d4e3f2a1b";
    let out = flinkguard_ok(
        d,
        &[
            "jobs", "adopt", job, "--owner", "alice", "--group", "team-a",
        ],
    );
    assert!(out.contains("now belongs to alice"), "{out}");
    let out = flinkguard_ok(d, &["jobs", "adopt", job, "--owner", "bob"]);
    assert!(out.contains("(was alice)"), "{out}");
    let owners: serde_json::Value =
        serde_json::from_str(&flinkguard_ok(d, &["jobs", "owners", "--json"])).unwrap();
    assert_eq!(
        owners,
        serde_json::json!([{"kind": "job", "id": job, "owner": "bob", "groups": []}])
    );
    let audit = std::fs::read_to_string(d.join("audit.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["event"], "adopt");
    assert_eq!(lines[1]["previous_owner"], "alice");
    expect_input_error(
        &flinkguard(d, &["jobs", "adopt", "not-a-job", "--owner", "bob"]),
        &["not-a-job"],
    );
}
