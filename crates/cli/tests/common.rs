//! Helpers shared by the CLI's integration tests: run the real binary, read what it wrote.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;
use std::process::{Command, Output};

#[path = "common/k8s.rs"]
pub(crate) mod k8s;

/// Runs `flinkguard` with `args` in `dir`.
pub(crate) fn flinkguard(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flinkguard"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run flinkguard")
}

/// Runs `flinkguard` and insists on success, returning stdout.
pub(crate) fn flinkguard_ok(dir: &Path, args: &[&str]) -> String {
    let out = flinkguard(dir, args);
    assert!(
        out.status.success(),
        "flinkguard {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Asserts an input error: exit code 2 and stderr mentioning every `needle`; returns stderr.
pub(crate) fn expect_input_error(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2, got {}; stderr:\n{stderr}",
        out.status
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    assert_eq!(
        stderr
            .trim()
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "one clear message:\n{stderr}"
    );
    stderr
}

/// Runs Java's keytool and returns stdout; panics with its output on failure.
pub(crate) fn keytool(args: &[&str]) -> String {
    let out = Command::new("keytool")
        .args(args)
        .output()
        .expect("run keytool (apt-get install openjdk-17-jdk-headless)");
    assert!(
        out.status.success(),
        "keytool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The content of a password file.
pub(crate) fn password(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("password file")
        .trim()
        .to_owned()
}

/// Replaces the `policy:` section (the last one `init` writes) of `dir/flinkguard.yaml`.
pub(crate) fn set_policy(dir: &Path, policy: &str) {
    let path = dir.join("flinkguard.yaml");
    let config = std::fs::read_to_string(&path).unwrap();
    let start = config
        .find("\npolicy:\n")
        .expect("init writes a policy section");
    std::fs::write(&path, format!("{}\n{policy}", &config[..start])).unwrap();
}
