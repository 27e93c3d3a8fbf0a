//! Real Flink session clusters on loopback: one JobManager and N TaskManagers, each a child
//! process of the test, on free ports, in a temp dir, all stopped when the cluster is dropped.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flinkguard_flink::process::{FlinkProcess, FlinkProcessSpec, Role, spawn_command, stop_all};
use flinkguard_flink::{
    ClusterOverview, FlinkDist, FlinkError, free_ports, wait_ready, wait_ready_with,
};
use tempfile::TempDir;

use crate::config::{render_config, shipped_java_opts};
use crate::rest::{JobState, MutualTls, RestClient};

/// How long a cluster may take to start before the test fails with the logs.
const START_DEADLINE: Duration = Duration::from_secs(90);
/// How long each process gets to exit after SIGTERM when the cluster is dropped.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The loopback ports of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPorts {
    /// REST API and Web UI (`rest.port`).
    pub rest: u16,
    /// JobManager RPC (`jobmanager.rpc.port`).
    pub jm_rpc: u16,
    /// Blob server (`blob.server.port`).
    pub blob: u16,
    /// Each TaskManager's RPC port (`taskmanager.rpc.port`), by TaskManager index.
    pub tm_rpc: Vec<u16>,
    /// Each TaskManager's data port (`taskmanager.data.port`), by TaskManager index.
    pub tm_data: Vec<u16>,
}

/// Configures a test cluster.
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    dist: FlinkDist,
    taskmanagers: usize,
    slots: u32,
    extra: Vec<(String, String)>,
    fast_jvm_startup: bool,
    rest_tls_ca: Option<PathBuf>,
    rest_client_identity: Option<(PathBuf, PathBuf)>,
    own_configs: Option<OwnConfigs>,
    dynamic_properties: Vec<(String, String)>,
    application: Option<Vec<String>>,
}

/// Config files the test brings instead of the base config (see
/// [`ClusterBuilder::own_configs`]).
#[derive(Debug, Clone)]
struct OwnConfigs {
    jobmanager: String,
    taskmanager: String,
    ports: ClusterPorts,
}

/// C1-only JIT for every JVM the start scripts launch (the scripts run four helper JVMs per
/// process before Flink's own): on two cores this cuts a cluster start by about a quarter.
const FAST_STARTUP_JAVA_OPTIONS: &str = "-XX:TieredStopAtLevel=1";

impl ClusterBuilder {
    /// One TaskManager with two slots, by default.
    pub fn new(dist: &FlinkDist) -> Self {
        ClusterBuilder {
            dist: dist.clone(),
            taskmanagers: 1,
            slots: 2,
            extra: Vec::new(),
            fast_jvm_startup: true,
            rest_tls_ca: None,
            rest_client_identity: None,
            own_configs: None,
            dynamic_properties: Vec::new(),
            application: None,
        }
    }

    /// Runs these config files as they are, instead of the base config: the JobManager reads
    /// `jobmanager`, every TaskManager `taskmanager` (from a conf dir of its own), each in the
    /// distribution's config format. `ports` are the ones the files fix; the number of
    /// TaskManagers is `ports.tm_rpc.len()`, and each TaskManager gets its `tm_rpc` and
    /// `tm_data` port as a dynamic property (several on one host cannot share one port).
    /// Every other setting, temp and memory sizes included, is the files' business.
    pub fn own_configs(
        mut self,
        jobmanager: String,
        taskmanager: String,
        ports: ClusterPorts,
    ) -> Self {
        self.taskmanagers = ports.tm_rpc.len();
        self.own_configs = Some(OwnConfigs {
            jobmanager,
            taskmanager,
            ports,
        });
        self
    }

    /// REST speaks TLS (the caller sets `security.ssl.rest.*` with [`ClusterBuilder::config`]):
    /// readiness is checked over https (by curl) trusting only `ca` (PEM), for `localhost`.
    /// [`FlinkCluster::rest`] then does not work; talk to the cluster through TLS yourself.
    pub fn rest_tls(mut self, ca: impl Into<PathBuf>) -> Self {
        self.rest_tls_ca = Some(ca.into());
        self
    }

    /// REST requires mutual TLS: with [`ClusterBuilder::rest_tls`], readiness and
    /// [`FlinkCluster::rest`] (by curl, over `https://localhost:PORT`) present this client
    /// certificate and key (PEM).
    pub fn rest_client_certificate(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.rest_client_identity = Some((cert.into(), key.into()));
        self
    }

    /// REST as `flinkguard flink-config` renders it: mutual TLS with the PKI's self-signed
    /// upstream identity (`PKI_DIR/upstream/`), pinned as the server certificate and presented
    /// as the client one, as the gateway does.
    pub fn rest_upstream_identity(self, pki_dir: &Path) -> Self {
        let upstream = pki_dir.join("upstream");
        self.rest_tls(upstream.join("upstream.crt"))
            .rest_client_certificate(upstream.join("upstream.crt"), upstream.join("upstream.key"))
    }

    /// Whether the JVMs run with the C1 compiler only (default true): faster start, slower
    /// steady state. Turn it off for benchmarks that measure Flink's own throughput.
    pub fn fast_jvm_startup(mut self, on: bool) -> Self {
        self.fast_jvm_startup = on;
        self
    }

    /// The number of TaskManagers.
    pub fn taskmanagers(mut self, n: usize) -> Self {
        self.taskmanagers = n;
        self
    }

    /// Slots per TaskManager (default 2).
    pub fn slots_per_taskmanager(mut self, n: u32) -> Self {
        self.slots = n;
        self
    }

    /// Adds (or overrides) a flat config entry in the base config, e.g.
    /// `.config("security.ssl.internal.enabled", "true")`.
    pub fn config(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.extra.push((key.into(), value.to_string()));
        self
    }

    /// Adds `-D key=value` to every process's command line, as a pod's `args` would: it
    /// overrides the config file (e.g. the host names of a rendered pod config on loopback).
    pub fn dynamic_property(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.dynamic_properties
            .push((key.into(), value.to_string()));
        self
    }

    /// An application cluster: the JobManager is `standalone-job.sh` with these arguments
    /// (`--job-classname`, `--jars`, the job's own), and runs that one job from the start.
    pub fn application(mut self, args: Vec<String>) -> Self {
        self.application = Some(args);
        self
    }

    /// Creates the temp dir, picks ports and writes the base config.
    pub fn prepare(self) -> PreparedCluster {
        let dir = tempfile::Builder::new()
            .prefix("flinkguard-cluster-")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        let (conf_dir, log_dir, pid_dir, tmp_dir) = (
            root.join("conf"),
            root.join("log"),
            root.join("pid"),
            root.join("tmp"),
        );
        for d in [&log_dir, &pid_dir, &tmp_dir] {
            fs::create_dir_all(d).unwrap();
        }
        copy_conf_dir(&self.dist.conf_dir(), &conf_dir);
        let format = self.dist.config_format();
        let config_path = conf_dir.join(format.file_name());
        let n = self.taskmanagers;

        let (ports, taskmanager_conf_dir) = match self.own_configs {
            Some(own) => {
                fs::write(&config_path, own.jobmanager).unwrap();
                let tm_conf_dir = root.join("conf-taskmanager");
                copy_conf_dir(&self.dist.conf_dir(), &tm_conf_dir);
                fs::write(tm_conf_dir.join(format.file_name()), own.taskmanager).unwrap();
                (own.ports, tm_conf_dir)
            }
            None => {
                let ports = free_ports(3 + 2 * n).expect("free loopback ports");
                let ports = ClusterPorts {
                    rest: ports[0],
                    jm_rpc: ports[1],
                    blob: ports[2],
                    tm_rpc: ports[3..3 + n].to_vec(),
                    tm_data: ports[3 + n..].to_vec(),
                };
                let mut entries = base_config(&self.dist, &ports, self.slots, &tmp_dir);
                entries.extend(self.extra);
                fs::write(&config_path, render_config(format, &entries)).unwrap();
                (ports, conf_dir.clone())
            }
        };

        PreparedCluster {
            dynamic_properties: self.dynamic_properties,
            application: self.application,
            dist: self.dist,
            fast_jvm_startup: self.fast_jvm_startup,
            rest_tls_ca: self.rest_tls_ca,
            rest_client_identity: self.rest_client_identity,
            taskmanagers: n,
            ports,
            config_path,
            conf_dir,
            taskmanager_conf_dir,
            log_dir,
            pid_dir,
            tmp_dir,
            root,
            dir: Some(dir),
        }
    }

    /// `prepare().start()`.
    pub fn start(self) -> FlinkCluster {
        self.prepare().start()
    }
}

/// Copies the distribution's `conf/` (log4j files and so on) without its config file: the
/// prepared cluster writes its own, and a 1.x Flink that finds both `flink-conf.yaml` and
/// `config.yaml` would pick one by rules of its own.
fn copy_conf_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "config.yaml"
            || name == "flink-conf.yaml"
            || !entry.file_type().unwrap().is_file()
        {
            continue;
        }
        fs::copy(entry.path(), to.join(&name)).unwrap();
    }
}

/// The base config: everything on 127.0.0.1, fixed ports, small memory, temp dirs inside the
/// cluster's dir, slots spread evenly so a parallelism-2 job uses two TaskManagers.
fn base_config(
    dist: &FlinkDist,
    ports: &ClusterPorts,
    slots: u32,
    tmp: &Path,
) -> Vec<(String, String)> {
    let tmp = tmp.display();
    let mut entries: Vec<(String, String)> = [
        ("jobmanager.rpc.address", "127.0.0.1".to_owned()),
        ("jobmanager.rpc.port", ports.jm_rpc.to_string()),
        ("jobmanager.bind-host", "127.0.0.1".to_owned()),
        ("jobmanager.memory.process.size", "1024m".to_owned()),
        (
            "jobmanager.execution.failover-strategy",
            "region".to_owned(),
        ),
        ("taskmanager.host", "127.0.0.1".to_owned()),
        ("taskmanager.bind-host", "127.0.0.1".to_owned()),
        ("taskmanager.numberOfTaskSlots", slots.to_string()),
        ("taskmanager.memory.process.size", "1024m".to_owned()),
        // The test job keeps its state on the heap; managed memory would only take heap away.
        ("taskmanager.memory.managed.size", "64m".to_owned()),
        ("taskmanager.load-balance.mode", "SLOTS".to_owned()),
        // TaskManagers start together with the JobManager and find its RPC port closed at
        // first; by default they then wait 10 s before trying again. Plain number = ms (1.x
        // reads a long, 2.x a duration).
        ("cluster.registration.error-delay", "500".to_owned()),
        ("rest.address", "127.0.0.1".to_owned()),
        ("rest.bind-address", "127.0.0.1".to_owned()),
        ("rest.port", ports.rest.to_string()),
        ("blob.server.port", ports.blob.to_string()),
        ("parallelism.default", "1".to_owned()),
        ("io.tmp.dirs", format!("{tmp}/io")),
        ("web.tmpdir", format!("{tmp}/web")),
        ("web.upload.dir", format!("{tmp}/upload")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(opts) = shipped_java_opts(dist) {
        entries.push(("env.java.opts.all".to_owned(), opts));
    }
    entries
}

/// A cluster whose directory, ports and base config exist, not started yet. Edit the file at
/// [`PreparedCluster::config_path`] (e.g. merge security settings into it), then
/// [`PreparedCluster::start`].
#[derive(Debug)]
pub struct PreparedCluster {
    dynamic_properties: Vec<(String, String)>,
    application: Option<Vec<String>>,
    dist: FlinkDist,
    fast_jvm_startup: bool,
    rest_tls_ca: Option<PathBuf>,
    rest_client_identity: Option<(PathBuf, PathBuf)>,
    taskmanagers: usize,
    ports: ClusterPorts,
    config_path: PathBuf,
    conf_dir: PathBuf,
    /// `conf_dir`, unless the test brought its own TaskManager config.
    taskmanager_conf_dir: PathBuf,
    log_dir: PathBuf,
    pid_dir: PathBuf,
    tmp_dir: PathBuf,
    root: PathBuf,
    /// `None` once kept for debugging.
    dir: Option<TempDir>,
}

impl PreparedCluster {
    /// The config file Flink will read (`conf/config.yaml` or `conf/flink-conf.yaml`).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// `FLINK_CONF_DIR`.
    pub fn conf_dir(&self) -> &Path {
        &self.conf_dir
    }

    /// The cluster's temp dir (holds `conf/`, `log/`, `pid/`, `tmp/`); a good place for
    /// keystores the test creates.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Scratch space inside the cluster dir.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp_dir
    }

    /// `FLINK_LOG_DIR`.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The ports the base config assigns.
    pub fn ports(&self) -> &ClusterPorts {
        &self.ports
    }

    /// The distribution the cluster runs.
    pub fn dist(&self) -> &FlinkDist {
        &self.dist
    }

    /// Starts the JobManager and TaskManagers and waits until all TaskManagers registered.
    /// Panics with the log tails and a likely cause if Flink does not come up.
    pub fn start(self) -> FlinkCluster {
        self.try_start()
            .unwrap_or_else(|e| panic!("the Flink test cluster did not start:\n{e}"))
    }

    /// Like [`PreparedCluster::start`], but returns the failure (with log tails and a
    /// diagnosis) instead of panicking, for tests that expect Flink to refuse a config. Every
    /// process is stopped before this returns an error.
    pub fn try_start(self) -> Result<FlinkCluster, FlinkError> {
        let started = Instant::now();
        let rest = match (&self.rest_tls_ca, &self.rest_client_identity) {
            (Some(ca), Some((cert, key))) => RestClient::with_mutual_tls(
                format!("https://localhost:{}", self.ports.rest),
                MutualTls {
                    ca: ca.clone(),
                    cert: cert.clone(),
                    key: key.clone(),
                },
            ),
            _ => RestClient::new(format!("http://127.0.0.1:{}", self.ports.rest)),
        };
        let mut cluster = FlinkCluster {
            rest,
            processes: Vec::new(),
            startup: Duration::ZERO,
            prepared: self,
        };
        let prepared = &cluster.prepared;
        let jm_role = match prepared.application {
            Some(_) => Role::ApplicationJobManager,
            None => Role::JobManager,
        };
        let mut jm = FlinkProcessSpec::new(
            &prepared.dist,
            jm_role,
            &prepared.conf_dir,
            &prepared.log_dir,
            &prepared.pid_dir,
        )
        .name("jobmanager");
        jm.args = prepared.application.clone().unwrap_or_default();
        let mut specs = vec![jm];
        for i in 0..prepared.taskmanagers {
            specs.push(
                FlinkProcessSpec::new(
                    &prepared.dist,
                    Role::TaskManager,
                    &prepared.taskmanager_conf_dir,
                    &prepared.log_dir,
                    &prepared.pid_dir,
                )
                .name(format!("taskmanager-{i}"))
                .dynamic_property("taskmanager.rpc.port", prepared.ports.tm_rpc[i])
                .dynamic_property("taskmanager.data.port", prepared.ports.tm_data[i])
                .dynamic_property("taskmanager.resource-id", format!("tm-{i}")),
            );
        }
        for spec in &mut specs {
            for (key, value) in &prepared.dynamic_properties {
                spec.dynamic_properties.push((key.clone(), value.clone()));
            }
        }
        if prepared.fast_jvm_startup {
            let mut options = std::env::var("JAVA_TOOL_OPTIONS").unwrap_or_default();
            options.push(' ');
            options.push_str(FAST_STARTUP_JAVA_OPTIONS);
            for spec in &mut specs {
                spec.env
                    .push(("JAVA_TOOL_OPTIONS".to_owned(), options.trim().to_owned()));
            }
        }
        // All at once: TaskManagers retry until the JobManager is up, and the JVMs' start-up
        // overlaps.
        for spec in &specs {
            let process = spawn_child(spec)?;
            cluster.processes.push(process);
        }
        let rest_url = cluster.rest_url().to_owned();
        let n = u32::try_from(cluster.prepared.taskmanagers).unwrap_or(u32::MAX);
        let deadline = Instant::now() + START_DEADLINE;
        match cluster.prepared.rest_tls_ca.clone() {
            None => wait_ready(&rest_url, n, deadline, &mut cluster.processes)?,
            Some(ca) => {
                let url = format!("https://localhost:{}/overview", cluster.prepared.ports.rest);
                let identity = cluster.prepared.rest_client_identity.clone();
                let fetch = || overview_over_tls(&url, &ca, identity.as_ref());
                wait_ready_with(&fetch, n, deadline, &mut cluster.processes)?
            }
        };
        cluster.startup = started.elapsed();
        Ok(cluster)
    }
}

/// `GET /overview` over https with curl, trusting only `ca`, with a client certificate if given.
fn overview_over_tls(
    url: &str,
    ca: &Path,
    client: Option<&(PathBuf, PathBuf)>,
) -> Result<ClusterOverview, FlinkError> {
    let failed = |detail: String| FlinkError::Rest {
        method: "GET",
        url: url.to_owned(),
        detail,
    };
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--fail", "--max-time", "2", "--cacert"])
        .arg(ca);
    if let Some((cert, key)) = client {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let out = cmd
        .arg(url)
        .output()
        .map_err(|e| failed(format!("cannot run curl: {e}")))?;
    if !out.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| failed(e.to_string()))
}

/// Spawns a non-detached Flink process that dies with the test's thread.
///
/// `PR_SET_PDEATHSIG` makes the kernel SIGKILL the child when the *thread* that spawned it
/// exits, including when the whole test process is killed (a nextest timeout, Ctrl-C), where
/// `Drop` never runs. It survives the `exec`s of the start scripts into the JVM. Because it is
/// tied to the spawning thread, a cluster must live within one thread: create and drop it in
/// the same test function (the normal case), not in a thread that ends before the test does.
fn spawn_child(spec: &FlinkProcessSpec) -> Result<FlinkProcess, FlinkError> {
    let mut command = spec.command()?;
    let parent = rustix::process::getpid();
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child between fork and exec. It only makes two
    // system calls (prctl and getppid) through rustix, which are async-signal-safe, and builds
    // its error from an errno without allocating.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // If the parent died between fork and prctl, the signal will never come.
            if rustix::process::getppid() != Some(parent) {
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        });
    }
    spawn_command(spec, command)
}

/// A running test cluster. Dropping it stops every process it started (SIGTERM, then SIGKILL),
/// also when the test panics; then the temp dir is removed, unless the test panicked or
/// `FLINKGUARD_KEEP_TEST_DIRS` is set, in which case its path is printed.
#[derive(Debug)]
pub struct FlinkCluster {
    prepared: PreparedCluster,
    processes: Vec<FlinkProcess>,
    rest: RestClient,
    startup: Duration,
}

impl FlinkCluster {
    /// `http://127.0.0.1:<rest port>` (`https://localhost:<rest port>` with mutual TLS).
    pub fn rest_url(&self) -> &str {
        self.rest.base()
    }

    /// A REST client for this cluster.
    pub fn rest(&self) -> &RestClient {
        &self.rest
    }

    /// The cluster's ports.
    pub fn ports(&self) -> &ClusterPorts {
        &self.prepared.ports
    }

    /// `FLINK_LOG_DIR`.
    pub fn log_dir(&self) -> &Path {
        &self.prepared.log_dir
    }

    /// `FLINK_CONF_DIR`.
    pub fn conf_dir(&self) -> &Path {
        &self.prepared.conf_dir
    }

    /// The config file Flink read.
    pub fn config_path(&self) -> &Path {
        &self.prepared.config_path
    }

    /// The cluster's temp dir.
    pub fn dir(&self) -> &Path {
        self.prepared.dir()
    }

    /// The distribution it runs.
    pub fn dist(&self) -> &FlinkDist {
        &self.prepared.dist
    }

    /// PIDs of the JobManager (first) and the TaskManagers, in order.
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(FlinkProcess::pid).collect()
    }

    /// The processes, JobManager first.
    pub fn processes_mut(&mut self) -> &mut [FlinkProcess] {
        &mut self.processes
    }

    /// How long `start` took until every TaskManager had registered.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// The last lines of every process's logs, for assertion messages.
    pub fn log_tails(&self) -> String {
        let files: Vec<PathBuf> = self.processes.iter().flat_map(|p| p.log_files()).collect();
        flinkguard_flink::FlinkStartError::from_logs("cluster logs".to_owned(), &files).to_string()
    }

    /// Stops every process now (what `Drop` does).
    pub fn stop(&mut self) {
        let outcomes = stop_all(&mut self.processes, STOP_GRACE);
        for (process, outcome) in self.processes.iter().zip(outcomes) {
            if let Err(e) = outcome {
                eprintln!(
                    "flinkguard-testkit: stopping {} pid {}: {e}",
                    process.role(),
                    process.pid()
                );
            }
        }
    }

    /// Uploads a jar; returns its jar id.
    pub fn upload_jar(&self, jar: &Path) -> String {
        self.rest
            .upload_jar(jar)
            .unwrap_or_else(|e| panic!("upload of {} failed: {e}", jar.display()))
    }

    /// Runs an uploaded jar; returns the job id.
    pub fn run_jar(
        &self,
        jar_id: &str,
        entry_class: &str,
        parallelism: u32,
        args: &[&str],
    ) -> String {
        self.rest
            .run_jar(jar_id, entry_class, parallelism, args)
            .unwrap_or_else(|e| panic!("running jar {jar_id} failed: {e}\n{}", self.log_tails()))
    }

    /// Waits until the job and all its tasks run.
    pub fn wait_job_running(&self, job_id: &str, timeout: Duration) -> JobState {
        self.rest
            .wait_job_running(job_id, timeout)
            .unwrap_or_else(|e| panic!("job {job_id} did not run: {e}\n{}", self.log_tails()))
    }

    /// Completed checkpoints of the job.
    pub fn completed_checkpoints(&self, job_id: &str) -> u64 {
        self.rest
            .completed_checkpoints(job_id)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits for at least `n` completed checkpoints; returns the count.
    pub fn wait_checkpoints(&self, job_id: &str, n: u64, timeout: Duration) -> u64 {
        self.rest
            .wait_checkpoints(job_id, n, timeout)
            .unwrap_or_else(|e| panic!("checkpoints of job {job_id}: {e}\n{}", self.log_tails()))
    }

    /// The TaskManagers running the job's subtasks.
    pub fn job_taskmanagers(&self, job_id: &str) -> Vec<String> {
        self.rest
            .job_taskmanagers(job_id)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Cancels the job.
    pub fn cancel_job(&self, job_id: &str) {
        self.rest
            .cancel_job(job_id)
            .unwrap_or_else(|e| panic!("cancel of job {job_id} failed: {e}"))
    }
}

impl Drop for FlinkCluster {
    fn drop(&mut self) {
        self.stop();
        let keep =
            std::thread::panicking() || std::env::var_os("FLINKGUARD_KEEP_TEST_DIRS").is_some();
        if keep && let Some(dir) = self.prepared.dir.take() {
            // Keep the logs for whoever debugs the failure.
            eprintln!(
                "flinkguard-testkit: cluster files kept in {}",
                dir.keep().display()
            );
        }
    }
}
