//! Running Flink's JobManager and TaskManager processes, waiting until the cluster is ready,
//! explaining why it did not start, and stopping it.
//!
//! Processes are started with Flink's own `bin/jobmanager.sh start-foreground` /
//! `bin/taskmanager.sh start-foreground`. Those scripts `exec` Java, so the PID of the spawned
//! child is the PID of the JVM.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::dist::{FlinkDist, tail_lines};
use crate::error::{FlinkError, IoContext};

/// How many lines of each log a start error shows.
const LOG_TAIL_LINES: usize = 40;
/// How much of a log the diagnosis reads (from the end).
const DIAGNOSE_BYTES: u64 = 4 << 20;

/// Which Flink process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The JobManager (standalone session cluster entry point); serves REST.
    JobManager,
    /// A TaskManager (task executor).
    TaskManager,
    /// The JobManager of an application cluster (`standalone-job.sh`): runs one job's
    /// `main()` at start; serves REST. Its job is given as [`FlinkProcessSpec::args`].
    ApplicationJobManager,
}

impl Role {
    /// The start script in `bin/`.
    pub fn script(self) -> &'static str {
        match self {
            Role::JobManager => "jobmanager.sh",
            Role::TaskManager => "taskmanager.sh",
            Role::ApplicationJobManager => "standalone-job.sh",
        }
    }

    /// The service name Flink uses in log and pid file names.
    pub fn service(self) -> &'static str {
        match self {
            Role::JobManager => "standalonesession",
            Role::TaskManager => "taskexecutor",
            Role::ApplicationJobManager => "standalonejob",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::JobManager => "JobManager",
            Role::TaskManager => "TaskManager",
            Role::ApplicationJobManager => "JobManager (application)",
        })
    }
}

/// Everything needed to start one Flink process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlinkProcessSpec {
    /// The distribution whose scripts run.
    pub dist: FlinkDist,
    /// JobManager or TaskManager.
    pub role: Role,
    /// `FLINK_CONF_DIR`: holds the config file and log4j files.
    pub conf_dir: PathBuf,
    /// `FLINK_LOG_DIR`: Flink's `.log` files and this process's `<name>.out` (stdout + stderr).
    pub log_dir: PathBuf,
    /// `FLINK_PID_DIR`: a private directory (created 0700), never a shared one like /tmp.
    pub pid_dir: PathBuf,
    /// Names the `.out` file; unique per process in a log dir (`jobmanager`, `taskmanager-1`).
    pub name: String,
    /// `-D key=value` arguments, which override the config file for this process only.
    pub dynamic_properties: Vec<(String, String)>,
    /// Arguments after the dynamic properties (an application JobManager's job).
    pub args: Vec<String>,
    /// Extra environment variables for the scripts and the JVM (set after the `FLINK_*` ones,
    /// so they can override them).
    pub env: Vec<(String, String)>,
}

impl FlinkProcessSpec {
    /// A spec named after the role (`jobmanager` / `taskmanager`) without dynamic properties.
    pub fn new(
        dist: &FlinkDist,
        role: Role,
        conf_dir: impl Into<PathBuf>,
        log_dir: impl Into<PathBuf>,
        pid_dir: impl Into<PathBuf>,
    ) -> Self {
        FlinkProcessSpec {
            dist: dist.clone(),
            role,
            conf_dir: conf_dir.into(),
            log_dir: log_dir.into(),
            pid_dir: pid_dir.into(),
            name: role.script().trim_end_matches(".sh").to_owned(),
            dynamic_properties: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Sets the name of the `.out` file.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Adds `-D key=value`.
    pub fn dynamic_property(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.dynamic_properties
            .push((key.into(), value.to_string()));
        self
    }

    /// Sets an environment variable for the process.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Where this process's stdout and stderr go.
    pub fn out_path(&self) -> PathBuf {
        self.log_dir.join(format!("{}.out", self.name))
    }

    /// The command that starts this process, with its environment, arguments and output
    /// redirection set, ready to spawn. Creates the log and pid directories.
    ///
    /// [`spawn`] is the usual way in; this exists so a caller can add to the command (e.g. a
    /// `pre_exec` hook) and then hand it to [`spawn_command`].
    pub fn command(&self) -> Result<Command, FlinkError> {
        let script = self.dist.bin(self.role.script());
        if !script.is_file() {
            return Err(FlinkError::NotADistribution {
                home: self.dist.home.clone(),
                reason: format!("{} is missing", script.display()),
            });
        }
        if !self.conf_dir.is_dir() {
            return Err(FlinkError::io(
                format!(
                    "FLINK_CONF_DIR {} is not a directory",
                    self.conf_dir.display()
                ),
                std::io::ErrorKind::NotFound.into(),
            ));
        }
        fs::create_dir_all(&self.log_dir)
            .context(|| format!("cannot create the log directory {}", self.log_dir.display()))?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.pid_dir)
            .context(|| format!("cannot create the pid directory {}", self.pid_dir.display()))?;
        let out_path = self.out_path();
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .context(|| format!("cannot open {}", out_path.display()))?;
        let err = out
            .try_clone()
            .context(|| format!("cannot share {}", out_path.display()))?;

        // Run through bash: the scripts need it and pip does not always keep exec bits.
        let mut command = Command::new("bash");
        command.arg(&script).arg("start-foreground");
        for (key, value) in &self.dynamic_properties {
            command.arg("-D").arg(format!("{key}={value}"));
        }
        command.args(&self.args);
        // The console appender would copy the whole log into the .out file; with it off the
        // .out file holds what Flink's daemon mode puts there: stdout, stderr, JVM crashes.
        let mut jvm_args = std::env::var("JVM_ARGS").unwrap_or_default();
        jvm_args.push_str(" -Dconsole.log.level=OFF");
        command
            .env("FLINK_HOME", &self.dist.home)
            .env("FLINK_CONF_DIR", &self.conf_dir)
            .env("FLINK_LOG_DIR", &self.log_dir)
            .env("FLINK_PID_DIR", &self.pid_dir)
            .env("JVM_ARGS", jvm_args.trim())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        Ok(command)
    }
}

/// Starts the process `spec` describes.
///
/// With `detach`, the process gets its own process group, so it survives the parent exiting
/// and is not hit by a Ctrl-C meant for the parent (for `flinkguard up`). Without, it is an
/// ordinary child (for tests).
pub fn spawn(spec: &FlinkProcessSpec, detach: bool) -> Result<FlinkProcess, FlinkError> {
    let mut command = spec.command()?;
    if detach {
        command.process_group(0);
    }
    spawn_command(spec, command)
}

/// Spawns a command made by [`FlinkProcessSpec::command`] (possibly extended by the caller).
pub fn spawn_command(
    spec: &FlinkProcessSpec,
    mut command: Command,
) -> Result<FlinkProcess, FlinkError> {
    let child = command.spawn().context(|| {
        format!(
            "cannot start the {} with {}",
            spec.role,
            spec.dist.bin(spec.role.script()).display()
        )
    })?;
    Ok(FlinkProcess {
        pid: child.id(),
        role: spec.role,
        log_dir: spec.log_dir.clone(),
        pid_dir: spec.pid_dir.clone(),
        out_path: Some(spec.out_path()),
        child: Some(child),
    })
}

/// A running (or exited) Flink process: a child of this process, or one known by PID only
/// (e.g. started by an earlier `flinkguard up`).
#[derive(Debug)]
pub struct FlinkProcess {
    pid: u32,
    role: Role,
    log_dir: PathBuf,
    pid_dir: PathBuf,
    out_path: Option<PathBuf>,
    child: Option<Child>,
}

/// How [`stop`] ended a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// It was not running (or the PID now belongs to something that is not Flink).
    NotRunning,
    /// It exited after SIGTERM.
    Terminated,
    /// It ignored SIGTERM for the grace period and was killed with SIGKILL.
    Killed,
}

/// How long [`stop`] waits after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

impl FlinkProcess {
    /// A process known by PID only, with the directories that hold its logs and pid files.
    pub fn from_pid(
        pid: u32,
        role: Role,
        log_dir: impl Into<PathBuf>,
        pid_dir: impl Into<PathBuf>,
    ) -> Self {
        FlinkProcess {
            pid,
            role,
            log_dir: log_dir.into(),
            pid_dir: pid_dir.into(),
            out_path: None,
            child: None,
        }
    }

    /// The PID (that of the JVM once the start script has exec'd it).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// JobManager or TaskManager.
    pub fn role(&self) -> Role {
        self.role
    }

    /// `Some(description)` once the process has exited, e.g. `exit status: 1`.
    pub fn exit_status(&mut self) -> Option<String> {
        match &mut self.child {
            Some(child) => match child.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                Ok(None) => None,
                Err(e) => Some(format!("unknown ({e})")),
            },
            None => (!is_alive(self.pid)).then(|| "exited".to_owned()),
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Flink's `.log` file for this process, found through the pid file Flink's script writes
    /// (`flink-<user>-<service>.pid` lists PIDs; the line number is the log file's index).
    pub fn flink_log(&self) -> Option<PathBuf> {
        let service = self.role.service();
        let index = find_pid_index(&self.pid_dir, service, self.pid);
        let mut candidates: Vec<PathBuf> = fs::read_dir(&self.log_dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                name.is_some_and(|n| {
                    n.starts_with("flink-")
                        && n.ends_with(".log")
                        && match index {
                            Some(i) => n.contains(&format!("-{service}-{i}-")),
                            None => n.contains(&format!("-{service}-")),
                        }
                })
            })
            .collect();
        // Without an index, the most recently written log of the role is the best guess.
        candidates.sort_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
        candidates.pop()
    }

    /// The files that explain what this process did: Flink's `.log` and the `.out` file.
    pub fn log_files(&self) -> Vec<PathBuf> {
        self.flink_log()
            .into_iter()
            .chain(self.out_path.clone().filter(|p| p.exists()))
            .collect()
    }

    /// SIGTERM, wait up to [`STOP_GRACE`], then SIGKILL. Reaps the process if it is a child.
    pub fn stop(&mut self) -> Result<StopOutcome, FlinkError> {
        stop_all(std::slice::from_mut(self), STOP_GRACE)
            .pop()
            .unwrap_or(Ok(StopOutcome::NotRunning))
    }

    fn signal(&mut self, signal: Signal) -> std::io::Result<()> {
        // A child that has not been reaped keeps its PID, so signalling it is safe; for a PID
        // we did not spawn, check it is still Flink first.
        if self.child.is_none() && !is_alive(self.pid) {
            return Ok(());
        }
        send_signal(self.pid, signal)
    }
}

/// Stops several processes at once: SIGTERM to all, wait up to `grace` for all, then SIGKILL
/// to the rest. Returns one outcome per process, in order.
pub fn stop_all(
    processes: &mut [FlinkProcess],
    grace: Duration,
) -> Vec<Result<StopOutcome, FlinkError>> {
    let mut outcomes: Vec<Option<Result<StopOutcome, FlinkError>>> =
        processes.iter().map(|_| None).collect();
    for (process, outcome) in processes.iter_mut().zip(&mut outcomes) {
        if !process.is_running() {
            *outcome = Some(Ok(StopOutcome::NotRunning));
        } else if let Err(e) = process.signal(Signal::TERM) {
            *outcome = Some(Err(FlinkError::io(
                format!(
                    "cannot send SIGTERM to {} pid {}",
                    process.role, process.pid
                ),
                e,
            )));
        }
    }
    let deadline = Instant::now() + grace;
    loop {
        let mut waiting = false;
        for (process, outcome) in processes.iter_mut().zip(&mut outcomes) {
            if outcome.is_none() {
                if process.is_running() {
                    waiting = true;
                } else {
                    *outcome = Some(Ok(StopOutcome::Terminated));
                }
            }
        }
        if !waiting || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (process, outcome) in processes.iter_mut().zip(&mut outcomes) {
        if outcome.is_some() {
            continue;
        }
        let killed = process.signal(Signal::KILL).map_err(|e| {
            FlinkError::io(
                format!(
                    "cannot send SIGKILL to {} pid {}",
                    process.role, process.pid
                ),
                e,
            )
        });
        *outcome = Some(killed.map(|()| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while process.is_running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            StopOutcome::Killed
        }));
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Ok(StopOutcome::NotRunning)))
        .collect()
}

/// Stops a Flink process known only by PID: SIGTERM, wait up to [`STOP_GRACE`], SIGKILL. Does
/// nothing if the PID is not a live Flink process (see [`is_alive`]), so a stale PID that now
/// belongs to another program is never signalled.
pub fn stop(pid: u32) -> Result<StopOutcome, FlinkError> {
    let signal = |signal: Signal, name: &str| {
        send_signal(pid, signal)
            .map_err(|e| FlinkError::io(format!("cannot send {name} to Flink pid {pid}"), e))
    };
    if !is_alive(pid) {
        return Ok(StopOutcome::NotRunning);
    }
    signal(Signal::TERM, "SIGTERM")?;
    if wait_until_dead(pid, STOP_GRACE) {
        return Ok(StopOutcome::Terminated);
    }
    // Re-check right before SIGKILL: the PID must still be Flink's.
    if is_alive(pid) {
        signal(Signal::KILL, "SIGKILL")?;
        wait_until_dead(pid, Duration::from_secs(5));
    }
    Ok(StopOutcome::Killed)
}

fn wait_until_dead(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !is_alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` is a live Flink process: some thread of it still runs and its command line is
/// a Flink JVM (`org.apache.flink...`) or one of the start scripts that exec it. A recycled PID
/// that now belongs to something else, or an exited process not yet reaped (a zombie), is
/// reported as not alive.
///
/// Threads are checked one by one because a JVM's main thread can exit before the others: the
/// process then shows as a zombie with an empty command line while its shutdown hooks still
/// run in other threads.
pub fn is_alive(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        let dir = task.path();
        let Ok(stat) = fs::read_to_string(dir.join("stat")) else {
            return false;
        };
        // The state follows the command name, which is in parentheses and may contain spaces.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if matches!(state, Some('Z' | 'X' | 'x') | None) {
            return false;
        }
        let Ok(cmdline) = fs::read(dir.join("cmdline")) else {
            return false;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        [
            "org.apache.flink",
            "bin/jobmanager.sh",
            "bin/taskmanager.sh",
            "bin/flink-console.sh",
        ]
        .iter()
        .any(|marker| cmdline.contains(marker))
    })
}

fn send_signal(pid: u32, signal: Signal) -> std::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("invalid pid {pid}")))?;
    match rustix::process::kill_process(pid, signal) {
        // Gone already: that is what we wanted.
        Err(rustix::io::Errno::SRCH) => Ok(()),
        other => other.map_err(std::io::Error::from),
    }
}

fn find_pid_index(pid_dir: &Path, service: &str, pid: u32) -> Option<usize> {
    let suffix = format!("-{service}.pid");
    fs::read_dir(pid_dir).ok()?.flatten().find_map(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("flink-") && name.ends_with(&suffix)) {
            return None;
        }
        let text = fs::read_to_string(entry.path()).ok()?;
        text.lines().position(|l| l.trim() == pid.to_string())
    })
}

/// What `GET /overview` says about a cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClusterOverview {
    /// Registered TaskManagers.
    pub taskmanagers: u32,
    /// All slots.
    pub slots_total: u32,
    /// Free slots.
    pub slots_available: u32,
    /// Running jobs.
    pub jobs_running: u32,
    /// Flink's version.
    pub flink_version: String,
}

/// `GET {rest_url}/overview` over plain HTTP.
pub fn fetch_overview(rest_url: &str, timeout: Duration) -> Result<ClusterOverview, FlinkError> {
    let url = format!("{}/overview", rest_url.trim_end_matches('/'));
    let rest_err = |detail: String| FlinkError::Rest {
        method: "GET",
        url: url.clone(),
        detail,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        // A REST endpoint that switched to TLS answers plain HTTP with a redirect to https:
        // that is an error to report (with its status), not a hop to follow.
        .max_redirects(0)
        .proxy(None)
        .build()
        .into();
    let mut response = agent
        .get(&url)
        .call()
        .map_err(|e| rest_err(e.to_string()))?;
    let status = response.status();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| rest_err(e.to_string()))?;
    if !status.is_success() {
        return Err(rest_err(format!("HTTP {status}: {body}")));
    }
    serde_json::from_str(&body).map_err(|e| rest_err(format!("unexpected answer {body}: {e}")))
}

/// Polls `GET {rest_url}/overview` until at least `taskmanagers` TaskManagers registered and a
/// slot is free (with `taskmanagers == 0`: until REST answers). Fails early, with the process's logs and a diagnosis, if a watched process
/// exits; fails at `deadline` with the logs of every watched process.
pub fn wait_ready(
    rest_url: &str,
    taskmanagers: u32,
    deadline: Instant,
    watched: &mut [FlinkProcess],
) -> Result<ClusterOverview, FlinkError> {
    wait_ready_with(
        &|| fetch_overview(rest_url, Duration::from_secs(2)),
        taskmanagers,
        deadline,
        watched,
    )
}

/// [`wait_ready`] with another way to read the overview (e.g. over TLS).
pub fn wait_ready_with(
    fetch: &dyn Fn() -> Result<ClusterOverview, FlinkError>,
    taskmanagers: u32,
    deadline: Instant,
    watched: &mut [FlinkProcess],
) -> Result<ClusterOverview, FlinkError> {
    let started = Instant::now();
    let mut last_state;
    loop {
        for process in watched.iter_mut() {
            if let Some(status) = process.exit_status() {
                let problem = format!(
                    "the {} (pid {}) exited while starting ({status}) after {:.1} s",
                    process.role,
                    process.pid,
                    started.elapsed().as_secs_f64()
                );
                return Err(
                    Box::new(FlinkStartError::from_logs(problem, &process.log_files())).into(),
                );
            }
        }
        match fetch() {
            Ok(overview) if taskmanagers == 0 => return Ok(overview),
            Ok(overview)
                if overview.taskmanagers >= taskmanagers && overview.slots_available > 0 =>
            {
                return Ok(overview);
            }
            Ok(overview) => {
                last_state = format!(
                    "{} of {taskmanagers} TaskManagers registered, {} slots free",
                    overview.taskmanagers, overview.slots_available
                );
            }
            Err(e) => last_state = format!("REST not answering: {e}"),
        }
        if Instant::now() >= deadline {
            let problem = format!(
                "Flink was not ready after {:.0} s ({last_state})",
                started.elapsed().as_secs_f64()
            );
            let files: Vec<PathBuf> = watched.iter().flat_map(|p| p.log_files()).collect();
            return Err(Box::new(FlinkStartError::from_logs(problem, &files)).into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Flink did not start: what happened, the end of the relevant logs, and a likely cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlinkStartError {
    /// What went wrong, e.g. "the JobManager (pid 123) exited while starting".
    pub problem: String,
    /// The last lines of each relevant log file.
    pub logs: Vec<LogExcerpt>,
    /// What the logs suggest.
    pub cause: LikelyCause,
}

/// The end of one log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogExcerpt {
    /// The log file.
    pub path: PathBuf,
    /// Its last lines.
    pub tail: String,
}

impl FlinkStartError {
    /// Builds the error from log files: their tails, and a diagnosis from their full text.
    pub fn from_logs(problem: String, files: &[PathBuf]) -> Self {
        let mut cause = LikelyCause::Unknown;
        let mut logs = Vec::new();
        for path in files {
            if cause == LikelyCause::Unknown {
                cause = diagnose(&read_end(path, DIAGNOSE_BYTES));
            }
            logs.push(LogExcerpt {
                path: path.clone(),
                tail: tail_lines(path, LOG_TAIL_LINES),
            });
        }
        FlinkStartError {
            problem,
            logs,
            cause,
        }
    }
}

impl fmt::Display for FlinkStartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.problem)?;
        if self.logs.is_empty() {
            writeln!(f, "(no log files were found)")?;
        }
        for log in &self.logs {
            writeln!(f, "---- last lines of {} ----", log.path.display())?;
            writeln!(f, "{}", log.tail)?;
        }
        write!(f, "likely cause: {}", self.cause)
    }
}

impl std::error::Error for FlinkStartError {}

/// Why Flink probably failed to start, read from its logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LikelyCause {
    /// A port Flink binds is taken.
    PortInUse {
        /// The port, if the log names it.
        port: Option<u16>,
    },
    /// A keystore/truststore password does not open the file.
    WrongKeystorePassword,
    /// A keystore password shorter than 6 characters (the JobManager crashes at start).
    ShortKeystorePassword,
    /// Flink's classes need a newer Java than the one running.
    JavaTooOld,
    /// A configured keystore or truststore file does not exist.
    MissingKeystore {
        /// The path from the log, if it names one.
        path: Option<String>,
    },
    /// Nothing recognised.
    Unknown,
}

impl fmt::Display for LikelyCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LikelyCause::PortInUse { port: Some(port) } => write!(
                f,
                "port {port} is already in use; stop what listens there or configure another port"
            ),
            LikelyCause::PortInUse { port: None } => write!(
                f,
                "a port Flink binds is already in use; stop what listens there or configure other ports"
            ),
            LikelyCause::WrongKeystorePassword => write!(
                f,
                "a keystore or truststore password is wrong (security.ssl.*.keystore-password, \
                 key-password, truststore-password must open the files they belong to)"
            ),
            LikelyCause::ShortKeystorePassword => write!(
                f,
                "a keystore password is shorter than 6 characters, which makes Flink crash at \
                 start; use a password of at least 6 characters"
            ),
            LikelyCause::JavaTooOld => write!(
                f,
                "the Java running Flink is too old for it (UnsupportedClassVersionError); use \
                 Java 17: apt-get install openjdk-17-jre-headless and set JAVA_HOME"
            ),
            LikelyCause::MissingKeystore { path: Some(path) } => write!(
                f,
                "a keystore or truststore file is missing: {path}; check the security.ssl.* paths"
            ),
            LikelyCause::MissingKeystore { path: None } => write!(
                f,
                "a keystore or truststore file is missing; check the security.ssl.* paths"
            ),
            LikelyCause::Unknown => write!(f, "not recognised; see the log above"),
        }
    }
}

/// Reads a Flink log (or `.out`) and names the most likely reason the process failed.
pub fn diagnose(log: &str) -> LikelyCause {
    if log.contains("UnsupportedClassVersionError") {
        return LikelyCause::JavaTooOld;
    }
    if is_short_password(log) {
        return LikelyCause::ShortKeystorePassword;
    }
    if [
        "password was incorrect",
        "Keystore was tampered with",
        "keystore password was incorrect",
        "Given final block not properly padded",
        "UnrecoverableKeyException",
        "Get Key failed",
    ]
    .iter()
    .any(|m| log.contains(m))
    {
        return LikelyCause::WrongKeystorePassword;
    }
    if let Some(path) = missing_keystore(log) {
        return LikelyCause::MissingKeystore { path };
    }
    if log.lines().any(is_bind_failure) {
        return LikelyCause::PortInUse {
            port: port_in_use(log),
        };
    }
    LikelyCause::Unknown
}

/// How Flink reports a port it cannot bind: REST and pekko say `BindException: Could not start
/// ... on any port in port range N` (without "Address already in use"), pekko's transport
/// `failed to bind to host:H port:N`, the blob server `Unable to open BLOB Server in specified
/// port range: N`, Netty `Address already in use`.
fn is_bind_failure(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.contains("address already in use")
        || lower.contains("bindexception")
        || lower.contains("failed to bind")
        || lower.contains("unable to open blob server")
}

fn is_short_password(log: &str) -> bool {
    // Java's PKCS12 code refuses passwords under 6 characters with this message.
    let lower = log.to_ascii_lowercase();
    lower.contains("password must be at least 6 characters")
        || lower.contains("password is too short")
}

/// `Some(path)` (or `Some(None)` without a path) if the log shows a keystore file not found.
fn missing_keystore(log: &str) -> Option<Option<String>> {
    for exception in ["NoSuchFileException: ", "FileNotFoundException: "] {
        for line in log.lines() {
            let Some(at) = line.find(exception) else {
                continue;
            };
            let rest = line[at + exception.len()..].trim();
            let path = rest.split(" (").next().unwrap_or(rest).trim().to_owned();
            let lower = line.to_ascii_lowercase();
            let keystore_like = ["keystore", "truststore", ".p12", ".pfx", ".jks", "pkcs12"]
                .iter()
                .any(|m| lower.contains(m));
            if keystore_like {
                return Some((!path.is_empty()).then_some(path));
            }
        }
    }
    None
}

/// Finds the port in the lines around "Address already in use".
fn port_in_use(log: &str) -> Option<u16> {
    let lines: Vec<&str> = log.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if !is_bind_failure(line) {
            continue;
        }
        // The port is on the line itself or on the line that introduces the stack trace.
        let window = lines[i.saturating_sub(2)..=i].iter().rev();
        for candidate in window {
            if let Some(port) = port_in_line(candidate) {
                return Some(port);
            }
        }
    }
    None
}

/// `... port range 8081 ...`, `... port range: 6124`, `/127.0.0.1:6123`, `localhost:6123`.
fn port_in_line(line: &str) -> Option<u16> {
    for marker in ["port range: ", "port range ", "port:", "port "] {
        if let Some(at) = line.find(marker)
            && let Some(port) = leading_port(&line[at + marker.len()..])
        {
            return Some(port);
        }
    }
    // host:port, preferring loopback addresses.
    let mut found = None;
    for (at, _) in line.match_indices(':') {
        let before = &line[..at];
        let host_like = before.ends_with(|c: char| c.is_ascii_digit() || c.is_ascii_alphabetic())
            && (before.ends_with("127.0.0.1")
                || before.ends_with("localhost")
                || before.ends_with("0.0.0.0")
                || before.rsplit(['/', ' ']).next().is_some_and(|h| {
                    h.split('.').count() == 4 && h.split('.').all(|p| p.parse::<u8>().is_ok())
                }));
        if host_like && let Some(port) = leading_port(&line[at + 1..]) {
            found = Some(port);
            break;
        }
    }
    found
}

fn leading_port(text: &str) -> Option<u16> {
    let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok().filter(|&p| p != 0)
}

/// The last `max` bytes of a file, lossily decoded.
fn read_end(path: &Path, max: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > max {
        let _ = file.seek(SeekFrom::Start(len - max));
    }
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnoses_port_in_use_and_names_the_port() {
        let rest = "2025-01-01 ERROR org.apache.flink.runtime.entrypoint.ClusterEntrypoint - Could not start cluster entrypoint StandaloneSessionClusterEntrypoint.\n\
            org.apache.flink.util.FlinkException: Could not create the DispatcherResourceManagerComponent.\n\
            Caused by: java.net.BindException: Could not start rest endpoint on any port in port range 8081\n\
            Caused by: java.net.BindException: Address already in use";
        assert_eq!(diagnose(rest), LikelyCause::PortInUse { port: Some(8081) });
        let rpc = "Caused by: org.apache.pekko.remote.RemoteTransportException: Failed to bind to /127.0.0.1:6123\n\
            Caused by: java.net.BindException: Address already in use";
        assert_eq!(diagnose(rpc), LikelyCause::PortInUse { port: Some(6123) });
        // Flink 2.3's real messages (from its logs) do not say "Address already in use".
        let pekko = "2026-11-23 13:43:09,391 ERROR org.apache.pekko.remote.transport.netty.NettyTransport       [] - failed to bind to host:127.0.0.1 port:41267, shutting down Netty transport\n\
            Caused by: java.net.BindException: Could not start actor system on any port in port range 41267";
        assert_eq!(
            diagnose(pekko),
            LikelyCause::PortInUse { port: Some(41267) }
        );
        let rest2 = "Caused by: java.net.BindException: Could not start rest endpoint on any port in port range 42209";
        assert_eq!(
            diagnose(rest2),
            LikelyCause::PortInUse { port: Some(42209) }
        );
        let blob = "java.io.IOException: Unable to open BLOB Server in specified port range: 6124";
        assert_eq!(diagnose(blob), LikelyCause::PortInUse { port: Some(6124) });
        // Netty's normal start-up line names a port range too, but is no failure.
        let normal = "NettyConfig [server address: /127.0.0.1, server port range: 44347, ssl enabled: false]";
        assert_eq!(diagnose(normal), LikelyCause::Unknown);
        let bare = "java.net.BindException: Address already in use";
        assert_eq!(diagnose(bare), LikelyCause::PortInUse { port: None });
    }

    #[test]
    fn diagnoses_keystore_problems() {
        let wrong = "Caused by: java.io.IOException: keystore password was incorrect";
        assert_eq!(diagnose(wrong), LikelyCause::WrongKeystorePassword);
        let tampered = "java.io.IOException: Keystore was tampered with, or password was incorrect";
        assert_eq!(diagnose(tampered), LikelyCause::WrongKeystorePassword);
        let missing =
            "Caused by: java.nio.file.NoSuchFileException: /etc/flink/internal.keystore.p12";
        assert_eq!(
            diagnose(missing),
            LikelyCause::MissingKeystore {
                path: Some("/etc/flink/internal.keystore.p12".into())
            }
        );
        let missing_fnf =
            "java.io.FileNotFoundException: /secrets/rest.keystore (No such file or directory)";
        assert_eq!(
            diagnose(missing_fnf),
            LikelyCause::MissingKeystore {
                path: Some("/secrets/rest.keystore".into())
            }
        );
        // A missing file that is not a keystore is not a keystore problem.
        let other = "java.io.FileNotFoundException: /opt/job.jar (No such file or directory)";
        assert_eq!(diagnose(other), LikelyCause::Unknown);
        let short =
            "java.security.UnrecoverableKeyException: password must be at least 6 characters";
        assert_eq!(diagnose(short), LikelyCause::ShortKeystorePassword);
    }

    #[test]
    fn diagnoses_old_java_and_falls_back_to_unknown() {
        let old = "Exception in thread \"main\" java.lang.UnsupportedClassVersionError: org/apache/flink/runtime/entrypoint/StandaloneSessionClusterEntrypoint has been compiled by a more recent version";
        assert_eq!(diagnose(old), LikelyCause::JavaTooOld);
        assert_eq!(diagnose("all fine\n"), LikelyCause::Unknown);
        assert!(
            LikelyCause::Unknown
                .to_string()
                .contains("see the log above")
        );
    }

    #[test]
    fn start_error_shows_tails_and_cause() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("flink-x-standalonesession-0-host.log");
        let mut text: String = (0..100).map(|i| format!("filler {i}\n")).collect();
        text.push_str("java.net.BindException: Could not start rest endpoint on any port in port range 18081\n");
        text.push_str("Caused by: java.net.BindException: Address already in use\n");
        fs::write(&log, text).unwrap();
        let err =
            FlinkStartError::from_logs("JobManager exited".into(), std::slice::from_ref(&log));
        assert_eq!(err.cause, LikelyCause::PortInUse { port: Some(18081) });
        let shown = err.to_string();
        assert!(shown.starts_with("JobManager exited\n"));
        assert!(shown.contains("filler 99"));
        assert!(!shown.contains("filler 50\n"));
        assert!(shown.contains("port 18081 is already in use"));
    }

    #[test]
    fn is_alive_is_false_for_non_flink_and_dead_pids() {
        assert!(!is_alive(std::process::id()));
        assert!(!is_alive(u32::MAX - 1));
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        assert!(!is_alive(sleeper.id()), "a sleep is not Flink");
        // stop() must not signal a process that is not Flink.
        assert_eq!(stop(sleeper.id()).unwrap(), StopOutcome::NotRunning);
        assert!(sleeper.try_wait().unwrap().is_none());
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }

    #[test]
    fn finds_the_log_of_a_pid_through_flinks_pid_file() {
        let dir = tempfile::tempdir().unwrap();
        let (logs, pids) = (dir.path().join("log"), dir.path().join("pid"));
        fs::create_dir_all(&logs).unwrap();
        fs::create_dir_all(&pids).unwrap();
        fs::write(pids.join("flink-me-taskexecutor.pid"), "111\n222\n").unwrap();
        for i in 0..2 {
            fs::write(logs.join(format!("flink-me-taskexecutor-{i}-host.log")), "").unwrap();
        }
        let process = FlinkProcess::from_pid(222, Role::TaskManager, &logs, &pids);
        assert_eq!(
            process.flink_log(),
            Some(logs.join("flink-me-taskexecutor-1-host.log"))
        );
        let jm = FlinkProcess::from_pid(333, Role::JobManager, &logs, &pids);
        assert_eq!(jm.flink_log(), None);
    }
}
