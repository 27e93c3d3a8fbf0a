//! `up`, `down`, `status`: a hardened local Flink cluster, started and stopped by PID.

use std::fs;
use std::io::IsTerminal;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use flinkguard_config::{Config, LoadedConfig};
use flinkguard_files::Mode;
use flinkguard_flink::process::{self, FlinkProcess, STOP_GRACE};
use flinkguard_flink::{
    ClusterOverview, ConfigFormat, FlinkDist, FlinkError, FlinkProcessSpec, InstallProgress, Role,
};
use flinkguard_gateway::FlinkRestClient;
use flinkguard_render::{FlinkSettings, LocalClusterDirs};
use serde::{Deserialize, Serialize};

use crate::Outcome;
use crate::cmd_init::{self, InitArgs};

/// How long `up` waits for the JobManager and TaskManager to be ready.
const START_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Args, Debug)]
pub(crate) struct DirArgs {
    /// The folder holding flinkguard.yaml (and the cluster's state in .flinkguard/).
    #[arg(long, default_value = ".", value_name = "DIR")]
    dir: PathBuf,
}

#[derive(Args, Debug)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    dir: DirArgs,
}

#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// What `up` started, so `down` stops exactly that and `status` checks exactly that.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    flink_home: PathBuf,
    flink_version: String,
    rest_url: String,
    work_dir: PathBuf,
    processes: Vec<StartedProcess>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StartedProcess {
    role: String,
    pid: u32,
}

/// The role name of the gateway in the state file.
const GATEWAY_ROLE: &str = "gateway";

impl StartedProcess {
    /// Alive, and still the program `up` started (not a recycled PID).
    fn is_alive(&self) -> bool {
        if self.role == GATEWAY_ROLE {
            gateway_alive(self.pid)
        } else {
            process::is_alive(self.pid)
        }
    }
}

/// Whether `pid` is a running `flinkguard gateway`.
fn gateway_alive(pid: u32) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let zombie = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true);
    !zombie
        && args.first().is_some_and(|a| a.ends_with(b"flinkguard"))
        && args.get(1).is_some_and(|a| *a == b"gateway")
}

/// SIGTERM, then SIGKILL after five seconds; only if `pid` is still our gateway.
fn stop_gateway(pid: u32) -> Result<&'static str> {
    use rustix::process::{Pid, Signal, kill_process};
    if !gateway_alive(pid) {
        return Ok("NotRunning");
    }
    let target = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .context("invalid pid")?;
    kill_process(target, Signal::TERM)
        .with_context(|| format!("cannot signal the gateway (pid {pid})"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while gateway_alive(pid) {
        if Instant::now() > deadline {
            kill_process(target, Signal::KILL)
                .with_context(|| format!("cannot kill the gateway (pid {pid})"))?;
            return Ok("Killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok("Terminated")
}

/// The private working folder of the local cluster: config, logs, pids, temp files.
struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    fn new(dir: &Path) -> WorkDir {
        WorkDir {
            root: dir.join(".flinkguard"),
        }
    }
    fn state(&self) -> PathBuf {
        self.root.join("state.json")
    }
    fn conf(&self) -> PathBuf {
        self.root.join("conf")
    }
    fn log(&self) -> PathBuf {
        self.root.join("log")
    }
    fn pid(&self) -> PathBuf {
        self.root.join("pid")
    }
    fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    fn web(&self) -> PathBuf {
        self.root.join("web")
    }

    fn read_state(&self) -> Result<Option<State>> {
        match fs::read(self.state()) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is corrupt; stop leftover Flink processes by hand and delete it",
                    self.state().display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.state().display())),
        }
    }

    fn write_state(&self, state: &State) -> Result<()> {
        flinkguard_files::write_atomic(
            &self.state(),
            &serde_json::to_vec_pretty(state)?,
            Mode::Secret,
        )?;
        Ok(())
    }
}

fn role_of(name: &str) -> Role {
    if name == "taskmanager" {
        Role::TaskManager
    } else {
        Role::JobManager
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        // `up` runs a session cluster; an application JobManager is a JobManager to it too.
        Role::JobManager | Role::ApplicationJobManager => "jobmanager",
        Role::TaskManager => "taskmanager",
    }
}

pub(crate) fn up(args: &UpArgs) -> Result<Outcome> {
    let dir = &args.dir.dir;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let work = WorkDir::new(&dir);
    if let Some(state) = work.read_state()? {
        if state.processes.iter().any(StartedProcess::is_alive) {
            println!("Flink is already running here (started by an earlier `flinkguard up`):");
            print_status(&state);
            return Ok(Outcome::Ok);
        }
        fs::remove_file(work.state())?;
    }

    flinkguard_flink::require_java()?;
    let config_path = dir.join(flinkguard_config::FILE_NAME);
    if !config_path.exists() {
        println!(
            "No {} here: running `flinkguard init` first.",
            flinkguard_config::FILE_NAME
        );
        let mut init = InitArgs::defaults_in(&dir);
        init.quiet = true;
        cmd_init::run(&init)?;
    }
    let loaded = Config::load(&config_path)?;
    let dist = match std::env::var_os("FLINK_HOME") {
        Some(home) => FlinkDist::from_home(PathBuf::from(home))?,
        None => install_with_progress(&loaded)?,
    };

    let flink = &loaded.config.flink;
    for (port, field) in [
        (flink.rest_port, "flink.rest_port"),
        (flink.rpc_port, "flink.rpc_port"),
    ] {
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            bail!(
                "port {port} on 127.0.0.1 is in use (another Flink?); stop what uses it or set {field} in {}",
                config_path.display()
            );
        }
    }

    prepare_work_dir(&work, &dist, &loaded)?;
    // Flink's REST endpoint is checked the way the gateway reaches it: with the upstream
    // client identity, trusting only the pinned upstream certificate.
    let rest = FlinkRestClient::from_config(&loaded)?;
    let rest_url = rest.base().to_owned();
    let mut started: Vec<FlinkProcess> = Vec::new();
    let mut state = State {
        flink_home: dist.home.clone(),
        flink_version: dist.version.to_string(),
        rest_url: rest_url.clone(),
        work_dir: work.root.clone(),
        processes: Vec::new(),
    };
    for role in [Role::JobManager, Role::TaskManager] {
        let spec = FlinkProcessSpec::new(&dist, role, work.conf(), work.log(), work.pid());
        let process = flinkguard_flink::spawn(&spec, true)?;
        state.processes.push(StartedProcess {
            role: role_name(role).into(),
            pid: process.pid(),
        });
        started.push(process);
        // Recorded at once, so `down` can stop what started even if `up` is interrupted.
        work.write_state(&state)?;
    }

    eprintln!(
        "Starting Flink {} (JobManager pid {}, TaskManager pid {})...",
        dist.version, state.processes[0].pid, state.processes[1].pid
    );
    if let Err(e) = flinkguard_flink::wait_ready_with(
        &|| overview(&rest, Duration::from_secs(2)),
        1,
        Instant::now() + START_DEADLINE,
        &mut started,
    ) {
        process::stop_all(&mut started, STOP_GRACE);
        let _ = fs::remove_file(work.state());
        return Err(e).context("Flink did not start; everything `up` started was stopped");
    }
    let gateway = match start_gateway(&work, &loaded, &config_path, &mut state) {
        Ok(gateway) => gateway,
        Err(e) => {
            process::stop_all(&mut started, STOP_GRACE);
            let _ = fs::remove_file(work.state());
            return Err(e.context("the gateway did not start; everything `up` started was stopped"));
        }
    };
    println!(
        "Hardened Flink {} is running in {}",
        dist.version,
        dir.display()
    );
    print_status(&state);
    println!(
        "  internal RPC, blob and data plane: mutual TLS with the cluster identity {}",
        loaded.pki().internal_keystore().display()
    );
    println!(
        "  gateway: https://{}/ (client certificates or service tokens; every request authorized by operation; audit: {})",
        gateway.listen,
        loaded.config.gateway.audit_file.as_ref().map_or_else(
            || "stdout only".to_owned(),
            |f| loaded.base_dir.join(f).display().to_string()
        )
    );
    if let Some(admin) = gateway.admin {
        println!("  gateway admin: http://{admin}/healthz, /readyz, /metrics (Prometheus)");
    }
    let hop = if loaded.config.gateway.upstream_mutual_tls() {
        format!(
            "mutual TLS, only the gateway's identity {}/ is accepted",
            loaded.pki().upstream_dir().display()
        )
    } else {
        "WARNING: no TLS, any local user can reach it around the gateway; see `flinkguard pki create-upstream`".to_owned()
    };
    println!(
        "  Flink REST behind it: {rest_url}/ (127.0.0.1 only; {hop}; web submit {}, web cancel {})",
        on_off(flink.web_submit),
        on_off(flink.web_cancel)
    );
    println!("  logs: {}", work.log().display());
    println!(
        "Try it (as `{}`, bound to the admin role in flinkguard.yaml):",
        flinkguard_config::LOCAL_ADMIN_USER
    );
    println!(
        "  curl --cacert {} --cert {} --key {} https://localhost:{}/overview",
        gateway.ca.display(),
        gateway.client.cert.display(),
        gateway.client.key.display(),
        gateway.listen.port()
    );
    println!("Stop it with: flinkguard down --dir {}", dir.display());
    Ok(Outcome::Ok)
}

/// What `up` tells the user about the gateway it started.
struct StartedGateway {
    listen: std::net::SocketAddr,
    admin: Option<std::net::SocketAddr>,
    ca: PathBuf,
    client: flinkguard_pki::ClientFiles,
}

/// Issues the local admin's client certificate if missing, starts `flinkguard gateway` detached
/// (audit lines to gateway.audit_file) and waits until it accepts connections.
fn start_gateway(
    work: &WorkDir,
    loaded: &LoadedConfig,
    config_path: &Path,
    state: &mut State,
) -> Result<StartedGateway> {
    let listen = loaded.config.gateway.listen;
    let admin_listen = loaded.config.gateway.admin_listen;
    for (field, addr) in [("listen", Some(listen)), ("admin_listen", admin_listen)] {
        if let Some(addr) = addr
            && TcpListener::bind(addr).is_err()
        {
            bail!(
                "{addr} is in use; stop what uses it or set gateway.{field} in {}",
                config_path.display()
            );
        }
    }
    let pki = loaded.pki();
    let admin: flinkguard_pki::UserName = flinkguard_config::LOCAL_ADMIN_USER.parse()?;
    let client = if pki.client_dir(&admin).exists() {
        flinkguard_pki::ClientFiles::in_dir(pki.client_dir(&admin))
    } else {
        flinkguard_pki::issue_client(
            &pki,
            &flinkguard_pki::ClientRequest {
                user: admin,
                groups: vec![],
                days: loaded.config.pki.validity_days.client,
                force: false,
            },
        )?
    };
    let log_path = work.log().join("gateway.log");
    let log = fs::File::create(&log_path).context("cannot create the gateway log")?;
    let exe = std::env::current_exe().context("cannot find the flinkguard executable")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("gateway")
        .arg("--config")
        .arg(config_path)
        .stdin(std::process::Stdio::null())
        // Audit lines go to gateway.audit_file; stdout is a copy nobody reads here.
        .stdout(std::process::Stdio::null())
        .stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command.spawn().context("cannot start the gateway")?;
    let pid = child.id();
    state.processes.push(StartedProcess {
        role: GATEWAY_ROLE.into(),
        pid,
    });
    work.write_state(state)?;
    // The child is detached: `down` stops it by PID. Dropping the handle does not kill it.
    drop(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if std::net::TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok() {
            break;
        }
        if !gateway_alive(pid) || Instant::now() > deadline {
            let _ = stop_gateway(pid);
            let tail = fs::read_to_string(&log_path).unwrap_or_default();
            bail!("the gateway (pid {pid}) is not accepting connections on {listen}:\n{tail}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(StartedGateway {
        listen,
        admin: admin_listen,
        ca: pki.ca_cert(),
        client,
    })
}

/// `GET /overview` from Flink's REST endpoint, as the gateway reaches it.
fn overview(rest: &FlinkRestClient, timeout: Duration) -> Result<ClusterOverview, FlinkError> {
    let url = format!("{}/overview", rest.base());
    let failed = |detail: String| FlinkError::Rest {
        method: "GET",
        url: url.clone(),
        detail,
    };
    let (status, body) = rest.get("/overview", timeout).map_err(failed)?;
    if !(200..300).contains(&status) {
        return Err(failed(format!("HTTP {status}: {body}")));
    }
    serde_json::from_str(&body).map_err(|e| failed(format!("unexpected answer {body}: {e}")))
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn install_with_progress(loaded: &LoadedConfig) -> Result<FlinkDist> {
    let version = loaded.config.flink.version;
    let terminal = std::io::stderr().is_terminal();
    let mut last_report = Instant::now();
    let dist = FlinkDist::install(version, &mut |event| match event {
        InstallProgress::Started { log } => {
            eprintln!(
                "Installing Flink {version} from PyPI (about 350 MB, once; pip log: {})",
                log.display()
            );
        }
        InstallProgress::WaitingForLock { lock } => {
            eprintln!(
                "Waiting for another installation of Flink {version} to finish ({})",
                lock.display()
            );
        }
        InstallProgress::Downloading { bytes, elapsed } => {
            // pip downloads the ~330 MB wheel and unpacks it next to it, so the scratch
            // folder grows to about 700 MB: report progress, not a fraction of a guessed total.
            let mb = bytes / 1_000_000;
            if terminal {
                eprint!(
                    "\r  {mb:>4} MB downloaded and unpacked  ({:>3} s)",
                    elapsed.as_secs()
                );
            } else if last_report.elapsed() >= Duration::from_secs(10) {
                eprintln!(
                    "  {mb} MB downloaded and unpacked after {} s",
                    elapsed.as_secs()
                );
                last_report = Instant::now();
            }
        }
        InstallProgress::Installed { home, elapsed } => {
            if terminal {
                eprintln!();
            }
            eprintln!(
                "Installed Flink {version} in {} ({} s)",
                home.display(),
                elapsed.as_secs()
            );
        }
        _ => {}
    })?;
    Ok(dist)
}

fn prepare_work_dir(work: &WorkDir, dist: &FlinkDist, loaded: &LoadedConfig) -> Result<()> {
    for dir in [
        work.root.clone(),
        work.conf(),
        work.log(),
        work.pid(),
        work.tmp(),
        work.web(),
    ] {
        flinkguard_files::create_private_dir(&dir)?;
    }
    // Flink's log4j/logback files, so logging works as in the distribution.
    for entry in fs::read_dir(dist.conf_dir())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("log4j") || name.starts_with("logback") {
            fs::copy(&path, work.conf().join(&name))
                .with_context(|| format!("cannot copy {}", path.display()))?;
        }
    }
    // Start from the distribution's own config file: it carries settings the JVMs need (on
    // 2.x the `--add-opens` list of env.java.opts.all), which a file written from scratch
    // would silently drop.
    let shipped = [ConfigFormat::Nested, ConfigFormat::Flat]
        .into_iter()
        .map(|format| (format, dist.conf_dir().join(format.file_name())))
        .find(|(_, path)| path.is_file());
    let Some((format, shipped)) = shipped else {
        bail!(
            "{} holds neither config.yaml nor flink-conf.yaml; is FLINK_HOME a complete Flink distribution?",
            dist.conf_dir().display()
        );
    };
    let existing = fs::read_to_string(&shipped)
        .with_context(|| format!("cannot read {}", shipped.display()))?;
    let mut settings = FlinkSettings::default();
    settings.extend(&flinkguard_render::local_cluster_settings(
        loaded.config.flink.rpc_port,
        &LocalClusterDirs {
            tmp: work.tmp(),
            web: work.web(),
        },
    )?);
    settings.extend(&flinkguard_render::security_settings(loaded, dist.version)?);
    let text = flinkguard_render::merge(format, &existing, &shipped, &settings)?;
    flinkguard_files::write_atomic(
        &work.conf().join(format.file_name()),
        text.as_bytes(),
        Mode::Secret,
    )?;
    Ok(())
}

fn print_status(state: &State) {
    for p in &state.processes {
        let alive = if p.is_alive() {
            "running"
        } else {
            "NOT running"
        };
        println!("  {:<12} pid {:<8} {alive}", p.role, p.pid);
    }
    println!(
        "  Flink {} from {}",
        state.flink_version,
        state.flink_home.display()
    );
}

pub(crate) fn down(args: &DirArgs) -> Result<Outcome> {
    let work = WorkDir::new(&args.dir);
    let Some(state) = work.read_state()? else {
        println!(
            "Nothing to stop: no cluster started by `flinkguard up` in {}",
            args.dir.display()
        );
        return Ok(Outcome::Ok);
    };
    let mut failed = false;
    // The gateway first: nothing should reach a Flink that is shutting down.
    for p in state.processes.iter().filter(|p| p.role == GATEWAY_ROLE) {
        match stop_gateway(p.pid) {
            Ok(how) => println!("  {:<12} pid {:<8} {how}", p.role, p.pid),
            Err(e) => {
                failed = true;
                eprintln!(
                    "  {:<12} pid {:<8} could not be stopped: {e:#}",
                    p.role, p.pid
                );
            }
        }
    }
    let flink: Vec<&StartedProcess> = state
        .processes
        .iter()
        .filter(|p| p.role != GATEWAY_ROLE)
        .collect();
    let mut processes: Vec<FlinkProcess> = flink
        .iter()
        .map(|p| FlinkProcess::from_pid(p.pid, role_of(&p.role), work.log(), work.pid()))
        .collect();
    let outcomes = process::stop_all(&mut processes, STOP_GRACE);
    for (p, outcome) in flink.iter().zip(outcomes) {
        match outcome {
            Ok(how) => println!("  {:<12} pid {:<8} {how:?}", p.role, p.pid),
            Err(e) => {
                failed = true;
                eprintln!(
                    "  {:<12} pid {:<8} could not be stopped: {e}",
                    p.role, p.pid
                );
            }
        }
    }
    if failed {
        bail!(
            "some processes could not be stopped; {} is kept so `down` can be retried",
            work.state().display()
        );
    }
    fs::remove_file(work.state())
        .with_context(|| format!("cannot remove {}", work.state().display()))?;
    println!("Stopped the cluster started in {}", args.dir.display());
    Ok(Outcome::Ok)
}

pub(crate) fn status(args: &StatusArgs) -> Result<Outcome> {
    let work = WorkDir::new(&args.dir.dir);
    let state = work.read_state()?;
    let processes: Vec<(String, u32, bool)> = state
        .iter()
        .flat_map(|s| s.processes.iter())
        .map(|p| (p.role.clone(), p.pid, p.is_alive()))
        .collect();
    let overview = state.as_ref().map(|_| {
        let config_path = args.dir.dir.join(flinkguard_config::FILE_NAME);
        let loaded = Config::load(&config_path).map_err(|e| e.to_string())?;
        let rest = FlinkRestClient::from_config(&loaded).map_err(|e| e.to_string())?;
        overview(&rest, Duration::from_secs(3)).map_err(|e| e.to_string())
    });
    let all_alive = !processes.is_empty() && processes.iter().all(|(_, _, alive)| *alive);
    let healthy = all_alive && matches!(overview, Some(Ok(_)));
    if args.json {
        let json = serde_json::json!({
            "running": healthy,
            "state_file": work.state(),
            "processes": processes.iter().map(|(role, pid, alive)| serde_json::json!({"role": role, "pid": pid, "alive": alive})).collect::<Vec<_>>(),
            "rest_url": state.as_ref().map(|s| s.rest_url.clone()),
            "rest": match &overview {
                Some(Ok(o)) => serde_json::json!({"reachable": true, "taskmanagers": o.taskmanagers, "slots_total": o.slots_total, "slots_available": o.slots_available, "jobs_running": o.jobs_running, "flink_version": o.flink_version}),
                Some(Err(e)) => serde_json::json!({"reachable": false, "error": e.to_string()}),
                None => serde_json::Value::Null,
            },
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        match &state {
            None => println!(
                "Not running: no cluster started by `flinkguard up` in {}",
                args.dir.dir.display()
            ),
            Some(state) => {
                println!("{}", if healthy { "Running" } else { "NOT healthy" });
                print_status(state);
                match &overview {
                    Some(Ok(o)) => println!(
                        "  REST {} answers: {} TaskManager(s), {}/{} slots free, {} job(s) running",
                        state.rest_url,
                        o.taskmanagers,
                        o.slots_available,
                        o.slots_total,
                        o.jobs_running
                    ),
                    Some(Err(e)) => println!("  REST {} does not answer: {e}", state.rest_url),
                    None => {}
                }
            }
        }
    }
    Ok(if healthy {
        Outcome::Ok
    } else {
        Outcome::Findings
    })
}
