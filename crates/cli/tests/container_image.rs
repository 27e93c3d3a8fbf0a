//! The repository's Dockerfile, checked as far as a machine without a container engine can:
//! the binary it ships needs nothing the distroless base lacks, and the image puts it where the
//! rendered pods run it, as a non-root user. (Building the image needs a Docker engine, which
//! the CI machine does not have; docs/kubernetes.md says so.)
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::flinkguard_ok;
use common::k8s::{load, object};

/// Shared libraries of gcr.io/distroless/cc-debian12: glibc's and libgcc's.
const DISTROLESS_CC_LIBRARIES: [&str; 7] = [
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "ld-linux-x86-64.so.2",
];
/// glibc of Debian 12, which distroless/cc-debian12 is built from.
const DEBIAN_12_GLIBC: (u32, u32) = (2, 36);

fn dockerfile() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Dockerfile");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Instructions (`FROM`, `COPY`, ...) with their arguments, comments and blank lines dropped,
/// continuation lines joined.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .map(|l| {
            let (op, args) = l.split_once(' ').unwrap();
            (op.to_uppercase(), args.trim().to_owned())
        })
        .collect()
}

fn tool_output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_binary_needs_only_the_libraries_of_the_distroless_base() {
    let binary = env!("CARGO_BIN_EXE_flinkguard");
    let dynamic = tool_output("readelf", &["--dynamic", "--wide", binary]);
    let needed: BTreeSet<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert!(!needed.is_empty(), "no NEEDED entries read:\n{dynamic}");
    for library in &needed {
        assert!(
            DISTROLESS_CC_LIBRARIES.contains(library),
            "flinkguard links {library}, which gcr.io/distroless/cc-debian12 does not have"
        );
    }
    // No symbol from a glibc newer than the base image's.
    let symbols = tool_output("objdump", &["--dynamic-syms", binary]);
    let newest = symbols
        .split("GLIBC_")
        .skip(1)
        .filter_map(|rest| {
            let version: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .max()
        .unwrap();
    assert!(newest <= DEBIAN_12_GLIBC, "needs glibc {newest:?}");
}

#[test]
fn the_image_runs_the_binary_unprivileged_where_the_rendered_pods_expect_it() {
    let steps = instructions(&dockerfile());
    let froms: Vec<&str> = steps
        .iter()
        .filter(|(op, _)| op == "FROM")
        .map(|(_, a)| a.as_str())
        .collect();
    assert_eq!(froms.len(), 2, "a build stage and the image: {froms:?}");
    assert!(froms[0].ends_with(" AS build"), "{}", froms[0]);
    assert!(
        froms[1].starts_with("gcr.io/distroless/cc-debian12"),
        "{}",
        froms[1]
    );
    let runs: Vec<&str> = steps
        .iter()
        .filter(|(op, _)| op == "RUN")
        .map(|(_, a)| a.as_str())
        .collect();
    assert!(
        runs.iter()
            .any(|r| r.contains("cargo build --release --locked"))
    );

    // Everything after the second FROM is the image.
    let image = &steps[steps.iter().rposition(|(op, _)| op == "FROM").unwrap() + 1..];
    let user = image.iter().rev().find(|(op, _)| op == "USER").unwrap();
    let uid: u32 = user.1.split(':').next().unwrap().parse().unwrap();
    assert_ne!(uid, 0, "the image runs as root");
    let copy = image.iter().find(|(op, _)| op == "COPY").unwrap();
    let installed = copy.1.split_whitespace().last().unwrap().to_owned();
    let entrypoint = image.iter().find(|(op, _)| op == "ENTRYPOINT").unwrap();
    let entrypoint: Vec<String> = serde_json::from_str(&entrypoint.1).unwrap();
    assert_eq!(entrypoint, std::slice::from_ref(&installed));

    // The pods `render k8s` writes run that very path.
    let dir = tempfile::tempdir().unwrap();
    flinkguard_ok(dir.path(), &["init", "--quiet"]);
    flinkguard_ok(dir.path(), &["render", "k8s", "--out", "out"]);
    let objects = load(&dir.path().join("out"));
    let pod = &object(&objects, "Deployment", "flink-jm")["spec"]["template"]["spec"];
    let gateway = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gateway")
        .unwrap();
    assert_eq!(gateway["command"][0], installed.as_str());
    assert_eq!(installed, flinkguard_k8s::GATEWAY_BINARY);
}

#[test]
fn the_build_context_leaves_out_keys_state_and_build_output() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.dockerignore");
    let ignored: BTreeSet<String> = fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for entry in [
        "target/",
        ".git/",
        "pki/",
        "flinkguard.yaml",
        "audit.jsonl",
        "ownership.redb",
    ] {
        assert!(ignored.contains(entry), ".dockerignore lacks {entry}");
    }
}
