//! What the pods read: Flink's configuration (the real renderer's output, store paths moved
//! to the mount points), flinkguard.yaml as the side-car sees it, and the PKI files.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use flinkguard_config::{Config, KubernetesSection, LoadedConfig};
use flinkguard_flink::FlinkVersion;
use flinkguard_render::{FlinkSettings, SettingValue};

use crate::K8sError;
use crate::objects::Ports;

/// Where Flink's pods mount the PKI (a projected Secret volume).
pub(crate) const FLINK_PKI_DIR: &str = "/opt/flink/pki";
/// Where the gateway mounts its part of the PKI.
pub(crate) const GATEWAY_PKI_DIR: &str = "/etc/flinkguard/pki";
/// Where the gateway mounts flinkguard.yaml (the ConfigMap).
pub(crate) const GATEWAY_CONFIG_DIR: &str = "/etc/flinkguard/config";
/// The gateway's writable state: audit log and ownership database (an emptyDir for now).
pub(crate) const GATEWAY_STATE_DIR: &str = "/var/lib/flinkguard";

/// One file of a Secret: its key, where it appears under the mount point, its bytes.
#[derive(Debug, Clone)]
pub(crate) struct SecretFile {
    pub(crate) key: String,
    pub(crate) path: String,
    pub(crate) bytes: Vec<u8>,
}

/// Everything the objects are built from, read and checked once.
#[derive(Debug)]
pub(crate) struct Inputs {
    pub(crate) instance: String,
    pub(crate) namespace: String,
    pub(crate) flink_image: String,
    pub(crate) gateway_image: String,
    pub(crate) k8s: KubernetesSection,
    pub(crate) ports: Ports,
    pub(crate) flink_config_file: &'static str,
    pub(crate) jobmanager_flink_config: String,
    pub(crate) taskmanager_flink_config: String,
    pub(crate) flinkguard_yaml: String,
    /// Flink's internal keystore (JobManager and TaskManagers).
    pub(crate) internal_store: SecretFile,
    /// Flink's REST keystore: the upstream identity (JobManager only).
    pub(crate) upstream_store: SecretFile,
    /// The gateway's certificates and keys.
    pub(crate) gateway_files: Vec<SecretFile>,
    /// Every password and private key, to prove none lands in a ConfigMap.
    pub(crate) secret_values: Vec<String>,
    /// The renderer's security settings, store paths at the mount points (for `render
    /// operator`, which writes them as the FlinkDeployment's flinkConfiguration).
    pub(crate) security: FlinkSettings,
    /// `flink.version`.
    pub(crate) version: FlinkVersion,
    /// Kerberos and connector truststores for jobs.
    pub(crate) connectors: crate::connectors::Connectors,
}

fn read(path: &Path) -> Result<Vec<u8>, K8sError> {
    fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => K8sError::MissingPkiFile {
            path: path.to_owned(),
        },
        _ => K8sError::Io {
            path: path.to_owned(),
            source: e,
        },
    })
}

fn secret_file(key: &str, path: &str, from: &Path) -> Result<SecretFile, K8sError> {
    Ok(SecretFile {
        key: key.to_owned(),
        path: path.to_owned(),
        bytes: read(from)?,
    })
}

impl Inputs {
    pub(crate) fn read(loaded: &LoadedConfig) -> Result<Inputs, K8sError> {
        let config = &loaded.config;
        refuse_unsupported(loaded)?;
        let pki = loaded.pki();
        // One error naming the first missing file, before the renderer's own checks.
        for path in [
            pki.internal_keystore(),
            pki.internal_password(),
            pki.rest_cert(),
            pki.rest_key(),
            pki.ca_cert(),
        ] {
            read(&path)?;
        }
        pki.require_upstream()?;
        let host_root = pki.root().canonicalize().map_err(|e| K8sError::Io {
            path: pki.root().to_owned(),
            source: e,
        })?;
        let pki = flinkguard_pki::PkiLayout::new(&host_root);

        let k8s = config.kubernetes.clone().unwrap_or_default();
        let namespace = k8s
            .namespace
            .clone()
            .unwrap_or_else(|| config.cluster.name.clone());
        let connectors = crate::connectors::Connectors::read(loaded, &k8s, &pki)?;
        let ports = Ports::new(config.flink.rpc_port, config.flink.rest_port);
        let version = config.flink.version;
        let (format, version) = flinkguard_render::choose_format(None, version, None)?;

        let security = flinkguard_render::security_settings(loaded, version)?;
        let security = move_store_paths(&security, &host_root)?;
        let mut jobmanager = security.clone();
        jobmanager.extend(&cluster_settings(&ports, &k8s, version));
        if let Some(ha) = &k8s.high_availability {
            jobmanager.extend(&crate::ha::settings(
                ha,
                &config.cluster.name,
                &namespace,
                ports.jobmanager_rpc,
            ));
        }
        jobmanager.extend(&connectors.flink_settings);
        // TaskManagers serve no REST: they get neither the REST identity nor its password.
        let mut taskmanager = FlinkSettings::default();
        for (key, value) in jobmanager.iter() {
            if !key.starts_with("security.ssl.rest.") {
                taskmanager.set(key, value.clone());
            }
        }

        // In the pod the PKI is a read-only Secret: create what the gateway would create.
        if config.gateway.service_tokens {
            flinkguard_token::SigningKey::load_or_create(&pki)
                .map_err(|e| K8sError::Keys(e.to_string()))?;
        }
        flinkguard_signedlink::LinkKeys::load_or_create(&pki)
            .map_err(|e| K8sError::Keys(e.to_string()))?;

        let mut gateway_files = vec![
            secret_file("rest.crt", "rest.crt", &pki.rest_cert())?,
            secret_file("rest.key", "rest.key", &pki.rest_key())?,
            secret_file("ca.crt", "ca.crt", &pki.ca_cert())?,
            secret_file(
                "upstream.crt",
                "upstream/upstream.crt",
                &pki.upstream_cert(),
            )?,
            secret_file("upstream.key", "upstream/upstream.key", &pki.upstream_key())?,
        ];
        let link_keys = flinkguard_signedlink::link_keys_file(&pki);
        gateway_files.push(secret_file(
            flinkguard_signedlink::LINK_KEYS_FILE,
            flinkguard_signedlink::LINK_KEYS_FILE,
            &link_keys,
        )?);
        if config.gateway.service_tokens {
            let files = flinkguard_token::SigningKeyFiles::in_pki(&pki);
            for path in [files.key, files.jwks] {
                let name = file_name(&path);
                gateway_files.push(secret_file(&name, &name, &path)?);
            }
        }

        let mut secret_values = Vec::new();
        for password in [pki.internal_password(), pki.upstream_password()] {
            secret_values.push(pki.read_password(&password)?.expose().to_owned());
        }
        for path in [pki.rest_password(), pki.rest_truststore_password()] {
            if path.is_file() {
                secret_values.push(pki.read_password(&path)?.expose().to_owned());
            }
        }
        for file in &gateway_files {
            let text = String::from_utf8_lossy(&file.bytes);
            if text.contains("PRIVATE KEY") || file.key == flinkguard_signedlink::LINK_KEYS_FILE {
                secret_values.push(text.trim().to_owned());
            }
        }

        secret_values.extend(connectors.secret_values.iter().cloned());
        Ok(Inputs {
            instance: config.cluster.name.clone(),
            flink_image: k8s
                .image
                .clone()
                .unwrap_or_else(|| default_flink_image(version)),
            gateway_image: k8s
                .gateway_image
                .clone()
                .unwrap_or_else(|| format!("flinkguard:{}", env!("CARGO_PKG_VERSION"))),
            namespace,
            ports,
            flink_config_file: format.file_name(),
            jobmanager_flink_config: flinkguard_render::render(format, &jobmanager)?,
            taskmanager_flink_config: flinkguard_render::render(format, &taskmanager)?,
            flinkguard_yaml: pod_flinkguard_yaml(config, &ports),
            internal_store: secret_file("internal.p12", "internal.p12", &pki.internal_keystore())?,
            upstream_store: secret_file(
                "upstream.p12",
                "upstream/upstream.p12",
                &pki.upstream_keystore(),
            )?,
            gateway_files,
            secret_values,
            connectors,
            k8s,
            security,
            version,
        })
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The official image's tag for a version (`flink:2.3.0-java17`).
fn default_flink_image(version: FlinkVersion) -> String {
    format!("flink:{version}-java17")
}

/// Settings files the rendered pods cannot carry yet: refused by name rather than dropped.
fn refuse_unsupported(loaded: &LoadedConfig) -> Result<(), K8sError> {
    let gateway = &loaded.config.gateway;
    let unsupported = |field, message: &str| K8sError::Unsupported {
        path: loaded.path.clone(),
        field,
        message: message.to_owned(),
    };
    if !gateway.upstream_mutual_tls() {
        return Err(unsupported(
            "gateway.upstream_client_cert_file",
            "render k8s needs the gateway→Flink REST identity (other containers share the pod's loopback); run `flinkguard pki create-upstream` and set gateway.upstream_server_cert_file, upstream_client_cert_file and upstream_client_key_file as `flinkguard init` does",
        ));
    }
    let application = loaded
        .config
        .kubernetes
        .as_ref()
        .is_some_and(|k| k.application.is_some());
    if application && loaded.config.flink.web_submit {
        return Err(unsupported(
            "flink.web_submit",
            "kubernetes.application runs the job in the image; jar uploads would let anyone with jars.upload run other code there. Set flink.web_submit: false",
        ));
    }
    if !gateway.client_ca_files.is_empty() {
        return Err(unsupported(
            "gateway.client_ca_files",
            "extra client CAs are not rendered into the pod yet; remove them for render k8s",
        ));
    }
    if gateway
        .jwt
        .iter()
        .any(|j| j.jwks_file.is_some() || j.jwks_ca_file.is_some())
    {
        return Err(unsupported(
            "gateway.jwt",
            "jwks_file / jwks_ca_file are not rendered into the pod yet; use jwks_url with a public CA",
        ));
    }
    if gateway
        .authorization_webhook
        .as_ref()
        .is_some_and(|w| w.ca_file.is_some())
    {
        return Err(unsupported(
            "gateway.authorization_webhook.ca_file",
            "the webhook CA is not rendered into the pod yet",
        ));
    }
    Ok(())
}

/// Moves every store path of the renderer's output from the host's PKI directory to the
/// pods' mount point. A path left pointing at the host is an error, not a broken pod.
fn move_store_paths(settings: &FlinkSettings, host_root: &Path) -> Result<FlinkSettings, K8sError> {
    let root = host_root.to_string_lossy().into_owned();
    let mut moved = FlinkSettings::default();
    for (key, value) in settings.iter() {
        let value = match value {
            SettingValue::Str(s) if s.starts_with(&root) => {
                SettingValue::Str(format!("{FLINK_PKI_DIR}{}", &s[root.len()..]))
            }
            SettingValue::Str(s) if s.contains(&root) => {
                return Err(K8sError::Io {
                    path: PathBuf::from(s),
                    source: std::io::Error::other(format!(
                        "{key} names a host path the pods cannot see"
                    )),
                });
            }
            other => other.clone(),
        };
        moved.set(key, value);
    }
    Ok(moved)
}

/// Settings of a cluster spread over pods: fixed ports (NetworkPolicies name them), the
/// JobManager's Service as its address, and sizes that fit the containers' limits.
fn cluster_settings(
    ports: &Ports,
    k8s: &KubernetesSection,
    version: FlinkVersion,
) -> FlinkSettings {
    let mut s = FlinkSettings::default();
    // This file replaces the image's config.yaml, and with it the JVM flags Flink needs.
    s.set(
        "env.java.opts.all",
        SettingValue::Str(flinkguard_flink::shipped_java_options(version)),
    );
    let str = |v: &str| SettingValue::Str(v.to_owned());
    let int = |v: u16| SettingValue::Int(u64::from(v));
    s.set("jobmanager.rpc.address", str(crate::objects::JOBMANAGER));
    s.set("jobmanager.rpc.port", int(ports.jobmanager_rpc));
    s.set("jobmanager.bind-host", str("0.0.0.0"));
    s.set("blob.server.port", str(&ports.blob.to_string()));
    s.set("taskmanager.bind-host", str("0.0.0.0"));
    s.set(
        "taskmanager.rpc.port",
        str(&ports.taskmanager_rpc.to_string()),
    );
    s.set("taskmanager.data.port", int(ports.taskmanager_data));
    s.set(
        "taskmanager.numberOfTaskSlots",
        SettingValue::Int(u64::from(k8s.task_slots)),
    );
    s.set("jobmanager.memory.process.size", str("1600m"));
    s.set("taskmanager.memory.process.size", str("1728m"));
    // The root filesystem is read-only: everything Flink writes goes to the /tmp emptyDir.
    s.set("io.tmp.dirs", str("/tmp"));
    if let Some(parallelism) = k8s.application.as_ref().and_then(|a| a.parallelism) {
        s.set(
            "parallelism.default",
            SettingValue::Int(u64::from(parallelism)),
        );
    }
    s
}

/// flinkguard.yaml as the side-car reads it: listening on the pod's address, Flink at
/// loopback (the upstream is always 127.0.0.1:flink.rest_port), files at the mount points.
fn pod_flinkguard_yaml(config: &Config, ports: &Ports) -> String {
    let mut pod = config.clone();
    let pki = Path::new(GATEWAY_PKI_DIR);
    let state = Path::new(GATEWAY_STATE_DIR);
    pod.pki.dir = pki.to_owned();
    pod.gateway.listen = SocketAddr::from(([0, 0, 0, 0], ports.gateway));
    pod.gateway.admin_listen = Some(SocketAddr::from(([127, 0, 0, 1], ports.gateway_admin)));
    pod.gateway.upstream_server_cert_file = Some(pki.join("upstream/upstream.crt"));
    pod.gateway.upstream_ca_file = None;
    pod.gateway.upstream_client_cert_file = Some(pki.join("upstream/upstream.crt"));
    pod.gateway.upstream_client_key_file = Some(pki.join("upstream/upstream.key"));
    pod.gateway.audit_file = pod
        .gateway
        .audit_file
        .as_ref()
        .map(|_| state.join("audit.jsonl"));
    pod.gateway.ownership_file = state.join("ownership.redb");
    pod.to_yaml()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn store_paths_move_to_the_mount_point_and_host_paths_never_survive() {
        let root = Path::new("/home/me/prod/pki");
        let mut s = FlinkSettings::default();
        s.set(
            "security.ssl.internal.keystore",
            SettingValue::Str("/home/me/prod/pki/internal.p12".into()),
        );
        s.set("rest.port", SettingValue::Int(8081));
        let moved = move_store_paths(&s, root).unwrap();
        assert_eq!(
            moved.get("security.ssl.internal.keystore"),
            Some(&SettingValue::Str("/opt/flink/pki/internal.p12".into()))
        );
        assert_eq!(moved.get("rest.port"), Some(&SettingValue::Int(8081)));

        s.set(
            "env.java.opts.all",
            SettingValue::Str("-Dx=/home/me/prod/pki/other".into()),
        );
        let err = move_store_paths(&s, root).unwrap_err().to_string();
        assert!(err.contains("env.java.opts.all"), "{err}");
    }

    #[test]
    fn internal_ports_are_fixed_in_the_flink_config() {
        let ports = Ports::new(6123, 8081);
        let s = cluster_settings(
            &ports,
            &KubernetesSection::default(),
            FlinkVersion::new(2, 3, 0),
        );
        for key in [
            "jobmanager.rpc.port",
            "blob.server.port",
            "taskmanager.rpc.port",
            "taskmanager.data.port",
        ] {
            let value = s.get(key).unwrap().to_string();
            assert!(value.parse::<u16>().is_ok_and(|p| p != 0), "{key}: {value}");
        }
        assert_eq!(
            s.get("jobmanager.rpc.address").unwrap().to_string(),
            crate::objects::JOBMANAGER
        );
    }
}
