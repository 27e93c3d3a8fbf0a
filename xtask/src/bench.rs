//! `cargo xtask bench [--write]`: benchmarks whose figures are ratios measured side by side in
//! one run (absolute times on shared machines are noise). With `--write`, the results replace
//! the generated section of docs/benchmarks.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

mod http;
mod instructions;
mod load;
mod servers;
mod upload;

/// Repetitions per contender; the median is reported.
const RUNS: usize = 5;

/// Repetitions per contender with `--quick` (a smoke run: the figures are rough).
const QUICK_RUNS: usize = 3;

/// The sections, in the order they run and appear in docs/benchmarks.md.
const SECTIONS: &[&str] = &[
    "requests",
    "instructions",
    "handshakes",
    "resumptions",
    "idle",
    "uploads",
    "flink",
    "pki",
];

const BEGIN: &str = "<!-- BEGIN GENERATED: cargo xtask bench --write -->";
const END: &str = "<!-- END GENERATED -->";

/// Command-line options of `cargo xtask bench`.
#[derive(Debug)]
struct Options {
    write: bool,
    quick: bool,
    /// Repetitions per contender.
    runs: usize,
    only: Vec<String>,
    /// A flinkguard binary to measure instead of building this checkout's (`--gateway PATH`):
    /// how a before/after comparison of a change is made.
    gateway: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut options = Options {
            write: false,
            quick: false,
            runs: RUNS,
            only: SECTIONS.iter().map(|s| (*s).to_owned()).collect(),
            gateway: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--write" => options.write = true,
                "--gateway" => {
                    let path = args
                        .next()
                        .context("--gateway needs the path of a flinkguard binary")?;
                    options.gateway = Some(PathBuf::from(path));
                }
                "--quick" => {
                    options.quick = true;
                    options.runs = QUICK_RUNS;
                }
                "--only" => {
                    let list = args.next().context(
                        "--only needs a list of sections, e.g. --only requests,handshakes",
                    )?;
                    options.only = list.split(',').map(str::to_owned).collect();
                    if let Some(bad) = options
                        .only
                        .iter()
                        .find(|s| !SECTIONS.contains(&s.as_str()))
                    {
                        bail!(
                            "--only: no section `{bad}`; the sections are {}",
                            SECTIONS.join(", ")
                        );
                    }
                }
                "--help" | "-h" => {
                    println!("{}", usage());
                    std::process::exit(0);
                }
                other => bail!("unknown argument `{other}`; {}", usage()),
            }
        }
        Ok(options)
    }
}

fn usage() -> String {
    format!(
        "usage: cargo xtask bench [--write] [--quick] [--gateway PATH] [--only {}]",
        SECTIONS.join(",")
    )
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    let binary = match &options.gateway {
        Some(binary) => {
            if !binary.is_file() {
                bail!("--gateway {}: no such file", binary.display());
            }
            binary.clone()
        }
        None => {
            let status = Command::new("cargo")
                .args(["build", "--release", "--quiet", "-p", "flinkguard"])
                .status()?;
            if !status.success() {
                bail!("cargo build --release failed");
            }
            target_dir().join("release/flinkguard")
        }
    };
    let mut sections = Vec::new();
    for name in SECTIONS
        .iter()
        .filter(|s| options.only.iter().any(|o| o == *s))
    {
        eprintln!("xtask bench: section {name}");
        let load = load_average();
        let body = match *name {
            "requests" => http::requests(&binary, &options)?,
            "instructions" => instructions::instructions(&binary, &options)?,
            "handshakes" => http::handshakes(&binary, &options)?,
            "resumptions" => http::resumptions(&binary, &options)?,
            "idle" => http::idle(&binary, &options)?,
            "uploads" => upload::uploads(&binary, &options)?,
            "flink" => http::flink(&binary, &options)?,
            _ => pki(&binary, &options)?,
        };
        let nginx = if matches!(
            *name,
            "requests" | "instructions" | "handshakes" | "resumptions" | "idle" | "flink"
        ) {
            format!("; {}", servers::nginx_version(&servers::ensure_nginx()?))
        } else {
            String::new()
        };
        let text = format!(
            "{body}Measured {} on {}{nginx}; load average (1 min) when the section started: \
             {load}.\n",
            today(),
            machine()
        );
        println!("\n{text}");
        sections.push((*name, text));
    }
    if options.write {
        write_report(&sections)?;
        println!("wrote docs/benchmarks.md");
    }
    Ok(())
}

fn pki(binary: &Path, options: &Options) -> Result<String> {
    let mut report = String::new();
    report.push_str("### PKI: `flinkguard init` vs the keytool sequence of Flink's SSL page\n\n");
    report.push_str("Same artefacts: cluster identity (self-signed, keystore = truststore) and its SHA-1, a CA, a REST\n");
    report.push_str("keystore signed by the CA with SANs, a REST truststore, the CA as PEM for curl and the REST key as\n");
    report.push_str("PEM (keytool cannot export keys, so that step is `openssl pkcs12`). keytool commands run one after\n");
    report.push_str(&format!(
        "another as a user would type them. Median of {} runs each, alternating.\n\n",
        options.runs
    ));
    report.push_str(
        "| key | flinkguard init | keytool sequence (12 commands) | ratio |\n|---|---|---|---|\n",
    );
    for (key, keytool_alg) in [
        ("ecdsa-p256", ["-keyalg", "EC", "-groupname", "secp256r1"]),
        ("rsa-3072", ["-keyalg", "RSA", "-keysize", "3072"]),
    ] {
        let (ours, theirs) = measure_pki(binary, key, &keytool_alg, options.runs)?;
        let ratio = theirs.as_secs_f64() / ours.as_secs_f64();
        let line = format!(
            "| {key} | {} | {} | **{ratio:.0}×** faster |\n",
            fmt(ours),
            fmt(theirs)
        );
        eprint!("{line}");
        report.push_str(&line);
    }
    report.push_str(
        "\nReproduce: `cargo xtask bench --only pki --write` (target: `init` at least 50× faster).\n\n",
    );
    Ok(report)
}

fn measure_pki(
    binary: &Path,
    key: &str,
    keytool_alg: &[&str],
    runs: usize,
) -> Result<(Duration, Duration)> {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..runs {
        let dir = tempdir()?;
        let start = Instant::now();
        run_quiet(
            Command::new(binary)
                .args([
                    "init",
                    "--quiet",
                    "--key",
                    key,
                    "--host",
                    "flink.company.org",
                    "--ip",
                    "10.0.2.15",
                    "--dir",
                ])
                .arg(&dir),
        )?;
        ours.push(start.elapsed());
        fs::remove_dir_all(&dir)?;

        let dir = tempdir()?;
        let start = Instant::now();
        keytool_sequence(&dir, keytool_alg)?;
        theirs.push(start.elapsed());
        fs::remove_dir_all(&dir)?;
    }
    Ok((median(ours), median(theirs)))
}

/// The commands of Flink's SSL setup page ("Standalone / Kubernetes" and "REST endpoint with a
/// self-signed CA"), with the passwords a careful user would pass.
fn keytool_sequence(dir: &Path, alg: &[&str]) -> Result<()> {
    let p = |name: &str| dir.join(name).display().to_string();
    let pass = "changeit-0123456789abcdefghij";
    let kt = |args: &[&str]| -> Result<()> {
        run_quiet(
            Command::new("keytool")
                .args(args)
                .args(if args[0] == "-genkeypair" { alg } else { &[] }),
        )
    };
    kt(&[
        "-genkeypair",
        "-alias",
        "flink.internal",
        "-keystore",
        &p("internal.keystore"),
        "-dname",
        "CN=flink.internal",
        "-storepass",
        pass,
        "-storetype",
        "PKCS12",
        "-validity",
        "365",
    ])?;
    run_quiet(Command::new("keytool").args([
        "-list",
        "-v",
        "-keystore",
        &p("internal.keystore"),
        "-storepass",
        pass,
    ]))?;
    kt(&[
        "-genkeypair",
        "-alias",
        "ca",
        "-keystore",
        &p("ca.keystore"),
        "-dname",
        "CN=Sample CA",
        "-storepass",
        pass,
        "-ext",
        "bc=ca:true",
        "-storetype",
        "PKCS12",
        "-validity",
        "3650",
    ])?;
    kt(&[
        "-exportcert",
        "-keystore",
        &p("ca.keystore"),
        "-alias",
        "ca",
        "-storepass",
        pass,
        "-file",
        &p("ca.cer"),
    ])?;
    kt(&[
        "-importcert",
        "-keystore",
        &p("ca.truststore"),
        "-alias",
        "ca",
        "-storepass",
        pass,
        "-file",
        &p("ca.cer"),
        "-noprompt",
        "-storetype",
        "PKCS12",
    ])?;
    kt(&[
        "-genkeypair",
        "-alias",
        "flink.rest",
        "-keystore",
        &p("rest.signed.keystore"),
        "-dname",
        "CN=flink.company.org",
        "-ext",
        "SAN=dns:flink.company.org",
        "-storepass",
        pass,
        "-storetype",
        "PKCS12",
    ])?;
    kt(&[
        "-certreq",
        "-alias",
        "flink.rest",
        "-keystore",
        &p("rest.signed.keystore"),
        "-storepass",
        pass,
        "-file",
        &p("rest.csr"),
    ])?;
    kt(&[
        "-gencert",
        "-alias",
        "ca",
        "-keystore",
        &p("ca.keystore"),
        "-storepass",
        pass,
        "-ext",
        "SAN=dns:flink.company.org,ip:10.0.2.15",
        "-infile",
        &p("rest.csr"),
        "-outfile",
        &p("rest.cer"),
        "-validity",
        "90",
    ])?;
    kt(&[
        "-importcert",
        "-keystore",
        &p("rest.signed.keystore"),
        "-storepass",
        pass,
        "-file",
        &p("ca.cer"),
        "-alias",
        "ca",
        "-noprompt",
    ])?;
    kt(&[
        "-importcert",
        "-keystore",
        &p("rest.signed.keystore"),
        "-storepass",
        pass,
        "-file",
        &p("rest.cer"),
        "-alias",
        "flink.rest",
        "-noprompt",
    ])?;
    kt(&[
        "-exportcert",
        "-rfc",
        "-keystore",
        &p("ca.keystore"),
        "-alias",
        "ca",
        "-storepass",
        pass,
        "-file",
        &p("ca.pem"),
    ])?;
    run_quiet(Command::new("openssl").args([
        "pkcs12",
        "-in",
        &p("rest.signed.keystore"),
        "-passin",
        &format!("pass:{pass}"),
        "-nodes",
        "-nocerts",
        "-out",
        &p("rest.key"),
    ]))
}

fn run_quiet(command: &mut Command) -> Result<()> {
    let out = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The middle sample (the upper middle of an even count). Panics on none: every caller has
/// at least one repetition.
fn median<T: PartialOrd + Copy>(mut samples: Vec<T>) -> T {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    samples[samples.len() / 2]
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.2} ms", d.as_secs_f64() * 1000.0)
    } else if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

fn tempdir() -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("flinkguard-bench-{}-{nanos}", std::process::id()));
    fs::create_dir(&dir)?;
    Ok(dir)
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let java = Command::new("java")
        .arg("-version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    format!("{cores} cores of {cpu}, {java}")
}

/// Replaces, inside the generated part of docs/benchmarks.md, the sections this run measured;
/// the others stay as they were, so `--only` never erases figures of other sections.
fn write_report(measured: &[(&str, String)]) -> Result<()> {
    let path = workspace_root().join("docs/benchmarks.md");
    let existing = fs::read_to_string(&path).unwrap_or_default();
    fs::write(&path, merge_report(&existing, measured))?;
    Ok(())
}

/// The text of docs/benchmarks.md with the `measured` sections replaced (or added) inside the
/// generated block, every other section and all text outside the block unchanged.
fn merge_report(existing: &str, measured: &[(&str, String)]) -> String {
    let (before, generated, after) = match (existing.find(BEGIN), existing.find(END)) {
        (Some(b), Some(e)) if b < e => (
            &existing[..b],
            &existing[b + BEGIN.len()..e],
            &existing[e + END.len()..],
        ),
        _ => (existing, "", "\n"),
    };
    let mut text = format!("{before}{BEGIN}\n");
    for name in SECTIONS {
        let (begin, end) = (
            format!("<!-- section {name} -->\n"),
            format!("<!-- end of section {name} -->\n"),
        );
        let old = generated
            .find(&begin)
            .zip(generated.find(&end))
            .filter(|(b, e)| b < e)
            .map(|(b, e)| &generated[b + begin.len()..e]);
        let new = measured
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str());
        if let Some(body) = new.or(old) {
            text.push_str(&format!("{begin}{body}{end}\n"));
        }
    }
    text.push_str(END);
    text.push_str(after);
    text
}

/// A temporary directory, removed with everything in it when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        tempdir().map(Self)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Where cargo puts the release binary: CARGO_TARGET_DIR when set (as `cargo build` honours it).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The 1-minute load average: a busy machine (other builds) disturbs the figures, and the
/// report should say so.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn only_runs_the_named_sections_and_quick_shortens() {
        let options = Options::parse(&args(&["--only", "idle,pki", "--quick", "--write"]))
            .expect("valid arguments");
        assert_eq!(options.only, ["idle", "pki"]);
        assert_eq!(options.runs, QUICK_RUNS);
        assert!(options.write && options.quick);
        let all = Options::parse(&[]).expect("no arguments");
        assert_eq!(all.only, SECTIONS);
        assert_eq!(all.runs, RUNS);
    }

    #[test]
    fn an_unknown_section_or_flag_is_named_in_the_error() {
        let error = Options::parse(&args(&["--only", "requests,upload"]))
            .expect_err("no section `upload`")
            .to_string();
        assert!(
            error.contains("`upload`") && error.contains("uploads"),
            "{error}"
        );
        let error = Options::parse(&args(&["--fast"]))
            .expect_err("unknown flag")
            .to_string();
        assert!(
            error.contains("`--fast`") && error.contains("--quick"),
            "{error}"
        );
        assert!(Options::parse(&args(&["--only"])).is_err());
    }

    #[test]
    fn writing_some_sections_keeps_the_others_and_the_hand_written_text() {
        let first = merge_report(
            "# Benchmarks\n\nhand-written\n",
            &[("idle", "idle v1\n".into()), ("pki", "pki v1\n".into())],
        );
        assert!(first.starts_with("# Benchmarks\n\nhand-written\n"));
        let second = merge_report(&first, &[("pki", "pki v2\n".into())]);
        assert!(second.contains("idle v1\n"), "{second}");
        assert!(
            second.contains("pki v2\n") && !second.contains("pki v1"),
            "{second}"
        );
        assert_eq!(second.matches(BEGIN).count(), 1);
        assert_eq!(second.matches(END).count(), 1);
        // Sections stay in the order of SECTIONS whatever order they were measured in.
        let third = merge_report(&second, &[("requests", "requests v1\n".into())]);
        let at = |needle: &str| third.find(needle).expect(needle);
        assert!(at("requests v1") < at("idle v1") && at("idle v1") < at("pki v2"));
        assert!(third.starts_with("# Benchmarks\n\nhand-written\n"));
        // Writing nothing changes nothing, the committed document included.
        assert_eq!(merge_report(&third, &[]), third);
        let committed = include_str!("../../docs/benchmarks.md");
        assert_eq!(merge_report(committed, &[]), committed);
    }
}
