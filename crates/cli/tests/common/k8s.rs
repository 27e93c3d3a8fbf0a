//! Reading what `render k8s` / `render operator` wrote, validating it with
//! `kubernetes-validate`, and laying a container's volumes out as files under a temp root
//! the way the kubelet would mount them: shared by the render test binaries.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;

/// `flinkguard init` in `dir`, then `kubernetes` (a `kubernetes:` section, or nothing)
/// appended to its flinkguard.yaml.
pub(crate) fn init_with_kubernetes(dir: &Path, kubernetes: &str) {
    super::flinkguard_ok(dir, &["init", "--quiet"]);
    let path = dir.join("flinkguard.yaml");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str(kubernetes);
    fs::write(&path, text).unwrap();
}

/// Every object of every file the kustomization lists, with its file name.
pub(crate) fn load(out: &Path) -> Vec<(String, Value)> {
    let kustomization: Value =
        serde_yaml_ng::from_str(&fs::read_to_string(out.join("kustomization.yaml")).unwrap())
            .unwrap();
    let mut objects = Vec::new();
    for file in kustomization["resources"].as_array().unwrap() {
        let name = file.as_str().unwrap();
        let text = fs::read_to_string(out.join(name)).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            objects.push((name.to_owned(), value));
        }
    }
    objects
}

/// The objects of one kind.
pub(crate) fn kind<'a>(objects: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .map(|(_, o)| o)
        .filter(|o| o["kind"] == kind)
        .collect()
}

/// The secret values of the PKI: every password file and every PEM private key.
pub(crate) fn pki_secrets(pki: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![pki.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let password = path.extension().is_some_and(|e| e == "password");
            if password || text.contains("PRIVATE KEY-----") {
                found.push(text.trim().to_owned());
            }
        }
    }
    assert!(
        found.len() >= 4,
        "expected passwords and keys under {pki:?}"
    );
    found
}

/// The decoded text of one key of one Secret.
pub(crate) fn secret_file(objects: &[(String, Value)], secret: &str, key: &str) -> String {
    let object = kind(objects, "Secret")
        .into_iter()
        .find(|o| o["metadata"]["name"] == secret)
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(object["data"][key].as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Asserts the security properties every container must have, init containers included.
pub(crate) fn assert_locked_down(container: &Value) {
    let sc = &container["securityContext"];
    let name = &container["name"];
    assert_eq!(sc["runAsNonRoot"], true, "{name}");
    assert!(sc["runAsUser"].as_u64().unwrap() > 0, "{name}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{name}"
    );
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
    for limit in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][limit][resource].is_string(),
                "{name} {limit}"
            );
        }
    }
}

/// Runs `kubernetes-validate --strict -k 1.30.0` on `files` and insists on a clean report.
pub(crate) fn validate(files: &[PathBuf]) {
    let tool = kubernetes_validate();
    let result = Command::new(&tool)
        .args(["--strict", "-k", "1.30.0"])
        .args(files)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(
        result.status.success(),
        "kubernetes-validate failed:\n{report}"
    );
    assert!(!report.contains("ERROR"), "{report}");
}

/// kubernetes-validate from the venv `cargo xtask prepare` installs.
fn kubernetes_validate() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME");
    let tool = Path::new(&home).join(".cache/flinkguard/venv-k8s/bin/kubernetes-validate");
    assert!(
        tool.is_file(),
        "{} is missing: run `cargo xtask prepare` to install kubernetes-validate",
        tool.display()
    );
    tool
}

/// The object of this kind and name.
pub(crate) fn object<'a>(objects: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .map(|(_, o)| o)
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

/// A Secret's or ConfigMap's files: key → bytes (Secret `data` is base64).
fn volume_source(objects: &[(String, Value)], kind: &str, name: &str) -> BTreeMap<String, Vec<u8>> {
    let object = object(objects, kind, name);
    let data = object["data"].as_object().cloned().unwrap_or_default();
    data.into_iter()
        .map(|(key, value)| {
            let text = value.as_str().unwrap();
            let bytes = if kind == "Secret" {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .unwrap()
            } else {
                text.as_bytes().to_vec()
            };
            (key, bytes)
        })
        .collect()
}

/// A container's mounts laid out under a host directory: each `mountPath` of the pod is
/// `root` + `mountPath` on the host.
#[derive(Debug)]
pub(crate) struct ContainerFs {
    root: PathBuf,
    /// Mount paths, longest first (so `/a/b` wins over `/a`).
    mount_paths: Vec<String>,
}

impl ContainerFs {
    /// Writes the files of every volume `container` (of the pod template `pod_spec`) mounts:
    /// Secrets, projected Secrets and ConfigMaps with their `items` and `defaultMode`; an
    /// emptyDir or a (new) PersistentVolumeClaim becomes an empty directory. Unknown volume kinds fail the test.
    pub(crate) fn lay_out(
        objects: &[(String, Value)],
        pod_spec: &Value,
        container: &str,
        root: &Path,
    ) -> ContainerFs {
        let all = pod_spec["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(pod_spec["initContainers"].as_array().into_iter().flatten());
        let container = all
            .clone()
            .find(|c| c["name"] == container)
            .unwrap_or_else(|| panic!("no container {container}"));
        let mut mount_paths = Vec::new();
        for mount in container["volumeMounts"].as_array().unwrap() {
            let path = mount["mountPath"].as_str().unwrap();
            let volume = pod_spec["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == mount["name"])
                .unwrap_or_else(|| panic!("no volume {}", mount["name"]));
            let dir = root.join(path.trim_start_matches('/'));
            fs::create_dir_all(&dir).unwrap();
            let mode = volume_mode(volume);
            if let Some(secret) = volume.get("secret") {
                let files =
                    volume_source(objects, "Secret", secret["secretName"].as_str().unwrap());
                write_items(&dir, &files, &secret["items"], mode);
            } else if let Some(config_map) = volume.get("configMap") {
                let files =
                    volume_source(objects, "ConfigMap", config_map["name"].as_str().unwrap());
                write_items(&dir, &files, &config_map["items"], mode);
            } else if let Some(projected) = volume.get("projected") {
                for source in projected["sources"].as_array().unwrap() {
                    let (kind, source) = if source["secret"].is_object() {
                        ("Secret", &source["secret"])
                    } else {
                        assert!(
                            source["configMap"].is_object(),
                            "projected source {source} is neither a Secret nor a ConfigMap"
                        );
                        ("ConfigMap", &source["configMap"])
                    };
                    let files = volume_source(objects, kind, source["name"].as_str().unwrap());
                    write_items(&dir, &files, &source["items"], mode);
                }
            } else {
                // A new claim is an empty directory too.
                assert!(
                    volume.get("emptyDir").is_some()
                        || volume.get("persistentVolumeClaim").is_some(),
                    "volume kind of {volume}"
                );
            }
            mount_paths.push(path.trim_end_matches('/').to_owned());
        }
        mount_paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
        ContainerFs {
            root: root.to_owned(),
            mount_paths,
        }
    }

    /// Where the pod path `path` (under one of the mounts) is on the host.
    pub(crate) fn host_path(&self, path: &str) -> PathBuf {
        self.relocate(path)
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("{path} is under no mount of the container"))
    }

    /// `value` with its mount-path prefix moved under the root; `None` when it names no
    /// mounted path.
    fn relocate(&self, value: &str) -> Option<String> {
        self.mount_paths.iter().find_map(|mount| {
            let rest = value.strip_prefix(mount.as_str())?;
            (rest.is_empty() || rest.starts_with('/'))
                .then(|| format!("{}{mount}{rest}", self.root.display()))
        })
    }

    /// A YAML file as the container would read it from the host: every string value that
    /// names a mounted path now names it under the root, and so does the value of every
    /// `-Dname=/path` JVM option in a string (`env.java.opts.*`). Nothing else changes.
    pub(crate) fn relocate_yaml(&self, text: &str) -> String {
        let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap();
        self.relocate_value(&mut doc);
        serde_yaml_ng::to_string(&doc).unwrap()
    }

    fn relocate_value(&self, value: &mut serde_yaml_ng::Value) {
        match value {
            serde_yaml_ng::Value::String(s) => {
                if let Some(moved) = self.relocate(s) {
                    *s = moved;
                } else if s.contains("-D") {
                    let tokens: Vec<String> = s
                        .split_whitespace()
                        .map(|token| {
                            token
                                .strip_prefix("-D")
                                .and_then(|t| t.split_once('='))
                                .and_then(|(name, path)| {
                                    Some(format!("-D{name}={}", self.relocate(path)?))
                                })
                                .unwrap_or_else(|| token.to_owned())
                        })
                        .collect();
                    let joined = tokens.join(" ");
                    if joined.split_whitespace().ne(s.split_whitespace()) {
                        *s = joined;
                    }
                }
            }
            serde_yaml_ng::Value::Sequence(items) => {
                items.iter_mut().for_each(|v| self.relocate_value(v))
            }
            serde_yaml_ng::Value::Mapping(map) => {
                map.iter_mut().for_each(|(_, v)| self.relocate_value(v))
            }
            _ => {}
        }
    }
}

fn volume_mode(volume: &Value) -> u32 {
    ["secret", "configMap", "projected"]
        .iter()
        .find_map(|kind| volume[kind]["defaultMode"].as_u64())
        .map_or(0o644, |m| u32::try_from(m).unwrap())
}

/// Writes `items` (`key` → `path`, an item's own `mode` over the volume's) of `files`, or
/// every key when `items` is absent, as the kubelet does; a listed key that is missing fails,
/// as it fails the pod.
fn write_items(dir: &Path, files: &BTreeMap<String, Vec<u8>>, items: &Value, mode: u32) {
    let items: Vec<(String, String, u32)> = match items.as_array() {
        Some(items) => items
            .iter()
            .map(|i| {
                (
                    i["key"].as_str().unwrap().to_owned(),
                    i["path"].as_str().unwrap().to_owned(),
                    i["mode"]
                        .as_u64()
                        .map_or(mode, |m| u32::try_from(m).unwrap()),
                )
            })
            .collect(),
        None => files.keys().map(|k| (k.clone(), k.clone(), mode)).collect(),
    };
    for (key, path, mode) in items {
        let bytes = files
            .get(&key)
            .unwrap_or_else(|| panic!("the volume lists key {key}, which its source lacks"));
        let target = dir.join(&path);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(&target, bytes).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(mode)).unwrap();
    }
}
