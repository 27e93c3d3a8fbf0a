use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use flinkguard_scan::{FileContext, Finding, FlinkConfig, Format, Severity};
use time::OffsetDateTime;

use crate::Outcome;
use crate::style::{Colour, Style};

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["flink_conf", "rest"]))]
pub(crate) struct AuditArgs {
    /// The Flink configuration file: config.yaml (2.x) or flink-conf.yaml (1.x). The
    /// keystores, truststores and keytab it names are checked too.
    #[arg(long, value_name = "PATH")]
    flink_conf: Option<PathBuf>,
    /// Instead of a file, read a running cluster's effective configuration from its REST API
    /// (`GET /jobmanager/config`), directly or through the gateway.
    #[arg(long, value_name = "URL")]
    rest: Option<String>,
    /// With --rest over https: the CA (PEM) that signed the server's certificate, instead of
    /// the public roots.
    #[arg(long, value_name = "FILE", requires = "rest")]
    ca: Option<PathBuf>,
    /// With --rest: a client certificate chain (PEM), e.g. pki/clients/admin/client.crt.
    #[arg(long, value_name = "FILE", requires_all = ["rest", "key"])]
    cert: Option<PathBuf>,
    /// With --rest: the client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["rest", "cert"])]
    key: Option<PathBuf>,
    /// Output format. The table is coloured on a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Exit with 1 when a finding is at least this severe.
    #[arg(long, value_name = "SEVERITY", default_value = "high", value_parser = crate::parsed::<Severity>)]
    fail_on: Severity,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    Table,
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards (GitHub, GitLab, DefectDojo).
    Sarif,
}

/// What was audited, for reports that point at it.
pub(crate) struct Audited {
    /// The file or URL, as given.
    pub(crate) source: String,
    pub(crate) config: FlinkConfig,
    pub(crate) findings: Vec<Finding>,
    /// Checks that could not run, and why.
    pub(crate) not_checked: Vec<String>,
}

/// Checks a Flink configuration against the rule catalogue.
pub(crate) fn audit(args: &AuditArgs) -> Result<Outcome> {
    let audited = match (&args.flink_conf, &args.rest) {
        (Some(path), _) => audit_file(path)?,
        (None, Some(url)) => audit_rest(url, args)?,
        (None, None) => bail!("give --flink-conf PATH or --rest URL"),
    };
    match args.format {
        OutputFormat::Json => {
            let items: Vec<serde_json::Value> = audited.findings.iter().map(finding_json).collect();
            println!("{}", serde_json::Value::from(items));
            for note in &audited.not_checked {
                eprintln!("not checked: {note}");
            }
        }
        OutputFormat::Sarif => println!("{:#}", crate::sarif::report(&audited)),
        OutputFormat::Table => print_table(&audited, Style::for_stdout()),
    }
    let failing = audited.findings.iter().any(|f| f.severity >= args.fail_on);
    Ok(if failing {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}

fn audit_file(path: &Path) -> Result<Audited> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let config = FlinkConfig::parse(&text, Format::from_file_name(&name))
        .with_context(|| format!("{} is not a Flink configuration", path.display()))?;
    let mut findings = flinkguard_scan::audit(&config);
    // Flink resolves relative store paths against its working directory; the audit can only
    // assume that is where it runs.
    let context = FileContext {
        base_dir: std::env::current_dir().context("cannot read the current directory")?,
        now: OffsetDateTime::now_utc(),
        config_file: Some(path.to_owned()),
    };
    let files = flinkguard_scan::audit_files(&config, &context);
    findings.extend(files.findings);
    flinkguard_scan::sort(&mut findings);
    Ok(Audited {
        source: path.display().to_string(),
        config,
        findings,
        not_checked: files.not_checked,
    })
}

/// How long a cluster gets to answer `/jobmanager/config`.
const REST_TIMEOUT: Duration = Duration::from_secs(10);

fn audit_rest(url: &str, args: &AuditArgs) -> Result<Audited> {
    let base = url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("--rest {url}: give the REST API's URL, e.g. https://flink.example.com:8443");
    }
    let endpoint = format!("{base}/jobmanager/config");
    let agent = rest_agent(args)?;
    let mut answer = agent
        .get(&endpoint)
        .header("Accept", "application/json")
        .call()
        .map_err(|e| match e {
            ureq::Error::StatusCode(401 | 403) => anyhow::anyhow!(
                "GET {endpoint}: access denied; through the gateway, pass a client certificate \
                 allowed `cluster.config` with --cert and --key"
            ),
            other => anyhow::anyhow!("GET {endpoint}: {other}"),
        })?;
    let body = answer
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_vec()
        .with_context(|| format!("GET {endpoint}: cannot read the answer"))?;
    let config = FlinkConfig::from_rest_answer(&body).with_context(|| format!("GET {endpoint}"))?;
    Ok(Audited {
        source: endpoint,
        findings: flinkguard_scan::audit(&config),
        config,
        not_checked: vec![
            "keystores, truststores and the keytab: they are files on the cluster's machines; \
             run `flinkguard audit --flink-conf` there"
                .to_owned(),
        ],
    })
}

fn rest_agent(args: &AuditArgs) -> Result<ureq::Agent> {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

    let read = |flag: &str, path: &Path| {
        std::fs::read(path).with_context(|| format!("{flag} {}: cannot read", path.display()))
    };
    let pem_certs = |flag: &str, path: &Path| -> Result<Vec<Certificate<'static>>> {
        let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&read(flag, path)?)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            bail!(
                "{flag} {}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)",
                path.display()
            );
        }
        Ok(certs)
    };
    let mut tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        );
    if let Some(ca) = &args.ca {
        tls = tls.root_certs(RootCerts::new_with_certs(&pem_certs("--ca", ca)?));
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        let chain = pem_certs("--cert", cert)?;
        let key = PrivateKey::from_pem(&read("--key", key)?)
            .map_err(|e| anyhow::anyhow!("--key {}: not a PEM private key: {e}", key.display()))?;
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    let config = ureq::Agent::config_builder()
        .tls_config(tls.build())
        .timeout_global(Some(REST_TIMEOUT))
        .build();
    Ok(config.into())
}

fn finding_json(f: &Finding) -> serde_json::Value {
    serde_json::json!({
        "rule": f.rule,
        "title": f.title,
        "severity": f.severity.as_str(),
        "threat": f.threat.to_string(),
        "setting": f.setting,
        "evidence": f.evidence,
        "fix": f.fix,
    })
}

fn severity_colour(severity: Severity) -> Colour {
    match severity {
        Severity::Critical => Colour::BoldRed,
        Severity::High => Colour::Red,
        Severity::Medium => Colour::Yellow,
        Severity::Low => Colour::Cyan,
    }
}

fn print_table(audited: &Audited, style: Style) {
    println!("{}", style.paint(Colour::Bold, &audited.source));
    if audited.findings.is_empty() {
        println!("No findings.");
    }
    for f in &audited.findings {
        let severity = format!("{:<9}", f.severity.as_str().to_uppercase());
        println!(
            "{} {:<11} {}",
            style.paint(severity_colour(f.severity), &severity),
            f.rule,
            f.title
        );
        println!("          threat:   {}", f.threat);
        println!("          evidence: {}", f.evidence);
        if let Some(line) = audited.config.line_of(&f.setting) {
            println!("          where:    {}:{line}", audited.source);
        }
        for (i, line) in f.fix.lines().enumerate() {
            let label = if i == 0 { "fix:     " } else { "         " };
            println!("          {label} {line}");
        }
    }
    for note in &audited.not_checked {
        println!("{} {note}", style.paint(Colour::Dim, "not checked:"));
    }
}
