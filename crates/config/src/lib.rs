//! `flinkguard.yaml`: the one file that describes a secured Flink deployment.
//!
//! Every command reads it. It holds no secret: passwords and keys live in files of mode 0600
//! under the PKI directory it points to. Unknown keys are errors (a typo must not silently
//! leave a setting at its default), and every error names the line and the field.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use flinkguard_flink::FlinkVersion;
use flinkguard_pki::{DnsName, KeyAlgorithm, PkiLayout, ValidityDays};
use flinkguard_policy::{Policy, PolicyConfig};

mod connectors;
mod gateway;
mod kubernetes;
mod kubernetes_operator;

pub use connectors::{
    ConnectorName, ConnectorTruststore, JaasContext, KafkaSecurityProtocol, KerberosPrincipal,
    KerberosSettings,
};
pub use gateway::{
    AuditDurability, AuthorizationWebhook, Cidr, ClientCertificates, GatewaySection,
    GroupAttribute, JwtIssuer, Timeouts, TrustedProxies,
};
pub use kubernetes::{
    Application, EgressTarget, GatewayState, HighAvailability, IngressFrom, KubernetesSection,
};
pub use kubernetes_operator::{ApiServer, OperatorSection};

/// The file name commands look for by default.
pub const FILE_NAME: &str = "flinkguard.yaml";

/// The only schema version so far; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole `flinkguard.yaml`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Schema version, always 1 for now.
    pub version: u32,
    /// The cluster this file describes.
    pub cluster: ClusterSection,
    /// Where the PKI lives and what it was made for.
    pub pki: PkiSection,
    /// Flink settings flinkguard renders.
    #[serde(default)]
    pub flink: FlinkSection,
    /// The gateway in front of Flink's REST API.
    #[serde(default)]
    pub gateway: GatewaySection,
    /// Who may do what through the gateway: roles and bindings. Default deny.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// How `flinkguard render k8s` deploys this cluster on Kubernetes (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSection>,
}

/// The user `flinkguard init` binds to the admin role, and whose client certificate `up`
/// issues, so the local cluster is usable at once. Everyone else is denied until bound.
pub const LOCAL_ADMIN_USER: &str = "admin";

/// `cluster:`
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// A short name used in certificate subjects and Kubernetes objects.
    pub name: String,
}

/// `pki:`
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkiSection {
    /// PKI directory, relative to this file unless absolute.
    pub dir: PathBuf,
    /// Key algorithm of every key.
    pub key: KeyAlgorithm,
    /// DNS names the REST endpoint (gateway) is reached by.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// IP addresses the REST endpoint (gateway) is reached by.
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    /// Validity of each certificate kind, in days.
    #[serde(default)]
    pub validity_days: ValidityDays,
}

/// `flink:`
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlinkSection {
    /// The Flink version configuration is rendered for and `up` installs.
    pub version: FlinkVersion,
    /// REST port of the JobManager (bound to 127.0.0.1 only).
    pub rest_port: u16,
    /// JobManager RPC port.
    pub rpc_port: u16,
    /// `web.submit.enable`: jar upload and run through REST. Off by default: anyone who can
    /// reach REST could run code on the cluster.
    pub web_submit: bool,
    /// `web.cancel.enable`: job cancel from the Web UI.
    pub web_cancel: bool,
}

impl Default for FlinkSection {
    fn default() -> Self {
        FlinkSection {
            version: FlinkVersion::DEFAULT,
            rest_port: 8081,
            rpc_port: 6123,
            web_submit: false,
            web_cancel: false,
        }
    }
}

/// A `flinkguard.yaml` that cannot be used, with the file, the line and the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file is missing or unreadable.
    #[error("cannot read {}: {source}; run `flinkguard init` to create it, or pass --config", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML is malformed or a field has a wrong value.
    #[error("{}{location}: {field}{message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// `:LINE:COLUMN` where known.
        location: String,
        /// The dotted field, followed by `: `, where known.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Writing the file failed.
    #[error(transparent)]
    Write(#[from] flinkguard_files::FileError),
}

impl Config {
    /// The configuration `flinkguard init` writes.
    pub fn new(
        name: &str,
        hosts: &[DnsName],
        ips: &[IpAddr],
        key: KeyAlgorithm,
        validity: ValidityDays,
    ) -> Config {
        Config {
            version: SCHEMA_VERSION,
            cluster: ClusterSection {
                name: name.to_owned(),
            },
            pki: PkiSection {
                dir: PathBuf::from("pki"),
                key,
                hosts: hosts.iter().map(ToString::to_string).collect(),
                ips: ips.to_vec(),
                validity_days: validity,
            },
            flink: FlinkSection::default(),
            gateway: GatewaySection::with_upstream_identity(Path::new("pki")),
            policy: PolicyConfig {
                roles: Default::default(),
                bindings: vec![flinkguard_policy::Binding {
                    role: "admin".into(),
                    users: vec![LOCAL_ADMIN_USER.into()],
                    groups: vec![],
                }],
                anonymous_role: None,
                paths: Default::default(),
            },
            kubernetes: None,
        }
    }

    /// Reads and checks a `flinkguard.yaml`.
    pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = Self::parse(&text, path)?;
        // Checked by `parse` already; building it cannot fail here, but errors stay errors.
        let policy = Policy::new(&config.policy).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            location: String::new(),
            field: "policy: ".into(),
            message: e.to_string(),
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Ok(LoadedConfig {
            path: path.to_owned(),
            base_dir: base.to_owned(),
            config,
            policy,
        })
    }

    /// Parses YAML text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |location: String, field: String, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            location,
            field,
            message,
        };
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            // serde_yaml_ng reports where the enclosing mapping starts for values a custom
            // deserializer refused; the field's own line is more useful, so prefer it.
            let location = locate_field(text, &field)
                .or_else(|| inner.location().map(|l| (l.line(), l.column())))
                .map(|(line, column)| format!(":{line}:{column}"))
                .unwrap_or_default();
            // serde_yaml_ng prefixes the path and appends " at line N column M"; both are
            // already part of this error.
            let mut message = inner.to_string();
            if let Some(cut) = message.find(" at line ") {
                message.truncate(cut);
            }
            let message = message
                .strip_prefix(&format!("{field}: "))
                .map(str::to_owned)
                .unwrap_or(message);
            let field = if field == "." || field.is_empty() {
                String::new()
            } else {
                format!("{field}: ")
            };
            invalid(location, field, message)
        })?;
        config.check().map_err(|(field, message)| {
            let location = locate_field(text, field)
                .map(|(l, c)| format!(":{l}:{c}"))
                .unwrap_or_default();
            invalid(location, format!("{field}: "), message)
        })?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.version != SCHEMA_VERSION {
            return Err((
                "version",
                format!(
                    "this flinkguard reads version {SCHEMA_VERSION}, the file says {}",
                    self.version
                ),
            ));
        }
        let name = &self.cluster.name;
        let name_ok = !name.is_empty()
            && name.len() <= 40
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !name_ok {
            return Err((
                "cluster.name",
                format!(
                    "`{name}` must be 1-40 lowercase letters, digits or '-' (it names Kubernetes objects)"
                ),
            ));
        }
        for host in &self.pki.hosts {
            host.parse::<DnsName>()
                .map_err(|e| ("pki.hosts", e.to_string()))?;
        }
        if self.pki.hosts.is_empty() && self.pki.ips.is_empty() {
            return Err((
                "pki.hosts",
                "list at least one host name or IP address in pki.hosts / pki.ips".into(),
            ));
        }
        let v = &self.pki.validity_days;
        for (field, days) in [
            ("pki.validity_days.internal", v.internal),
            ("pki.validity_days.rest", v.rest),
            ("pki.validity_days.ca", v.ca),
            ("pki.validity_days.client", v.client),
        ] {
            if days == 0 || days > 36_500 {
                return Err((field, format!("{days} is not between 1 and 36500 days")));
            }
        }
        Policy::new(&self.policy).map_err(|e| ("policy", e.to_string()))?;
        self.gateway.check()?;
        if let Some(k8s) = &self.kubernetes {
            k8s.check()?;
        }
        if self.gateway.listen.port() == self.flink.rest_port {
            return Err((
                "gateway.listen",
                format!(
                    "port {} is flink.rest_port; give the gateway its own port",
                    self.flink.rest_port
                ),
            ));
        }
        if self.flink.rest_port == 0
            || self.flink.rpc_port == 0
            || self.flink.rest_port == self.flink.rpc_port
        {
            return Err((
                "flink.rest_port",
                "rest_port and rpc_port must be distinct non-zero ports".into(),
            ));
        }
        Ok(())
    }

    /// The YAML text `init` writes, with a header that says what the file is.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# flinkguard.yaml: describes this secured Flink deployment; every flinkguard command reads it."
        );
        let _ = writeln!(
            out,
            "# It holds no secrets: keys and passwords are files of mode 0600 under pki.dir."
        );
        // Serializing plain data structures to YAML cannot fail.
        out.push_str(&serde_yaml_ng::to_string(self).unwrap_or_default());
        out
    }

    /// Writes the file atomically.
    pub fn write(&self, path: &Path) -> Result<(), ConfigError> {
        flinkguard_files::write_atomic(
            path,
            self.to_yaml().as_bytes(),
            flinkguard_files::Mode::Public,
        )?;
        Ok(())
    }
}

/// Finds the 1-based line and column of a dotted field (`pki.key`, `pki.hosts[0]`) in
/// block-style YAML by following indentation. Returns `None` when the layout is unusual
/// (flow style, anchors); the caller then falls back to the parser's location.
fn locate_field(text: &str, field: &str) -> Option<(usize, usize)> {
    let mut segments = field.split('.').filter(|s| !s.is_empty()).peekable();
    segments.peek()?;
    let mut min_indent = 0usize;
    let mut found = None;
    let mut lines = text.lines().enumerate();
    for segment in segments {
        let (key, index) = match segment.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let mut hit = None;
        for (number, line) in lines.by_ref() {
            let indent = line.len() - line.trim_start().len();
            let body = line.trim_start();
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            if found.is_some() && indent < min_indent {
                return None;
            }
            if indent >= min_indent && body.strip_prefix(key).is_some_and(|r| r.starts_with(':')) {
                hit = Some((number, indent));
                break;
            }
        }
        let (number, indent) = hit?;
        found = Some((number + 1, indent + 1));
        min_indent = indent + 1;
        if let Some(wanted) = index {
            let mut seen = 0;
            let mut item = None;
            for (number, line) in lines.by_ref() {
                let body = line.trim_start();
                if body.starts_with("- ") {
                    if seen == wanted {
                        item = Some((number + 1, line.len() - body.len() + 3));
                        break;
                    }
                    seen += 1;
                }
            }
            found = Some(item?);
        }
    }
    found
}

/// A configuration with the location it was read from, so relative paths resolve.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// The directory relative paths are resolved against.
    pub base_dir: PathBuf,
    /// The parsed configuration.
    pub config: Config,
    /// Its policy, checked.
    pub policy: Policy,
}

impl LoadedConfig {
    /// The PKI directory layout, resolved against the file's directory.
    pub fn pki(&self) -> PkiLayout {
        PkiLayout::new(self.base_dir.join(&self.config.pki.dir))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Config {
        Config::new(
            "flink",
            &["localhost".parse().unwrap()],
            &["127.0.0.1".parse().unwrap()],
            KeyAlgorithm::EcdsaP256,
            ValidityDays::default(),
        )
    }

    #[test]
    fn init_connects_to_flink_over_mutual_tls_with_the_upstream_identity() {
        let gateway = sample().gateway;
        assert!(gateway.upstream_mutual_tls());
        assert_eq!(
            gateway.upstream_server_cert_file.as_deref(),
            Some(Path::new("pki/upstream/upstream.crt"))
        );
        assert_eq!(
            gateway.upstream_client_key_file.as_deref(),
            Some(Path::new("pki/upstream/upstream.key"))
        );
        assert_eq!(gateway.upstream_ca_file, None);
        // A section without the keys (a file from before them) is plain http, as it was.
        assert!(!GatewaySection::default().upstream_tls());
    }

    #[test]
    fn written_config_reads_back_identically() {
        let config = sample();
        let parsed = Config::parse(&config.to_yaml(), Path::new("flinkguard.yaml")).unwrap();
        assert_eq!(parsed, config);
    }

    #[test]
    fn wrong_value_names_line_and_field() {
        let text = sample()
            .to_yaml()
            .replace("key: ecdsa-p256", "key: rsa-1024");
        let err = Config::parse(&text, Path::new("x/flinkguard.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x/flinkguard.yaml:"), "{err}");
        assert!(err.contains("pki.key"), "{err}");
        assert!(
            err.contains("rsa-1024") && err.contains("ecdsa-p256"),
            "{err}"
        );
        let line = text.lines().position(|l| l.contains("rsa-1024")).unwrap() + 1;
        assert!(
            err.contains(&format!(":{line}:")),
            "line {line} not in {err}"
        );
    }

    #[test]
    fn unknown_keys_are_errors_not_ignored() {
        let text = sample()
            .to_yaml()
            .replace("web_submit: false", "web_submitt: false");
        let err = Config::parse(&text, Path::new("flinkguard.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("web_submitt"), "{err}");
    }

    #[test]
    fn malformed_yaml_and_semantic_errors() {
        let err = Config::parse("version: 1\ncluster: [", Path::new("f.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.yaml:"), "{err}");
        let text = sample()
            .to_yaml()
            .replace("name: flink", "name: Flink_Prod");
        let err = Config::parse(&text, Path::new("f.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cluster.name") && err.contains("Flink_Prod"),
            "{err}"
        );
        let text = sample().to_yaml().replace("- localhost", "- bad..host");
        let err = Config::parse(&text, Path::new("f.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pki.hosts") && err.contains("bad..host"),
            "{err}"
        );
    }

    #[test]
    fn gateway_settings_that_would_weaken_or_break_it_name_the_field() {
        for (from, to, field, hint) in [
            (
                "cidrs: []",
                "cidrs: [10.0.0.0/33]",
                "gateway.trusted_proxies.cidrs",
                "10.0.0.0/33",
            ),
            (
                "user_header: X-Forwarded-User",
                "user_header: 'X Forwarded'",
                "gateway.trusted_proxies.user_header",
                "not an HTTP header name",
            ),
            (
                "max_connections: 1024",
                "max_connections: 0",
                "gateway.max_connections",
                "at least 1",
            ),
            (
                "idle_seconds: 120",
                "idle_seconds: 0",
                "gateway.timeouts.idle_seconds",
                "between",
            ),
            (
                "client_certificates: optional",
                "client_certificates: sometimes",
                "gateway.client_certificates",
                "required",
            ),
            (
                "group_attributes:\n  - O",
                "group_attributes: []",
                "gateway.group_attributes",
                "O, OU",
            ),
            (
                "jwt: []",
                "jwt:\n  - issuers: [x]\n    audiences: [y]",
                "gateway.jwt",
                "jwks_file and jwks_url",
            ),
            (
                "jwt: []",
                "jwt:\n  - issuers: [x]\n    audiences: []\n    jwks_file: k.jwks",
                "gateway.jwt",
                "audiences",
            ),
        ] {
            let yaml = sample().to_yaml();
            assert!(yaml.contains(from), "{from} not in\n{yaml}");
            let text = yaml.replacen(from, to, 1);
            let err = Config::parse(&text, Path::new("f.yaml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field) && err.contains(hint), "{to}: {err}");
        }
        for (from, to, field, hint) in [
            (
                "upstream_ca_file: null",
                "upstream_ca_file: pki/ca.crt",
                "gateway.upstream_ca_file",
                "not both",
            ),
            (
                "upstream_client_key_file: pki/upstream/upstream.key",
                "upstream_client_key_file: null",
                "gateway.upstream_client_key_file",
                "pki/upstream/upstream.key",
            ),
            (
                "upstream_client_cert_file: pki/upstream/upstream.crt",
                "upstream_client_cert_file: null",
                "gateway.upstream_client_cert_file",
                "pki/upstream/upstream.crt",
            ),
            (
                "upstream_server_cert_file: pki/upstream/upstream.crt",
                "upstream_server_cert_file: null",
                "gateway.upstream_client_cert_file",
                "needs TLS",
            ),
            (
                "upstream_server_cert_file: pki/upstream/upstream.crt",
                "upstream_server_cert: pki/upstream/upstream.crt",
                "upstream_server_cert",
                "unknown field",
            ),
            (
                "audit_file: audit.jsonl\n  audit_durability: synced\n  audit_stdout: true",
                "audit_file: null\n  audit_durability: synced\n  audit_stdout: false",
                "gateway.audit_file",
                "no audit",
            ),
            (
                "audit_durability: synced",
                "audit_durability: unsynced",
                "gateway.audit_durability",
                "unsynced_lost_on_machine_crash",
            ),
        ] {
            let yaml = sample().to_yaml();
            assert!(yaml.contains(from), "{from} not in\n{yaml}");
            let err = Config::parse(&yaml.replacen(from, to, 1), Path::new("f.yaml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field) && err.contains(hint), "{to}: {err}");
        }
        let text = sample()
            .to_yaml()
            .replace("  bindings:", "  anonymous_role: nobody\n  bindings:");
        let err = Config::parse(&text, Path::new("f.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("policy.anonymous_role"), "{err}");
    }
}
