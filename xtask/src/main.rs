//! `cargo xtask test`: everything a fresh machine needs, then the whole suite.
//! `cargo xtask bench`: the benchmarks of docs/benchmarks.md.

mod bench;

use std::process::Command;

use anyhow::{Context, Result, bail};
use flinkguard_flink::{FlinkDist, FlinkVersion, InstallProgress};

/// Debian packages the suite needs, by the command that proves each is there.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("javac", "openjdk-17-jdk-headless"),
    ("keytool", "openjdk-17-jdk-headless"),
    ("curl", "curl"),
    ("openssl", "openssl"),
    ("python3", "python3-venv"),
    // The container image test reads the binary's linked libraries.
    ("readelf", "binutils"),
    // A real MIT Kerberos realm for the Kerberos tests (testkit::kdc): the KDC and its
    // database tools, kinit/klist.
    ("krb5kdc", "krb5-kdc"),
    ("kdb5_util", "krb5-kdc"),
    ("kadmin.local", "krb5-kdc"),
    ("kadmind", "krb5-admin-server"),
    ("kinit", "krb5-user"),
];

/// Validates rendered Kubernetes manifests offline (tests of `flinkguard render k8s`), pinned
/// so a new release cannot change what passes.
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("prepare") => prepare(),
        Some("bench") => bench::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask test | prepare | bench [--write] [--quick] [--only SECTION[,SECTION]]"
            );
            std::process::exit(2);
        }
    }
}

/// Installs what the tests need, then runs fmt, clippy and the tests.
fn test() -> Result<()> {
    prepare()?;
    run(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
    run(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(Command::new("cargo").args([
        "nextest",
        "run",
        "--workspace",
        "--profile",
        "ci",
        "--no-tests",
        "fail",
    ]))
}

/// Debian packages, cargo-nextest and the Flink distributions the tests start.
fn prepare() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .filter(|(command, _)| !on_path(command))
        .map(|(_, package)| *package)
        .collect();
    if !missing.is_empty() {
        let mut packages = missing.clone();
        packages.sort_unstable();
        packages.dedup();
        eprintln!("xtask: installing Debian packages {packages:?}");
        run(Command::new("apt-get").arg("update").arg("-q"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&packages))?;
    }
    if !Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("xtask: installing cargo-nextest");
        run(Command::new("cargo").args(["install", "cargo-nextest", "--locked"]))?;
    }
    // Installed here, once and in sequence, rather than by the first test that needs each:
    // the download is large and its progress belongs in the CI log, not in a test's output.
    for version in [FlinkVersion::DEFAULT, FlinkVersion::LATEST_1X] {
        FlinkDist::install(version, &mut |event| match event {
            InstallProgress::Started { .. } => {
                eprintln!("xtask: installing Flink {version} from PyPI")
            }
            InstallProgress::Installed { home, elapsed } => {
                eprintln!(
                    "xtask: Flink {version} in {} ({} s)",
                    home.display(),
                    elapsed.as_secs()
                )
            }
            InstallProgress::AlreadyInstalled { home } => {
                eprintln!("xtask: Flink {version} cached in {}", home.display())
            }
            _ => {}
        })
        .with_context(|| format!("installing Flink {version}"))?;
    }
    install_kubernetes_validate()?;
    Ok(())
}

/// `~/.cache/flinkguard/venv-k8s/bin/kubernetes-validate`, where the render tests look for it.
/// Quick when already there: one `--version` call.
fn install_kubernetes_validate() -> Result<()> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let venv = std::path::Path::new(&home).join(".cache/flinkguard/venv-k8s");
    let tool = venv.join("bin/kubernetes-validate");
    let works = || {
        Command::new(&tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works() {
        eprintln!("xtask: kubernetes-validate cached in {}", venv.display());
        return Ok(());
    }
    eprintln!(
        "xtask: installing {KUBERNETES_VALIDATE} into {}",
        venv.display()
    );
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        .context("creating the venv (Debian: apt-get install python3-venv)")?;
    run(Command::new(venv.join("bin/pip")).args(["install", "-q", KUBERNETES_VALIDATE]))?;
    if !works() {
        bail!("{} does not run after installing it", tool.display());
    }
    Ok(())
}

fn on_path(command: &str) -> bool {
    // Debian puts the KDC's tools in /usr/sbin, which a non-root PATH often lacks.
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(command).is_file()))
        || std::path::Path::new("/usr/sbin").join(command).is_file()
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}
