//! The redaction rules against real Flink 2.3 responses (see `fixtures/README.md`).
// Helpers outside #[test] functions unwrap too: a fixture that fails to load fails the test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flinkguard_redact::{REDACTED, RedactionRules, UNFILTERED_ROUTES};
use serde_json::Value;

/// The secrets the fixture cluster was given.
const SECRETS: &[&str] = &["hunter2", "AKIAEXAMPLE123", "tmsecret99"];

/// Every fixture and the route template it answers.
const FIXTURES: &[(&str, &str)] = &[
    ("jobmanager-config.json", "/jobmanager/config"),
    ("jobmanager-environment.json", "/jobmanager/environment"),
    ("job-config-named.json", "/jobs/:jobid/config"),
    ("job-config-user-config.json", "/jobs/:jobid/config"),
    ("job-config-flink-hidden.json", "/jobs/:jobid/config"),
    ("jobs-overview.json", "/jobs/overview"),
    ("job-details.json", "/jobs/:jobid"),
    ("job-plan.json", "/jobs/:jobid/plan"),
    ("jar-plan.json", "/jars/:jarid/plan"),
    ("job-exceptions-restarting.json", "/jobs/:jobid/exceptions"),
    ("job-exceptions-failed.json", "/jobs/:jobid/exceptions"),
    (
        "job-execution-result-failed.json",
        "/jobs/:jobid/execution-result",
    ),
    ("applications-overview.json", "/applications/overview"),
    ("application-details.json", "/applications/:applicationid"),
    (
        "application-exceptions.json",
        "/applications/:applicationid/exceptions",
    ),
    ("jobmanager.log", "/jobmanager/log"),
    ("taskmanager.log", "/taskmanagers/:taskmanagerid/log"),
    ("taskmanager-details.json", "/taskmanagers/:taskmanagerid"),
    ("taskmanagers.json", "/taskmanagers"),
    ("job-checkpoints.json", "/jobs/:jobid/checkpoints"),
    (
        "job-checkpoints-config.json",
        "/jobs/:jobid/checkpoints/config",
    ),
    (
        "job-savepoint-status.json",
        "/jobs/:jobid/savepoints/:triggerid",
    ),
    ("error-404.json", "/jobs/:jobid/savepoints/:triggerid"),
    ("vertex-details.json", "/jobs/:jobid/vertices/:vertexid"),
    (
        "vertex-subtasks-metrics.json",
        "/jobs/:jobid/vertices/:vertexid/subtasks/metrics",
    ),
    (
        "vertex-flamegraph.json",
        "/jobs/:jobid/vertices/:vertexid/flamegraph",
    ),
    ("jobmanager-thread-dump.json", "/jobmanager/thread-dump"),
    ("overview.json", "/overview"),
    ("dashboard-config.json", "/config"),
];

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".json") {
        "application/json; charset=UTF-8"
    } else {
        "text/plain"
    }
}

fn occurrences(haystack: &[u8], needle: &str) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

fn secret_occurrences(bytes: &[u8]) -> usize {
    SECRETS.iter().map(|s| occurrences(bytes, s)).sum()
}

/// Every string of a JSON document that is base64 Java serialization, decoded.
fn java_blobs(value: &Value, found: &mut Vec<Vec<u8>>) {
    match value {
        Value::String(s) if s.starts_with("rO0AB") => {
            if let Ok(bytes) = STANDARD.decode(s) {
                found.push(bytes);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| java_blobs(v, found)),
        Value::Object(members) => members.values().for_each(|v| java_blobs(v, found)),
        _ => {}
    }
}

/// Same shape: the same members and elements, the same types, and equal values except where
/// the redacted side shows the marker.
fn assert_same_shape(before: &Value, after: &Value, path: &str) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: member count");
            let renamed_a: Vec<_> = a.iter().filter(|(k, _)| !b.contains_key(*k)).collect();
            let renamed_b: Vec<_> = b.iter().filter(|(k, _)| !a.contains_key(*k)).collect();
            assert_eq!(renamed_a.len(), renamed_b.len(), "{path}");
            for ((ka, va), (kb, vb)) in renamed_a.iter().zip(&renamed_b) {
                assert!(kb.contains(REDACTED), "{path}: member {ka} became {kb}");
                assert_same_shape(va, vb, &format!("{path}/{kb}"));
            }
            for (k, va) in a {
                if let Some(vb) = b.get(k) {
                    assert_same_shape(va, vb, &format!("{path}/{k}"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: element count");
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                assert_same_shape(va, vb, &format!("{path}[{i}]"));
            }
        }
        (Value::String(a), Value::String(b)) if a.starts_with("rO0AB") && a != b => {
            // Java serialization is masked in place: same length once decoded.
            let (a, b) = (STANDARD.decode(a).unwrap(), STANDARD.decode(b).unwrap());
            assert_eq!(a.len(), b.len(), "{path}");
        }
        (a, Value::String(s)) if a != after => {
            let a = a.to_string();
            assert!(
                s.contains(REDACTED),
                "{path}: {} became {}",
                &a[..a.len().min(200)],
                &s[..s.len().min(200)]
            );
        }
        (a, b) => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn no_secret_survives_and_nothing_else_changes() {
    let rules = RedactionRules::default();
    for &(name, route) in FIXTURES {
        let body = fixture(name);
        assert_eq!(
            rules.filters(route),
            !UNFILTERED_ROUTES.contains(&route),
            "{name}"
        );
        let (out, count) = rules
            .redact_response(Some(content_type(name)), &body)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for secret in SECRETS {
            assert_eq!(occurrences(&out, secret), 0, "{name} still shows {secret}");
        }
        let mut expected = secret_occurrences(&body);
        if name.ends_with(".json") {
            let before: Value = serde_json::from_slice(&body).unwrap();
            let after: Value = serde_json::from_slice(&out)
                .unwrap_or_else(|e| panic!("{name}: redacted body is not JSON: {e}"));
            assert_same_shape(&before, &after, name);
            let (mut blobs_before, mut blobs_after) = (Vec::new(), Vec::new());
            java_blobs(&before, &mut blobs_before);
            java_blobs(&after, &mut blobs_after);
            expected += blobs_before
                .iter()
                .map(|b| secret_occurrences(b))
                .sum::<usize>();
            for blob in &blobs_after {
                assert_eq!(
                    secret_occurrences(blob),
                    0,
                    "{name}: secret in a serialized value"
                );
            }
        } else {
            let (before, after) = (
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(&out),
            );
            assert_eq!(before.lines().count(), after.lines().count(), "{name}");
            for (a, b) in before.lines().zip(after.lines()) {
                if secret_occurrences(a.as_bytes()) == 0 {
                    assert_eq!(a, b, "{name}: a line without secrets changed");
                }
            }
        }
        // Each secret value redacted once, and nothing else.
        assert_eq!(count, expected, "{name}");
        if expected == 0 {
            assert_eq!(
                out, body,
                "{name}: a body without secrets must pass unchanged"
            );
        }
        // A second pass finds nothing more.
        let (again, more) = rules
            .redact_response(Some(content_type(name)), &out)
            .unwrap();
        assert_eq!((more, again), (0, out), "{name}");
    }
}

#[test]
fn cluster_config_entries() {
    let (out, count) = RedactionRules::default()
        .redact_json(&fixture("jobmanager-config.json"))
        .unwrap();
    assert_eq!(count, 3);
    let entries: Vec<Value> = serde_json::from_slice(&out).unwrap();
    let value = |key: &str| {
        entries
            .iter()
            .find(|e| e["key"] == key)
            .map(|e| e["value"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(value("s3.access-key"), REDACTED);
    assert_eq!(
        value("env.java.opts.jobmanager"),
        "-Dapp.db.password=******"
    );
    assert_eq!(
        value("env.java.opts.taskmanager"),
        "-Dapp.tm.password=******"
    );
    assert!(value("rest.port").parse::<u16>().is_ok());
    assert_eq!(value("rest.bind-address"), "127.0.0.1");
    assert!(value("env.java.opts.all").starts_with("--add-exports=java.rmi/sun.rmi.registry"));
}

#[test]
fn jvm_options() {
    let (out, count) = RedactionRules::default()
        .redact_json(&fixture("jobmanager-environment.json"))
        .unwrap();
    assert_eq!(count, 1);
    let env: Value = serde_json::from_slice(&out).unwrap();
    let options: Vec<&str> = env["jvm"]["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert!(options.contains(&"-Dapp.db.password=******"));
    assert!(options.contains(&"-Xmx469762048"));
    assert!(options.iter().any(|o| o.starts_with("-Dlog.file=")));
}

#[test]
fn job_parameters() {
    let (out, count) = RedactionRules::default()
        .redact_json(&fixture("job-config-user-config.json"))
        .unwrap();
    assert_eq!(count, 2);
    let config: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        config["execution-config"]["user-config"],
        serde_json::json!({
            "s3.access-key": "******",
            "db.password=******": "******",
            "name": "kv-job",
        })
    );
    assert_eq!(config["name"], "kv-job");
    assert_eq!(config["execution-config"]["job-parallelism"], 1);
}

#[test]
fn job_names() {
    let (out, count) = RedactionRules::default()
        .redact_json(&fixture("jobs-overview.json"))
        .unwrap();
    assert_eq!(count, 1);
    let jobs: Value = serde_json::from_slice(&out).unwrap();
    let names: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"--db.password=******"));
    assert!(names.contains(&"redact-fails") && names.contains(&"redact-job"));
    let (plan, _) = RedactionRules::default()
        .redact_json(&fixture("jar-plan.json"))
        .unwrap();
    let plan: Value = serde_json::from_slice(&plan).unwrap();
    assert_eq!(plan["plan"]["name"], "--db.password ******");
}

#[test]
fn serialized_exception_keeps_its_framing() {
    let body = fixture("job-execution-result-failed.json");
    let (out, _) = RedactionRules::default().redact_json(&body).unwrap();
    let blob = |doc: &[u8]| {
        let v: Value = serde_json::from_slice(doc).unwrap();
        let s = v["job-execution-result"]["failure-cause"]["serialized-throwable"]
            .as_str()
            .unwrap()
            .to_owned();
        STANDARD.decode(s).unwrap()
    };
    let (before, after) = (blob(&body), blob(&out));
    assert_eq!(occurrences(&before, "hunter2"), 10);
    // Masked in place, not replaced: every length stays, so Flink's client can still
    // deserialize the exception (checked once by hand with `SerializedThrowable`).
    assert_eq!(before.len(), after.len());
    assert_eq!(
        occurrences(&after, "app&password=******* (db.password=********"),
        5
    );
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert!(changed <= 10 * "hunter2)".len(), "{changed} bytes changed");
}

#[test]
fn logs_stream_like_whole() {
    let rules = RedactionRules::default();
    for name in ["jobmanager.log", "taskmanager.log"] {
        let body = fixture(name);
        let (whole, count) = rules.redact_bytes(&body);
        let mut redactor = rules.text_redactor();
        let mut streamed = Vec::new();
        // Odd chunk sizes, so chunks end inside keys and values.
        for chunk in body.chunks(997) {
            streamed.extend(redactor.push(chunk));
        }
        let (tail, streamed_count) = redactor.finish();
        streamed.extend(tail);
        assert_eq!((streamed, streamed_count), (whole.clone(), count), "{name}");
        let text = String::from_utf8(whole).unwrap();
        assert!(text.contains("Loading configuration property: s3.access-key, ******"));
        assert!(text.contains("Loading configuration property: rest.bind-address, 127.0.0.1"));
    }
    let (jm, _) = rules.redact_bytes(&fixture("jobmanager.log"));
    let jm = String::from_utf8(jm).unwrap();
    assert!(jm.contains("[] -     -Dapp.db.password=******\n"));
    assert!(jm.contains("Received job submission '--db.password=******"));
}

#[test]
fn secret_routes_are_filtered() {
    let rules = RedactionRules::default();
    // Every route where the fixture cluster showed a secret, and the log routes.
    for route in [
        "/jobmanager/config",
        "/jobmanager/environment",
        "/jobs/:jobid/jobmanager/config",
        "/jobs/:jobid/jobmanager/environment",
        "/applications/:applicationid/jobmanager/config",
        "/jobs/:jobid/config",
        "/jobs/overview",
        "/jobs/:jobid",
        "/jobs/:jobid/plan",
        "/jars/:jarid/plan",
        "/jobs/:jobid/exceptions",
        "/jobs/:jobid/execution-result",
        "/applications/overview",
        "/applications/:applicationid",
        "/applications/:applicationid/exceptions",
        "/jobmanager/log",
        "/jobmanager/stdout",
        "/jobmanager/logs/:filename",
        "/taskmanagers/:taskmanagerid/log",
        "/taskmanagers/:taskmanagerid/stdout",
        "/taskmanagers/:taskmanagerid/logs/:filename",
        "/a/route/from/a/later/flink",
    ] {
        assert!(rules.filters(route), "{route}");
    }
}

#[test]
fn unfiltered_routes_exist_and_everything_else_is_filtered() {
    let rules = RedactionRules::default();
    let templates: Vec<&str> = flinkguard_policy::routes::ROUTES
        .iter()
        .map(|r| r.template)
        .collect();
    for route in UNFILTERED_ROUTES {
        assert!(
            templates.contains(route) || *route == flinkguard_policy::routes::UI_STATIC_TEMPLATE,
            "{route} is not a Flink route"
        );
        assert!(!rules.filters(route));
    }
    let filtered = templates.iter().filter(|t| rules.filters(t)).count();
    // All but `/overview`, `/config`, `/jobs` (GET and POST) and `/jobs/:jobid/status`.
    assert_eq!(filtered, templates.len() - 5);
}
