//! The rules: each looks at the flat configuration and reports what Flink would actually do,
//! defaults included.

use std::net::IpAddr;

use crate::{Finding, FlinkConfig, RuleInfo, Severity, Threat, files};

const TLS_INTERNAL_OFF: RuleInfo = RuleInfo {
    id: "FG-TLS-001",
    title: "Internal connections are not encrypted and authenticated",
    severity: Severity::Critical,
    threat: Threat::Impersonation,
};
const TLS_NO_PIN: RuleInfo = RuleInfo {
    id: "FG-TLS-002",
    title: "Internal TLS trusts certificates without a fingerprint pin",
    severity: Severity::High,
    threat: Threat::Impersonation,
};
const TLS_WEAK_CIPHERS: RuleInfo = RuleInfo {
    id: "FG-TLS-003",
    title: "Weak or default TLS cipher suites",
    severity: Severity::Medium,
    threat: Threat::SecretExposure,
};
const TLS_OLD_PROTOCOL: RuleInfo = RuleInfo {
    id: "FG-TLS-004",
    title: "Obsolete TLS protocol version allowed",
    severity: Severity::High,
    threat: Threat::SecretExposure,
};
pub(crate) const TLS_PUBLIC_TRUSTSTORE: RuleInfo = RuleInfo {
    id: "FG-TLS-005",
    title: "Internal truststore is a public CA bundle",
    severity: Severity::Critical,
    threat: Threat::Impersonation,
};
const REST_PLAINTEXT: RuleInfo = RuleInfo {
    id: "FG-REST-001",
    title: "REST API is reachable from the network without TLS",
    severity: Severity::High,
    threat: Threat::JobControl,
};
const REST_EXPOSED: RuleInfo = RuleInfo {
    id: "FG-REST-002",
    title: "REST API listens on a non-loopback address",
    severity: Severity::High,
    threat: Threat::JobControl,
};
const REST_SUBMIT: RuleInfo = RuleInfo {
    id: "FG-REST-003",
    title: "Jar upload and run through the REST API is enabled",
    severity: Severity::Critical,
    threat: Threat::JobControl,
};
const REST_CANCEL: RuleInfo = RuleInfo {
    id: "FG-REST-004",
    title: "Job cancellation through the Web UI is enabled",
    severity: Severity::Medium,
    threat: Threat::JobControl,
};
const REST_PROFILER: RuleInfo = RuleInfo {
    id: "FG-REST-005",
    title: "Profiler is enabled on the REST API",
    severity: Severity::Medium,
    threat: Threat::SecretExposure,
};
const REST_FLAMEGRAPH: RuleInfo = RuleInfo {
    id: "FG-REST-006",
    title: "Flame graphs are enabled on the REST API",
    severity: Severity::Low,
    threat: Threat::SecretExposure,
};
const REST_UPLOAD_TMP: RuleInfo = RuleInfo {
    id: "FG-REST-007",
    title: "Uploaded jars are stored in a shared temporary directory",
    severity: Severity::Low,
    threat: Threat::JobControl,
};
pub(crate) const SECRET_PLAIN: RuleInfo = RuleInfo {
    id: "FG-SEC-001",
    title: "Password stored in plain configuration",
    // Low for the passwords themselves (Flink has to read them from somewhere); Medium when
    // the file holding them is open to other users.
    severity: Severity::Medium,
    threat: Threat::SecretExposure,
};
const JMX_NO_AUTH: RuleInfo = RuleInfo {
    id: "FG-JMX-001",
    title: "JMX remote access without authentication or TLS",
    severity: Severity::High,
    threat: Threat::JobControl,
};
const METRICS_EXPOSED: RuleInfo = RuleInfo {
    id: "FG-MET-001",
    title: "Metric reporter listens on all interfaces",
    severity: Severity::Medium,
    threat: Threat::SecretExposure,
};
const HA_ZK_NO_SASL: RuleInfo = RuleInfo {
    id: "FG-HA-001",
    title: "ZooKeeper high availability without SASL",
    severity: Severity::High,
    threat: Threat::StateAccess,
};

/// Every rule, in id order: the catalogue for documentation and SARIF.
pub const RULES: &[RuleInfo] = &[
    HA_ZK_NO_SASL,
    JMX_NO_AUTH,
    files::KEYTAB_EXPOSED,
    files::STORE_UNREADABLE,
    files::STORE_EXPOSED,
    files::CERT_EXPIRING,
    files::CERT_SHORT_RSA,
    files::CERT_WEAK_SIGNATURE,
    METRICS_EXPOSED,
    REST_PLAINTEXT,
    REST_EXPOSED,
    REST_SUBMIT,
    REST_CANCEL,
    REST_PROFILER,
    REST_FLAMEGRAPH,
    REST_UPLOAD_TMP,
    SECRET_PLAIN,
    TLS_INTERNAL_OFF,
    TLS_NO_PIN,
    TLS_WEAK_CIPHERS,
    TLS_OLD_PROTOCOL,
    TLS_PUBLIC_TRUSTSTORE,
];

type Check = fn(&FlinkConfig, &mut Vec<Finding>);

const CHECKS: &[Check] = &[
    internal_tls,
    fingerprint_pin,
    weak_ciphers,
    old_protocol,
    public_truststore,
    rest_plaintext,
    rest_exposed,
    web_submit,
    web_cancel,
    profiler,
    upload_dir,
    plain_passwords,
    jmx,
    metric_reporters,
    zookeeper,
];

/// Runs every rule; findings sorted by severity (worst first), then rule id.
pub fn audit(config: &FlinkConfig) -> Vec<Finding> {
    let mut findings = Vec::new();
    for check in CHECKS {
        check(config, &mut findings);
    }
    sort(&mut findings);
    findings
}

/// Worst first, then by rule id. Stable: findings of one rule keep their (key-ordered)
/// discovery order.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule.cmp(b.rule)));
}

pub(crate) fn report(
    out: &mut Vec<Finding>,
    rule: &RuleInfo,
    severity: Severity,
    setting: &str,
    evidence: String,
    fix: impl Into<String>,
) {
    out.push(Finding {
        rule: rule.id,
        title: rule.title,
        severity,
        threat: rule.threat,
        setting: setting.to_owned(),
        evidence,
        fix: fix.into(),
    });
}

// ---- reading settings the way Flink does ----

/// A boolean setting, or Flink's default when absent. Flink rejects anything but
/// `true`/`false` (any case) at start-up; such a value is treated as absent.
fn flag(config: &FlinkConfig, key: &str, default: bool) -> bool {
    config
        .get(key)
        .and_then(|v| match v.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        })
        .unwrap_or(default)
}

/// `key=value` as found, or `key unset (default …)`; secrets masked.
fn evidence(config: &FlinkConfig, key: &str, default: &str) -> String {
    match config.get(key) {
        Some(value) => shown(key, value),
        None => format!("{key} unset (default {default})"),
    }
}

fn shown(key: &str, value: &str) -> String {
    if is_sensitive(key) {
        format!("{key}=******")
    } else {
        format!("{key}={value}")
    }
}

/// Flink's own list of key fragments it hides in the Web UI and logs
/// (`GlobalConfiguration.SENSITIVE_KEYS`), so evidence never shows more than Flink does.
fn is_sensitive(key: &str) -> bool {
    const FRAGMENTS: &[&str] = &[
        "password",
        "secret",
        "fs.azure.account.key",
        "apikey",
        "api-key",
        "auth-params",
        "service-key",
        "token",
        "basic-auth",
        "jaas.config",
        "http-headers",
    ];
    let key = key.to_ascii_lowercase();
    FRAGMENTS.iter().any(|f| key.contains(f))
}

/// The key and value of the internal SSL switch; `security.ssl.enabled` is its deprecated
/// name, still honoured by Flink.
fn internal_switch(config: &FlinkConfig) -> (&'static str, bool) {
    for key in ["security.ssl.internal.enabled", "security.ssl.enabled"] {
        if config.get(key).is_some() {
            return (key, flag(config, key, false));
        }
    }
    ("security.ssl.internal.enabled", false)
}

/// The per-endpoint switches; each defaults to the internal switch.
const INTERNAL_ENDPOINTS: &[&str] = &[
    "taskmanager.data.ssl.enabled",
    "blob.service.ssl.enabled",
    "pekko.ssl.enabled",
    "akka.ssl.enabled",
];

fn internal_ssl_on(config: &FlinkConfig) -> bool {
    internal_switch(config).1
}

fn rest_ssl_on(config: &FlinkConfig) -> bool {
    flag(config, "security.ssl.rest.enabled", false)
}

/// Whether REST listens on loopback only. Flink binds every interface when
/// `rest.bind-address` is unset, whatever `rest.address` says.
fn rest_loopback(config: &FlinkConfig) -> bool {
    config.get("rest.bind-address").is_some_and(is_loopback)
}

fn is_loopback(address: &str) -> bool {
    let address = address.trim().trim_start_matches('[').trim_end_matches(']');
    address.eq_ignore_ascii_case("localhost")
        || address.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_wildcard(address: &str) -> bool {
    address
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
}

/// Items of a list setting: Flink accepts `;` for list options and `,` for the SSL lists.
fn items(value: &str) -> impl Iterator<Item = &str> {
    value
        .split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

// ---- the rules ----

fn internal_tls(config: &FlinkConfig, out: &mut Vec<Finding>) {
    let (key, on) = internal_switch(config);
    if !on {
        report(
            out,
            &TLS_INTERNAL_OFF,
            Severity::Critical,
            key,
            evidence(config, key, "false"),
            "security.ssl.internal.enabled: true\n\
             security.ssl.internal.keystore: <keystore>\n\
             security.ssl.internal.truststore: <truststore>\n\
             security.ssl.internal.cert.fingerprint: <SHA-1 of the internal certificate>",
        );
        return;
    }
    // An endpoint switched off explicitly leaves that channel (RPC, data, blobs) open to
    // anyone who can reach its port, even with the global switch on.
    for endpoint in INTERNAL_ENDPOINTS {
        if config.get(endpoint).is_some() && !flag(config, endpoint, true) {
            report(
                out,
                &TLS_INTERNAL_OFF,
                Severity::Critical,
                endpoint,
                format!("{key}=true, {}", evidence(config, endpoint, "")),
                format!("{endpoint}: true"),
            );
        }
    }
}

fn truststore(config: &FlinkConfig) -> Option<(&'static str, &str)> {
    [
        "security.ssl.internal.truststore",
        "security.ssl.truststore",
    ]
    .into_iter()
    .find_map(|k| config.get(k).map(|v| (k, v)))
}

fn keystore(config: &FlinkConfig) -> Option<&str> {
    ["security.ssl.internal.keystore", "security.ssl.keystore"]
        .into_iter()
        .find_map(|k| config.get(k))
}

fn fingerprint_pin(config: &FlinkConfig, out: &mut Vec<Finding>) {
    if !internal_ssl_on(config) {
        return;
    }
    let pinned = config
        .get("security.ssl.internal.cert.fingerprint")
        .is_some_and(|v| !v.trim().is_empty());
    if pinned {
        return;
    }
    // Without reading the stores, the only config-level hint is their paths: the same file as
    // keystore and truststore is Flink's documented self-signed setup (the peer must hold that
    // very certificate), so the risk cannot be told; a separate truststore normally holds a CA,
    // and then every certificate that CA ever signed is a valid cluster member.
    let trust = truststore(config);
    let separate_ca = match (trust, keystore(config)) {
        (Some((_, t)), Some(k)) => t.trim() != k.trim(),
        _ => false,
    };
    let severity = if separate_ca {
        Severity::High
    } else {
        Severity::Medium
    };
    let mut evidence = "security.ssl.internal.cert.fingerprint unset".to_owned();
    if let Some((key, value)) = trust {
        evidence.push_str(", ");
        evidence.push_str(&shown(key, value));
    }
    report(
        out,
        &TLS_NO_PIN,
        severity,
        "security.ssl.internal.cert.fingerprint",
        evidence,
        "security.ssl.internal.cert.fingerprint: <SHA-1 of the internal certificate>",
    );
}

const DEFAULT_ALGORITHMS: &str = "TLS_RSA_WITH_AES_128_CBC_SHA";

fn is_weak_suite(suite: &str) -> bool {
    let suite = suite.to_ascii_uppercase();
    // TLS 1.3 suites name no key exchange: it is always ephemeral there.
    if suite.starts_with("TLS_AES_") || suite.starts_with("TLS_CHACHA20_") {
        return false;
    }
    // Without ECDHE there is no forward secrecy (RSA key exchange, or DHE that Java
    // negotiates with weak groups); CBC suites are the Lucky13/POODLE family.
    !suite.contains("ECDHE")
        || suite.contains("_CBC_")
        || ["RC4", "NULL", "EXPORT", "ANON", "3DES", "DES40"]
            .iter()
            .any(|w| suite.contains(w))
}

fn any_ssl_on(config: &FlinkConfig) -> bool {
    internal_ssl_on(config) || rest_ssl_on(config)
}

const STRONG_SUITES: &str = "security.ssl.algorithms: \
TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,\
TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256";

fn weak_ciphers(config: &FlinkConfig, out: &mut Vec<Finding>) {
    // Cipher settings only matter once some TLS is on; with none, FG-TLS-001 says it all.
    if !any_ssl_on(config) {
        return;
    }
    let key = "security.ssl.algorithms";
    match config.get(key) {
        None => report(
            out,
            &TLS_WEAK_CIPHERS,
            Severity::Medium,
            key,
            evidence(config, key, DEFAULT_ALGORITHMS),
            STRONG_SUITES,
        ),
        Some(value) => {
            let weak: Vec<&str> = items(value).filter(|s| is_weak_suite(s)).collect();
            if !weak.is_empty() {
                report(
                    out,
                    &TLS_WEAK_CIPHERS,
                    Severity::Medium,
                    key,
                    format!("{key}={value} (weak: {})", weak.join(",")),
                    STRONG_SUITES,
                );
            }
        }
    }
}

fn old_protocol(config: &FlinkConfig, out: &mut Vec<Finding>) {
    if !any_ssl_on(config) {
        return;
    }
    let key = "security.ssl.protocol";
    // The default, TLSv1.2, is acceptable; only explicitly configured old versions count.
    let Some(value) = config.get(key) else { return };
    let old = items(value).any(|p| {
        ["TLSv1", "TLSv1.1", "SSLv3", "SSLv2", "SSLv2Hello", "SSL"]
            .iter()
            .any(|o| p.eq_ignore_ascii_case(o))
    });
    if old {
        report(
            out,
            &TLS_OLD_PROTOCOL,
            Severity::High,
            key,
            shown(key, value),
            "security.ssl.protocol: TLSv1.3",
        );
    }
}

fn is_public_bundle(path: &str) -> bool {
    let path = path.trim().to_ascii_lowercase();
    let name = path.rsplit(['/', '\\']).next().unwrap_or_default();
    name == "cacerts" || name == "ca-certificates.crt" || name.starts_with("ca-bundle")
}

fn public_truststore(config: &FlinkConfig, out: &mut Vec<Finding>) {
    if !internal_ssl_on(config) {
        return;
    }
    if let Some((key, path)) = truststore(config).filter(|(_, p)| is_public_bundle(p)) {
        report(
            out,
            &TLS_PUBLIC_TRUSTSTORE,
            Severity::Critical,
            key,
            format!("{key}={path}"),
            "security.ssl.internal.truststore: <a store holding only the cluster's own \
             certificate or private CA>\n\
             security.ssl.internal.cert.fingerprint: <SHA-1 of the internal certificate>",
        );
    }
}

fn rest_bind_evidence(config: &FlinkConfig) -> String {
    evidence(config, "rest.bind-address", "all interfaces")
}

fn rest_plaintext(config: &FlinkConfig, out: &mut Vec<Finding>) {
    if rest_ssl_on(config) || rest_loopback(config) {
        return;
    }
    report(
        out,
        &REST_PLAINTEXT,
        Severity::High,
        "rest.bind-address",
        format!(
            "{}, {}",
            evidence(config, "security.ssl.rest.enabled", "false"),
            rest_bind_evidence(config)
        ),
        "rest.bind-address: 127.0.0.1\n# and put an authenticating gateway in front, or:\n\
         security.ssl.rest.enabled: true\nsecurity.ssl.rest.authentication-enabled: true",
    );
}

fn rest_exposed(config: &FlinkConfig, out: &mut Vec<Finding>) {
    if rest_loopback(config) {
        return;
    }
    report(
        out,
        &REST_EXPOSED,
        Severity::High,
        "rest.bind-address",
        rest_bind_evidence(config),
        "rest.bind-address: 127.0.0.1",
    );
}

fn web_submit(config: &FlinkConfig, out: &mut Vec<Finding>) {
    if !flag(config, "web.submit.enable", true) {
        return;
    }
    // Reachable from the network, an upload-and-run endpoint is remote code execution for
    // anyone; on loopback only local users (or a gateway's authorized callers) get there.
    let severity = if rest_loopback(config) {
        Severity::Medium
    } else {
        Severity::Critical
    };
    report(
        out,
        &REST_SUBMIT,
        severity,
        "web.submit.enable",
        format!(
            "{}, {}",
            evidence(config, "web.submit.enable", "true"),
            rest_bind_evidence(config)
        ),
        "web.submit.enable: false",
    );
}

fn web_cancel(config: &FlinkConfig, out: &mut Vec<Finding>) {
    if flag(config, "web.cancel.enable", true) {
        report(
            out,
            &REST_CANCEL,
            Severity::Medium,
            "web.cancel.enable",
            evidence(config, "web.cancel.enable", "true"),
            "web.cancel.enable: false",
        );
    }
}

fn profiler(config: &FlinkConfig, out: &mut Vec<Finding>) {
    if flag(config, "rest.profiling.enabled", false) {
        report(
            out,
            &REST_PROFILER,
            Severity::Medium,
            "rest.profiling.enabled",
            evidence(config, "rest.profiling.enabled", "false"),
            "rest.profiling.enabled: false",
        );
    }
    if flag(config, "rest.flamegraph.enabled", false) {
        report(
            out,
            &REST_FLAMEGRAPH,
            Severity::Low,
            "rest.flamegraph.enabled",
            evidence(config, "rest.flamegraph.enabled", "false"),
            "rest.flamegraph.enabled: false",
        );
    }
}

fn is_shared_tmp(path: &str) -> bool {
    let path = path.trim();
    ["/tmp", "/var/tmp", "/dev/shm"]
        .iter()
        .any(|t| path == *t || path.starts_with(&format!("{t}/")))
}

fn upload_dir(config: &FlinkConfig, out: &mut Vec<Finding>) {
    // Jars land there only when web submission is on.
    if !flag(config, "web.submit.enable", true) {
        return;
    }
    // web.upload.dir falls back to web.tmpdir, which falls back to java.io.tmpdir (/tmp).
    let chosen = ["web.upload.dir", "web.tmpdir"]
        .into_iter()
        .find_map(|k| config.get(k).map(|v| (k, v)));
    let evidence = match chosen {
        None => "web.upload.dir unset (default java.io.tmpdir)".to_owned(),
        Some((key, value)) if is_shared_tmp(value) => shown(key, value),
        Some(_) => return,
    };
    report(
        out,
        &REST_UPLOAD_TMP,
        Severity::Low,
        chosen.map_or("web.upload.dir", |(k, _)| k),
        evidence,
        "web.upload.dir: <a directory owned by the Flink user, mode 0700>",
    );
}

/// The password settings whose value is the password itself. `${VAR}` is substituted by
/// deployment tooling (the Kubernetes operator, envsubst): not a literal secret in the file.
pub(crate) fn literal_passwords(config: &FlinkConfig) -> impl Iterator<Item = (&str, &str)> {
    config.iter().filter(|(key, value)| {
        key.to_ascii_lowercase().ends_with("password")
            && !value.trim().is_empty()
            && !value.trim().starts_with("${")
    })
}

fn plain_passwords(config: &FlinkConfig, out: &mut Vec<Finding>) {
    for (key, value) in literal_passwords(config) {
        report(
            out,
            &SECRET_PLAIN,
            Severity::Low,
            key,
            shown(key, value),
            "keep this file mode 0600 and owned by the Flink user; \
             grant the `cluster.config` and `secrets.read` operations sparingly in the gateway policy",
        );
    }
}

fn jmx(config: &FlinkConfig, out: &mut Vec<Finding>) {
    for (key, value) in config.iter() {
        if !key.starts_with("env.java.") || !value.contains("-Dcom.sun.management.jmxremote") {
            continue;
        }
        // The JVM defaults to authenticate=true and ssl=true: only explicit `false` opens it.
        let open: Vec<&str> = value
            .split_whitespace()
            .filter(|o| {
                o.starts_with("-Dcom.sun.management.jmxremote.authenticate=false")
                    || o.starts_with("-Dcom.sun.management.jmxremote.ssl=false")
            })
            .collect();
        if !open.is_empty() {
            // Only the offending flags: the rest of the JVM options may hold secrets.
            report(
                out,
                &JMX_NO_AUTH,
                Severity::High,
                key,
                format!("{key} contains {}", open.join(" ")),
                "remove -Dcom.sun.management.jmxremote* from env.java.opts, or set \
                 -Dcom.sun.management.jmxremote.authenticate=true \
                 -Dcom.sun.management.jmxremote.ssl=true",
            );
        }
    }
}

fn metric_reporters(config: &FlinkConfig, out: &mut Vec<Finding>) {
    for (key, value) in config.iter() {
        let Some(rest) = key.strip_prefix("metrics.reporter.") else {
            continue;
        };
        let Some((name, option)) = rest.split_once('.') else {
            continue;
        };
        let wildcard_host = option == "host" && is_wildcard(value);
        // The Prometheus reporter has no host option: its HTTP server always binds every
        // interface.
        let prometheus = matches!(option, "factory.class" | "class")
            && value.contains("PrometheusReporter")
            && !value.contains("PushGateway");
        if wildcard_host || prometheus {
            let fix = if prometheus {
                "firewall the reporter's port (metrics.reporter.<name>.port) to the scraper, \
                 or scrape through a local agent"
                    .to_owned()
            } else {
                format!("metrics.reporter.{name}.host: 127.0.0.1")
            };
            report(
                out,
                &METRICS_EXPOSED,
                Severity::Medium,
                key,
                shown(key, value),
                fix,
            );
        }
    }
}

fn zookeeper(config: &FlinkConfig, out: &mut Vec<Finding>) {
    let ha = ["high-availability.type", "high-availability"]
        .into_iter()
        .find_map(|k| config.get(k).map(|v| (k, v)));
    let Some((ha_key, ha_value)) = ha else { return };
    if !ha_value.trim().eq_ignore_ascii_case("zookeeper") {
        return;
    }
    if flag(config, "zookeeper.sasl.disable", false) {
        report(
            out,
            &HA_ZK_NO_SASL,
            Severity::High,
            "zookeeper.sasl.disable",
            format!(
                "{ha_key}={ha_value}, {}",
                evidence(config, "zookeeper.sasl.disable", "false")
            ),
            "zookeeper.sasl.disable: false\n\
             security.kerberos.login.contexts: Client\n\
             high-availability.zookeeper.client.acl: creator",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> FlinkConfig {
        pairs.iter().copied().collect()
    }

    /// A configuration that triggers none of the rules above LOW, for tests to start from.
    fn hardened() -> Vec<(&'static str, &'static str)> {
        vec![
            ("security.ssl.internal.enabled", "true"),
            ("security.ssl.internal.keystore", "/pki/internal.p12"),
            ("security.ssl.internal.truststore", "/pki/internal.p12"),
            ("security.ssl.internal.cert.fingerprint", "AB:CD"),
            (
                "security.ssl.algorithms",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_AES_128_GCM_SHA256",
            ),
            ("security.ssl.protocol", "TLSv1.3"),
            ("rest.bind-address", "127.0.0.1"),
            ("web.submit.enable", "false"),
            ("web.cancel.enable", "false"),
        ]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> FlinkConfig {
        let mut pairs = hardened();
        for (k, v) in extra {
            pairs.retain(|(key, _)| key != k);
            pairs.push((k, v));
        }
        cfg(&pairs)
    }

    fn without(key: &str) -> FlinkConfig {
        let mut pairs = hardened();
        pairs.retain(|(k, _)| *k != key);
        cfg(&pairs)
    }

    fn hits(config: &FlinkConfig, rule: &str) -> Vec<Finding> {
        audit(config)
            .into_iter()
            .filter(|f| f.rule == rule)
            .collect()
    }

    #[test]
    fn hardened_baseline_is_clean() {
        assert_eq!(audit(&cfg(&hardened())), vec![]);
    }

    #[test]
    fn catalogue_ids_are_unique_sorted_and_cover_every_finding() {
        let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ids, sorted);
        let noisy = cfg(&[
            ("security.ssl.rest.enabled", "true"),
            ("security.ssl.protocol", "TLSv1"),
            ("security.ssl.internal.enabled", "true"),
            ("security.ssl.internal.truststore", "/etc/ssl/certs/cacerts"),
            ("rest.profiling.enabled", "true"),
            ("rest.flamegraph.enabled", "true"),
            ("x.password", "p"),
            (
                "env.java.opts.all",
                "-Dcom.sun.management.jmxremote.authenticate=false",
            ),
            ("metrics.reporter.x.host", "0.0.0.0"),
            ("high-availability.type", "zookeeper"),
            ("zookeeper.sasl.disable", "true"),
        ]);
        for finding in audit(&noisy) {
            let info = RULES.iter().find(|r| r.id == finding.rule).unwrap();
            assert_eq!(info.title, finding.title);
            assert_eq!(info.threat, finding.threat);
            assert!(finding.severity <= info.severity, "{finding:?}");
        }
    }

    #[test]
    fn findings_are_sorted_worst_first_then_by_id() {
        let findings = audit(&FlinkConfig::default());
        assert!(findings.len() > 2);
        for pair in findings.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert!(a.severity > b.severity || (a.severity == b.severity && a.rule <= b.rule));
        }
    }

    #[test]
    fn tls_001_internal_ssl_off_or_endpoint_overridden() {
        let off = hits(&FlinkConfig::default(), "FG-TLS-001");
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].severity, Severity::Critical);
        assert!(off[0].evidence.contains("unset (default false)"));
        // The deprecated key still counts.
        assert!(hits(&cfg(&[("security.ssl.enabled", "true")]), "FG-TLS-001").is_empty());
        let blob = hits(
            &with(&[("blob.service.ssl.enabled", "false")]),
            "FG-TLS-001",
        );
        assert_eq!(blob.len(), 1);
        assert_eq!(blob[0].fix, "blob.service.ssl.enabled: true");
        assert!(hits(&with(&[("pekko.ssl.enabled", "true")]), "FG-TLS-001").is_empty());
    }

    #[test]
    fn tls_002_missing_pin() {
        let same = hits(
            &without("security.ssl.internal.cert.fingerprint"),
            "FG-TLS-002",
        );
        assert_eq!(same.len(), 1);
        assert_eq!(same[0].severity, Severity::Medium);
        let mut ca = hardened();
        ca.retain(|(k, _)| *k != "security.ssl.internal.cert.fingerprint");
        ca.retain(|(k, _)| *k != "security.ssl.internal.truststore");
        ca.push(("security.ssl.internal.truststore", "/pki/ca.p12"));
        let ca = hits(&cfg(&ca), "FG-TLS-002");
        assert_eq!(ca[0].severity, Severity::High);
        assert!(hits(&cfg(&hardened()), "FG-TLS-002").is_empty());
    }

    #[test]
    fn tls_003_weak_or_default_ciphers() {
        let default = hits(&without("security.ssl.algorithms"), "FG-TLS-003");
        assert!(default[0].evidence.contains(DEFAULT_ALGORITHMS));
        let cbc = with(&[(
            "security.ssl.algorithms",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        )]);
        assert!(
            hits(&cbc, "FG-TLS-003")[0]
                .evidence
                .contains("weak: TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256")
        );
        let rsa = with(&[("security.ssl.algorithms", "TLS_RSA_WITH_AES_256_GCM_SHA384")]);
        assert_eq!(hits(&rsa, "FG-TLS-003").len(), 1);
        assert!(hits(&cfg(&hardened()), "FG-TLS-003").is_empty());
        // No TLS at all: nothing to say about ciphers.
        assert!(hits(&FlinkConfig::default(), "FG-TLS-003").is_empty());
    }

    #[test]
    fn tls_004_old_protocols() {
        for old in ["TLSv1", "TLSv1.2,TLSv1.1", "SSLv3"] {
            let found = hits(&with(&[("security.ssl.protocol", old)]), "FG-TLS-004");
            assert_eq!(found.len(), 1, "{old}");
        }
        assert!(hits(&with(&[("security.ssl.protocol", "TLSv1.2")]), "FG-TLS-004").is_empty());
        assert!(hits(&without("security.ssl.protocol"), "FG-TLS-004").is_empty());
    }

    #[test]
    fn tls_005_public_ca_truststore() {
        for path in [
            "/usr/lib/jvm/java-17/lib/security/cacerts",
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
        ] {
            let found = hits(
                &with(&[("security.ssl.internal.truststore", path)]),
                "FG-TLS-005",
            );
            assert_eq!(found[0].severity, Severity::Critical, "{path}");
        }
        assert!(hits(&cfg(&hardened()), "FG-TLS-005").is_empty());
    }

    #[test]
    fn rest_001_plaintext_rest_on_the_network() {
        let open = hits(&without("rest.bind-address"), "FG-REST-001");
        assert_eq!(open.len(), 1);
        assert!(open[0].evidence.contains("rest.bind-address unset"));
        let tls = with(&[
            ("rest.bind-address", "0.0.0.0"),
            ("security.ssl.rest.enabled", "true"),
        ]);
        assert!(hits(&tls, "FG-REST-001").is_empty());
        assert!(hits(&cfg(&hardened()), "FG-REST-001").is_empty());
    }

    #[test]
    fn rest_002_non_loopback_bind() {
        for address in ["0.0.0.0", "10.0.0.5", "flink.example.com", "::"] {
            let found = hits(&with(&[("rest.bind-address", address)]), "FG-REST-002");
            assert_eq!(found.len(), 1, "{address}");
        }
        assert_eq!(hits(&without("rest.bind-address"), "FG-REST-002").len(), 1);
        for address in ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"] {
            let found = hits(&with(&[("rest.bind-address", address)]), "FG-REST-002");
            assert!(found.is_empty(), "{address}");
        }
    }

    #[test]
    fn rest_003_web_submit() {
        let local = hits(&without("web.submit.enable"), "FG-REST-003");
        assert_eq!(local[0].severity, Severity::Medium);
        let remote = with(&[
            ("web.submit.enable", "true"),
            ("rest.bind-address", "0.0.0.0"),
        ]);
        assert_eq!(hits(&remote, "FG-REST-003")[0].severity, Severity::Critical);
        assert!(hits(&cfg(&hardened()), "FG-REST-003").is_empty());
    }

    #[test]
    fn rest_004_web_cancel() {
        assert_eq!(hits(&without("web.cancel.enable"), "FG-REST-004").len(), 1);
        assert_eq!(
            hits(&with(&[("web.cancel.enable", "TRUE")]), "FG-REST-004").len(),
            1
        );
        assert!(hits(&cfg(&hardened()), "FG-REST-004").is_empty());
    }

    #[test]
    fn rest_005_and_006_profiler_and_flamegraphs() {
        let profiler = hits(&with(&[("rest.profiling.enabled", "true")]), "FG-REST-005");
        assert_eq!(profiler[0].severity, Severity::Medium);
        let flame = hits(&with(&[("rest.flamegraph.enabled", "true")]), "FG-REST-006");
        assert_eq!(flame[0].severity, Severity::Low);
        let off = with(&[
            ("rest.profiling.enabled", "false"),
            ("rest.flamegraph.enabled", "false"),
        ]);
        assert!(hits(&off, "FG-REST-005").is_empty());
        assert!(hits(&off, "FG-REST-006").is_empty());
    }

    #[test]
    fn rest_007_upload_dir_in_shared_tmp() {
        assert_eq!(hits(&without("web.submit.enable"), "FG-REST-007").len(), 1);
        let tmp = with(&[
            ("web.submit.enable", "true"),
            ("web.upload.dir", "/tmp/jars"),
        ]);
        assert_eq!(
            hits(&tmp, "FG-REST-007")[0].evidence,
            "web.upload.dir=/tmp/jars"
        );
        let tmpdir = with(&[("web.submit.enable", "true"), ("web.tmpdir", "/var/tmp")]);
        assert_eq!(hits(&tmpdir, "FG-REST-007").len(), 1);
        let own = with(&[
            ("web.submit.enable", "true"),
            ("web.upload.dir", "/var/lib/flink/jars"),
        ]);
        assert!(hits(&own, "FG-REST-007").is_empty());
        assert!(hits(&cfg(&hardened()), "FG-REST-007").is_empty());
    }

    #[test]
    fn sec_001_plain_passwords_are_masked() {
        let config = with(&[("security.ssl.internal.keystore-password", "hunter2")]);
        let found = hits(&config, "FG-SEC-001");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].evidence,
            "security.ssl.internal.keystore-password=******"
        );
        assert!(
            audit(&config)
                .iter()
                .all(|f| !f.evidence.contains("hunter2"))
        );
        let substituted = with(&[("security.ssl.internal.keystore-password", "${KS_PASS}")]);
        assert!(hits(&substituted, "FG-SEC-001").is_empty());
        assert!(hits(&cfg(&hardened()), "FG-SEC-001").is_empty());
    }

    #[test]
    fn jmx_001_unauthenticated_jmx() {
        let opts = "-Dcom.sun.management.jmxremote -Dcom.sun.management.jmxremote.port=9999 \
                    -Dcom.sun.management.jmxremote.authenticate=false -Dsecret.thing=xyz";
        let found = hits(&with(&[("env.java.opts.jobmanager", opts)]), "FG-JMX-001");
        assert_eq!(found.len(), 1);
        assert!(!found[0].evidence.contains("xyz"));
        let authed = "-Dcom.sun.management.jmxremote -Dcom.sun.management.jmxremote.port=9999";
        assert!(hits(&with(&[("env.java.opts.all", authed)]), "FG-JMX-001").is_empty());
        let no_jmx = "-Dcom.sun.management.jmxremote.ssl=false";
        assert!(hits(&with(&[("metrics.other", no_jmx)]), "FG-JMX-001").is_empty());
    }

    #[test]
    fn met_001_reporters_on_all_interfaces() {
        let host = hits(
            &with(&[("metrics.reporter.graphite.host", "0.0.0.0")]),
            "FG-MET-001",
        );
        assert_eq!(host[0].fix, "metrics.reporter.graphite.host: 127.0.0.1");
        let prom = with(&[(
            "metrics.reporter.prom.factory.class",
            "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
        )]);
        assert_eq!(hits(&prom, "FG-MET-001").len(), 1);
        let push = with(&[(
            "metrics.reporter.pg.factory.class",
            "org.apache.flink.metrics.prometheus.PrometheusPushGatewayReporterFactory",
        )]);
        assert!(hits(&push, "FG-MET-001").is_empty());
        let local = with(&[("metrics.reporter.graphite.host", "127.0.0.1")]);
        assert!(hits(&local, "FG-MET-001").is_empty());
    }

    #[test]
    fn ha_001_zookeeper_without_sasl() {
        let zk = with(&[
            ("high-availability.type", "zookeeper"),
            ("zookeeper.sasl.disable", "true"),
        ]);
        assert_eq!(hits(&zk, "FG-HA-001")[0].severity, Severity::High);
        let legacy = with(&[
            ("high-availability", "ZooKeeper"),
            ("zookeeper.sasl.disable", "true"),
        ]);
        assert_eq!(hits(&legacy, "FG-HA-001").len(), 1);
        let sasl = with(&[("high-availability.type", "zookeeper")]);
        assert!(hits(&sasl, "FG-HA-001").is_empty());
        let k8s = with(&[
            ("high-availability.type", "kubernetes"),
            ("zookeeper.sasl.disable", "true"),
        ]);
        assert!(hits(&k8s, "FG-HA-001").is_empty());
    }
}
