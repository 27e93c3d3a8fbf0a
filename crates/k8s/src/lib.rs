//! Plain Kubernetes manifests for a hardened Flink session cluster with the flinkguard gateway
//! as the JobManager's side-car: `flinkguard render k8s`.
//!
//! [`render`] turns a loaded `flinkguard.yaml` and its PKI into [`Manifests`]: typed JSON
//! objects (built by small functions in [`objects`], never text templates) serialized to YAML,
//! one file per kind group plus a `kustomization.yaml` listing them. [`Manifests::write_dir`]
//! writes them all or nothing.
//!
//! The Flink configuration inside is the real output of `flinkguard_render` (what `flinkguard
//! flink-config` writes), with store paths moved to where the pods mount them. It holds the
//! keystore passwords, so it is a Secret; the only ConfigMaps are flinkguard.yaml and (with
//! Kerberos) krb5.conf, which hold no secret by design, and [`render`] refuses to produce a
//! ConfigMap containing any password or private key of the PKI or a connector truststore.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use flinkguard_config::LoadedConfig;
use flinkguard_pki::PkiError;

mod connectors;
mod ha;
mod objects;
mod operator;
mod pod_config;

pub use objects::{GATEWAY_BINARY, Ports};
pub use operator::{CRD_FLINK_VERSIONS, OPERATOR_REST_TLS, crd_flink_version, render_operator};

/// The file that lists every manifest for `kubectl apply -k`.
pub const KUSTOMIZATION: &str = "kustomization.yaml";

/// Why manifests could not be rendered or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum K8sError {
    /// The PKI is missing or unusable.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// Rendering the Flink configuration failed.
    #[error(transparent)]
    Render(#[from] flinkguard_render::RenderError),
    /// A PKI file the pods need is missing.
    #[error("{}: missing; run `flinkguard init` to create the PKI (or `{}` for the upstream identity)", path.display(), flinkguard_pki::CREATE_UPSTREAM_COMMAND)]
    MissingPkiFile {
        /// The file.
        path: PathBuf,
    },
    /// Creating the gateway's token or link keys failed.
    #[error("{0}")]
    Keys(String),
    /// flinkguard.yaml asks for something the rendered deployment cannot do (yet).
    #[error("{}: {field}: {message}", path.display())]
    Unsupported {
        /// flinkguard.yaml.
        path: PathBuf,
        /// The dotted field.
        field: &'static str,
        /// Why, and the fix.
        message: String,
    },
    /// A secret value would have ended up in a ConfigMap; nothing is written.
    #[error("refusing to write a secret value into ConfigMap {0}")]
    SecretInConfigMap(String),
    /// `--out` holds something else.
    #[error("{}: not empty; choose an empty or new directory, or pass --force to replace it", .0.display())]
    OutNotEmpty(PathBuf),
    /// A file flinkguard.yaml names (keytab, krb5.conf, a connector's CA) is missing or
    /// does not hold what it should.
    #[error("{}: {field}: {}: {message}", config.display(), file.display())]
    InputFile {
        /// flinkguard.yaml.
        config: PathBuf,
        /// The dotted field that names the file.
        field: String,
        /// The file.
        file: PathBuf,
        /// What is wrong, and the fix.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> K8sError + '_ {
    move |source| K8sError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One rendered file.
#[derive(Debug, Clone)]
pub struct ManifestFile {
    /// File name inside the output directory.
    pub name: &'static str,
    /// The objects it holds, in order.
    pub objects: Vec<serde_json::Value>,
    /// Holds Secrets: written with mode 0600.
    pub secret: bool,
}

impl ManifestFile {
    /// The YAML text: one document per object.
    pub fn to_yaml(&self) -> String {
        self.objects
            .iter()
            // Serializing a JSON value to YAML cannot fail.
            .map(|o| serde_yaml_ng::to_string(o).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("---\n")
    }
}

/// Every rendered file, kustomization last.
#[derive(Debug, Clone)]
pub struct Manifests {
    /// The manifest files, without the kustomization.
    pub files: Vec<ManifestFile>,
}

impl Manifests {
    /// Every object of every file.
    pub fn objects(&self) -> impl Iterator<Item = &serde_json::Value> {
        self.files.iter().flat_map(|f| f.objects.iter())
    }

    /// The `kustomization.yaml` listing every manifest file.
    pub fn kustomization(&self) -> String {
        let doc = serde_json::json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": self.files.iter().map(|f| f.name).collect::<Vec<_>>(),
        });
        serde_yaml_ng::to_string(&doc).unwrap_or_default()
    }

    /// Writes every file into `out`, all or nothing: into a temporary sibling directory first,
    /// renamed into place at the end. A non-empty `out` is replaced only with `force`.
    pub fn write_dir(&self, out: &Path, force: bool) -> Result<(), K8sError> {
        check_out_dir(out, force)?;
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io(parent))?;
        let staging = tempfile::Builder::new()
            .prefix(".flinkguard-render-")
            .tempdir_in(parent)
            .map_err(io(parent))?;
        for file in &self.files {
            let mode = if file.secret {
                flinkguard_files::Mode::Secret
            } else {
                flinkguard_files::Mode::Public
            };
            let path = staging.path().join(file.name);
            flinkguard_files::write_atomic(&path, file.to_yaml().as_bytes(), mode)
                .map_err(|e| K8sError::Keys(e.to_string()))?;
        }
        let path = staging.path().join(KUSTOMIZATION);
        flinkguard_files::write_atomic(
            &path,
            self.kustomization().as_bytes(),
            flinkguard_files::Mode::Public,
        )
        .map_err(|e| K8sError::Keys(e.to_string()))?;
        // The output holds Secrets: owner only, like the PKI.
        set_private(staging.path())?;
        let staged = staging.keep();
        if out.exists() {
            let old = tempfile::Builder::new()
                .prefix(".flinkguard-render-old-")
                .tempdir_in(parent)
                .map_err(io(parent))?
                .keep();
            let old_out = old.join("out");
            fs::rename(out, &old_out).map_err(io(out))?;
            fs::rename(&staged, out).map_err(io(out))?;
            fs::remove_dir_all(&old).map_err(io(&old))?;
        } else {
            fs::rename(&staged, out).map_err(io(out))?;
        }
        Ok(())
    }
}

/// Refuses an output directory that holds something, unless `force`: checked before
/// rendering too, so a refused run changes nothing.
pub fn check_out_dir(out: &Path, force: bool) -> Result<(), K8sError> {
    let occupied = match fs::read_dir(out) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io(out)(e)),
    };
    if occupied && !force {
        return Err(K8sError::OutNotEmpty(out.to_owned()));
    }
    Ok(())
}

#[cfg(unix)]
fn set_private(dir: &Path) -> Result<(), K8sError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

#[cfg(not(unix))]
fn set_private(_dir: &Path) -> Result<(), K8sError> {
    Ok(())
}

/// Renders the manifests for this deployment.
///
/// Creates the gateway's token-signing key and link keys in the PKI when missing, as the
/// gateway would at its first start: in the pod the PKI is a read-only Secret.
pub fn render(loaded: &LoadedConfig) -> Result<Manifests, K8sError> {
    let inputs = pod_config::Inputs::read(loaded)?;
    let files = objects::build(&inputs);
    let manifests = Manifests { files };
    check_no_secret_in_config_maps(&manifests, &inputs.secret_values)?;
    Ok(manifests)
}

/// The guard behind "no secret value ever in a ConfigMap": every password and private key
/// of the PKI is looked for in every ConfigMap value.
fn check_no_secret_in_config_maps(
    manifests: &Manifests,
    secrets: &[String],
) -> Result<(), K8sError> {
    for object in manifests.objects() {
        if object["kind"] != "ConfigMap" {
            continue;
        }
        let data: BTreeMap<String, String> =
            serde_json::from_value(object["data"].clone()).unwrap_or_default();
        for value in data.values() {
            if secrets
                .iter()
                .any(|s| !s.is_empty() && value.contains(s.as_str()))
                || value.contains("PRIVATE KEY-----")
            {
                let name = object["metadata"]["name"].as_str().unwrap_or("?");
                return Err(K8sError::SecretInConfigMap(name.to_owned()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config_map(value: &str) -> Manifests {
        Manifests {
            files: vec![ManifestFile {
                name: "configmaps.yaml",
                objects: vec![serde_json::json!({
                    "kind": "ConfigMap",
                    "metadata": {"name": "cm"},
                    "data": {"a": value},
                })],
                secret: false,
            }],
        }
    }

    #[test]
    fn a_password_or_private_key_in_a_config_map_is_refused() {
        let secrets = vec!["s3cret-password".to_owned()];
        assert!(check_no_secret_in_config_maps(&config_map("x: 1"), &secrets).is_ok());
        let err = check_no_secret_in_config_maps(&config_map("p: s3cret-password"), &secrets)
            .unwrap_err();
        assert!(matches!(err, K8sError::SecretInConfigMap(ref n) if n == "cm"));
        assert!(
            check_no_secret_in_config_maps(
                &config_map("-----BEGIN PRIVATE KEY-----\nAAAA"),
                &secrets
            )
            .is_err()
        );
    }

    #[test]
    fn the_kustomization_lists_every_file() {
        let manifests = config_map("x");
        let k: serde_json::Value = serde_yaml_ng::from_str(&manifests.kustomization()).unwrap();
        assert_eq!(k["resources"], serde_json::json!(["configmaps.yaml"]));
        assert_eq!(k["kind"], "Kustomization");
    }

    #[test]
    fn write_dir_refuses_foreign_content_and_replaces_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("other"), "x").unwrap();
        let manifests = config_map("x");
        assert!(matches!(
            manifests.write_dir(&out, false),
            Err(K8sError::OutNotEmpty(_))
        ));
        assert!(out.join("other").exists());
        manifests.write_dir(&out, true).unwrap();
        assert!(!out.join("other").exists());
        assert!(out.join(KUSTOMIZATION).is_file());
        assert!(out.join("configmaps.yaml").is_file());
    }
}
