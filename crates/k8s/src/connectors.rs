//! What jobs need to reach their sources and sinks: a Kerberos identity and the CAs of the
//! connectors' servers (`kubernetes.kerberos`, `kubernetes.connector_truststores`).
//!
//! * The keytab is a Secret, krb5.conf a ConfigMap (it names KDCs, no secret); both are
//!   projected read-only into `/opt/flink/kerberos` of the JobManager and TaskManager
//!   containers, never the gateway's. Flink logs in from the keytab
//!   (`security.kerberos.login.*`) and hands the credentials to the JAAS contexts listed.
//! * Each connector truststore is a PKCS#12 file built from the CA PEM files, with a
//!   password of its own, in Secret `flink-connectors` at `/opt/flink/connectors`, next to
//!   `kafka-client.properties`: the Kafka client settings (SASL/GSSAPI, TLS) a job loads.
//!   Nothing patches the JDK's `cacerts`: jobs name the truststore they trust.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use flinkguard_config::{
    ConnectorName, ConnectorTruststore, KafkaSecurityProtocol, KerberosSettings, KubernetesSection,
    LoadedConfig,
};
use flinkguard_files::Mode;
use flinkguard_pki::{Password, PkiLayout};
use flinkguard_render::{FlinkSettings, SettingValue};
use serde_json::{Value, json};

use crate::K8sError;
use crate::objects::{metadata, secret};
use crate::pod_config::SecretFile;

/// Where the JobManager and TaskManagers see the keytab and krb5.conf.
pub(crate) const KERBEROS_DIR: &str = "/opt/flink/kerberos";
/// Where they see the connector truststores and Kafka's client properties.
pub(crate) const CONNECTORS_DIR: &str = "/opt/flink/connectors";
/// The keytab's file name under [`KERBEROS_DIR`] and its key in the Secret.
pub(crate) const KEYTAB: &str = "flink.keytab";
/// krb5.conf's file name under [`KERBEROS_DIR`] and its key in the ConfigMap.
pub(crate) const KRB5_CONF: &str = "krb5.conf";
/// Kafka's client properties under [`CONNECTORS_DIR`].
pub(crate) const KAFKA_PROPERTIES: &str = "kafka-client.properties";
/// The Secret holding the keytab.
pub(crate) const KEYTAB_SECRET: &str = "flink-kerberos-keytab";
/// The ConfigMap holding krb5.conf.
pub(crate) const KRB5_CONFIG_MAP: &str = "flink-krb5-conf";
/// The Secret holding truststores, their passwords and Kafka's client properties.
pub(crate) const CONNECTORS_SECRET: &str = "flink-connectors";
/// The PKI's subdirectory with each truststore's password (made once, kept across renders)
/// and the last truststore built (reused while the CAs are the same, so re-rendering does
/// not change the Secret).
pub(crate) const PKI_SUBDIR: &str = "connectors";

/// The Kerberos files, read and checked.
#[derive(Debug)]
pub(crate) struct KerberosFiles {
    keytab: Vec<u8>,
    krb5_conf: String,
}

/// Everything connectors add to the rendered deployment.
#[derive(Debug, Default)]
pub(crate) struct Connectors {
    kerberos: Option<KerberosFiles>,
    /// Files of Secret `flink-connectors`: truststores, their passwords, Kafka's properties.
    files: Vec<SecretFile>,
    /// Settings for Flink's config (JobManager and TaskManagers).
    pub(crate) flink_settings: FlinkSettings,
    /// Passwords that must never appear in a ConfigMap.
    pub(crate) secret_values: Vec<String>,
}

fn bad_file(
    loaded: &LoadedConfig,
    field: String,
    file: &Path,
    message: impl Into<String>,
) -> K8sError {
    K8sError::InputFile {
        config: loaded.path.clone(),
        field,
        file: file.to_owned(),
        message: message.into(),
    }
}

fn read_input(loaded: &LoadedConfig, field: &str, file: &Path) -> Result<Vec<u8>, K8sError> {
    let path = loaded.base_dir.join(file);
    fs::read(&path).map_err(|e| {
        let message = if e.kind() == std::io::ErrorKind::NotFound {
            "missing; give a path relative to flinkguard.yaml's directory, or an absolute one"
                .to_owned()
        } else {
            e.to_string()
        };
        bad_file(loaded, field.to_owned(), &path, message)
    })
}

impl Connectors {
    /// Reads the keytab, krb5.conf and CA files named in `kubernetes:`, and builds (or
    /// reuses) the truststores under `pki/connectors/`.
    pub(crate) fn read(
        loaded: &LoadedConfig,
        k8s: &KubernetesSection,
        pki: &PkiLayout,
    ) -> Result<Connectors, K8sError> {
        let mut out = Connectors::default();
        let mut kafka_store = None;
        for (index, store) in k8s.connector_truststores.iter().enumerate() {
            let built = build_truststore(loaded, index, store, pki)?;
            if store.name.as_str() == ConnectorName::KAFKA {
                kafka_store = Some(built.password.clone());
            }
            out.secret_values.push(built.password.expose().to_owned());
            out.files.push(SecretFile {
                key: store_file(store.name.as_str()),
                path: store_file(store.name.as_str()),
                bytes: built.p12,
            });
            out.files.push(SecretFile {
                key: password_file(store.name.as_str()),
                path: password_file(store.name.as_str()),
                bytes: format!("{}\n", built.password.expose()).into_bytes(),
            });
        }
        if let Some(kerberos) = &k8s.kerberos {
            let files = read_kerberos(loaded, kerberos)?;
            check_kdc_egress(loaded, k8s, &files.krb5_conf)?;
            out.kerberos = Some(files);
            out.flink_settings = kerberos_settings(kerberos);
        }
        if let Some(properties) = kafka_properties(k8s.kerberos.as_ref(), kafka_store.as_ref()) {
            out.files.push(SecretFile {
                key: KAFKA_PROPERTIES.to_owned(),
                path: KAFKA_PROPERTIES.to_owned(),
                bytes: properties.into_bytes(),
            });
        }
        Ok(out)
    }
}

fn store_file(name: &str) -> String {
    format!("{name}-truststore.p12")
}

fn password_file(name: &str) -> String {
    format!("{name}-truststore.password")
}

struct BuiltStore {
    p12: Vec<u8>,
    password: Password,
}

/// Every CERTIFICATE of the store's PEM files, in order, each once.
fn read_cas(
    loaded: &LoadedConfig,
    index: usize,
    store: &ConnectorTruststore,
) -> Result<Vec<Vec<u8>>, K8sError> {
    let field = format!("kubernetes.connector_truststores[{index}].ca_files");
    let mut cas: Vec<Vec<u8>> = Vec::new();
    for file in &store.ca_files {
        let bytes = read_input(loaded, &field, file)?;
        let path = loaded.base_dir.join(file);
        let bad = |message: &str| bad_file(loaded, field.clone(), &path, message);
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| bad("not PEM text; convert a DER certificate with `openssl x509 -inform der -in CA.der -out CA.pem`"))?;
        if text.contains("PRIVATE KEY-----") {
            return Err(bad(
                "holds a private key; give only the CA's certificate (a truststore needs no key, and the key must not travel into the cluster)",
            ));
        }
        let ders = flinkguard_pki::cert::parse_pem_certificates(text).map_err(|e| {
            bad(&format!(
                "{e}; give the CA certificate(s) in PEM (-----BEGIN CERTIFICATE-----)"
            ))
        })?;
        for der in ders {
            flinkguard_pki::CertificateInfo::from_der(&der).map_err(|e| {
                bad(&format!(
                    "a CERTIFICATE block is not an X.509 certificate ({e})"
                ))
            })?;
            if !cas.contains(&der) {
                cas.push(der);
            }
        }
    }
    Ok(cas)
}

/// The truststore of one connector. Its password is made once (`create_complete` never
/// replaces it); the store itself is rebuilt only when the CAs changed, because PKCS#12
/// files are salted: a fresh one on every render would change the Secret every time.
fn build_truststore(
    loaded: &LoadedConfig,
    index: usize,
    store: &ConnectorTruststore,
    pki: &PkiLayout,
) -> Result<BuiltStore, K8sError> {
    let cas = read_cas(loaded, index, store)?;
    let dir = pki.root().join(PKI_SUBDIR);
    let files_error = |e: flinkguard_files::FileError| K8sError::Keys(e.to_string());
    flinkguard_files::create_private_dir(&dir).map_err(files_error)?;
    let password_path = dir.join(password_file(store.name.as_str()));
    flinkguard_files::create_complete(
        &password_path,
        format!("{}\n", Password::generate().expose()).as_bytes(),
        Mode::Secret,
    )
    .map_err(files_error)?;
    let password = pki.read_password(&password_path)?;
    let store_path = dir.join(store_file(store.name.as_str()));
    if let Ok(existing) = fs::read(&store_path)
        && let Ok(entries) = flinkguard_pki::store::read_store(&existing, &password)
    {
        let held: Vec<&[u8]> = entries
            .iter()
            .filter_map(|e| match e {
                flinkguard_pki::store::StoreEntry::TrustedCertificate { der, .. } => {
                    Some(der.as_slice())
                }
                flinkguard_pki::store::StoreEntry::PrivateKey { .. } => None,
            })
            .collect();
        let wanted: Vec<&[u8]> = cas.iter().map(Vec::as_slice).collect();
        if held.len() == entries.len() && same_set(&held, &wanted) {
            return Ok(BuiltStore {
                p12: existing,
                password,
            });
        }
    }
    let aliases: Vec<String> = (1..=cas.len())
        .map(|n| format!("{}-ca-{n}", store.name))
        .collect();
    let entries: Vec<(&str, &[u8])> = aliases
        .iter()
        .map(String::as_str)
        .zip(cas.iter().map(Vec::as_slice))
        .collect();
    let p12 = flinkguard_pki::store::truststore(&entries, &password)?;
    flinkguard_files::write_atomic(&store_path, &p12, Mode::Secret).map_err(files_error)?;
    Ok(BuiltStore { p12, password })
}

fn same_set(a: &[&[u8]], b: &[&[u8]]) -> bool {
    let a: BTreeSet<&[u8]> = a.iter().copied().collect();
    let b: BTreeSet<&[u8]> = b.iter().copied().collect();
    a == b
}

fn read_kerberos(
    loaded: &LoadedConfig,
    kerberos: &KerberosSettings,
) -> Result<KerberosFiles, K8sError> {
    let field = "kubernetes.kerberos.keytab_file";
    let keytab = read_input(loaded, field, &kerberos.keytab_file)?;
    let path = loaded.base_dir.join(&kerberos.keytab_file);
    refuse_shared_keytab(loaded, field, &path)?;
    let principals = keytab_principals(&keytab).map_err(|problem| {
        bad_file(
            loaded,
            field.to_owned(),
            &path,
            format!("{problem}; create the keytab with `kadmin -q \"ktadd -k FILE PRINCIPAL\"` or ktutil"),
        )
    })?;
    let wanted = kerberos.principal.to_string();
    if !principals.contains(&wanted) {
        return Err(bad_file(
            loaded,
            field.to_owned(),
            &path,
            format!(
                "holds no key for {wanted} (it holds: {}); set kubernetes.kerberos.principal to one of them or export the principal's keys into it",
                principals.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let field = "kubernetes.kerberos.krb5_conf_file";
    let conf = read_input(loaded, field, &kerberos.krb5_conf_file)?;
    let path = loaded.base_dir.join(&kerberos.krb5_conf_file);
    let krb5_conf = String::from_utf8(conf)
        .ok()
        .filter(|t| t.contains('['))
        .ok_or_else(|| {
            bad_file(
                loaded,
                field.to_owned(),
                &path,
                "not a krb5.conf (expected text with [libdefaults] and [realms] sections)",
            )
        })?;
    Ok(KerberosFiles { keytab, krb5_conf })
}

/// The ports of the KDCs krb5.conf names (`kdc = host[:port]`, 88 when none is given).
/// Empty when it names none (KDCs found through DNS): then nothing can be checked.
pub(crate) fn kdc_ports(krb5_conf: &str) -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for line in krb5_conf.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "kdc" {
            continue;
        }
        let host = value.trim();
        let host = host
            .strip_prefix("tcp/")
            .or_else(|| host.strip_prefix("udp/"))
            .unwrap_or(host);
        // `[v6]:port`, `host:port` or a bare host (a bare IPv6 address has several colons).
        let port = match host.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => p.parse().ok(),
            _ => Some(88),
        };
        ports.extend(port);
    }
    ports
}

/// The pods reach nothing outside the cluster unless `kubernetes.egress` allows it: without
/// the KDC's port there, every login would time out in the pod instead of failing here.
fn check_kdc_egress(
    loaded: &LoadedConfig,
    k8s: &KubernetesSection,
    krb5_conf: &str,
) -> Result<(), K8sError> {
    let allowed: BTreeSet<u16> = k8s
        .egress
        .iter()
        .flat_map(|t| t.ports.iter().copied())
        .collect();
    let missing: Vec<String> = kdc_ports(krb5_conf)
        .difference(&allowed)
        .map(u16::to_string)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(K8sError::Unsupported {
        path: loaded.path.clone(),
        field: "kubernetes.egress",
        message: format!(
            "krb5.conf names KDCs on port {} but no egress target allows it, so the pods could not reach them; add one, e.g. `- name: kdc` with the KDCs' cidrs and `ports: [{}]`",
            missing.join(", "),
            missing.join(", ")
        ),
    })
}

/// A keytab is the principal's password: like the PKI's keys, it must be the owner's alone
/// on the machine that renders, or anyone there can log in as the cluster.
#[cfg(unix)]
fn refuse_shared_keytab(loaded: &LoadedConfig, field: &str, path: &Path) -> Result<(), K8sError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(|e| bad_file(loaded, field.to_owned(), path, e.to_string()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(bad_file(
            loaded,
            field.to_owned(),
            path,
            format!(
                "readable by others (mode {:o}); a keytab is the principal's password: `chmod 600` it",
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_shared_keytab(_: &LoadedConfig, _: &str, _: &Path) -> Result<(), K8sError> {
    Ok(())
}

/// The principals (`a/b@REALM`) of an MIT keytab (format 0x0502, what kadmin and ktutil
/// write), so a keytab for another principal is caught at render time, not by a JobManager
/// that cannot log in.
pub(crate) fn keytab_principals(bytes: &[u8]) -> Result<BTreeSet<String>, String> {
    match bytes {
        [0x05, 0x02, ..] => {}
        [0x05, 0x01, ..] => {
            return Err("keytab format version 1 (0x0501) is not supported".into());
        }
        _ => return Err("not an MIT keytab (it does not start with 0x0502)".into()),
    }
    let truncated = || "truncated keytab".to_owned();
    let mut principals = BTreeSet::new();
    let mut pos = 2usize;
    while pos + 4 <= bytes.len() {
        let size = i32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]);
        pos += 4;
        let len = usize::try_from(size.unsigned_abs()).map_err(|_| truncated())?;
        let entry = bytes.get(pos..pos + len).ok_or_else(truncated)?;
        pos += len;
        if size <= 0 {
            // A hole left by a deleted entry (or zero padding at the end).
            continue;
        }
        let mut at = 0usize;
        let u16_at = |at: &mut usize| -> Result<usize, String> {
            let v = entry.get(*at..*at + 2).ok_or_else(truncated)?;
            *at += 2;
            Ok(usize::from(u16::from_be_bytes([v[0], v[1]])))
        };
        let count = u16_at(&mut at)?;
        let data = |at: &mut usize| -> Result<String, String> {
            let n = u16_at(at)?;
            let v = entry.get(*at..*at + n).ok_or_else(truncated)?;
            *at += n;
            Ok(String::from_utf8_lossy(v).into_owned())
        };
        let realm = data(&mut at)?;
        let components = (0..count)
            .map(|_| data(&mut at))
            .collect::<Result<Vec<_>, _>>()?;
        principals.insert(format!("{}@{realm}", components.join("/")));
    }
    if pos != bytes.len() {
        return Err(truncated());
    }
    if principals.is_empty() {
        return Err("the keytab holds no key".into());
    }
    Ok(principals)
}

/// `render operator` does not carry Kerberos or truststores into the FlinkDeployment yet:
/// refused by name rather than silently left out.
pub(crate) fn refuse_for_operator(loaded: &LoadedConfig) -> Result<(), K8sError> {
    let Some(k8s) = &loaded.config.kubernetes else {
        return Ok(());
    };
    let field = if k8s.kerberos.is_some() {
        "kubernetes.kerberos"
    } else if !k8s.connector_truststores.is_empty() {
        "kubernetes.connector_truststores"
    } else {
        return Ok(());
    };
    Err(K8sError::Unsupported {
        path: loaded.path.clone(),
        field,
        message: "render operator does not mount Kerberos or connector truststores into the FlinkDeployment yet; remove it for render operator, or use render k8s".to_owned(),
    })
}

/// Flink's Kerberos settings. krb5.conf's location is a JVM system property: Flink's own
/// `security.kerberos.krb5-conf.path` is read only by its YARN and native-Kubernetes
/// deployers, which ship the file and set `-Djava.security.krb5.conf` (YARN) or mount it at
/// `/etc/krb5.conf` (Kubernetes). These pods start `jobmanager.sh`/`taskmanager.sh`
/// directly (standalone), where nothing reads that option, and `/etc` is the image's
/// read-only root. `env.java.opts.jobmanager`/`.taskmanager` are per-process keys of 1.x and
/// 2.x alike (2.3.0's start scripts pass them on: `render_k8s_job`'s Kerberos test reads them
/// in the JVMs' startup logs) and leave `env.java.opts.all`, Flink's own JVM flags, alone.
fn kerberos_settings(kerberos: &KerberosSettings) -> FlinkSettings {
    let mut s = FlinkSettings::default();
    let str = |v: String| SettingValue::Str(v);
    s.set(
        "security.kerberos.login.use-ticket-cache",
        SettingValue::Bool(false),
    );
    s.set(
        "security.kerberos.login.keytab",
        str(format!("{KERBEROS_DIR}/{KEYTAB}")),
    );
    s.set(
        "security.kerberos.login.principal",
        str(kerberos.principal.to_string()),
    );
    s.set(
        "security.kerberos.login.contexts",
        str(kerberos
            .contexts
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(",")),
    );
    let krb5 = format!("-Djava.security.krb5.conf={KERBEROS_DIR}/{KRB5_CONF}");
    s.set("env.java.opts.jobmanager", str(krb5.clone()));
    s.set("env.java.opts.taskmanager", str(krb5));
    s
}

/// Kafka's client properties, when Kerberos or a `kafka` truststore is configured.
fn kafka_properties(
    kerberos: Option<&KerberosSettings>,
    kafka_store: Option<&Password>,
) -> Option<String> {
    if kerberos.is_none() && kafka_store.is_none() {
        return None;
    }
    let protocol = match kerberos {
        // The config check refused Kerberos without a truststore or an explicit protocol.
        Some(k) => k
            .kafka_security_protocol
            .unwrap_or(KafkaSecurityProtocol::SaslSsl)
            .as_str(),
        None => "SSL",
    };
    let mut lines = vec![
        "# Kafka client settings rendered by `flinkguard render k8s`. A job loads them with".to_owned(),
        format!("#   Properties p = new Properties(); p.load(new FileInputStream(\"{CONNECTORS_DIR}/{KAFKA_PROPERTIES}\"));"),
        "#   KafkaSource.builder().setProperties(p) / KafkaSink.builder().setKafkaProducerConfig(p)".to_owned(),
        format!("security.protocol={protocol}"),
    ];
    if let Some(k) = kerberos {
        lines.push("sasl.mechanism=GSSAPI".to_owned());
        lines.push(format!(
            "sasl.kerberos.service.name={}",
            k.kafka_service_name
        ));
        // Written out so the file works whether or not Flink's JAAS contexts include
        // KafkaClient, and in a job's main() on the client, where Flink installs none.
        lines.push(format!(
            "sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true useTicketCache=false keyTab=\"{KERBEROS_DIR}/{KEYTAB}\" principal=\"{}\";",
            k.principal
        ));
    }
    if protocol != "SASL_PLAINTEXT" {
        // Kafka's default since 2.0, stated so an older client cannot skip host name checks.
        lines.push("ssl.endpoint.identification.algorithm=https".to_owned());
        if let Some(password) = kafka_store {
            lines.push(format!(
                "ssl.truststore.location={CONNECTORS_DIR}/{}",
                store_file(ConnectorName::KAFKA)
            ));
            lines.push("ssl.truststore.type=PKCS12".to_owned());
            lines.push(format!("ssl.truststore.password={}", password.expose()));
        }
    }
    Some(lines.join("\n") + "\n")
}

/// The Secrets: the keytab, and the connectors' files.
pub(crate) fn secrets(inputs: &crate::pod_config::Inputs) -> Vec<Value> {
    let c = &inputs.connectors;
    let mut out = Vec::new();
    if let Some(k) = &c.kerberos {
        let keytab = SecretFile {
            key: KEYTAB.to_owned(),
            path: KEYTAB.to_owned(),
            bytes: k.keytab.clone(),
        };
        out.push(secret(inputs, KEYTAB_SECRET, "flink", &[keytab]));
    }
    if !c.files.is_empty() {
        out.push(secret(inputs, CONNECTORS_SECRET, "flink", &c.files));
    }
    out
}

/// The ConfigMaps: krb5.conf.
pub(crate) fn config_maps(inputs: &crate::pod_config::Inputs) -> Vec<Value> {
    let Some(k) = &inputs.connectors.kerberos else {
        return Vec::new();
    };
    vec![json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(inputs, KRB5_CONFIG_MAP, "flink"),
        "data": {KRB5_CONF: k.krb5_conf},
    })]
}

/// The volumes of the JobManager and TaskManager pods. Files are 0440: owned by root with
/// group fsGroup (Flink's), so Flink's user reads them through its group and nobody writes.
pub(crate) fn volumes(c: &Connectors) -> Vec<Value> {
    let mut out = Vec::new();
    if c.kerberos.is_some() {
        out.push(json!({"name": "flink-kerberos", "projected": {
            "defaultMode": 0o440,
            "sources": [
                {"configMap": {"name": KRB5_CONFIG_MAP, "items": [{"key": KRB5_CONF, "path": KRB5_CONF}]}},
                {"secret": {"name": KEYTAB_SECRET, "items": [{"key": KEYTAB, "path": KEYTAB, "mode": 0o440}]}},
            ],
        }}));
    }
    if !c.files.is_empty() {
        out.push(json!({"name": "flink-connectors", "secret": {
            "secretName": CONNECTORS_SECRET,
            "defaultMode": 0o440,
            "items": c.files.iter().map(|f| json!({"key": f.key, "path": f.path})).collect::<Vec<_>>(),
        }}));
    }
    out
}

/// The read-only mounts of the Flink containers (not the gateway's: it needs neither).
pub(crate) fn mounts(c: &Connectors) -> Vec<Value> {
    let mut out = Vec::new();
    if c.kerberos.is_some() {
        out.push(crate::objects::mount("flink-kerberos", KERBEROS_DIR, true));
    }
    if !c.files.is_empty() {
        out.push(crate::objects::mount(
            "flink-connectors",
            CONNECTORS_DIR,
            true,
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use flinkguard_pki::cert::{CertificateSpec, NameAttribute, Profile};

    /// An MIT keytab (0x0502) with one AES key per principal, as kadmin writes it; a hole
    /// (negative size) between entries, as deleting an entry leaves.
    pub(crate) fn keytab(principals: &[(&[&str], &str)]) -> Vec<u8> {
        let mut out = vec![0x05, 0x02];
        for (components, realm) in principals {
            let mut e = Vec::new();
            let data = |e: &mut Vec<u8>, s: &[u8]| {
                e.extend(u16::try_from(s.len()).unwrap().to_be_bytes());
                e.extend(s);
            };
            e.extend(u16::try_from(components.len()).unwrap().to_be_bytes());
            data(&mut e, realm.as_bytes());
            for c in *components {
                data(&mut e, c.as_bytes());
            }
            e.extend(1u32.to_be_bytes()); // KRB5_NT_PRINCIPAL
            e.extend(0u32.to_be_bytes()); // timestamp
            e.push(1); // kvno
            e.extend(18u16.to_be_bytes()); // aes256-cts-hmac-sha1-96
            data(&mut e, &[7u8; 32]);
            out.extend(i32::try_from(e.len()).unwrap().to_be_bytes());
            out.extend(e);
            out.extend((-3i32).to_be_bytes());
            out.extend([0u8; 3]);
        }
        out
    }

    pub(crate) fn ca_pem(cn: &str) -> String {
        let key =
            flinkguard_pki::KeyPair::generate(flinkguard_pki::KeyAlgorithm::EcdsaP256).unwrap();
        let spec = CertificateSpec {
            subject: vec![NameAttribute::CommonName(cn.to_owned())],
            alt_names: vec![],
            profile: Profile::Ca,
            validity_days: 30,
        };
        flinkguard_pki::cert::to_pem(&flinkguard_pki::cert::issue(&spec, &key, None).unwrap())
    }

    fn loaded(dir: &Path, kubernetes: &str) -> LoadedConfig {
        let config = flinkguard_config::Config::new(
            "flink",
            &["localhost".parse().unwrap()],
            &[],
            flinkguard_pki::KeyAlgorithm::EcdsaP256,
            flinkguard_pki::ValidityDays::default(),
        );
        let path = dir.join("flinkguard.yaml");
        fs::write(
            &path,
            format!("{}kubernetes:\n{kubernetes}", config.to_yaml()),
        )
        .unwrap();
        flinkguard_config::Config::load(&path).unwrap()
    }

    fn read(dir: &Path, kubernetes: &str) -> Result<Connectors, K8sError> {
        let loaded = loaded(dir, kubernetes);
        let k8s = loaded.config.kubernetes.clone().unwrap();
        Connectors::read(&loaded, &k8s, &PkiLayout::new(dir.join("pki")))
    }

    fn file<'a>(c: &'a Connectors, key: &str) -> &'a [u8] {
        &c.files.iter().find(|f| f.key == key).unwrap().bytes
    }

    const STORES: &str = "  connector_truststores:
  - name: kafka
    ca_files: [certs/kafka.pem, certs/extra.pem]
  - name: elasticsearch
    ca_files: [certs/es.pem]
";

    #[test]
    fn kdc_ports_come_from_the_kdc_lines_of_krb5_conf() {
        let conf = "[libdefaults]\n default_realm = A\n kdc_timesync = 1\n[realms]\n A = {\n  kdc = kdc1.a.org\n  kdc = tcp/10.0.0.2:750\n  kdc=[fd00::1]:8888\n  kdc = fd00::2\n  admin_server = kdc1.a.org:749\n }\n";
        assert_eq!(
            kdc_ports(conf).into_iter().collect::<Vec<_>>(),
            [88, 750, 8888]
        );
        assert!(kdc_ports("[libdefaults]\n dns_lookup_kdc = true\n").is_empty());
    }

    #[test]
    fn keytab_principals_are_read_and_garbage_is_refused() {
        let bytes = keytab(&[
            (&["flink", "flink-prod"], "EXAMPLE.ORG"),
            (&["other"], "EXAMPLE.ORG"),
        ]);
        let principals = keytab_principals(&bytes).unwrap();
        assert_eq!(
            principals.into_iter().collect::<Vec<_>>(),
            ["flink/flink-prod@EXAMPLE.ORG", "other@EXAMPLE.ORG"]
        );
        assert!(
            keytab_principals(b"[libdefaults]")
                .unwrap_err()
                .contains("0x0502")
        );
        assert!(keytab_principals(&[5, 2]).unwrap_err().contains("no key"));
        for cut in [1, 5, 40] {
            let err = keytab_principals(&bytes[..bytes.len() - cut]).unwrap_err();
            assert!(err.contains("truncated"), "{cut}: {err}");
        }
    }

    #[test]
    fn truststores_hold_every_ca_once_and_stay_the_same_across_renders() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        fs::create_dir(&certs).unwrap();
        let (a, b, c) = (
            ca_pem("Kafka Root"),
            ca_pem("Kafka Issuing"),
            ca_pem("ES Root"),
        );
        fs::write(certs.join("kafka.pem"), format!("{a}{b}")).unwrap();
        // The same CA twice (bundles overlap): one entry.
        fs::write(certs.join("extra.pem"), &a).unwrap();
        fs::write(certs.join("es.pem"), &c).unwrap();

        let first = read(dir.path(), STORES).unwrap();
        let password_path = dir.path().join("pki/connectors/kafka-truststore.password");
        let password = PkiLayout::new(dir.path())
            .read_password(&password_path)
            .unwrap();
        let entries =
            flinkguard_pki::store::read_store(file(&first, "kafka-truststore.p12"), &password)
                .unwrap();
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| matches!(
            e,
            flinkguard_pki::store::StoreEntry::TrustedCertificate { .. }
        )));
        assert_eq!(
            String::from_utf8_lossy(file(&first, "kafka-truststore.password")).trim(),
            password.expose()
        );
        assert_ne!(
            file(&first, "kafka-truststore.password"),
            file(&first, "elasticsearch-truststore.password"),
            "each truststore has its own password"
        );
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&password_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No Kerberos, a kafka truststore: TLS with it.
        let props = String::from_utf8_lossy(file(&first, KAFKA_PROPERTIES)).into_owned();
        assert!(props.contains("security.protocol=SSL\n"), "{props}");
        assert!(props.contains(&format!("ssl.truststore.password={}\n", password.expose())));
        assert!(!props.contains("sasl"), "{props}");
        assert!(first.flink_settings.iter().next().is_none());

        // Rendering again changes nothing: same password, same bytes.
        let second = read(dir.path(), STORES).unwrap();
        assert_eq!(first.files.len(), second.files.len());
        for f in &first.files {
            assert_eq!(f.bytes, file(&second, &f.key), "{}", f.key);
        }
        // A changed CA list rebuilds the store, under the same password.
        fs::write(certs.join("extra.pem"), ca_pem("Kafka New Root")).unwrap();
        let third = read(dir.path(), STORES).unwrap();
        let entries =
            flinkguard_pki::store::read_store(file(&third, "kafka-truststore.p12"), &password)
                .unwrap();
        assert_eq!(entries.len(), 3);
    }

    #[test]
    fn unusable_ca_files_name_the_field_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        fs::create_dir(&certs).unwrap();
        fs::write(certs.join("es.pem"), ca_pem("ES Root")).unwrap();
        fs::write(certs.join("kafka.pem"), ca_pem("Kafka Root")).unwrap();
        let err = read(dir.path(), STORES).unwrap_err().to_string();
        for needle in [
            "kubernetes.connector_truststores[0].ca_files",
            "extra.pem",
            "missing",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        for (content, hint) in [
            ("hello".to_owned(), "BEGIN CERTIFICATE"),
            (
                format!(
                    "{}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                    ca_pem("x")
                ),
                "private key",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned(),
                "not an X.509 certificate",
            ),
        ] {
            fs::write(certs.join("extra.pem"), content).unwrap();
            let err = read(dir.path(), STORES).unwrap_err().to_string();
            assert!(
                err.contains(hint) && err.contains("extra.pem"),
                "{hint}: {err}"
            );
        }
    }

    const KERBEROS: &str = "  egress:
  - name: kdc
    cidrs: [10.0.0.0/24]
    ports: [88]
  kerberos:
    principal: flink/flink-prod@EXAMPLE.ORG
    keytab_file: secrets/flink.keytab
    krb5_conf_file: secrets/krb5.conf
";

    fn kerberos_dir(principal: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        fs::create_dir(&secrets).unwrap();
        fs::write(
            secrets.join("flink.keytab"),
            keytab(&[(principal, "EXAMPLE.ORG")]),
        )
        .unwrap();
        set_mode(&secrets.join("flink.keytab"), 0o600);
        fs::write(
            secrets.join("krb5.conf"),
            "[libdefaults]\n default_realm = EXAMPLE.ORG\n[realms]\n EXAMPLE.ORG = {\n  kdc = kdc.example.org\n }\n",
        )
        .unwrap();
        fs::create_dir(dir.path().join("certs")).unwrap();
        fs::write(dir.path().join("certs/kafka.pem"), ca_pem("Kafka Root")).unwrap();
        dir
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_keytab_others_can_read_is_refused() {
        let dir = kerberos_dir(&["flink", "flink-prod"]);
        set_mode(&dir.path().join("secrets/flink.keytab"), 0o640);
        let kerberos = format!("{KERBEROS}    kafka_security_protocol: SASL_SSL\n");
        let err = read(dir.path(), &kerberos).unwrap_err().to_string();
        for needle in ["kubernetes.kerberos.keytab_file", "mode 640", "chmod 600"] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn kerberos_sets_flink_login_and_kafka_sasl_over_tls() {
        let dir = kerberos_dir(&["flink", "flink-prod"]);
        let stores = "  connector_truststores:\n  - name: kafka\n    ca_files: [certs/kafka.pem]\n";
        let c = read(dir.path(), &format!("{KERBEROS}{stores}")).unwrap();
        let get = |k: &str| c.flink_settings.get(k).unwrap().to_string();
        assert_eq!(
            get("security.kerberos.login.keytab"),
            "/opt/flink/kerberos/flink.keytab"
        );
        assert_eq!(
            get("security.kerberos.login.principal"),
            "flink/flink-prod@EXAMPLE.ORG"
        );
        assert_eq!(get("security.kerberos.login.use-ticket-cache"), "false");
        assert_eq!(
            get("security.kerberos.login.contexts"),
            "Client,KafkaClient"
        );
        for key in ["env.java.opts.jobmanager", "env.java.opts.taskmanager"] {
            assert_eq!(
                get(key),
                "-Djava.security.krb5.conf=/opt/flink/kerberos/krb5.conf"
            );
        }
        let props = String::from_utf8_lossy(file(&c, KAFKA_PROPERTIES)).into_owned();
        for line in [
            "security.protocol=SASL_SSL",
            "sasl.mechanism=GSSAPI",
            "sasl.kerberos.service.name=kafka",
            "ssl.truststore.location=/opt/flink/connectors/kafka-truststore.p12",
            "ssl.truststore.type=PKCS12",
            "ssl.endpoint.identification.algorithm=https",
            "keyTab=\"/opt/flink/kerberos/flink.keytab\" principal=\"flink/flink-prod@EXAMPLE.ORG\";",
        ] {
            assert!(props.contains(line), "{line}:\n{props}");
        }

        // Explicitly without TLS: no ssl settings at all.
        let plain = read(
            dir.path(),
            &format!("{KERBEROS}    kafka_security_protocol: SASL_PLAINTEXT\n"),
        )
        .unwrap();
        let props = String::from_utf8_lossy(file(&plain, KAFKA_PROPERTIES)).into_owned();
        assert!(
            props.contains("security.protocol=SASL_PLAINTEXT\n"),
            "{props}"
        );
        assert!(!props.contains("ssl."), "{props}");
    }

    #[test]
    fn a_keytab_without_the_principal_or_a_missing_krb5_conf_is_refused() {
        let dir = kerberos_dir(&["someone-else"]);
        let kerberos = format!("{KERBEROS}    kafka_security_protocol: SASL_SSL\n");
        let err = read(dir.path(), &kerberos).unwrap_err().to_string();
        for needle in [
            "kubernetes.kerberos.keytab_file",
            "flink.keytab",
            "no key for flink/flink-prod@EXAMPLE.ORG",
            "someone-else@EXAMPLE.ORG",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let dir = kerberos_dir(&["flink", "flink-prod"]);
        fs::write(dir.path().join("secrets/flink.keytab"), "not a keytab").unwrap();
        let err = read(dir.path(), &kerberos).unwrap_err().to_string();
        assert!(err.contains("0x0502") && err.contains("ktadd"), "{err}");

        // The KDC's port must be open in the NetworkPolicies.
        let dir = kerberos_dir(&["flink", "flink-prod"]);
        let err = read(dir.path(), &kerberos.replace("ports: [88]", "ports: [750]"))
            .unwrap_err()
            .to_string();
        for needle in ["kubernetes.egress", "port 88", "ports: [88]"] {
            assert!(err.contains(needle), "{needle}: {err}");
        }

        let dir = kerberos_dir(&["flink", "flink-prod"]);
        fs::remove_file(dir.path().join("secrets/krb5.conf")).unwrap();
        let err = read(dir.path(), &kerberos).unwrap_err().to_string();
        assert!(
            err.contains("kubernetes.kerberos.krb5_conf_file") && err.contains("missing"),
            "{err}"
        );
    }
}
