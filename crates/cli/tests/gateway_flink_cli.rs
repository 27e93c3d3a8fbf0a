//! Flink's own CLI (`bin/flink` of Flink 2.3) through the gateway. With the client-side Flink
//! config `flinkguard flink-config --client USER` renders (the user's PKCS12 client
//! certificate, the REST truststore, suites for the gateway's key type), the CLI lists,
//! submits and cancels jobs as a developer; as a viewer it lists, and its cancel is refused
//! with the gateway's message in the CLI's output while the job keeps running.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;
mod gatewaykit;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{flinkguard_ok, set_policy};
use flinkguard_testkit::{ClusterBuilder, FlinkDist, JobJar, TestDist};
use gatewaykit::{GatewayProcess, point_at};

/// A Flink client configuration for one user: `FLINK_CONF_DIR` with the CLI's log4j files
/// and a `config.yaml` that points the REST client at the gateway with the user's certificate.
struct CliConf {
    conf_dir: PathBuf,
    log_dir: PathBuf,
}

impl CliConf {
    /// A copy of the distribution's conf dir whose config.yaml gets the client settings
    /// `flinkguard flink-config --client USER` renders, merged in the way a user would: Flink's
    /// own settings (the JVM's `--add-opens` the CLI needs to run a job's `main()`) stay.
    fn new(dist: &FlinkDist, root: &Path, name: &str, user: &str, gateway: &str) -> CliConf {
        let conf_dir = root.join(name).join("conf");
        let log_dir = root.join(name).join("log");
        fs::create_dir_all(&conf_dir).unwrap();
        fs::create_dir_all(&log_dir).unwrap();
        for entry in fs::read_dir(dist.conf_dir()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                fs::copy(entry.path(), conf_dir.join(entry.file_name())).unwrap();
            }
        }
        let config = conf_dir.join("config.yaml");
        let config = config.to_str().unwrap();
        flinkguard_ok(
            root,
            &[
                "flink-config",
                "--client",
                user,
                "--gateway",
                gateway,
                "--merge",
                config,
                "--out",
                config,
            ],
        );
        CliConf { conf_dir, log_dir }
    }

    /// Runs `bin/flink args...`; returns the output and stdout + stderr as one text.
    fn flink(&self, dist: &FlinkDist, args: &[&str]) -> (Output, String) {
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(dist.bin("flink"))
            .args(args)
            .env("FLINK_CONF_DIR", &self.conf_dir)
            .env("FLINK_LOG_DIR", &self.log_dir)
            // C1 only: the CLI's JVM lives for seconds.
            .env("JVM_ARGS", "-XX:TieredStopAtLevel=1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "bin/flink {args:?}: {} in {:.1} s",
            out.status,
            started.elapsed().as_secs_f64()
        );
        (out, text)
    }

    fn flink_ok(&self, dist: &FlinkDist, args: &[&str]) -> String {
        let (out, text) = self.flink(dist, args);
        assert!(
            out.status.success(),
            "bin/flink {args:?} failed ({}):\n{text}\nclient log:\n{}",
            out.status,
            self.log_tail()
        );
        text
    }

    fn log_tail(&self) -> String {
        let mut all = String::new();
        for entry in fs::read_dir(&self.log_dir).unwrap() {
            let text = fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            all.push_str(&lines[lines.len().saturating_sub(40)..].join("\n"));
        }
        all
    }
}

/// The audit lines the gateway wrote so far.
fn audit(d: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(d.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn job_state(cluster: &flinkguard_testkit::FlinkCluster, job: &str) -> String {
    cluster.rest().get_json(&format!("/jobs/{job}")).unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn cluster_flink_cli_lists_submits_and_cancels_through_the_gateway() {
    let dist = TestDist::default_version();
    let jar = JobJar::build(&dist);
    let cluster = ClusterBuilder::new(&dist).taskmanagers(1).start();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    flinkguard_ok(d, &["init", "--quiet"]);
    point_at(d, cluster.ports().rest, &[]);
    set_policy(
        d,
        "policy:\n  bindings:\n  - role: developer\n    users: [dev]\n  - role: viewer\n    groups: [analysts]\n",
    );
    flinkguard_ok(d, &["pki", "issue-client", "--user", "dev"]);
    flinkguard_ok(
        d,
        &[
            "pki",
            "issue-client",
            "--user",
            "ann",
            "--group",
            "analysts",
        ],
    );
    let gateway = GatewayProcess::start(d);
    let port = gateway.port;

    let dev = CliConf::new(&dist, d, "cli-dev", "dev", &format!("localhost:{port}"));
    let ann = CliConf::new(&dist, d, "cli-ann", "ann", &format!("127.0.0.1:{port}"));

    // A developer lists (nothing yet), submits the test job detached, sees it listed.
    let listed = dev.flink_ok(&dist, &["list"]);
    assert!(listed.contains("No running jobs"), "{listed}");
    let submitted = dev.flink_ok(
        &dist,
        &["run", "-d", jar.path.to_str().unwrap(), "through-gateway"],
    );
    let job = submitted
        .split("JobID ")
        .nth(1)
        .map(|rest| rest.chars().take(32).collect::<String>())
        .unwrap_or_else(|| panic!("no JobID in:\n{submitted}"));
    assert!(job.chars().all(|c| c.is_ascii_hexdigit()), "{submitted}");
    // Checked on Flink itself, not through the gateway.
    cluster.wait_job_running(&job, Duration::from_secs(60));
    let listed = dev.flink_ok(&dist, &["list"]);
    assert!(
        listed.contains(&format!("{job} : through-gateway (RUNNING)")),
        "{listed}"
    );

    // A viewer lists it too, but its cancel is refused by the gateway: non-zero exit, the
    // gateway's 403 message in the CLI's output, and the job still runs on Flink.
    let listed = ann.flink_ok(&dist, &["list"]);
    assert!(listed.contains(&job), "{listed}");
    let (out, text) = ann.flink(&dist, &["cancel", &job]);
    assert!(
        !out.status.success(),
        "a viewer's cancel succeeded:\n{text}"
    );
    assert!(
        text.contains("flinkguard: forbidden") && text.contains("jobs.cancel"),
        "the CLI's output lacks the gateway's message:\n{text}"
    );
    let state = cluster.rest().job_state(&job).unwrap();
    assert!(state.fully_running(), "{state:?}");

    // The developer's cancel goes through; Flink reports the job cancelled.
    let cancelled = dev.flink_ok(&dist, &["cancel", &job]);
    assert!(
        cancelled.contains(&format!("Cancelled job {job}")),
        "{cancelled}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while job_state(&cluster, &job) != "CANCELED" {
        assert!(Instant::now() < deadline, "job {job} not CANCELED");
        std::thread::sleep(Duration::from_millis(200));
    }

    // What the gateway saw: the requests the CLI makes, each decided and audited.
    let lines = audit(d);
    for line in &lines {
        eprintln!(
            "audit: {} {} {} {} -> {} {} {}",
            line["user"],
            line["method"],
            line["path"],
            line["operation"],
            line["decision"],
            line["status"],
            line["reason"]
        );
    }
    let find = |user: &str, method: &str, operation: &str| {
        lines
            .iter()
            .find(|l| l["user"] == user && l["method"] == method && l["operation"] == operation)
            .unwrap_or_else(|| panic!("no audit line for {user} {method} {operation}"))
    };
    let submit = find("dev", "POST", "jobs.submit");
    assert_eq!(
        (submit["path"].as_str(), submit["status"].as_u64()),
        (Some("/v1/jobs"), Some(202)),
        "{submit}"
    );
    let refused = find("ann", "PATCH", "jobs.cancel");
    assert_eq!(
        (refused["decision"].as_str(), refused["status"].as_u64()),
        (Some("deny"), Some(403)),
        "{refused}"
    );
    assert_eq!(refused["job_id"], job.as_str());
    let allowed = find("dev", "PATCH", "jobs.cancel");
    assert_eq!(allowed["decision"], "allow", "{allowed}");
    drop(gateway);
}
