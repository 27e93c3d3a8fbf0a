//! Helpers shared by the CLI's integration tests: run the real binary, read what it wrote.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

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

/// A `flinkguard gateway` process, stopped by PID when the test ends, also on panic.
pub(crate) struct Gateway(pub(crate) Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Gateway {
    /// Starts `flinkguard gateway` in `dir` (its `flinkguard.yaml`) on a free loopback port and
    /// returns once it listens, with the port. Audit lines go to stdout, which is discarded:
    /// read them from the audit file. Its stderr is copied to the test's.
    pub(crate) fn start(dir: &Path) -> (Gateway, u16) {
        let port = flinkguard_testkit::free_port().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_flinkguard"))
            .args(["gateway", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let gateway = Gateway(child);
        let first = stderr.next().unwrap().unwrap();
        assert!(first.contains("listening"), "{first}");
        // Keep draining, so a later message never blocks (or kills) the gateway.
        std::thread::spawn(move || {
            for line in stderr.map_while(Result::ok) {
                eprintln!("gateway: {line}");
            }
        });
        (gateway, port)
    }

    /// The gateway's PID.
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// curl in `dir` against the gateway, trusting `pki/ca.crt`, with the client certificate of
/// `user` if given; returns the status (0 without an HTTP answer) and the body.
pub(crate) fn curl(dir: &Path, user: Option<&str>, extra: &[&str], url: &str) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.current_dir(dir).args([
        "-s",
        "--cacert",
        "pki/ca.crt",
        "-w",
        "\n%{http_code}",
        "--path-as-is",
    ]);
    if let Some(user) = user {
        cmd.args([
            "--cert",
            &format!("pki/clients/{user}/client.crt"),
            "--key",
            &format!("pki/clients/{user}/client.key"),
        ]);
    }
    let out = cmd.args(extra).arg(url).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_owned())
}
