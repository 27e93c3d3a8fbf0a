//! `flinkguard audit` against the configuration Flink 2.3 ships and the one flinkguard renders.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;

use common::{expect_input_error, flinkguard, flinkguard_ok};
use flinkguard_testkit::TestDist;

#[test]
fn flinks_shipped_config_is_critical_and_flinkguards_is_clean() {
    let dist = TestDist::default_version();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shipped = dist.conf_dir().join("config.yaml");
    let out = flinkguard(
        d,
        &[
            "audit",
            "--flink-conf",
            shipped.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let critical: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "critical")
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(
        critical.contains(&"FG-TLS-001") && critical.contains(&"FG-REST-003"),
        "{findings:#}"
    );

    // What `flinkguard flink-config` writes has nothing above LOW (plain passwords in the
    // file are LOW: Flink reads them from there).
    flinkguard_ok(d, &["init", "--quiet"]);
    flinkguard_ok(d, &["flink-config", "--out", "config.yaml"]);
    let table = flinkguard_ok(
        d,
        &[
            "audit",
            "--flink-conf",
            "config.yaml",
            "--fail-on",
            "medium",
        ],
    );
    assert!(
        !table.contains("CRITICAL") && !table.contains("HIGH"),
        "{table}"
    );

    expect_input_error(
        &flinkguard(d, &["audit", "--flink-conf", "missing.yaml"]),
        &["missing.yaml"],
    );
    expect_input_error(
        &flinkguard(
            d,
            &[
                "audit",
                "--flink-conf",
                "config.yaml",
                "--fail-on",
                "severe",
            ],
        ),
        &["severe"],
    );
}
