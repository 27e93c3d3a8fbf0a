use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use flinkguard_probe::hello::TlsVersion;
use flinkguard_probe::{
    ClusterUrl, DiscoveryCredentials, EndpointReport, ProbeRequest, Report, Status, THREATS,
    Target, ThreatStatus, Transport,
};

use crate::Outcome;
use crate::style::{Colour, Style};

#[derive(Args, Debug)]
pub(crate) struct ProbeArgs {
    /// An endpoint to probe, HOST:PORT (repeatable): JobManager RPC, blob server, TaskManager
    /// RPC or data port, or a REST port.
    #[arg(long, value_name = "HOST:PORT", value_parser = crate::parsed::<Target>)]
    target: Vec<Target>,
    /// A cluster's REST URL (http:// or https://, Flink or the gateway in front of it): probed
    /// as REST, and its JobManager and TaskManager ports discovered and probed too.
    #[arg(long, value_name = "URL", value_parser = crate::parsed::<ClusterUrl>)]
    cluster: Option<ClusterUrl>,
    /// Client certificate (PEM) for discovery only; the probes themselves stay anonymous.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// CA (PEM) that signed the --cluster server's certificate, checked during discovery.
    /// Without it, --cert is presented only to a server with a publicly trusted certificate.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    Table,
    Json,
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| {
        format!(
            "{flag} {}: cannot read the file; pass the path of an existing PEM file",
            path.display()
        )
    })
}

/// Probes the endpoints and reports every threat OPEN or CLOSED.
pub(crate) fn probe(args: &ProbeArgs) -> Result<Outcome> {
    if args.target.is_empty() && args.cluster.is_none() {
        bail!("nothing to probe: pass --cluster URL or --target HOST:PORT");
    }
    if args.cluster.is_none() && (args.cert.is_some() || args.ca.is_some()) {
        bail!("--cert, --key and --ca are for discovery through --cluster; pass --cluster URL too");
    }
    let cert_and_key = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some((read(cert, "--cert")?, read(key, "--key")?)),
        _ => None,
    };
    let ca = args.ca.as_deref().map(|p| read(p, "--ca")).transpose()?;
    let discovery = if cert_and_key.is_some() || ca.is_some() {
        Some(
            DiscoveryCredentials::from_pem(
                cert_and_key
                    .as_ref()
                    .map(|(c, k)| (c.as_slice(), k.as_slice())),
                ca.as_deref(),
            )
            .context("--cert/--key/--ca: unusable; pass PEM files (certificate, its key, CA)")?,
        )
    } else {
        None
    };
    let request = ProbeRequest {
        targets: args.target.clone(),
        cluster: args.cluster.clone(),
        discovery,
        ..ProbeRequest::default()
    };
    let report = flinkguard_probe::probe(&request)?;
    match args.format {
        OutputFormat::Json => println!("{}", report_json(&report)),
        OutputFormat::Table => print_table(&report),
    }
    Ok(if report.any_open() {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}

fn transport_text(e: &EndpointReport) -> String {
    match &e.transport {
        Transport::Unreachable(why) => format!("unreachable ({why})"),
        Transport::Plaintext(_) => "plaintext".to_owned(),
        Transport::TimedOut => "not finished before the deadline".to_owned(),
        Transport::Tls => {
            let versions: Vec<&str> = e.accepted_versions().iter().map(|v| v.name()).collect();
            let cert = match e.client_cert_required() {
                Some(true) => ", client certificate required",
                Some(false) => ", no client certificate required",
                None => "",
            };
            format!("TLS {}{cert}", versions.join(" "))
        }
    }
}

fn report_json(report: &Report) -> serde_json::Value {
    let threats: Vec<serde_json::Value> = THREATS
        .iter()
        .map(|&t| {
            serde_json::json!({
                "threat": t.to_string(),
                "status": report.threat_status(t).to_string(),
            })
        })
        .collect();
    let endpoints: Vec<serde_json::Value> = report
        .endpoints
        .iter()
        .map(|e| {
            let versions: Vec<serde_json::Value> = e
                .versions
                .iter()
                .filter(|v| v.accepted_version())
                .map(|v| {
                    serde_json::json!({
                        "version": v.version.name(),
                        "suites": v.accepted.iter().map(|s| s.name).collect::<Vec<_>>(),
                    })
                })
                .collect();
            serde_json::json!({
                "endpoint": e.endpoint.addr.to_string(),
                "host": e.endpoint.host,
                "role": e.endpoint.role.to_string(),
                "reachable": !matches!(e.transport, Transport::Unreachable(_)),
                "transport": match &e.transport {
                    Transport::Tls => "tls",
                    Transport::Plaintext(_) => "plaintext",
                    Transport::Unreachable(_) => "unreachable",
                    Transport::TimedOut => "timed-out",
                },
                "summary": transport_text(e),
                "tls_versions": versions,
                "client_certificate_required": e.client_cert_required(),
                "server_certificate": e.server_cert.as_ref().map(|c| serde_json::json!({
                    "subject": c.subject,
                    "issuer": c.issuer,
                    "not_after": c.not_after,
                    "self_signed": c.self_signed,
                })),
            })
        })
        .collect();
    let findings: Vec<serde_json::Value> = report
        .findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "id": f.id,
                "title": f.title,
                "threat": f.threat.to_string(),
                "status": f.status.to_string(),
                "endpoint": f.endpoint,
                "evidence": f.evidence,
            })
        })
        .collect();
    serde_json::json!({
        "threats": threats,
        "endpoints": endpoints,
        "findings": findings,
        "notes": report.notes,
        "elapsed_ms": report.elapsed.as_millis() as u64,
    })
}

/// OPEN red, UNKNOWN yellow, CLOSED green, NOT TESTED dim; padded before painting so the
/// columns line up with or without colour.
fn paint_status(style: Style, text: &str) -> String {
    let colour = match text {
        "OPEN" => Colour::BoldRed,
        "UNKNOWN" => Colour::BoldYellow,
        "CLOSED" => Colour::Green,
        _ => Colour::Dim,
    };
    style.paint(colour, &format!("{text:<10}"))
}

fn print_table(report: &Report) {
    let style = Style::for_stdout();
    println!("Endpoints:");
    for e in &report.endpoints {
        println!(
            "  {:<18} {:<22} {}",
            e.endpoint.role.to_string(),
            e.endpoint.addr,
            transport_text(e)
        );
        if let Some(cert) = &e.server_cert {
            println!(
                "  {:<18} {:<22} certificate {} (issuer {}{}), expires {}",
                "",
                "",
                cert.subject,
                cert.issuer,
                if cert.self_signed {
                    ", self-signed"
                } else {
                    ""
                },
                cert.not_after
            );
        }
        for v in e.versions.iter().filter(|v| v.accepted_version()) {
            let suites: Vec<&str> = v.accepted.iter().map(|s| s.name).collect();
            println!(
                "  {:<18} {:<22} {}: {}",
                "",
                "",
                v.version.name(),
                suites.join(" ")
            );
        }
    }
    let mut threats: Vec<_> = THREATS
        .iter()
        .map(|&t| (t, report.threat_status(t)))
        .collect();
    // OPEN first, then UNKNOWN, CLOSED, NOT TESTED.
    threats.sort_by_key(|(_, s)| match s {
        ThreatStatus::Open => 0,
        ThreatStatus::Unknown => 1,
        ThreatStatus::Closed => 2,
        ThreatStatus::NotTested => 3,
    });
    for (threat, status) in threats {
        println!();
        println!("{} {threat}", paint_status(style, &status.to_string()));
        let mut findings: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.threat == threat)
            .collect();
        findings.sort_by_key(|f| (f.status != Status::Open, f.status, f.id));
        for f in findings {
            println!(
                "  {} {} {} [{}]",
                paint_status(style, &f.status.to_string()),
                f.id,
                f.title,
                f.endpoint
            );
            println!("             evidence: {}", f.evidence);
        }
    }
    if !report.notes.is_empty() {
        println!();
        println!("Notes:");
        for note in &report.notes {
            println!("  {note}");
        }
    }
    println!();
    println!(
        "Probed {} endpoint(s) in {:.1} s (TLS versions tried: {}).",
        report.endpoints.len(),
        report.elapsed.as_secs_f64(),
        TlsVersion::ALL.map(|v| v.name()).join(", ")
    );
}
