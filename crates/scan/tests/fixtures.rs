//! Whole shipped and rendered configurations, end to end.

use flinkguard_scan::{FlinkConfig, Format, Severity, audit};

#[test]
fn flink_2_3_default_config_is_critical() {
    let text = include_str!("fixtures/flink-2.3.0-default-config.yaml");
    let config = FlinkConfig::parse(text, Format::Standard).unwrap();
    // Sanity: the nested file was flattened.
    assert_eq!(config.get("rest.address"), Some("localhost"));
    assert_eq!(config.get("rest.bind-address"), None);
    let findings = audit(&config);
    let critical: Vec<&str> = findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .map(|f| f.rule)
        .collect();
    assert_eq!(critical, ["FG-REST-003", "FG-TLS-001"], "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Critical);
}

#[test]
fn hardened_config_has_nothing_above_low() {
    let text = include_str!("fixtures/hardened-config.yaml");
    let config = FlinkConfig::parse(text, Format::Standard).unwrap();
    assert_eq!(config.get("security.ssl.internal.enabled"), Some("true"));
    let findings = audit(&config);
    assert!(
        findings.iter().all(|f| f.severity == Severity::Low),
        "{findings:#?}"
    );
    // The only LOW: the passwords flinkguard writes, masked.
    assert!(findings.iter().all(|f| f.rule == "FG-SEC-001"));
    assert_eq!(findings.len(), 3);
    assert!(findings.iter().all(|f| !f.evidence.contains("changeit")));
}

#[test]
fn legacy_and_standard_layouts_audit_alike() {
    let legacy = "\
security.ssl.internal.enabled: true
security.ssl.internal.keystore: /pki/internal.p12
security.ssl.internal.truststore: /pki/internal.p12
security.ssl.internal.cert.fingerprint: AB:CD
security.ssl.algorithms: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
rest.bind-address: 0.0.0.0   # exposed
web.cancel.enable: false
";
    let standard = "\
security.ssl.internal:
  enabled: true
  keystore: /pki/internal.p12
  truststore: /pki/internal.p12
  cert.fingerprint: AB:CD
security.ssl.algorithms: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
rest.bind-address: 0.0.0.0
web.cancel.enable: false
";
    let a = audit(&FlinkConfig::parse(legacy, Format::Legacy).unwrap());
    let b = audit(&FlinkConfig::parse(standard, Format::Standard).unwrap());
    assert_eq!(a, b);
    let ids: Vec<&str> = a.iter().map(|f| f.rule).collect();
    assert_eq!(
        ids,
        ["FG-REST-003", "FG-REST-001", "FG-REST-002", "FG-REST-007"]
    );
}

#[test]
fn every_rule_is_documented_with_its_severity_and_title() {
    let doc = include_str!("../../../docs/audit.md");
    for rule in flinkguard_scan::RULES {
        let row = format!(
            "| {} | {} | {} | {} |",
            rule.id,
            rule.severity.as_str().to_uppercase(),
            rule.threat,
            rule.title
        );
        assert!(doc.contains(&row), "docs/audit.md lacks the row\n{row}");
    }
    let rows = doc.lines().filter(|l| l.starts_with("| FG-")).count();
    assert_eq!(
        rows,
        flinkguard_scan::RULES.len(),
        "a documented rule does not exist"
    );
}
