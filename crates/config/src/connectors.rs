//! `kubernetes.kerberos` and `kubernetes.connector_truststores`: what jobs need to reach their
//! sources and sinks securely — a Kerberos identity (keytab) for Kafka's SASL/GSSAPI, and the
//! CAs of Kafka's or Elasticsearch's TLS certificates as a PKCS#12 truststore, instead of
//! patching the JDK's `cacerts`.
//!
//! Names and principals are parsed into types here, once; whether the files exist and hold
//! what they should is checked by `flinkguard render k8s`, which reads them.

use std::fmt;
use std::path::PathBuf;

/// `kubernetes.kerberos`: the Kerberos identity Flink's JobManager and TaskManagers log in
/// with (`security.kerberos.login.*`), from a keytab.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KerberosSettings {
    /// The principal in the keytab, with its realm: `flink/flink-prod@EXAMPLE.ORG`.
    pub principal: KerberosPrincipal,
    /// The keytab (relative to flinkguard.yaml). Becomes a Secret; never a ConfigMap.
    pub keytab_file: PathBuf,
    /// The krb5.conf naming the realm's KDCs (relative to flinkguard.yaml). Holds no secret:
    /// a ConfigMap.
    pub krb5_conf_file: PathBuf,
    /// JAAS login contexts Flink provides the keytab to (`security.kerberos.login.contexts`):
    /// `Client` for ZooKeeper, `KafkaClient` for Kafka.
    #[serde(default = "default_contexts")]
    pub contexts: Vec<JaasContext>,
    /// `sasl.kerberos.service.name`: the primary of the brokers' principals.
    #[serde(default = "default_kafka_service_name")]
    pub kafka_service_name: String,
    /// Kafka's `security.protocol`. Unset: `SASL_SSL` with the `kafka` connector truststore,
    /// which must then exist. `SASL_SSL` without that truststore trusts the JDK's default CAs;
    /// `SASL_PLAINTEXT` sends records unencrypted and must be asked for by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_security_protocol: Option<KafkaSecurityProtocol>,
}

fn default_contexts() -> Vec<JaasContext> {
    vec![
        JaasContext("Client".to_owned()),
        JaasContext("KafkaClient".to_owned()),
    ]
}

fn default_kafka_service_name() -> String {
    "kafka".to_owned()
}

/// Kafka's `security.protocol` with Kerberos (GSSAPI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KafkaSecurityProtocol {
    /// SASL over TLS.
    #[serde(rename = "SASL_SSL")]
    SaslSsl,
    /// SASL without TLS: Kerberos authenticates, but records travel unencrypted.
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext,
}

impl KafkaSecurityProtocol {
    /// The value Kafka's clients read.
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaSecurityProtocol::SaslSsl => "SASL_SSL",
            KafkaSecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
        }
    }
}

/// A Kerberos principal with its realm: `primary[/instance]@REALM`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KerberosPrincipal {
    /// `primary` or `primary/instance`.
    name: String,
    realm: String,
}

impl KerberosPrincipal {
    /// The components before the realm, e.g. `["flink", "flink-prod"]`.
    pub fn components(&self) -> Vec<&str> {
        self.name.split('/').collect()
    }

    /// The realm, e.g. `EXAMPLE.ORG`.
    pub fn realm(&self) -> &str {
        &self.realm
    }
}

impl fmt::Display for KerberosPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.realm)
    }
}

impl From<KerberosPrincipal> for String {
    fn from(p: KerberosPrincipal) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for KerberosPrincipal {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let example = "write it as primary/instance@REALM, e.g. flink/flink-prod@EXAMPLE.ORG";
        // Characters Flink's JAAS file, Java's and MIT's parsers all read literally.
        let plain = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        let Some((name, realm)) = text.rsplit_once('@') else {
            return Err(format!("`{text}` has no realm; {example}"));
        };
        if !plain(realm) {
            return Err(format!(
                "`{text}`: the realm `{realm}` is empty or not plain; {example}"
            ));
        }
        let components: Vec<&str> = name.split('/').collect();
        if components.len() > 2 || !components.iter().all(|c| plain(c)) {
            return Err(format!(
                "`{text}`: `{name}` must be one or two components of letters, digits, '.', '-' or '_'; {example}"
            ));
        }
        Ok(KerberosPrincipal {
            name: name.to_owned(),
            realm: realm.to_owned(),
        })
    }
}

/// A JAAS login context name (`KafkaClient`), one item of Flink's comma-separated list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JaasContext(String);

impl JaasContext {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<JaasContext> for String {
    fn from(c: JaasContext) -> String {
        c.0
    }
}

impl TryFrom<String> for JaasContext {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if text.is_empty()
            || !text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(format!(
                "`{text}` is not a JAAS login context name (letters, digits, '.', '-', '_'), e.g. KafkaClient"
            ));
        }
        Ok(JaasContext(text))
    }
}

/// `kubernetes.connector_truststores[]`: CAs a connector trusts, rendered as a PKCS#12
/// truststore mounted for jobs at `/opt/flink/connectors/<name>-truststore.p12`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorTruststore {
    /// What it is for (`kafka`, `elasticsearch`); names the files. `kafka` is also written
    /// into Kafka's client properties.
    pub name: ConnectorName,
    /// PEM files (relative to flinkguard.yaml), each with one or more CERTIFICATE blocks.
    pub ca_files: Vec<PathBuf>,
}

/// A connector truststore's name: 1-40 lowercase letters, digits or '-'.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConnectorName(String);

impl ConnectorName {
    /// The truststore name of Kafka's brokers' CAs.
    pub const KAFKA: &'static str = "kafka";

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ConnectorName> for String {
    fn from(n: ConnectorName) -> String {
        n.0
    }
}

impl TryFrom<String> for ConnectorName {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if text.len() > 40 || !crate::kubernetes::is_dns_label(&text) {
            return Err(format!(
                "`{text}` must be 1-40 lowercase letters, digits or '-' (it names files), e.g. kafka"
            ));
        }
        Ok(ConnectorName(text))
    }
}

/// Checks what types alone cannot: `(field, message with the fix)`.
pub(crate) fn check(
    kerberos: Option<&KerberosSettings>,
    truststores: &[ConnectorTruststore],
) -> Result<(), (&'static str, String)> {
    let field = "kubernetes.connector_truststores";
    let mut names = std::collections::BTreeSet::new();
    for store in truststores {
        if !names.insert(store.name.as_str()) {
            return Err((
                field,
                format!(
                    "`{}` is listed twice; list every CA file of one connector under one entry",
                    store.name
                ),
            ));
        }
        if store.ca_files.is_empty() {
            return Err((
                field,
                format!(
                    "`{}` has no ca_files; list the PEM files of the CAs that sign the servers' certificates",
                    store.name
                ),
            ));
        }
    }
    let Some(kerberos) = kerberos else {
        return Ok(());
    };
    let field = "kubernetes.kerberos";
    if kerberos.contexts.is_empty() {
        return Err((
            "kubernetes.kerberos.contexts",
            "list at least one JAAS login context, e.g. [KafkaClient]".into(),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for context in &kerberos.contexts {
        if !seen.insert(context.as_str()) {
            return Err((
                "kubernetes.kerberos.contexts",
                format!("`{}` is listed twice", context.as_str()),
            ));
        }
    }
    let service = &kerberos.kafka_service_name;
    if service.is_empty()
        || !service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err((
            "kubernetes.kerberos.kafka_service_name",
            format!(
                "`{service}` is not a principal's primary (letters, digits, '.', '-', '_'), e.g. kafka"
            ),
        ));
    }
    let kafka_store = names.contains(ConnectorName::KAFKA);
    match (kerberos.kafka_security_protocol, kafka_store) {
        (None, false) => Err((
            field,
            "Kafka over Kerberos needs TLS: add a connector_truststores entry named `kafka` with the brokers' CA, \
             or set kafka_security_protocol: SASL_SSL (trust the JDK's default CAs) or SASL_PLAINTEXT (records unencrypted)"
                .into(),
        )),
        (Some(KafkaSecurityProtocol::SaslPlaintext), true) => Err((
            field,
            "kafka_security_protocol is SASL_PLAINTEXT but a `kafka` truststore is configured; \
             use SASL_SSL (or leave it unset) to use the truststore"
                .into(),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn principals_need_a_realm_and_at_most_two_components() {
        let p = KerberosPrincipal::try_from("flink/flink-prod@EXAMPLE.ORG".to_owned()).unwrap();
        assert_eq!(p.components(), ["flink", "flink-prod"]);
        assert_eq!(p.realm(), "EXAMPLE.ORG");
        assert_eq!(p.to_string(), "flink/flink-prod@EXAMPLE.ORG");
        assert!(KerberosPrincipal::try_from("flink@EXAMPLE.ORG".to_owned()).is_ok());
        for (bad, hint) in [
            ("flink/flink-prod", "no realm"),
            ("flink@", "realm"),
            ("a/b/c@R", "one or two components"),
            ("@R", "one or two components"),
            ("fl ink@R", "one or two components"),
            ("flink@EX AMPLE", "realm"),
        ] {
            let err = KerberosPrincipal::try_from(bad.to_owned()).unwrap_err();
            assert!(err.contains(hint), "{bad}: {err}");
            assert!(err.contains("EXAMPLE.ORG"), "names the fix: {err}");
        }
    }

    #[test]
    fn names_and_contexts_are_checked_at_the_edge() {
        assert!(ConnectorName::try_from("kafka-eu".to_owned()).is_ok());
        for bad in ["Kafka", "", "-x", "a_b", &"x".repeat(41)] {
            assert!(ConnectorName::try_from(bad.to_owned()).is_err(), "{bad}");
        }
        assert!(JaasContext::try_from("KafkaClient".to_owned()).is_ok());
        assert!(JaasContext::try_from("Client,KafkaClient".to_owned()).is_err());
    }

    fn parse(kubernetes: &str) -> Result<crate::Config, String> {
        let base = crate::Config::new(
            "flink",
            &["localhost".parse().unwrap()],
            &[],
            flinkguard_pki::KeyAlgorithm::EcdsaP256,
            flinkguard_pki::ValidityDays::default(),
        )
        .to_yaml();
        crate::Config::parse(
            &format!("{base}kubernetes:\n{kubernetes}"),
            std::path::Path::new("f.yaml"),
        )
        .map_err(|e| e.to_string())
    }

    const KERBEROS: &str = "  kerberos:
    principal: flink/flink-prod@EXAMPLE.ORG
    keytab_file: secrets/flink.keytab
    krb5_conf_file: secrets/krb5.conf
";
    const KAFKA_STORE: &str = "  connector_truststores:
  - name: kafka
    ca_files: [certs/kafka-ca.pem]
";

    #[test]
    fn kerberos_with_a_kafka_truststore_parses_with_defaults_and_reads_back() {
        let config = parse(&format!("{KERBEROS}{KAFKA_STORE}")).unwrap();
        let k8s = config.kubernetes.as_ref().unwrap();
        let kerberos = k8s.kerberos.as_ref().unwrap();
        assert_eq!(kerberos.principal.realm(), "EXAMPLE.ORG");
        let contexts: Vec<&str> = kerberos.contexts.iter().map(JaasContext::as_str).collect();
        assert_eq!(contexts, ["Client", "KafkaClient"]);
        assert_eq!(kerberos.kafka_service_name, "kafka");
        assert_eq!(kerberos.kafka_security_protocol, None);
        assert_eq!(k8s.connector_truststores[0].name.as_str(), "kafka");
        // What `init`-style writers produce reads back identically.
        let again = crate::Config::parse(&config.to_yaml(), std::path::Path::new("f.yaml"));
        assert_eq!(again.unwrap(), config);
    }

    #[test]
    fn bad_kerberos_and_truststore_settings_name_the_field_and_the_fix() {
        for (yaml, needles) in [
            (
                KERBEROS.replace("@EXAMPLE.ORG", ""),
                &["kubernetes.kerberos.principal", "no realm", "@EXAMPLE.ORG"][..],
            ),
            (
                KERBEROS.to_owned(),
                &["kubernetes.kerberos", "truststore", "SASL_PLAINTEXT"],
            ),
            (
                format!("{KERBEROS}    kafka_security_protocol: SASL_PLAINTEXT\n{KAFKA_STORE}"),
                &["kubernetes.kerberos", "SASL_SSL"],
            ),
            (
                format!("{KERBEROS}    kafka_security_protocol: PLAINTEXT\n"),
                &["kubernetes.kerberos.kafka_security_protocol", "SASL_SSL"],
            ),
            (
                format!("{KERBEROS}    contexts: []\n{KAFKA_STORE}"),
                &["kubernetes.kerberos.contexts", "KafkaClient"],
            ),
            (
                format!("{KERBEROS}    keytab: x\n{KAFKA_STORE}"),
                &["kubernetes.kerberos", "keytab"],
            ),
            (
                format!("{KAFKA_STORE}  - name: kafka\n    ca_files: [b.pem]\n"),
                &["kubernetes.connector_truststores", "twice"],
            ),
            (
                "  connector_truststores:\n  - name: es\n    ca_files: []\n".to_owned(),
                &["kubernetes.connector_truststores", "no ca_files"],
            ),
            (
                "  connector_truststores:\n  - name: Kafka_1\n    ca_files: [a.pem]\n".to_owned(),
                &["kubernetes.connector_truststores[0].name", "lowercase"],
            ),
        ] {
            let err = parse(&yaml).unwrap_err();
            for needle in needles {
                assert!(err.contains(needle), "{yaml}: lacks {needle}: {err}");
            }
        }
        // Explicit choices without a truststore are allowed: they are named in the file.
        for protocol in ["SASL_SSL", "SASL_PLAINTEXT"] {
            parse(&format!(
                "{KERBEROS}    kafka_security_protocol: {protocol}\n"
            ))
            .unwrap();
        }
    }
}
