//! The servers the HTTP sections start: the static backend and the `direct` contender (nginx),
//! nginx as the side-car Flink's documentation suggests, and the flinkguard gateway. Each one
//! runs on its own free 127.0.0.1 port, from a configuration in the bench's temporary directory,
//! and is stopped by its PID when dropped (never the system's nginx).

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// What `/jobs/overview` answers: the shape of Flink's answer, two jobs.
pub(crate) const JOBS_OVERVIEW: &str = r#"{"jobs":[{"jid":"e3e1b3c8f6a1b2c3d4e5f60718293a4b","name":"orders-enrichment","start-time":1764950000000,"end-time":-1,"duration":3600000,"state":"RUNNING","last-modification":1764950001000,"tasks":{"running":4,"canceling":0,"canceled":0,"total":4,"created":0,"scheduled":0,"deploying":0,"reconciling":0,"finished":0,"initializing":0,"failed":0}},{"jid":"0a1b2c3d4e5f60718293a4b5c6d7e8f9","name":"clickstream-sessions","start-time":1764940000000,"end-time":1764943600000,"duration":3600000,"state":"FINISHED","last-modification":1764943600000,"tasks":{"running":0,"canceling":0,"canceled":0,"total":2,"created":0,"scheduled":0,"deploying":0,"reconciling":0,"finished":2,"initializing":0,"failed":0}}]}"#;

/// A server process the bench started; stopped (TERM, then KILL) when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) port: u16,
    child: Child,
    /// nginx: its worker processes count too.
    with_children: bool,
}

impl Server {
    /// The PIDs whose CPU time and memory are this server's: the process, and for nginx its
    /// workers.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.child.id()];
        if self.with_children {
            pids.extend(children_of(self.child.id()));
        }
        pids
    }

    /// Sum over its processes of a /proc/PID/status field (VmRSS, VmHWM), in bytes.
    pub(crate) fn memory(&self, field: &str) -> Result<u64> {
        memory_of(self.name, &self.pids(), field)
    }

    fn stop(&mut self) {
        let pid = self.child.id();
        if let Ok(None) = self.child.try_wait() {
            // TERM first: nginx's master then stops its workers (KILL would orphan them).
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Which nginx configuration to run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NginxRole {
    /// Plain HTTP on loopback, serving the JSON file: the backend behind both proxies.
    Backend,
    /// TLS 1.3 with `ssl_verify_client on`, serving the file itself: the limit.
    Direct,
    /// The side-car: TLS 1.3, client certificates, a `map` on the client DN, access log,
    /// `proxy_pass` to the backend with a keep-alive pool.
    Proxy { backend_port: u16 },
}

/// Installs nginx with apt-get when it is missing, as `cargo xtask prepare` does for its
/// packages.
pub(crate) fn ensure_nginx() -> Result<PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if let Some(path) = found {
        return Ok(path);
    }
    apt_install("nginx-light", "nginx-light or nginx")?;
    Ok(PathBuf::from("/usr/sbin/nginx"))
}

/// valgrind (for callgrind and callgrind_control), installed from Debian's package if missing.
pub(crate) fn ensure_valgrind() -> Result<()> {
    if Path::new("/usr/bin/valgrind").is_file() && Path::new("/usr/bin/callgrind_control").is_file()
    {
        return Ok(());
    }
    apt_install("valgrind", "valgrind")
}

/// `apt-get install` of one Debian package; `what` is what the error tells to install by hand.
fn apt_install(package: &str, what: &str) -> Result<()> {
    eprintln!("xtask bench: installing the Debian package {package}");
    for args in [
        &["update", "-q"][..],
        &["install", "-y", "-q", "--no-install-recommends", package][..],
    ] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("cannot run apt-get (install {what} yourself)"))?;
        if !status.success() {
            bail!(
                "apt-get {} failed (install {what} yourself)",
                args.join(" ")
            );
        }
    }
    Ok(())
}

/// Starts nginx in the foreground (`daemon off`) with a configuration of its own under `dir`.
pub(crate) fn start_nginx(nginx: &Path, dir: &Path, pki: &Path, role: NginxRole) -> Result<Server> {
    start_nginx_under(nginx, dir, pki, role, None)
}

/// [`start_nginx`], under callgrind when `callgrind` names its output file: then one process
/// (`master_process off`) whose instrumentation the bench switches on for a window.
pub(crate) fn start_nginx_under(
    nginx: &Path,
    dir: &Path,
    pki: &Path,
    role: NginxRole,
    callgrind: Option<&Path>,
) -> Result<Server> {
    let (name, tag) = match role {
        NginxRole::Backend => ("backend", "backend"),
        NginxRole::Direct => ("direct", "direct"),
        NginxRole::Proxy { .. } => ("nginx", "proxy"),
    };
    let prefix = dir.join(tag);
    fs::create_dir_all(prefix.join("tmp"))?;
    let root = dir.join("www");
    fs::create_dir_all(root.join("jobs"))?;
    fs::write(root.join("jobs/overview"), JOBS_OVERVIEW)?;
    let port = free_port()?;
    let p = |name: &str| prefix.join(name).display().to_string();
    let pki_file = |name: &str| pki.join(name).display().to_string();
    let tls = format!(
        "ssl_protocols TLSv1.3;\n    ssl_certificate {};\n    ssl_certificate_key {};\n    \
         ssl_client_certificate {};\n    ssl_verify_client on;\n",
        pki_file("rest.crt"),
        pki_file("rest.key"),
        pki_file("ca.crt")
    );
    let server = match role {
        NginxRole::Backend => format!(
            "server {{\n    listen 127.0.0.1:{port};\n    access_log off;\n    root {};\n}}\n",
            root.display()
        ),
        NginxRole::Direct => format!(
            // The limit: TLS and a static file, no log line, no hop.
            "server {{\n    listen 127.0.0.1:{port} ssl;\n    {tls}    access_log off;\n    \
             root {};\n}}\n",
            root.display()
        ),
        NginxRole::Proxy { backend_port } => format!(
            "map $ssl_client_s_dn $flinkguard_bench_allowed {{\n    default 0;\n    \
             \"~(^|,)CN=admin(,|$)\" 1;\n}}\n\
             upstream flink_rest {{\n    server 127.0.0.1:{backend_port};\n    keepalive 64;\n}}\n\
             server {{\n    listen 127.0.0.1:{port} ssl;\n    {tls}    access_log {};\n    \
             location / {{\n        if ($flinkguard_bench_allowed = 0) {{ return 403; }}\n        \
             proxy_pass http://flink_rest;\n        proxy_http_version 1.1;\n        \
             proxy_set_header Connection \"\";\n    }}\n}}\n",
            p("access.log")
        ),
    };
    let config = format!(
        "{processes}\n\
         worker_rlimit_nofile 65536;\n\
         daemon off;\n\
         pid {pid};\n\
         error_log {error} warn;\n\
         events {{\n    worker_connections 20000;\n}}\n\
         http {{\n\
         default_type application/json;\n\
         # One connection serves a whole run: nginx would close it after 1000 requests.\n\
         keepalive_requests 100000000;\n\
         keepalive_timeout 600s;\n\
         client_body_temp_path {tmp}/body;\n\
         proxy_temp_path {tmp}/proxy;\n\
         fastcgi_temp_path {tmp}/fastcgi;\n\
         uwsgi_temp_path {tmp}/uwsgi;\n\
         scgi_temp_path {tmp}/scgi;\n\
         {server}}}\n",
        processes = if callgrind.is_some() {
            "worker_processes 1;\nmaster_process off;"
        } else {
            "worker_processes auto;"
        },
        pid = p("nginx.pid"),
        error = p("error.log"),
        tmp = p("tmp"),
    );
    let config_path = prefix.join("nginx.conf");
    fs::write(&config_path, config)?;
    let child = launcher(nginx, callgrind)
        .arg("-p")
        .arg(&prefix)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .arg("-c")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(prefix.join("stderr.log"))?)
        .spawn()
        .with_context(|| format!("cannot start {}", nginx.display()))?;
    let mut server = Server {
        name,
        port,
        child,
        with_children: true,
    };
    wait_listening(
        &mut server,
        &[prefix.join("stderr.log"), prefix.join("error.log")],
    )?;
    Ok(server)
}

/// Makes a flinkguard deployment in `dir` (`flinkguard init`, client identities for `admin` and
/// for `nobody`, who has no role) and returns the PKI directory.
pub(crate) fn init_flinkguard(binary: &Path, dir: &Path) -> Result<PathBuf> {
    super::run_quiet(
        Command::new(binary)
            .args(["init", "--quiet", "--dir"])
            .arg(dir),
    )?;
    for user in ["admin", "nobody"] {
        super::run_quiet(
            Command::new(binary)
                .args(["pki", "issue-client", "--user", user, "--config"])
                .arg(dir.join("flinkguard.yaml")),
        )?;
    }
    Ok(dir.join("pki"))
}

/// Starts `flinkguard gateway` from `dir/flinkguard.yaml`, edited for the bench: client
/// certificates required, audit to a file only, plain HTTP upstream at `backend_port`, room for
/// the idle section's 10,000 connections; and `extra` edits (`from`, `to`) of the section.
pub(crate) fn start_gateway(
    binary: &Path,
    dir: &Path,
    backend_port: u16,
    extra: &[(&str, &str)],
) -> Result<Server> {
    start_gateway_under(binary, dir, backend_port, extra, None)
}

/// [`start_gateway`], under callgrind when `callgrind` names its output file.
pub(crate) fn start_gateway_under(
    binary: &Path,
    dir: &Path,
    backend_port: u16,
    extra: &[(&str, &str)],
    callgrind: Option<&Path>,
) -> Result<Server> {
    let config_path = dir.join("flinkguard.yaml");
    let mut config = fs::read_to_string(&config_path)?;
    let rest_port = format!("rest_port: {backend_port}");
    for (from, to) in [
        ("rest_port: 8081", rest_port.as_str()),
        (
            "client_certificates: optional",
            "client_certificates: required",
        ),
        ("audit_stdout: true", "audit_stdout: false"),
        ("max_connections: 1024", "max_connections: 20000"),
        ("idle_seconds: 120", "idle_seconds: 900"),
        // It also bounds the wait for a keep-alive connection's next request; nginx's
        // keepalive_timeout here is 600 s.
        ("header_read_seconds: 10", "header_read_seconds: 600"),
    ]
    .iter()
    .chain(&flinkguard_testkit::PLAINTEXT_UPSTREAM)
    .chain(extra)
    {
        if !config.contains(from) {
            bail!(
                "{}: no `{from}` to edit (did `flinkguard init` change its defaults?)",
                config_path.display()
            );
        }
        config = config.replacen(from, to, 1);
    }
    fs::write(&config_path, config)?;
    let port = free_port()?;
    let stderr = dir.join("gateway.stderr");
    let child = launcher(binary, callgrind)
        .arg("gateway")
        .arg("--config")
        .arg(&config_path)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .args(["--admin-listen", "off"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.join("gateway.stdout"))?)
        .stderr(fs::File::create(&stderr)?)
        .spawn()
        .with_context(|| format!("cannot start {} gateway", binary.display()))?;
    let mut server = Server {
        name: "flinkguard",
        port,
        child,
        with_children: false,
    };
    wait_listening(&mut server, &[stderr])?;
    Ok(server)
}

/// `program`, or `program` under callgrind writing to `callgrind` with its instrumentation
/// off until the bench switches it on (start-up and handshakes are not counted). Children
/// are traced: a `--gateway` wrapper script that execs a binary is measured as that binary.
fn launcher(program: &Path, callgrind: Option<&Path>) -> Command {
    match callgrind {
        None => Command::new(program),
        Some(out) => {
            let mut command = Command::new("valgrind");
            command
                .args([
                    "--tool=callgrind",
                    "--instr-atstart=no",
                    "--trace-children=yes",
                ])
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(program);
            command
        }
    }
}

fn wait_listening(server: &mut Server, logs: &[PathBuf]) -> Result<()> {
    // Under valgrind a start takes seconds more.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if TcpStream::connect(("127.0.0.1", server.port)).is_ok() {
            return Ok(());
        }
        let exited = server.child.try_wait()?;
        if exited.is_some() || Instant::now() > deadline {
            let output: String = logs
                .iter()
                .filter_map(|l| fs::read_to_string(l).ok())
                .collect();
            bail!(
                "{} did not listen on 127.0.0.1:{} ({}): {output}",
                server.name,
                server.port,
                exited.map_or("timed out".into(), |s| s.to_string())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// utime + stime of `pids` so far (`name` says whose they are in errors).
pub(crate) fn cpu_of(name: &str, pids: &[u32]) -> Result<Duration> {
    let ticks = clock_ticks();
    let mut total = 0u64;
    for pid in pids {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("{name} (PID {pid}) is gone"))?;
        // The fields after the command (which may hold spaces and parentheses), from field 3
        // (state) on: utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        total += utime + stime;
    }
    Ok(Duration::from_secs_f64(total as f64 / ticks as f64))
}

/// Sum over `pids` of a /proc/PID/status field in kB (VmRSS, VmHWM), as bytes.
pub(crate) fn memory_of(name: &str, pids: &[u32], field: &str) -> Result<u64> {
    let mut total = 0;
    for pid in pids {
        let status = fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("{name} (PID {pid}) is gone"))?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
        total += kb * 1024;
    }
    Ok(total)
}

/// nginx's version and the TLS library it was built with, for the report.
pub(crate) fn nginx_version(nginx: &Path) -> String {
    let Ok(out) = Command::new(nginx).arg("-V").output() else {
        return "nginx (version unknown)".into();
    };
    // nginx -V writes to stderr.
    let text = String::from_utf8_lossy(&out.stderr);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("nginx version: "))
        .unwrap_or("nginx");
    let tls = text
        .lines()
        .find_map(|l| l.strip_prefix("built with "))
        .unwrap_or("unknown TLS library");
    format!("{version} built with {tls}")
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.to_owned();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}
