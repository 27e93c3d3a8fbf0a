//! Section `instructions`: user-space instructions per keep-alive request, counted by
//! callgrind, flinkguard against the nginx side-car. Unlike times, counts barely move from run
//! to run, so a change of a few percent shows; but they leave out the kernel (TCP, syscalls,
//! scheduling), which the `requests` section's CPU times include.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::load::{self, Client, Load, Mode};
use super::servers::{self, NginxRole, Server};
use super::{Options, TempDir, median};

/// Connections kept busy: valgrind runs one thread at a time, more would only queue.
const CONNECTIONS: usize = 8;

/// Functions a contender calls exactly once per forwarded request: the upstream pool's
/// request for the gateway (hyper-util's client's, for binaries from before the gateway had
/// its own pool, and for the floor proxy), starting the upstream request for nginx.
const GATEWAY_PER_REQUEST: &[&str] = &[
    "flinkguard_gateway::pool::Pool::request",
    "hyper_util::client::legacy::client::Client<C,B>::request",
];
const NGINX_PER_REQUEST: &[&str] = &["ngx_http_upstream_init"];

/// One contender under callgrind.
struct Counted {
    server: Server,
    /// callgrind's output file; the bench's dumps are `<out>.1`, `<out>.2`, ...
    out: PathBuf,
    per_request: &'static [&'static str],
}

/// What one measurement window counted.
struct Window {
    requests: u64,
    instructions: u64,
}

impl Window {
    fn per_request(&self) -> f64 {
        self.instructions as f64 / self.requests.max(1) as f64
    }
}

pub(crate) fn instructions(binary: &Path, options: &Options) -> Result<String> {
    servers::ensure_valgrind()?;
    let nginx = servers::ensure_nginx()?;
    let dir = TempDir::new()?;
    let pki = servers::init_flinkguard(binary, dir.path())?;
    let backend = servers::start_nginx(&nginx, dir.path(), &pki, NginxRole::Backend)?;
    let gateway_out = dir.path().join("callgrind.flinkguard");
    let nginx_out = dir.path().join("callgrind.nginx");
    let contenders = [
        Counted {
            server: servers::start_gateway_under(
                binary,
                dir.path(),
                backend.port,
                &[],
                Some(&gateway_out),
            )?,
            out: gateway_out,
            per_request: GATEWAY_PER_REQUEST,
        },
        Counted {
            server: servers::start_nginx_under(
                &nginx,
                dir.path(),
                &pki,
                NginxRole::Proxy {
                    backend_port: backend.port,
                },
                Some(&nginx_out),
            )?,
            out: nginx_out,
            per_request: NGINX_PER_REQUEST,
        },
    ];
    let servers: Vec<&Server> = contenders.iter().map(|c| &c.server).collect();
    super::http::check_refusal(&pki, servers.iter().copied())?;
    let client = Client::new(&pki, "admin", "/jobs/overview")?;
    let load = Load {
        connections: CONNECTIONS,
        // Under valgrind: long enough for every connection's handshake to be done (they are
        // not counted) and for a few thousand requests in the window.
        warmup: Duration::from_secs(3),
        measure: Duration::from_secs(if options.quick { 3 } else { 8 }),
        mode: Mode::KeepAlive,
    };
    let mut windows: Vec<Vec<Window>> = contenders.iter().map(|_| Vec::new()).collect();
    for repetition in 1..=options.runs {
        for (contender, counted) in contenders.iter().zip(windows.iter_mut()) {
            let window = count_window(&client, contender, load, repetition)?;
            eprintln!(
                "  {:<10} run {repetition}: {} requests, {:.0} instructions each",
                contender.server.name,
                window.requests,
                window.per_request()
            );
            counted.push(window);
        }
    }
    let medians: Vec<f64> = windows
        .iter()
        .map(|w| median(w.iter().map(Window::per_request).collect()))
        .collect();
    let mut out = format!(
        "### User-space instructions per request (callgrind), keep-alive mTLS\n\n\
         Load: the bench's generator, {CONNECTIONS} keep-alive connections, `GET /jobs/overview` \
         as in **requests**, against each proxy running under `valgrind --tool=callgrind` \
         (nginx as one process, `master_process off`). Instrumentation is off until the \
         connections are open, so start-up and handshakes are not counted; it is on for a \
         window of {} s, then dumped. Instructions are every user-space instruction of the \
         proxy's process in the window (its own code and its libraries: TLS, allocator), per \
         request it forwarded (calls of `{}` and of `{}` in the same dump). The kernel's \
         share (TCP, syscalls, scheduling) is not in these counts. Median of {} windows; the \
         spread is the lowest and highest window.\n\n\
         | contender | instructions per request | spread | requests per window |\n\
         |---|---|---|---|\n",
        load.measure.as_secs(),
        GATEWAY_PER_REQUEST[0],
        NGINX_PER_REQUEST[0],
        options.runs
    );
    for ((contender, windows), middle) in contenders.iter().zip(&windows).zip(&medians) {
        let per: Vec<f64> = windows.iter().map(Window::per_request).collect();
        let low = per.iter().copied().fold(f64::INFINITY, f64::min);
        let high = per.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "| {} | {middle:.0} | {low:.0}–{high:.0} | {} |",
            match contender.server.name {
                "flinkguard" => "flinkguard gateway → backend",
                _ => "nginx side-car → backend",
            },
            median(windows.iter().map(|w| w.requests).collect::<Vec<_>>())
        );
    }
    let _ = writeln!(
        out,
        "\n- flinkguard / nginx, instructions per request: **{:.2}×** (lower is better)",
        medians[0] / medians[1]
    );
    let _ = writeln!(
        out,
        "\nReproduce: `cargo xtask bench --only instructions --write`{}.",
        super::http::quick_note(options)
    );
    Ok(out)
}

/// Loads `contender` with callgrind counting between the window's edges, and reads the dump.
fn count_window(
    client: &Client,
    contender: &Counted,
    load: Load,
    repetition: usize,
) -> Result<Window> {
    let pid = contender.server.pids()[0];
    let opened = AtomicBool::new(false);
    // The load generator calls this when the window opens and when it closes.
    let edge = || -> Result<Duration> {
        if !opened.swap(true, Ordering::Relaxed) {
            callgrind_control(pid, "--instr=on")?;
        } else {
            callgrind_control(pid, "--dump")?;
            callgrind_control(pid, "--instr=off")?;
        }
        Ok(Duration::ZERO)
    };
    load::run(client, contender.server.port, load, &edge)
        .with_context(|| format!("loading {} under callgrind", contender.server.name))?;
    let dump = PathBuf::from(format!("{}.{repetition}", contender.out.display()));
    let text = fs::read_to_string(&dump)
        .with_context(|| format!("callgrind wrote no dump {}", dump.display()))?;
    let window = read_dump(&text, contender.per_request)
        .with_context(|| format!("reading {}", dump.display()))?;
    if window.requests == 0 {
        bail!(
            "{}: no call of `{}` in the window: the symbol is missing or nothing was forwarded",
            dump.display(),
            contender.per_request.join("` or `")
        );
    }
    Ok(window)
}

fn callgrind_control(pid: u32, command: &str) -> Result<()> {
    let output = Command::new("callgrind_control")
        .arg(command)
        .arg(pid.to_string())
        .output()
        .context("cannot run callgrind_control")?;
    if !output.status.success() {
        bail!(
            "callgrind_control {command} {pid}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The dump's total instructions (`totals:`) and how often the `per_request` functions were called. Names are
/// compressed: `cfn=(7) name` the first time, `cfn=(7)` after; `fn=` shares the numbering.
fn read_dump(text: &str, per_request: &[&str]) -> Result<Window> {
    let mut names = std::collections::HashMap::new();
    let mut callee_is_it = false;
    let mut requests = 0;
    let mut instructions = None;
    for line in text.lines() {
        if let Some(rest) = line
            .strip_prefix("cfn=")
            .or_else(|| line.strip_prefix("fn="))
        {
            let name = match rest.split_once(' ') {
                Some((id, name)) => {
                    names.insert(id.to_owned(), name.to_owned());
                    name
                }
                None => names.get(rest).map_or("", String::as_str),
            };
            callee_is_it = line.starts_with("cfn=") && per_request.contains(&name);
        } else if let Some(rest) = line.strip_prefix("calls=") {
            if callee_is_it {
                let count = rest.split(' ').next().unwrap_or_default();
                requests += count.parse::<u64>().context("a calls= line")?;
            }
        } else if let Some(total) = line.strip_prefix("totals:") {
            instructions = Some(total.trim().parse::<u64>().context("the totals: line")?);
        }
    }
    Ok(Window {
        requests,
        instructions: instructions.context("no totals: line")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_s_calls_are_counted_through_compressed_names() {
        let dump = "events: Ir\nfn=(1) main\n0 5\ncfn=(2) ngx_http_upstream_init\ncalls=3 0\n\
                    0 40\nfn=(3) other\n0 1\ncfn=(2)\ncalls=4 0\n0 9\ncfn=(1)\ncalls=1 0\n0 2\n\
                    totals: 1234\n";
        let window = read_dump(dump, &["ngx_http_upstream_init"]).unwrap();
        assert_eq!((window.requests, window.instructions), (7, 1234));
        // Any of the names counts: the one a binary has is the one found.
        let either = read_dump(dump, &["absent_here", "ngx_http_upstream_init"]).unwrap();
        assert_eq!(either.requests, 7);
        assert_eq!(read_dump(dump, &["absent_here"]).unwrap().requests, 0);
    }

    #[test]
    fn a_dump_without_totals_is_an_error() {
        assert!(read_dump("fn=(1) main\n0 5\n", &["main"]).is_err());
    }
}
