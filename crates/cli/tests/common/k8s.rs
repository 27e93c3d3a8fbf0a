//! Reading what `render k8s` / `render operator` wrote, and validating it with
//! `kubernetes-validate`: shared by both test binaries.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;

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
pub(crate) fn kubernetes_validate() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME");
    let tool = Path::new(&home).join(".cache/flinkguard/venv-k8s/bin/kubernetes-validate");
    assert!(
        tool.is_file(),
        "{} is missing: run `cargo xtask prepare` to install kubernetes-validate",
        tool.display()
    );
    tool
}
