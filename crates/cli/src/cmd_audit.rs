use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use flinkguard_scan::{Finding, FlinkConfig, Format, Severity};

use crate::Outcome;

#[derive(Args, Debug)]
pub(crate) struct AuditArgs {
    /// The Flink configuration file: config.yaml (2.x) or flink-conf.yaml (1.x).
    #[arg(long, value_name = "PATH")]
    flink_conf: PathBuf,
    /// Output format.
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
}

/// Checks a Flink configuration file against the rule catalogue.
pub(crate) fn audit(args: &AuditArgs) -> Result<Outcome> {
    let text = std::fs::read_to_string(&args.flink_conf)
        .with_context(|| format!("cannot read {}", args.flink_conf.display()))?;
    let name = args
        .flink_conf
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let config = FlinkConfig::parse(&text, Format::from_file_name(&name))
        .with_context(|| format!("{} is not a Flink configuration", args.flink_conf.display()))?;
    let findings = flinkguard_scan::audit(&config);
    match args.format {
        OutputFormat::Json => {
            let items: Vec<serde_json::Value> = findings.iter().map(finding_json).collect();
            println!("{}", serde_json::Value::from(items));
        }
        OutputFormat::Table => print_table(&findings),
    }
    let failing = findings.iter().any(|f| f.severity >= args.fail_on);
    Ok(if failing {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}

fn finding_json(f: &Finding) -> serde_json::Value {
    serde_json::json!({
        "rule": f.rule,
        "title": f.title,
        "severity": f.severity.as_str(),
        "threat": f.threat.to_string(),
        "evidence": f.evidence,
        "fix": f.fix,
    })
}

fn print_table(findings: &[Finding]) {
    if findings.is_empty() {
        println!("No findings.");
        return;
    }
    for f in findings {
        println!(
            "{:<9} {:<11} {}",
            f.severity.as_str().to_uppercase(),
            f.rule,
            f.title
        );
        println!("          threat:   {}", f.threat);
        println!("          evidence: {}", f.evidence);
        for (i, line) in f.fix.lines().enumerate() {
            let label = if i == 0 { "fix:     " } else { "         " };
            println!("          {label} {line}");
        }
    }
}
