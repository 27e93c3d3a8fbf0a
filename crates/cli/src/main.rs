//! `flinkguard`: secures Apache Flink end to end.
#![forbid(unsafe_code)]

mod cmd_audit;
mod cmd_flink_config;
mod cmd_gateway;
mod cmd_init;
mod cmd_jobs;
mod cmd_local;
mod cmd_pki;
mod cmd_policy;
mod cmd_probe;
mod cmd_render;
mod cmd_sign;
mod cmd_token;
mod sarif;
mod style;

/// jemalloc (settings in .cargo/config.toml): less CPU per allocation than glibc's malloc on
/// the gateway's request path, and freed pages returned to the system (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit codes, documented in `--help`.
const EXIT_FINDINGS: u8 = 1;
const EXIT_INPUT: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "flinkguard",
    version,
    about = "Secures Apache Flink end to end: PKI, hardened config, and a local hardened cluster",
    after_help = "\
Exit codes:
  0  success
  1  findings or denial (e.g. `status` when something is not running)
  2  usage or input error (bad flag, invalid file, missing Java, Flink failed to start)

Examples:
  flinkguard up                                  # hardened local Flink in this folder
  flinkguard init --host flink.example.org --ip 10.0.2.15 --key rsa-3072
  flinkguard pki issue-client --user alice --group team-a
  flinkguard flink-config --merge /opt/flink/conf/config.yaml --out /opt/flink/conf/config.yaml"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create flinkguard.yaml and the PKI (cluster identity, CA, REST certificate, truststores).
    #[command(after_help = "\
Examples:
  flinkguard init
  flinkguard init --dir prod --name prod --host flink.example.org --host '*.flink.svc' --ip 10.0.2.15
  flinkguard init --key rsa-3072 --rest-days 30 --force")]
    Init(cmd_init::InitArgs),

    /// Certificates: issue client identities, show what exists.
    #[command(subcommand)]
    Pki(PkiCommand),

    /// Render the security part of Flink's configuration (2.x config.yaml or 1.x flink-conf.yaml).
    #[command(after_help = "\
Examples:
  flinkguard flink-config                                   # for flink.version of flinkguard.yaml
  flinkguard flink-config --flink-version 1.20.3            # flat flink-conf.yaml lines
  flinkguard flink-config --merge conf/config.yaml --out conf/config.yaml")]
    FlinkConfig(cmd_flink_config::FlinkConfigArgs),

    /// Render a hardened deployment: Kubernetes manifests with the gateway as side-car.
    #[command(subcommand)]
    Render(RenderCommand),

    /// Run the gateway: TLS with client certificates in front of Flink's REST API, every
    /// request authorized by the Flink operation it performs and audited (JSON lines on stdout).
    #[command(after_help = "\
Examples:
  flinkguard gateway                           # gateway.listen (127.0.0.1:8443), Flink at 127.0.0.1:<flink.rest_port>
  flinkguard gateway --listen 0.0.0.0:8443 > audit.jsonl")]
    Gateway(cmd_gateway::GatewayArgs),

    /// Job ownership the gateway records: list owners, give a job to a user. Run these with
    /// the gateway stopped (its database allows one process at a time).
    #[command(subcommand)]
    Jobs(JobsCommand),

    /// Sign a link: a URL that works for exactly one method and target until it expires,
    /// without credentials (FLIP-26's pre-authenticated artifact URLs).
    #[command(after_help = "\
Examples:
  flinkguard sign --method GET --path /jobs/4f2a9c0e0d1b4e6f8a7b6c5d4e3f2a1b/exceptions --ttl 10m")]
    Sign(cmd_sign::SignArgs),

    /// Check a Flink configuration (a file and the stores it names, or a live cluster's) for
    /// what leaves the cluster open: every finding with its rule id, severity, threat,
    /// evidence and fix. Exit 1 at `--fail-on` severity or above.
    #[command(after_help = "\
Examples:
  flinkguard audit --flink-conf $FLINK_HOME/conf/config.yaml
  flinkguard audit --flink-conf flink-conf.yaml --format json --fail-on critical
  flinkguard audit --flink-conf config.yaml --format sarif > flinkguard.sarif
  flinkguard audit --rest https://localhost:8443 --ca pki/ca.crt \\
      --cert pki/clients/admin/client.crt --key pki/clients/admin/client.key")]
    Audit(cmd_audit::AuditArgs),

    /// Probe a live cluster's endpoints, without side effects: TLS or plaintext, TLS versions
    /// and suites, client certificates, anonymous REST reads and writes, CVE-2020-17519.
    /// Groups findings by threat, OPEN or CLOSED with evidence; exit 1 when any threat is OPEN.
    #[command(after_help = "\
Examples:
  flinkguard probe --cluster http://127.0.0.1:8081            # discovers JobManager and TaskManager ports
  flinkguard probe --cluster https://127.0.0.1:8443 --cert pki/clients/admin/client.crt \\
      --key pki/clients/admin/client.key --ca pki/ca.crt     # credentials for discovery only
  flinkguard probe --target 10.0.2.15:6123 --target 10.0.2.15:6124 --format json")]
    Probe(cmd_probe::ProbeArgs),

    /// Policy: explain what a user may do through the gateway.
    #[command(subcommand)]
    Policy(PolicyCommand),

    /// Service tokens: JWTs for CI jobs and service accounts, signed by the gateway's own key.
    #[command(subcommand)]
    Token(TokenCommand),

    /// Start a hardened local Flink cluster (runs `init` and installs Flink when needed).
    #[command(after_help = "\
Examples:
  flinkguard up                 # in an empty folder: init, install Flink 2.3.0, start
  FLINK_HOME=/opt/flink flinkguard up --dir /srv/flink-local")]
    Up(cmd_local::UpArgs),

    /// Stop exactly the processes `up` started.
    Down(cmd_local::DirArgs),

    /// Show whether the processes `up` started are running and reachable.
    Status(cmd_local::StatusArgs),
}

#[derive(Subcommand, Debug)]
enum RenderCommand {
    /// Plain manifests and a kustomization.yaml (`kubectl apply -k DIR`): restricted pod
    /// security, Secrets from the PKI, default-deny NetworkPolicies, REST on loopback behind
    /// the gateway side-car.
    #[command(after_help = "\
Examples:
  flinkguard render k8s --out deploy/k8s
  flinkguard render k8s --config prod/flinkguard.yaml --out deploy/prod --force
  kubectl apply -k deploy/k8s")]
    K8s(cmd_render::K8sArgs),

    /// A FlinkDeployment for the Apache Flink Kubernetes Operator (native mode; a session
    /// cluster, or with `kubernetes.application` an application cluster) with the same
    /// security, plus its Secrets, Role and NetworkPolicies. Needs `kubernetes.operator` in
    /// flinkguard.yaml.
    #[command(after_help = "\
Examples:
  flinkguard render operator --out deploy/operator
  kubectl apply -k deploy/operator")]
    Operator(cmd_render::K8sArgs),
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Mint a service token, printed alone on stdout; creates pki/token-signing.key on first use.
    #[command(after_help = "\
Examples:
  flinkguard token issue --user ci-deployer --group team-a --ttl 12h
  TOKEN=$(flinkguard token issue --user nightly-etl --ttl 30m)")]
    Issue(cmd_token::IssueArgs),
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Explain the decision for one request, like `kubectl auth can-i` (exit 0 allow, 1 deny).
    #[command(after_help = "\
Examples:
  flinkguard policy check --user alice --group team-a 'POST /jars/ID/run'
  flinkguard policy check --user bob 'GET /jobs/ID/yarn-cancel' --json")]
    Check(cmd_policy::CheckArgs),
}

#[derive(Subcommand, Debug)]
enum JobsCommand {
    /// Give a job to a user (audited): for jobs not submitted through the gateway, which
    /// otherwise only unscoped roles may act on.
    #[command(after_help = "\
Examples:
  flinkguard jobs adopt 4f2a9c0e0d1b4e6f8a7b6c5d4e3f2a1b --owner alice --group team-a")]
    Adopt(cmd_jobs::AdoptArgs),
    /// List the recorded owners of jobs, jars and applications.
    Owners(cmd_jobs::OwnersArgs),
}

#[derive(Subcommand, Debug)]
enum PkiCommand {
    /// Issue a client certificate (CN = user, one O per group) as PEM and PKCS12.
    #[command(after_help = "\
Examples:
  flinkguard pki issue-client --user alice --group team-a --group analysts
  curl --cert pki/clients/alice/client.crt --key pki/clients/alice/client.key --cacert pki/ca.crt https://localhost:8443/")]
    IssueClient(cmd_pki::IssueClientArgs),

    /// List every certificate with subject, SANs, validity, key type and fingerprints.
    #[command(after_help = "\
Examples:
  flinkguard pki show
  flinkguard pki show --json | jq '.[] | select(.role == \"cluster identity\") | .certificate.sha1'")]
    Show(cmd_pki::ShowArgs),

    /// Replace the gateway's (REST) certificate and key with new ones from the same CA, for
    /// pki.hosts and pki.ips. A running gateway picks them up without dropping a request.
    #[command(after_help = "\
Examples:
  flinkguard pki renew-rest              # pki.validity_days.rest (90 days)
  flinkguard pki renew-rest --days 30")]
    RenewRest(cmd_pki::RenewRestArgs),

    /// Create the gateway→Flink REST identity (pki/upstream/): one self-signed certificate,
    /// not signed by the CA, that Flink's REST endpoint requires and the gateway presents. For
    /// PKIs made before it existed; with --force, a new one (renewal: the gateway reloads it,
    /// restart Flink).
    #[command(after_help = "\
Examples:
  flinkguard pki create-upstream
  flinkguard pki create-upstream --force   # renew; then restart Flink (flinkguard down; flinkguard up)")]
    CreateUpstream(cmd_pki::CreateUpstreamArgs),

    /// Start signing links with a new key; links of the previous key work until they expire.
    RotateLinkKey(cmd_sign::RotateLinkKeyArgs),
}

/// `--config`, shared by commands that read flinkguard.yaml.
#[derive(Args, Debug, Clone)]
struct ConfigArg {
    /// Path of flinkguard.yaml.
    #[arg(long, default_value = flinkguard_config::FILE_NAME, value_name = "FILE")]
    config: PathBuf,
}

/// A clap value parser for any type that parses itself and explains its errors, so every
/// flag's input is checked by the same code as the file it would otherwise come from.
pub(crate) fn parsed<T>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| e.to_string())
}

/// What a command asks the process to exit with, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Findings,
}

/// `flinkguard status | head` closes stdout early; Rust then makes `println!` panic with a
/// backtrace hint. End quietly instead, with the status a shell gives a process killed by
/// SIGPIPE.
fn exit_quietly_when_stdout_closes() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
}

fn main() -> ExitCode {
    exit_quietly_when_stdout_closes();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init(args) => cmd_init::run(&args),
        Command::Pki(PkiCommand::IssueClient(args)) => cmd_pki::issue_client(&args),
        Command::Pki(PkiCommand::Show(args)) => cmd_pki::show(&args),
        Command::Pki(PkiCommand::RenewRest(args)) => cmd_pki::renew_rest(&args),
        Command::Pki(PkiCommand::CreateUpstream(args)) => cmd_pki::create_upstream(&args),
        Command::Pki(PkiCommand::RotateLinkKey(args)) => cmd_sign::rotate_link_key(&args),
        Command::Sign(args) => cmd_sign::sign(&args),
        Command::Audit(args) => cmd_audit::audit(&args),
        Command::Probe(args) => cmd_probe::probe(&args),
        Command::FlinkConfig(args) => cmd_flink_config::run(&args),
        Command::Render(RenderCommand::K8s(args)) => cmd_render::k8s(&args),
        Command::Render(RenderCommand::Operator(args)) => cmd_render::operator(&args),
        Command::Gateway(args) => cmd_gateway::run(&args),
        Command::Policy(PolicyCommand::Check(args)) => cmd_policy::check(&args),
        Command::Jobs(JobsCommand::Adopt(args)) => cmd_jobs::adopt(&args),
        Command::Jobs(JobsCommand::Owners(args)) => cmd_jobs::owners(&args),
        Command::Token(TokenCommand::Issue(args)) => cmd_token::issue(&args),
        Command::Up(args) => cmd_local::up(&args),
        Command::Down(args) => cmd_local::down(&args),
        Command::Status(args) => cmd_local::status(&args),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(EXIT_FINDINGS),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}
