//! The rule catalogue of `flinkguard audit`: insecure settings in a Flink configuration.
//!
//! [`FlinkConfig::parse`] reads either Flink 1.x's `flink-conf.yaml` or Flink 2.x's
//! `config.yaml` into the flat `key → value` map Flink itself works with; [`audit`] runs every
//! configuration rule of [`RULES`] over it: they respect Flink's own defaults (an absent key
//! means what Flink does without it, not "fine"). [`audit_files`] runs the rules that read the
//! files the configuration names (keystores, truststores, keytab) when they are on this
//! machine. Nothing here talks to a cluster.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

mod files;
mod parse;
mod rules;

pub use files::{FileAudit, FileContext, audit_files};
pub use rules::{RULES, audit, sort};

/// How bad a finding is. Ordered: `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Hardening advice; not exploitable on its own.
    Low,
    /// Weakens a defence or leaks information.
    Medium,
    /// Exploitable by someone on the network, with some precondition.
    High,
    /// Exploitable by anyone who can reach the cluster.
    Critical,
}

impl Severity {
    /// The lower-case name, as accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is none of `low`, `medium`, `high`, `critical`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity `{0}`: expected low, medium, high or critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Case-insensitive: the value comes from command lines and CI files.
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(UnknownSeverity(s.to_owned())),
        }
    }
}

/// What an attacker gains, after the threats FLIP-26 (Flink's security proposal) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Threat {
    /// Submitting, cancelling or otherwise controlling jobs: with jars, that is code execution.
    JobControl,
    /// Reading passwords, keys or data in transit.
    SecretExposure,
    /// Reading or tampering with job state (checkpoints, savepoints, HA metadata).
    StateAccess,
    /// Posing as a JobManager, TaskManager or other cluster component.
    Impersonation,
}

impl fmt::Display for Threat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Threat::JobControl => "unauthorized job control",
            Threat::SecretExposure => "secret exposure",
            Threat::StateAccess => "unauthorized state access",
            Threat::Impersonation => "impersonation of cluster components",
        })
    }
}

/// One rule of the catalogue, independent of any configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    /// Stable identifier such as `FG-TLS-001`; never reused for another check.
    pub id: &'static str,
    /// One-line summary.
    pub title: &'static str,
    /// The highest severity the rule reports; some findings are lowered when the
    /// configuration mitigates them.
    pub severity: Severity,
    /// What an attacker gains.
    pub threat: Threat,
}

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's stable identifier, as in [`RULES`].
    pub rule: &'static str,
    /// The rule's title.
    pub title: &'static str,
    /// How bad it is in this configuration.
    pub severity: Severity,
    /// What an attacker gains.
    pub threat: Threat,
    /// The configuration key the finding is about (and the fix changes), set or not.
    pub setting: String,
    /// The settings behind the finding, `key=value` as found (or `key unset`), secrets masked.
    pub evidence: String,
    /// The configuration line(s) that fix it.
    pub fix: String,
}

/// Which file layout [`FlinkConfig::parse`] expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Flink 1.x `flink-conf.yaml`: flat `key: value` lines, not real YAML.
    Legacy,
    /// Flink 2.x `config.yaml`: standard YAML, nested keys joined with `.`.
    Standard,
}

impl Format {
    /// The format Flink picks for a file of that name: `flink-conf.yaml` is legacy, anything
    /// else (normally `config.yaml`) standard.
    pub fn from_file_name(name: &str) -> Format {
        if name == "flink-conf.yaml" {
            Format::Legacy
        } else {
            Format::Standard
        }
    }
}

/// A configuration that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The standard YAML is malformed.
    #[error("config.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// The standard YAML's top level is not a mapping of keys.
    #[error("config.yaml must be a mapping of keys at the top level")]
    NotAMapping,
    /// A REST answer is not the list of `{"key": …, "value": …}` objects Flink sends.
    #[error("not Flink's /jobmanager/config answer (a JSON list of key/value objects): {0}")]
    NotRestConfig(String),
}

/// A Flink configuration, flattened to the `key → value` strings Flink itself works with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlinkConfig {
    entries: BTreeMap<String, String>,
    /// The 1-based line each key was read from (its last occurrence), when read from a file.
    lines: BTreeMap<String, usize>,
}

impl FlinkConfig {
    /// Parses a configuration file's text.
    pub fn parse(text: &str, format: Format) -> Result<FlinkConfig, ScanError> {
        let entries = match format {
            Format::Legacy => parse::legacy(text),
            Format::Standard => parse::standard(text)?,
        };
        let lines = parse::key_lines(text);
        Ok(FlinkConfig { entries, lines })
    }

    /// Reads the answer of Flink's `GET /jobmanager/config`: the effective configuration as a
    /// list of `{"key": …, "value": …}`. Flink masks sensitive values there as `******`.
    pub fn from_rest_answer(json: &[u8]) -> Result<FlinkConfig, ScanError> {
        #[derive(serde::Deserialize)]
        struct Entry {
            key: String,
            value: String,
        }
        let entries: Vec<Entry> =
            serde_json::from_slice(json).map_err(|e| ScanError::NotRestConfig(e.to_string()))?;
        Ok(entries.into_iter().map(|e| (e.key, e.value)).collect())
    }

    /// The 1-based line of the file where `key` is set, if it is set in a parsed file. For
    /// nested YAML, the line of the key's last segment.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.entries.get(key)?;
        self.lines.get(key).copied()
    }

    /// The value of a key, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// Every key and value, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for FlinkConfig {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        FlinkConfig {
            entries: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            lines: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_parses_and_displays() {
        assert!(Severity::Low < Severity::Medium);
        assert!(Severity::High < Severity::Critical);
        for s in [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            assert_eq!(s.to_string().parse::<Severity>().unwrap(), s);
        }
        assert_eq!("HIGH".parse::<Severity>().unwrap(), Severity::High);
        assert!("severe".parse::<Severity>().is_err());
    }

    #[test]
    fn rest_answer_is_read_and_anything_else_refused() {
        let config = FlinkConfig::from_rest_answer(
            br#"[{"key":"rest.bind-address","value":"0.0.0.0"},{"key":"x.password","value":"******"}]"#,
        )
        .unwrap();
        assert_eq!(config.get("rest.bind-address"), Some("0.0.0.0"));
        assert_eq!(config.line_of("rest.bind-address"), None);
        assert!(FlinkConfig::from_rest_answer(br#"{"errors":["Not found"]}"#).is_err());
    }

    #[test]
    fn format_follows_file_name() {
        assert_eq!(Format::from_file_name("flink-conf.yaml"), Format::Legacy);
        assert_eq!(Format::from_file_name("config.yaml"), Format::Standard);
    }
}
