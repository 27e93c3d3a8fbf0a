//! The HTTP sections of issue 7: per-request cost on a static backend, new connections (full
//! TLS handshakes with client certificates), idle scale. Each starts its own servers in a
//! temporary directory, loads them with the same generator ([`super::load`]), alternates the
//! contenders for every repetition and reports medians and ratios.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::load::{self, Client, Load, Mode, RunResult};
use super::servers::{self, NginxRole, Server};
use super::{Options, fmt, median};

/// Connections the load generator keeps busy in the per-request and handshake sections.
const CONNECTIONS: usize = 32;
/// Idle connections of the idle-scale section.
const IDLE_CONNECTIONS: usize = 10_000;

/// The running servers of a section and the deployment they share.
struct Stage {
    _dir: super::TempDir,
    pki: std::path::PathBuf,
    _backend: Server,
    contenders: Vec<Server>,
}

fn stage(binary: &Path, with_direct: bool, with_unsynced_audit: bool) -> Result<Stage> {
    let nginx = servers::ensure_nginx()?;
    let dir = super::TempDir::new()?;
    let pki = servers::init_flinkguard(binary, dir.path())?;
    let backend = servers::start_nginx(&nginx, dir.path(), &pki, NginxRole::Backend)?;
    let mut contenders = Vec::new();
    if with_direct {
        contenders.push(servers::start_nginx(
            &nginx,
            dir.path(),
            &pki,
            NginxRole::Direct,
        )?);
    }
    let twin = if with_unsynced_audit {
        Some(start_unsynced_twin(binary, dir.path(), &pki, backend.port)?)
    } else {
        None
    };
    contenders.push(servers::start_gateway(
        binary,
        dir.path(),
        backend.port,
        &[],
    )?);
    contenders.extend(twin);
    contenders.push(servers::start_nginx(
        &nginx,
        dir.path(),
        &pki,
        NginxRole::Proxy {
            backend_port: backend.port,
        },
    )?);
    check_refusal(&pki, &contenders)?;
    Ok(Stage {
        _dir: dir,
        pki,
        _backend: backend,
        contenders,
    })
}

/// A second gateway of the deployment in `dir` whose audit lines are written but not synced, as
/// nginx writes its access log: what the sync before each response costs, and the like-for-like
/// comparison with nginx. Started before the first gateway, which edits dir/flinkguard.yaml in
/// place.
fn start_unsynced_twin(binary: &Path, dir: &Path, pki: &Path, backend_port: u16) -> Result<Server> {
    let second = dir.join("audit-unsynced");
    std::fs::create_dir(&second)?;
    std::fs::copy(dir.join("flinkguard.yaml"), second.join("flinkguard.yaml"))?;
    std::os::unix::fs::symlink(pki, second.join("pki"))?;
    let mut gateway = servers::start_gateway(
        binary,
        &second,
        backend_port,
        &[(
            "audit_durability: synced",
            "audit_durability: unsynced_lost_on_machine_crash",
        )],
    )?;
    gateway.name = "flinkguard-unsynced";
    Ok(gateway)
}

/// What the sync costs and how the unsynced twin compares with nginx, when both ran.
fn unsynced_lines(summaries: &[Summary]) -> String {
    let (Some(synced), Some(unsynced), Some(nginx)) = (
        find(summaries, "flinkguard"),
        find(summaries, "flinkguard-unsynced"),
        find(summaries, "nginx"),
    ) else {
        return String::new();
    };
    format!(
        "- what the sync before each response costs: the gateway makes {:.2}× the requests/s \
         of its unsynced twin (p99 {} vs {})\n\
         - like for like with nginx, whose access log is written without a sync (no target; \
         the targets are for the default, synced audit): unsynced flinkguard / nginx \
         **{:.2}×**, p99 {} vs {}\n",
        synced.per_second / unsynced.per_second,
        fmt(synced.p99),
        fmt(unsynced.p99),
        unsynced.per_second / nginx.per_second,
        fmt(unsynced.p99),
        fmt(nginx.p99)
    )
}

/// Both proxies must do the job they are compared on: a valid certificate without the right to
/// read jobs gets 403 from each (the load then proves that `admin` gets 200).
pub(crate) fn check_refusal<'a>(
    pki: &Path,
    proxies: impl IntoIterator<Item = &'a Server>,
) -> Result<()> {
    let outsider = Client::new(pki, "nobody", "/jobs/overview")?;
    for proxy in proxies.into_iter().filter(|c| c.name != "direct") {
        let status = load::status_once(&outsider, proxy.port)
            .with_context(|| format!("asking {} as a user without a role", proxy.name))?;
        if status != 403 {
            anyhow::bail!(
                "{} answered {status} to a client certificate without a role (CN=nobody), \
                 not 403: it does not enforce access, so its figures would not compare",
                proxy.name
            );
        }
    }
    Ok(())
}

/// Medians of one contender's repetitions.
struct Summary {
    name: &'static str,
    /// The share of TLS connections that resumed a session.
    resumed: f64,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    cpu_per_10k: Duration,
    peak_rss: u64,
    errors: u64,
}

/// One contender of a load section: a port, a client for it, and the processes that serve it.
struct Contender<'a> {
    name: &'static str,
    port: u16,
    client: &'a Client,
    pids: Box<dyn Fn() -> Vec<u32> + Sync + 'a>,
}

impl<'a> Contender<'a> {
    fn of(server: &'a Server, client: &'a Client) -> Self {
        Contender {
            name: server.name,
            port: server.port,
            client,
            pids: Box::new(|| server.pids()),
        }
    }
}

fn load_of(options: &Options, mode: Mode) -> Load {
    Load {
        connections: CONNECTIONS,
        warmup: if options.quick {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(2)
        },
        measure: if options.quick {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(8)
        },
        mode,
    }
}

fn load_section(
    binary: &Path,
    options: &Options,
    mode: Mode,
    resume: bool,
) -> Result<Vec<Summary>> {
    let stage = stage(binary, true, mode == Mode::KeepAlive)?;
    // One client (and so one session cache) per contender: tickets are offered only to the
    // server that issued them.
    let clients = stage
        .contenders
        .iter()
        .map(|_| Client::with_resumption(&stage.pki, "admin", "/jobs/overview", resume))
        .collect::<Result<Vec<_>>>()?;
    let contenders: Vec<Contender<'_>> = stage
        .contenders
        .iter()
        .zip(&clients)
        .map(|(s, client)| Contender::of(s, client))
        .collect();
    measure(&contenders, options, load_of(options, mode))
}

fn measure(contenders: &[Contender<'_>], options: &Options, load: Load) -> Result<Vec<Summary>> {
    let mut runs: Vec<Vec<RunResult>> = contenders.iter().map(|_| Vec::new()).collect();
    for repetition in 0..options.runs {
        // Alternating contenders inside every repetition spreads the machine's drift (other
        // builds, thermal) over all of them.
        for (contender, results) in contenders.iter().zip(runs.iter_mut()) {
            let cpu = || servers::cpu_of(contender.name, &(contender.pids)());
            let result = load::run(contender.client, contender.port, load, &cpu)
                .with_context(|| format!("loading {}", contender.name))?;
            eprintln!(
                "  {:<10} run {}: {:>8.0} req/s  p50 {}  p99 {}  errors {}",
                contender.name,
                repetition + 1,
                result.per_second(),
                fmt(result.percentile(0.50)),
                fmt(result.percentile(0.99)),
                result.errors
            );
            results.push(result);
        }
    }
    let mut summaries = Vec::new();
    for (contender, results) in contenders.iter().zip(runs) {
        summaries.push(Summary {
            name: contender.name,
            resumed: contender.client.resumed_share(),
            per_second: median(results.iter().map(RunResult::per_second).collect()),
            p50: median(results.iter().map(|r| r.percentile(0.50)).collect()),
            p99: median(results.iter().map(|r| r.percentile(0.99)).collect()),
            cpu_per_10k: median(results.iter().map(RunResult::cpu_per_10k).collect()),
            peak_rss: servers::memory_of(contender.name, &(contender.pids)(), "VmHWM")?,
            errors: results.iter().map(|r| r.errors).sum(),
        });
    }
    Ok(summaries)
}

fn describe(name: &str) -> &'static str {
    match name {
        "direct" => "direct: nginx serves the file itself over TLS (the limit)",
        "flink" => "direct: Flink's REST, plain HTTP (no TLS, no authorization)",
        "flinkguard" => "flinkguard gateway → backend",
        "flinkguard-unsynced" => {
            "reference only: the same gateway with `audit_durability: \
             unsynced_lost_on_machine_crash` (each line written before its response, not synced, \
             as nginx's access log)"
        }
        _ => "nginx side-car → backend",
    }
}

fn table(summaries: &[Summary], rate: &str) -> String {
    let mut out = format!(
        "| contender | {rate} | p50 | p99 | CPU per 10,000 | peak RSS | errors |\n\
         |---|---|---|---|---|---|---|\n"
    );
    for s in summaries {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} | {:.1} MiB | {} |",
            describe(s.name),
            s.per_second,
            fmt(s.p50),
            fmt(s.p99),
            fmt(s.cpu_per_10k),
            s.peak_rss as f64 / 1024.0 / 1024.0,
            s.errors
        );
    }
    out
}

/// Said after a section's "Reproduce" command when its figures come from a `--quick` run.
pub(crate) fn quick_note(options: &Options) -> &'static str {
    if options.quick {
        " (this run: `--quick`)"
    } else {
        ""
    }
}

/// Which share of each contender's connections resumed a TLS session (as the client saw it).
fn resumed_line(summaries: &[Summary]) -> String {
    let shares: Vec<String> = summaries
        .iter()
        .map(|s| format!("{} {:.0}%", s.name, s.resumed * 100.0))
        .collect();
    format!(
        "- connections that resumed a session (rustls' `handshake_kind`): {}\n",
        shares.join(", ")
    )
}

fn find<'a>(summaries: &'a [Summary], name: &str) -> Option<&'a Summary> {
    summaries.iter().find(|s| s.name == name)
}

fn ratio_line(summaries: &[Summary], against: &str, target: f64) -> String {
    match (find(summaries, "flinkguard"), find(summaries, against)) {
        (Some(ours), Some(theirs)) => {
            let ratio = ours.per_second / theirs.per_second;
            format!(
                "- flinkguard / {against}: **{ratio:.2}×** (target ≥ {target:.1}×: {}); p99 {} vs {}\n",
                if ratio >= target { "met" } else { "NOT met" },
                fmt(ours.p99),
                fmt(theirs.p99)
            )
        }
        _ => String::new(),
    }
}

fn setup_text(options: &Options, what: &str) -> String {
    format!(
        "Load: the bench's own generator (Rust, hyper + rustls; wrk and h2load cannot present a \
         client certificate), {CONNECTIONS} connections, HTTP/1.1, TLS 1.3 with the client \
         certificate of `admin`, {what}, `GET /jobs/overview` ({} bytes of JSON). The backend is \
         nginx serving that file over plain HTTP on 127.0.0.1. Median of {} runs of {} after a \
         {} warm-up, contenders alternating. CPU is utime+stime of the proxy's processes (all \
         nginx workers and the master; the gateway's one process) inside the measurement \
         window; peak RSS is VmHWM (summed over nginx's processes) at the end of the section.\n\n",
        servers::JOBS_OVERVIEW.len(),
        options.runs,
        if options.quick { "2 s" } else { "8 s" },
        if options.quick { "0.5 s" } else { "2 s" },
    )
}

/// Section `requests`: keep-alive requests through each proxy.
pub(crate) fn requests(binary: &Path, options: &Options) -> Result<String> {
    let summaries = load_section(binary, options, Mode::KeepAlive, false)?;
    let mut out =
        String::from("### Per-request cost: static loopback backend, keep-alive mTLS\n\n");
    out.push_str(&setup_text(options, "keep-alive"));
    out.push_str(&table(&summaries, "requests/s"));
    out.push('\n');
    out.push_str(&ratio_line(&summaries, "nginx", 1.0));
    out.push_str(&ratio_line(&summaries, "direct", 0.8));
    out.push_str(&unsynced_lines(&summaries));
    let _ = writeln!(
        out,
        "\nReproduce: `cargo xtask bench --only requests --write`{} (targets from issue 7, \
         reported, not enforced: ≥ 1.0× nginx with p99 no worse, ≥ 0.8× direct).\n",
        quick_note(options)
    );
    Ok(out)
}

/// Section `handshakes`: a new connection, full TLS 1.3 handshake with client certificate, per
/// request.
pub(crate) fn handshakes(binary: &Path, options: &Options) -> Result<String> {
    new_connections(
        binary,
        options,
        false,
        "### New connections: full TLS 1.3 handshakes with client certificates",
        "a new connection for every request (`Connection: close`, session resumption off in \
         the client, so every request is a full handshake with client certificate; the latency \
         includes connect and handshake)",
        "handshakes/s",
        "handshakes --write`{} (target: ≥ 1.0× nginx; the 0.8× line against direct is for \
         reference only)",
    )
}

/// Section `resumptions`: a new connection per request, resuming the TLS 1.3 session of the
/// previous one (no certificate exchange, no signature: the identity comes from the ticket).
pub(crate) fn resumptions(binary: &Path, options: &Options) -> Result<String> {
    new_connections(
        binary,
        options,
        true,
        "### New connections resuming a TLS 1.3 session",
        "a new connection for every request (`Connection: close`), each offering the session \
         ticket the server sent on the previous one (rustls' client session cache), so a \
         server that resumes skips the certificate exchange; the latency includes connect and \
         handshake",
        "connections/s",
        "resumptions --write`{} (no target in issue 7; measured because resumption is what a \
         browser or CLI reconnecting does)",
    )
}

/// A section of a new connection per request: `title`, what the load does, the rate's name, and
/// the reproducing command's tail (`{}` is where a `--quick` note goes).
fn new_connections(
    binary: &Path,
    options: &Options,
    resume: bool,
    title: &str,
    load: &str,
    rate: &str,
    reproduce: &str,
) -> Result<String> {
    let summaries = load_section(binary, options, Mode::NewConnection, resume)?;
    let mut out = format!("{title}\n\n");
    out.push_str(&setup_text(options, load));
    out.push_str(&table(&summaries, rate));
    out.push('\n');
    out.push_str(&resumed_line(&summaries));
    out.push_str(&ratio_line(&summaries, "nginx", 1.0));
    out.push_str(&ratio_line(&summaries, "direct", 0.8));
    let _ = writeln!(
        out,
        "\nReproduce: `cargo xtask bench --only {}.\n",
        reproduce.replacen("{}", quick_note(options), 1)
    );
    Ok(out)
}

/// Section `flink`: the per-request comparison with a real Flink's REST API as the backend.
pub(crate) fn flink(binary: &Path, options: &Options) -> Result<String> {
    use flinkguard_testkit::{ClusterBuilder, TestDist};
    let nginx = servers::ensure_nginx()?;
    let dir = super::TempDir::new()?;
    let pki = servers::init_flinkguard(binary, dir.path())?;
    eprintln!("  starting a Flink cluster (testkit)");
    let cluster = ClusterBuilder::new(&TestDist::default_version())
        .prepare()
        .try_start()
        .map_err(|e| anyhow::anyhow!("the Flink cluster did not start: {e}"))?;
    let flink_port = cluster.ports().rest;
    let twin = start_unsynced_twin(binary, dir.path(), &pki, flink_port)?;
    let proxies = vec![
        servers::start_gateway(binary, dir.path(), flink_port, &[])?,
        twin,
        servers::start_nginx(
            &nginx,
            dir.path(),
            &pki,
            NginxRole::Proxy {
                backend_port: flink_port,
            },
        )?,
    ];
    check_refusal(&pki, &proxies)?;
    let tls = Client::new(&pki, "admin", "/jobs/overview")?;
    let plain = Client::plain("/jobs/overview")?;
    let flink_pids = cluster.pids();
    let mut contenders = vec![Contender {
        name: "flink",
        port: flink_port,
        client: &plain,
        pids: Box::new(|| flink_pids.clone()),
    }];
    contenders.extend(proxies.iter().map(|s| Contender::of(s, &tls)));
    let summaries = measure(&contenders, options, load_of(options, Mode::KeepAlive))?;
    let mut out = String::from("### Per-request cost: real Flink REST `/jobs/overview`\n\n");
    let _ = writeln!(
        out,
        "As the static-backend section, with Flink {} (testkit cluster: one JobManager, one \
         TaskManager, no job running, so the answer is a short JSON list) as the backend of \
         the gateway, its unsynced twin and nginx. The reference is Flink's REST port itself, over plain HTTP: no TLS and no \
         authorization, so it is an upper bound rather than a like-for-like contender; its CPU \
         and RSS are the JobManager's and TaskManager's JVMs. Median of {} runs of {} after a {} \
         warm-up, {CONNECTIONS} keep-alive connections, contenders alternating.\n",
        cluster.dist().version,
        options.runs,
        if options.quick { "2 s" } else { "8 s" },
        if options.quick { "0.5 s" } else { "2 s" },
    );
    out.push_str(&table(&summaries, "requests/s"));
    out.push('\n');
    out.push_str(&ratio_line(&summaries, "nginx", 1.0));
    out.push_str(&ratio_line(&summaries, "flink", 0.8));
    out.push_str(&unsynced_lines(&summaries));
    let _ = writeln!(
        out,
        "\nReproduce: `cargo xtask bench --only flink --write`{} (same targets as the \
         static-backend section).\n",
        quick_note(options)
    );
    drop(contenders);
    drop(proxies);
    drop(cluster);
    Ok(out)
}

/// Section `idle`: memory with 10,000 idle keep-alive TLS connections.
pub(crate) fn idle(binary: &Path, options: &Options) -> Result<String> {
    raise_nofile_limit()?;
    let count = if options.quick {
        1_000
    } else {
        IDLE_CONNECTIONS
    };
    let stage = stage(binary, false, false)?;
    let client = Client::new(&stage.pki, "admin", "/jobs/overview")?;
    let mut out = String::from("### Idle scale: keep-alive TLS connections held open\n\n");
    let _ = writeln!(
        out,
        "{count} connections, each after a full TLS 1.3 handshake with client certificate and \
         one `GET /jobs/overview`, then idle; RSS (VmRSS, summed over nginx's processes) before \
         any connection and 2 s after the last one opened. One fresh server each, one run (memory \
         does not need a median).\n\n\
         | contender | RSS before | RSS with {count} idle | per connection | opening took |\n\
         |---|---|---|---|---|"
    );
    let mut gateway_with = None;
    for server in &stage.contenders {
        let before = server.memory("VmRSS")?;
        let (with, opened) =
            load::hold_idle(&client, server.port, count, || server.memory("VmRSS"))
                .with_context(|| format!("holding {count} connections to {}", server.name))?;
        eprintln!(
            "  {:<10} RSS {:.1} MiB → {:.1} MiB with {count} idle",
            server.name,
            mib(before),
            mib(with)
        );
        if server.name == "flinkguard" {
            gateway_with = Some(with);
        }
        let _ = writeln!(
            out,
            "| {} | {:.1} MiB | {:.1} MiB | {:.1} KiB | {} |",
            describe(server.name),
            mib(before),
            mib(with),
            with.saturating_sub(before) as f64 / 1024.0 / count as f64,
            fmt(opened)
        );
    }
    if let Some(with) = gateway_with {
        let _ = writeln!(
            out,
            "\n- flinkguard with {count} idle connections: **{:.1} MiB** (target for 10,000: \
             < 150 MiB{})",
            mib(with),
            if count == IDLE_CONNECTIONS {
                if mib(with) < 150.0 {
                    ": met"
                } else {
                    ": NOT met"
                }
            } else {
                "; this `--quick` run held fewer"
            }
        );
    }
    let _ = writeln!(
        out,
        "\nReproduce: `cargo xtask bench --only idle --write`.\n"
    );
    Ok(out)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

/// 10,000 connections need 10,000 descriptors in the generator and in the gateway (which
/// inherits this limit); raise the soft limit to the hard one.
fn raise_nofile_limit() -> Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // One descriptor per connection, plus room for the upstream pool, logs and libraries.
    let want = IDLE_CONNECTIONS as u64 + 1_000;
    if limit.current.is_some_and(|c| c >= want) {
        return Ok(());
    }
    if limit.maximum.is_some_and(|m| m < want) {
        anyhow::bail!(
            "the hard limit of open files is {:?}, the idle section needs {want}: raise it \
             (ulimit -Hn {want} as root, or LimitNOFILE in the service)",
            limit.maximum
        );
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )
    .context("raising RLIMIT_NOFILE")?;
    Ok(())
}
