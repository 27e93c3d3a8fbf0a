use std::fmt;
use std::path::{Path, PathBuf};

use flinkguard_config::LoadedConfig;
use flinkguard_flink::{ConfigFormat, FlinkVersion};
use flinkguard_pki::store::StoreEntry;
use flinkguard_pki::{KeyAlgorithm, PkiError, inspect};
use serde_yaml_ng::{Mapping, Value};

/// One configuration value, typed so each format can write it correctly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingValue {
    /// `true` / `false`.
    Bool(bool),
    /// A number (ports, sizes).
    Int(u64),
    /// Anything else: paths, passwords, lists written as Flink's comma-separated strings.
    Str(String),
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingValue::Bool(b) => write!(f, "{b}"),
            SettingValue::Int(n) => write!(f, "{n}"),
            SettingValue::Str(s) => f.write_str(s),
        }
    }
}

impl SettingValue {
    fn to_yaml(&self) -> Value {
        match self {
            SettingValue::Bool(b) => Value::Bool(*b),
            SettingValue::Int(n) => Value::Number((*n).into()),
            SettingValue::Str(s) => Value::String(s.clone()),
        }
    }
}

/// Flink settings with their flat keys (`security.ssl.internal.enabled`), in render order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlinkSettings(Vec<(String, SettingValue)>);

impl FlinkSettings {
    /// Sets a key, replacing an earlier value of the same key.
    pub fn set(&mut self, key: &str, value: SettingValue) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&SettingValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// All settings in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SettingValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Adds every setting of `other`, replacing equal keys.
    pub fn extend(&mut self, other: &FlinkSettings) {
        for (k, v) in other.iter() {
            self.set(k, v.clone());
        }
    }
}

/// Why a configuration could not be rendered or merged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The PKI is missing or unusable.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The file to merge into is not usable as that format.
    #[error("{}: {problem}", path.display())]
    InvalidInput {
        /// The file.
        path: PathBuf,
        /// What is wrong and the fix.
        problem: String,
    },
    /// The requested version and file format contradict each other.
    #[error("{0}")]
    Mismatch(String),
}

/// Cipher suites for the cluster identity's key type: ECDHE with AEAD only, for TLS 1.2, plus
/// the TLS 1.3 suites (Java negotiates TLS 1.3 only if a `TLS_AES_*` suite is enabled).
/// Flink's default, `TLS_RSA_WITH_AES_128_CBC_SHA`, has no forward secrecy and fails with EC keys.
pub fn cipher_suites(key: KeyAlgorithm) -> &'static str {
    if key.is_ec() {
        "TLS_AES_256_GCM_SHA384,TLS_AES_128_GCM_SHA256,TLS_CHACHA20_POLY1305_SHA256,\
         TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,\
         TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
    } else {
        "TLS_AES_256_GCM_SHA384,TLS_AES_128_GCM_SHA256,TLS_CHACHA20_POLY1305_SHA256,\
         TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,\
         TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
    }
}

/// The `security.ssl.protocol` value for a version.
///
/// Netty endpoints (blob, data plane, REST) split this value on commas, but up to at least
/// 2.3.0 Flink pastes it unquoted into Pekko's HOCON config, where `TLSv1.2,TLSv1.3` is a
/// parse error that kills the JobManager at start (verified on 2.3.0). So one protocol it is:
/// TLS 1.3, which Java 11+ and every client flinkguard ships speak. `security.ssl.algorithms`
/// still lists the TLS 1.2 suites, so switching the protocol to TLSv1.2 by hand keeps working.
pub fn protocols(_version: FlinkVersion) -> &'static str {
    "TLSv1.3"
}

/// The RPC system's SSL switch: Pekko from Flink 1.18 on, Akka before.
fn rpc_ssl_key(version: FlinkVersion) -> &'static str {
    if version >= FlinkVersion::new(1, 18, 0) {
        "pekko.ssl.enabled"
    } else {
        "akka.ssl.enabled"
    }
}

/// The security part of Flink's configuration for this deployment.
///
/// Reads the internal keystore with its password (so a corrupt store or wrong password is
/// caught here, not by a JobManager crash) and pins its certificate's SHA-1 fingerprint.
pub fn security_settings(
    loaded: &LoadedConfig,
    version: FlinkVersion,
) -> Result<FlinkSettings, RenderError> {
    let pki = absolute_pki(loaded)?;
    let identity = single_identity(
        &pki,
        &pki.internal_keystore(),
        &pki.internal_password(),
        "the cluster identity; rerun `flinkguard init --force`",
    )?;
    let password = pki.read_password(&pki.internal_password())?;
    let keystore = path_value(&pki.internal_keystore())?;
    let flink = &loaded.config.flink;

    let mut s = FlinkSettings::default();
    let str = |v: &str| SettingValue::Str(v.to_owned());
    s.set("security.ssl.internal.enabled", SettingValue::Bool(true));
    s.set("security.ssl.internal.keystore", keystore.clone());
    s.set("security.ssl.internal.truststore", keystore);
    s.set(
        "security.ssl.internal.keystore-password",
        str(password.expose()),
    );
    s.set(
        "security.ssl.internal.truststore-password",
        str(password.expose()),
    );
    s.set("security.ssl.internal.key-password", str(password.expose()));
    s.set(
        "security.ssl.internal.cert.fingerprint",
        str(&inspect::sha1_fingerprint(&identity)),
    );
    // Per-endpoint switches default to the internal switch; set them so a stray `false`
    // elsewhere in the file is overridden rather than silently winning.
    s.set("taskmanager.data.ssl.enabled", SettingValue::Bool(true));
    s.set("blob.service.ssl.enabled", SettingValue::Bool(true));
    s.set(rpc_ssl_key(version), SettingValue::Bool(true));
    s.set(
        "security.ssl.algorithms",
        str(cipher_suites(loaded.config.pki.key)),
    );
    s.set("security.ssl.protocol", str(protocols(version)));
    // REST is reachable only through the gateway: without rest.bind-address Flink listens on
    // every interface even when rest.address is localhost.
    s.set("rest.bind-address", str("127.0.0.1"));
    s.set("rest.address", str("127.0.0.1"));
    s.set("rest.port", SettingValue::Int(u64::from(flink.rest_port)));
    s.set("web.submit.enable", SettingValue::Bool(flink.web_submit));
    s.set("web.cancel.enable", SettingValue::Bool(flink.web_cancel));
    if loaded.config.gateway.upstream_mutual_tls() {
        s.extend(&upstream_rest_settings(&pki)?);
    }
    Ok(s)
}

/// REST over mutual TLS with the PKI's upstream identity: one self-signed certificate as
/// keystore *and* truststore, its fingerprint pinned, so the only client Flink's REST endpoint
/// accepts is the gateway. Loopback alone does not keep other local users (or other containers
/// of a pod) out; a CA-signed certificate would let every user's client certificate in.
fn upstream_rest_settings(pki: &flinkguard_pki::PkiLayout) -> Result<FlinkSettings, RenderError> {
    pki.require_upstream()?;
    let identity = single_identity(
        pki,
        &pki.upstream_keystore(),
        &pki.upstream_password(),
        &format!(
            "the gateway→Flink REST identity; rerun `{} --force`",
            flinkguard_pki::CREATE_UPSTREAM_COMMAND
        ),
    )?;
    let password = pki.read_password(&pki.upstream_password())?;
    let keystore = path_value(&pki.upstream_keystore())?;
    let mut s = FlinkSettings::default();
    let str = |v: &str| SettingValue::Str(v.to_owned());
    s.set("security.ssl.rest.enabled", SettingValue::Bool(true));
    s.set(
        "security.ssl.rest.authentication-enabled",
        SettingValue::Bool(true),
    );
    s.set("security.ssl.rest.keystore", keystore.clone());
    s.set("security.ssl.rest.keystore-type", str("PKCS12"));
    s.set("security.ssl.rest.truststore", keystore);
    s.set("security.ssl.rest.truststore-type", str("PKCS12"));
    s.set(
        "security.ssl.rest.keystore-password",
        str(password.expose()),
    );
    s.set("security.ssl.rest.key-password", str(password.expose()));
    s.set(
        "security.ssl.rest.truststore-password",
        str(password.expose()),
    );
    s.set(
        "security.ssl.rest.cert.fingerprint",
        str(&inspect::sha1_fingerprint(&identity)),
    );
    Ok(s)
}

/// The certificate of a keystore that must hold exactly one private key entry, opened with
/// its password as Flink will (a corrupt store or a wrong password is caught here).
fn single_identity(
    pki: &flinkguard_pki::PkiLayout,
    keystore: &Path,
    password: &Path,
    what: &str,
) -> Result<Vec<u8>, RenderError> {
    match pki.read_store(keystore, password)?.as_slice() {
        [StoreEntry::PrivateKey { chain, .. }] if !chain.is_empty() => Ok(chain[0].clone()),
        _ => Err(PkiError::InvalidFile {
            path: keystore.to_owned(),
            problem: format!("must hold exactly one private key entry ({what})"),
        }
        .into()),
    }
}

/// The PKI with an absolute root: Flink resolves relative paths against its own working
/// directory, not flinkguard.yaml's.
fn absolute_pki(loaded: &LoadedConfig) -> Result<flinkguard_pki::PkiLayout, RenderError> {
    let pki = loaded.pki();
    let root = pki.root().canonicalize().map_err(|e| {
        RenderError::Pki(PkiError::InvalidFile {
            path: pki.root().to_owned(),
            problem: format!("{e}; run `flinkguard init` to create the PKI"),
        })
    })?;
    Ok(flinkguard_pki::PkiLayout::new(root))
}

/// Settings for Flink's own clients (`bin/flink`, the SQL client, anything built on Flink's
/// `RestClusterClient`) to reach the cluster through the gateway as `user`: REST over TLS to
/// `gateway_host:gateway_port`, the user's client certificate from `pki issue-client`, and a
/// truststore holding only flinkguard's CA.
///
/// Flink's REST client does not check the server's host name (up to 2.3 it never tells the TLS
/// layer which host it connects to), so the truststore is the whole of the server's
/// authentication: it must hold nothing but this CA, which is what `init` writes.
pub fn client_settings(
    loaded: &LoadedConfig,
    user: &flinkguard_pki::UserName,
    gateway_host: &str,
    gateway_port: u16,
) -> Result<FlinkSettings, RenderError> {
    let pki = absolute_pki(loaded)?;
    let client = flinkguard_pki::ClientFiles::in_dir(pki.client_dir(user));
    if !client.keystore.is_file() {
        return Err(PkiError::InvalidFile {
            path: client.keystore,
            problem: format!(
                "no client certificate for {user}; run `flinkguard pki issue-client --user {user}` first"
            ),
        }
        .into());
    }
    // Opened as Flink will, so a wrong password or a broken store is caught here.
    pki.read_store(&client.keystore, &client.password)?;
    pki.read_store(&pki.rest_truststore(), &pki.rest_truststore_password())?;
    let client_password = pki.read_password(&client.password)?;
    let trust_password = pki.read_password(&pki.rest_truststore_password())?;

    let mut s = FlinkSettings::default();
    let str = |v: &str| SettingValue::Str(v.to_owned());
    s.set("rest.address", str(gateway_host));
    s.set("rest.port", SettingValue::Int(u64::from(gateway_port)));
    s.set("security.ssl.rest.enabled", SettingValue::Bool(true));
    s.set(
        "security.ssl.rest.authentication-enabled",
        SettingValue::Bool(true),
    );
    s.set("security.ssl.rest.keystore", path_value(&client.keystore)?);
    s.set("security.ssl.rest.keystore-type", str("PKCS12"));
    s.set(
        "security.ssl.rest.keystore-password",
        str(client_password.expose()),
    );
    s.set(
        "security.ssl.rest.key-password",
        str(client_password.expose()),
    );
    s.set(
        "security.ssl.rest.truststore",
        path_value(&pki.rest_truststore())?,
    );
    s.set("security.ssl.rest.truststore-type", str("PKCS12"));
    s.set(
        "security.ssl.rest.truststore-password",
        str(trust_password.expose()),
    );
    // The gateway's certificate has the PKI's key type; Flink's default suites are RSA-only.
    s.set(
        "security.ssl.algorithms",
        str(cipher_suites(loaded.config.pki.key)),
    );
    s.set("security.ssl.protocol", str("TLSv1.3"));
    Ok(s)
}

/// Directories of a local cluster started by `flinkguard up` or the test kit.
#[derive(Debug, Clone)]
pub struct LocalClusterDirs {
    /// `io.tmp.dirs`.
    pub tmp: PathBuf,
    /// `web.upload.dir` / `web.tmpdir`: private, never a shared /tmp.
    pub web: PathBuf,
}

/// Settings of a single-machine cluster on loopback: every process binds 127.0.0.1 only.
pub fn local_cluster_settings(
    rpc_port: u16,
    dirs: &LocalClusterDirs,
) -> Result<FlinkSettings, RenderError> {
    let mut s = FlinkSettings::default();
    let str = |v: &str| SettingValue::Str(v.to_owned());
    s.set("jobmanager.rpc.address", str("127.0.0.1"));
    s.set("jobmanager.bind-host", str("127.0.0.1"));
    s.set(
        "jobmanager.rpc.port",
        SettingValue::Int(u64::from(rpc_port)),
    );
    s.set("taskmanager.host", str("127.0.0.1"));
    s.set("taskmanager.bind-host", str("127.0.0.1"));
    s.set("jobmanager.memory.process.size", str("1024m"));
    s.set("taskmanager.memory.process.size", str("1280m"));
    s.set("taskmanager.numberOfTaskSlots", SettingValue::Int(2));
    // The TaskManager starts together with the JobManager and finds its RPC port closed at
    // first; by default it then waits 10 s before retrying. A number is milliseconds in 1.x
    // (a long) and 2.x (a duration) alike.
    s.set("cluster.registration.error-delay", SettingValue::Int(500));
    s.set("io.tmp.dirs", path_value(&dirs.tmp)?);
    s.set("web.tmpdir", path_value(&dirs.web)?);
    s.set("web.upload.dir", path_value(&dirs.web)?);
    Ok(s)
}

fn path_value(path: &Path) -> Result<SettingValue, RenderError> {
    let text = path.to_str().ok_or_else(|| RenderError::InvalidInput {
        path: path.to_owned(),
        problem: "the path is not valid UTF-8; Flink's configuration cannot name it".into(),
    })?;
    Ok(SettingValue::Str(text.to_owned()))
}

/// Decides the output format and the Flink version settings are written for.
///
/// The file being merged wins over the version: `flink-conf.yaml` is 1.x's flat format,
/// `config.yaml` is standard YAML (read by 1.19+ and required by 2.x). An explicit version
/// that contradicts the file is an error rather than a guess.
pub fn choose_format(
    explicit: Option<FlinkVersion>,
    configured: FlinkVersion,
    merge_file: Option<&Path>,
) -> Result<(ConfigFormat, FlinkVersion), RenderError> {
    let from_name = merge_file
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .and_then(ConfigFormat::from_file_name);
    let version = explicit.unwrap_or(configured);
    match from_name {
        None => Ok((version.config_format(), version)),
        Some(ConfigFormat::Flat) => {
            if version.major >= 2 {
                if explicit.is_some() {
                    return Err(RenderError::Mismatch(format!(
                        "Flink {version} no longer reads flink-conf.yaml; merge into a config.yaml (bin/migrate-config-file.sh converts one)"
                    )));
                }
                // The file is 1.x format but flinkguard.yaml names a 2.x version: the
                // file knows better, assume the newest 1.x.
                return Ok((ConfigFormat::Flat, FlinkVersion::LATEST_1X));
            }
            Ok((ConfigFormat::Flat, version))
        }
        Some(ConfigFormat::Nested) => {
            if version < FlinkVersion::new(1, 19, 0) {
                return Err(RenderError::Mismatch(format!(
                    "Flink {version} reads only flink-conf.yaml; config.yaml needs Flink 1.19 or newer"
                )));
            }
            Ok((ConfigFormat::Nested, version))
        }
    }
}

const HEADER: &str = "# Security settings rendered by flinkguard from flinkguard.yaml (`flinkguard flink-config`, `flinkguard render`): render again after changing it.\n\
# This file holds keystore passwords: keep it mode 0600.\n";

/// A new configuration file holding just `settings`.
pub fn render(format: ConfigFormat, settings: &FlinkSettings) -> Result<String, RenderError> {
    match format {
        ConfigFormat::Nested => merge_nested("", Path::new(format.file_name()), settings),
        ConfigFormat::Flat => merge_flat("", Path::new(format.file_name()), settings),
    }
}

/// `existing` (the content of `path`) with `settings` folded in: every other key and value of
/// the user's file is kept; keys flinkguard manages are replaced wherever they were.
pub fn merge(
    format: ConfigFormat,
    existing: &str,
    path: &Path,
    settings: &FlinkSettings,
) -> Result<String, RenderError> {
    match format {
        ConfigFormat::Nested => merge_nested(existing, path, settings),
        ConfigFormat::Flat => merge_flat(existing, path, settings),
    }
}

fn merge_nested(
    existing: &str,
    path: &Path,
    settings: &FlinkSettings,
) -> Result<String, RenderError> {
    let invalid = |problem: String| RenderError::InvalidInput {
        path: path.to_owned(),
        problem,
    };
    let mut root = match serde_yaml_ng::from_str::<Value>(existing) {
        Ok(Value::Mapping(m)) => m,
        Ok(Value::Null) => Mapping::new(),
        Ok(_) => {
            return Err(invalid(
                "the top level is not a YAML mapping of keys to values".into(),
            ));
        }
        Err(e) => return Err(invalid(format!("not valid YAML: {e}"))),
    };
    let managed: Vec<&str> = settings.iter().map(|(k, _)| k).collect();
    remove_keys(&mut root, "", &managed);
    for (key, value) in settings.iter() {
        let segments: Vec<&str> = key.split('.').collect();
        insert_nested(&mut root, &segments, value.to_yaml());
    }
    let body =
        serde_yaml_ng::to_string(&Value::Mapping(root)).map_err(|e| invalid(e.to_string()))?;
    Ok(format!("{HEADER}{body}"))
}

/// Removes every leaf whose flattened key is managed, then mappings left empty.
fn remove_keys(map: &mut Mapping, prefix: &str, managed: &[&str]) {
    let keys: Vec<Value> = map.keys().cloned().collect();
    for key in keys {
        let Some(name) = key.as_str().map(str::to_owned) else {
            continue;
        };
        let full = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        let remove = match map.get_mut(&key) {
            Some(Value::Mapping(child)) => {
                remove_keys(child, &full, managed);
                child.is_empty()
            }
            Some(_) => managed.contains(&full.as_str()),
            None => false,
        };
        if remove {
            map.remove(&key);
        }
    }
}

/// Inserts `value` at the nested position of `segments`, descending into the user's existing
/// mappings. Where a leaf already occupies a prefix (`state.backend: rocksdb` when inserting
/// `state.backend.incremental`), the rest is written as a dotted key at that level, which
/// Flink's YAML reader flattens to the same key.
fn insert_nested(map: &mut Mapping, segments: &[&str], value: Value) {
    let [first, rest @ ..] = segments else { return };
    if rest.is_empty() {
        map.insert(Value::String((*first).to_owned()), value);
        return;
    }
    let key = Value::String((*first).to_owned());
    match map.get_mut(&key) {
        Some(Value::Mapping(child)) => insert_nested(child, rest, value),
        Some(_) => {
            map.insert(Value::String(segments.join(".")), value);
        }
        None => {
            let mut child = Mapping::new();
            insert_nested(&mut child, rest, value);
            map.insert(key, Value::Mapping(child));
        }
    }
}

/// Flink 1.x reads `flink-conf.yaml` line by line: `key: value`, `#` starts a comment
/// anywhere on the line. Lines of managed keys are dropped, everything else kept verbatim.
fn merge_flat(
    existing: &str,
    path: &Path,
    settings: &FlinkSettings,
) -> Result<String, RenderError> {
    let mut out = String::new();
    for line in existing.lines() {
        let content = line.split('#').next().unwrap_or("").trim();
        let key = content.split_once(": ").map(|(k, _)| k.trim());
        if key.is_some_and(|k| settings.get(k).is_some()) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(HEADER);
    for (key, value) in settings.iter() {
        let text = value.to_string();
        if text.contains('#') || text.contains('\n') || text.is_empty() {
            return Err(RenderError::InvalidInput {
                path: path.to_owned(),
                problem: format!(
                    "the value of {key} contains '#', a line break or is empty, which flink-conf.yaml cannot express; use a path without '#' or Flink 1.19+ with config.yaml"
                ),
            });
        }
        out.push_str(&format!("{key}: {text}\n"));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings() -> FlinkSettings {
        let mut s = FlinkSettings::default();
        s.set("security.ssl.internal.enabled", SettingValue::Bool(true));
        s.set(
            "security.ssl.internal.keystore-password",
            SettingValue::Str("000123".into()),
        );
        s.set("state.backend.incremental", SettingValue::Bool(true));
        s.set("rest.bind-address", SettingValue::Str("127.0.0.1".into()));
        s
    }

    fn flatten(value: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
        if let Value::Mapping(m) = value {
            for (k, v) in m {
                let k = k.as_str().unwrap();
                let full = if prefix.is_empty() {
                    k.to_owned()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(v, &full, out);
            }
        } else {
            let text = match value {
                Value::String(s) => s.clone(),
                other => serde_yaml_ng::to_string(other).unwrap().trim().to_owned(),
            };
            out.push((prefix.to_owned(), text));
        }
    }

    fn flat_view(yaml: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        flatten(&serde_yaml_ng::from_str(yaml).unwrap(), "", &mut out);
        out.sort();
        out
    }

    #[test]
    fn nested_merge_keeps_user_keys_and_replaces_managed_ones_wherever_they_are() {
        let user = "\
# a comment
jobmanager:
  rpc:
    port: 6123
security.ssl.internal.enabled: false
security:
  ssl:
    internal:
      keystore-password: weak
state:
  backend: rocksdb
rest:
  bind-address: 0.0.0.0
  port: 9000
";
        let merged = merge(
            ConfigFormat::Nested,
            user,
            Path::new("config.yaml"),
            &settings(),
        )
        .unwrap();
        let flat = flat_view(&merged);
        let get = |k: &str| {
            flat.iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("jobmanager.rpc.port"), ["6123"]);
        assert_eq!(get("rest.port"), ["9000"]);
        assert_eq!(get("state.backend"), ["rocksdb"]);
        assert_eq!(get("state.backend.incremental"), ["true"]);
        assert_eq!(get("security.ssl.internal.enabled"), ["true"], "{merged}");
        assert_eq!(get("security.ssl.internal.keystore-password"), ["000123"]);
        assert_eq!(get("rest.bind-address"), ["127.0.0.1"]);
        // A numeric-looking password stays a string.
        assert!(
            merged.contains("'000123'") || merged.contains("\"000123\""),
            "{merged}"
        );
    }

    #[test]
    fn flat_merge_drops_managed_lines_and_keeps_the_rest_verbatim() {
        let user = "jobmanager.rpc.port: 6123\nrest.bind-address: 0.0.0.0\n# security.ssl.internal.enabled: false\nrest.port: 9000\n";
        let merged = merge(
            ConfigFormat::Flat,
            user,
            Path::new("flink-conf.yaml"),
            &settings(),
        )
        .unwrap();
        assert!(merged.starts_with("jobmanager.rpc.port: 6123\n"));
        assert!(merged.contains("rest.port: 9000\n"));
        assert_eq!(merged.matches("rest.bind-address:").count(), 1);
        assert!(merged.contains("rest.bind-address: 127.0.0.1\n"));
        assert!(merged.contains("security.ssl.internal.keystore-password: 000123\n"));
    }

    #[test]
    fn flat_format_refuses_values_it_cannot_express() {
        let mut s = FlinkSettings::default();
        s.set(
            "security.ssl.internal.keystore",
            SettingValue::Str("/a#b/x.p12".into()),
        );
        assert!(
            render(ConfigFormat::Flat, &s)
                .unwrap_err()
                .to_string()
                .contains("'#'")
        );
    }

    #[test]
    fn nested_merge_rejects_non_mapping_documents() {
        let err = merge(
            ConfigFormat::Nested,
            "- a\n- b\n",
            Path::new("c/config.yaml"),
            &settings(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("c/config.yaml:"), "{err}");
        let err = merge(
            ConfigFormat::Nested,
            "a: [",
            Path::new("config.yaml"),
            &settings(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not valid YAML"), "{err}");
    }

    #[test]
    fn format_follows_file_then_version() {
        let v2 = FlinkVersion::DEFAULT;
        let v118 = FlinkVersion::new(1, 18, 1);
        assert_eq!(
            choose_format(None, v2, None).unwrap().0,
            ConfigFormat::Nested
        );
        assert_eq!(
            choose_format(Some(v118), v2, None).unwrap().0,
            ConfigFormat::Flat
        );
        assert_eq!(
            choose_format(None, v2, Some(Path::new("/x/flink-conf.yaml"))).unwrap(),
            (ConfigFormat::Flat, FlinkVersion::LATEST_1X)
        );
        assert!(choose_format(Some(v2), v2, Some(Path::new("flink-conf.yaml"))).is_err());
        assert!(choose_format(Some(v118), v2, Some(Path::new("config.yaml"))).is_err());
        assert_eq!(
            choose_format(
                Some(FlinkVersion::new(1, 20, 0)),
                v2,
                Some(Path::new("config.yaml"))
            )
            .unwrap()
            .0,
            ConfigFormat::Nested
        );
    }

    #[test]
    fn suites_match_key_type() {
        assert!(cipher_suites(KeyAlgorithm::EcdsaP256).contains("ECDHE_ECDSA"));
        assert!(!cipher_suites(KeyAlgorithm::EcdsaP256).contains("ECDHE_RSA"));
        assert!(cipher_suites(KeyAlgorithm::Rsa3072).contains("ECDHE_RSA"));
        for key in KeyAlgorithm::ALL {
            assert!(
                cipher_suites(key)
                    .split(',')
                    .all(|s| s.contains("GCM") || s.contains("CHACHA20"))
            );
        }
    }

    /// A fresh `init`-like deployment (config and PKI) in `dir`.
    fn deployment(dir: &Path) -> LoadedConfig {
        let hosts = ["localhost".parse().unwrap()];
        let ips = ["127.0.0.1".parse().unwrap()];
        let config = flinkguard_config::Config::new(
            "flink",
            &hosts,
            &ips,
            KeyAlgorithm::EcdsaP256,
            flinkguard_pki::ValidityDays::default(),
        );
        let generated = flinkguard_pki::generate(&flinkguard_pki::InitRequest {
            cluster_name: "flink".into(),
            hosts: hosts.to_vec(),
            ips: ips.to_vec(),
            key: KeyAlgorithm::EcdsaP256,
            validity: flinkguard_pki::ValidityDays::default(),
        })
        .unwrap();
        flinkguard_pki::install(
            &generated,
            &flinkguard_pki::PkiLayout::new(dir.join("pki")),
            false,
        )
        .unwrap();
        let path = dir.join("flinkguard.yaml");
        config.write(&path).unwrap();
        flinkguard_config::Config::load(&path).unwrap()
    }

    #[test]
    fn rest_requires_the_gateways_self_signed_identity_pinned_by_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = deployment(dir.path());
        let s = security_settings(&loaded, FlinkVersion::DEFAULT).unwrap();
        let get = |k: &str| s.get(k).unwrap().to_string();
        assert_eq!(get("security.ssl.rest.enabled"), "true");
        assert_eq!(get("security.ssl.rest.authentication-enabled"), "true");
        assert_eq!(get("rest.bind-address"), "127.0.0.1");
        let pki = dir.path().join("pki").canonicalize().unwrap();
        let store = pki.join("upstream/upstream.p12");
        assert_eq!(get("security.ssl.rest.keystore"), store.to_str().unwrap());
        assert_eq!(get("security.ssl.rest.truststore"), store.to_str().unwrap());
        assert_eq!(get("security.ssl.rest.truststore-type"), "PKCS12");
        let password = std::fs::read_to_string(pki.join("upstream/upstream.password")).unwrap();
        assert_eq!(get("security.ssl.rest.keystore-password"), password.trim());
        // The pin is the upstream certificate's, not the CA's or the cluster identity's, and
        // that certificate is self-signed: the CA that signs users' certificates did not.
        let pem = std::fs::read_to_string(pki.join("upstream/upstream.crt")).unwrap();
        let der = flinkguard_pki::cert::parse_pem_certificates(&pem)
            .unwrap()
            .remove(0);
        assert_eq!(
            get("security.ssl.rest.cert.fingerprint"),
            inspect::sha1_fingerprint(&der)
        );
        assert_ne!(
            get("security.ssl.rest.cert.fingerprint"),
            get("security.ssl.internal.cert.fingerprint")
        );
        let info = flinkguard_pki::CertificateInfo::from_der(&der).unwrap();
        assert_eq!(info.subject, info.issuer);
        assert!(!info.is_ca);
        // Both formats carry the settings.
        for format in [ConfigFormat::Nested, ConfigFormat::Flat] {
            let text = render(format, &s).unwrap();
            assert!(
                text.contains("fingerprint") && text.contains("upstream.p12"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_pki_without_the_upstream_identity_names_the_file_and_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = deployment(dir.path());
        std::fs::remove_dir_all(dir.path().join("pki/upstream")).unwrap();
        let err = security_settings(&loaded, FlinkVersion::DEFAULT)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("upstream/upstream.p12") && err.contains("flinkguard pki create-upstream"),
            "{err}"
        );
        // A gateway configured for plain http to Flink gets a plain-http REST endpoint, as
        // before the upstream identity existed.
        let mut plain = loaded.clone();
        plain.config.gateway.upstream_server_cert_file = None;
        plain.config.gateway.upstream_client_cert_file = None;
        plain.config.gateway.upstream_client_key_file = None;
        let s = security_settings(&plain, FlinkVersion::DEFAULT).unwrap();
        assert!(s.get("security.ssl.rest.enabled").is_none());
    }
}
