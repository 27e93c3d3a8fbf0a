//! SARIF 2.1.0 (OASIS), the format code-scanning dashboards import: one run, the whole rule
//! catalogue as the driver's rules, one result per finding pointing at the setting's line.

use flinkguard_scan::{RULES, Severity};
use serde_json::{Value, json};

use crate::cmd_audit::Audited;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// SARIF's three result levels.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// GitHub code scanning ranks security results by this CVSS-like score (a string).
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

/// A URI reference for a path or URL: SARIF requires valid URIs, so spaces and the few other
/// characters a file name may hold are percent-encoded.
fn uri(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for c in source.chars() {
        match c {
            ' ' | '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}' | '%' | '#' | '?'
                if !source.starts_with("http") =>
            {
                out.push_str(&format!("%{:02X}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The SARIF log of one audit.
pub(crate) fn report(audited: &Audited) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "shortDescription": { "text": r.title },
                "defaultConfiguration": { "level": level(r.severity) },
                "properties": {
                    "security-severity": security_severity(r.severity),
                    "tags": ["security", r.threat.to_string()],
                },
            })
        })
        .collect();
    let artifact = uri(&audited.source);
    let results: Vec<Value> = audited
        .findings
        .iter()
        .map(|f| {
            let mut physical = json!({ "artifactLocation": { "uri": artifact } });
            if let Some(line) = audited.config.line_of(&f.setting) {
                physical["region"] = json!({ "startLine": line });
            }
            json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule),
                "level": level(f.severity),
                "message": { "text": format!("{}: {}. Fix: {}", f.title, f.evidence, f.fix) },
                "locations": [{ "physicalLocation": physical }],
                "properties": {
                    "severity": f.severity.as_str(),
                    "security-severity": security_severity(f.severity),
                    "threat": f.threat.to_string(),
                    "setting": f.setting,
                    "fix": f.fix,
                },
            })
        })
        .collect();
    let notifications: Vec<Value> = audited
        .not_checked
        .iter()
        .map(|n| json!({ "level": "note", "message": { "text": format!("not checked: {n}") } }))
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "flinkguard",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(uri("conf/config.yaml"), "conf/config.yaml");
        assert_eq!(uri("my conf/a#b.yaml"), "my%20conf/a%23b.yaml");
        assert_eq!(
            uri("https://h:8443/jobmanager/config"),
            "https://h:8443/jobmanager/config"
        );
    }
}
