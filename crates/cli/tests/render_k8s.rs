//! `flinkguard render k8s`: the real binary after `flinkguard init`; every property is checked
//! on the parsed objects, and every object is validated by `kubernetes-validate --strict`.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;
mod gatewaykit;

use common::k8s::{
    ContainerFs, assert_locked_down, init_with_kubernetes as setup, kind, load, pki_secrets,
    secret_file,
};
use common::{expect_input_error, flinkguard, flinkguard_ok};
use gatewaykit::GatewayProcess;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const KUBERNETES: &str = "kubernetes:
  namespace: flink-prod
  taskmanagers: 2
  ingress_from:
    namespaces: [ingress-nginx]
    cidrs: [10.20.0.0/16]
  egress:
  - name: kafka
    cidrs: [10.30.0.0/24]
    ports: [9093]
";

fn pod_specs(objects: &[(String, Value)]) -> Vec<&Value> {
    objects
        .iter()
        .map(|(_, o)| o)
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
        .map(|o| &o["spec"]["template"]["spec"])
        .collect()
}

#[test]
fn rendered_objects_carry_the_security_properties() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), KUBERNETES);
    flinkguard_ok(dir.path(), &["render", "k8s", "--out", "out"]);
    let out = dir.path().join("out");
    let objects = load(&out);

    // The kustomization lists exactly the files written.
    let written: BTreeSet<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "kustomization.yaml")
        .collect();
    let listed: BTreeSet<String> = objects.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(written, listed);

    // Labels and namespace on every object.
    for (file, object) in &objects {
        let labels = &object["metadata"]["labels"];
        for key in ["name", "instance", "component", "part-of", "managed-by"] {
            assert!(
                labels[format!("app.kubernetes.io/{key}")].is_string(),
                "{file}: {} lacks app.kubernetes.io/{key}",
                object["metadata"]["name"]
            );
        }
        if object["kind"] != "Namespace" {
            assert_eq!(object["metadata"]["namespace"], "flink-prod", "{file}");
        }
    }
    let namespace = kind(&objects, "Namespace")[0];
    for mode in ["enforce", "audit", "warn"] {
        assert_eq!(
            namespace["metadata"]["labels"][format!("pod-security.kubernetes.io/{mode}")],
            "restricted"
        );
    }

    // Every pod and container is locked down.
    let pods = pod_specs(&objects);
    assert_eq!(pods.len(), 2);
    for pod in &pods {
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let containers = pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(pod["initContainers"].as_array().unwrap());
        for c in containers {
            assert_locked_down(c);
        }
    }
    for account in kind(&objects, "ServiceAccount") {
        assert_eq!(account["automountServiceAccountToken"], false);
    }

    // Default deny, in and out.
    let policies = kind(&objects, "NetworkPolicy");
    assert!(policies.iter().any(|p| {
        p["spec"]["podSelector"] == serde_json::json!({})
            && p["spec"]["policyTypes"] == serde_json::json!(["Ingress", "Egress"])
            && p["spec"]["ingress"].is_null()
            && p["spec"]["egress"].is_null()
    }));
    // No policy admits everyone: every rule names its peers and its ports.
    for p in &policies {
        for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
            for rule in p["spec"][direction].as_array().into_iter().flatten() {
                assert!(!rule[peers].as_array().unwrap().is_empty(), "{p}");
                assert!(!rule["ports"].as_array().unwrap().is_empty(), "{p}");
            }
        }
    }
    let gateway_ingress = policies
        .iter()
        .find(|p| p["metadata"]["name"] == "gateway-ingress")
        .unwrap();
    assert_eq!(
        gateway_ingress["spec"]["ingress"][0]["ports"],
        serde_json::json!([{"protocol": "TCP", "port": 8443}])
    );

    // No secret value in any ConfigMap.
    let secrets = pki_secrets(&dir.path().join("pki"));
    for config_map in kind(&objects, "ConfigMap") {
        for (key, value) in config_map["data"].as_object().unwrap() {
            let value = value.as_str().unwrap();
            assert!(!value.contains("PRIVATE KEY"), "{key}");
            for secret in &secrets {
                assert!(!value.contains(secret.as_str()), "{key} holds a secret");
            }
        }
    }

    // The Flink config is the renderer's, REST on loopback, stores at the mount points.
    let flink: Value =
        serde_yaml_ng::from_str(&secret_file(&objects, "flink-jm-config", "config.yaml")).unwrap();
    assert_eq!(flink["rest"]["bind-address"], "127.0.0.1");
    assert_eq!(flink["security"]["ssl"]["internal"]["enabled"], true);
    assert_eq!(
        flink["security"]["ssl"]["internal"]["keystore"],
        "/opt/flink/pki/internal.p12"
    );
    let tm: Value =
        serde_yaml_ng::from_str(&secret_file(&objects, "flink-tm-config", "config.yaml")).unwrap();
    assert!(
        tm["security"]["ssl"]["rest"].is_null(),
        "TaskManagers get no REST identity"
    );
    let rest_port = flink["rest"]["port"].as_u64().unwrap();

    // The only Service port for REST is the gateway's; Flink's REST port is nowhere.
    let mut rest_like = Vec::new();
    for service in kind(&objects, "Service") {
        for port in service["spec"]["ports"].as_array().unwrap() {
            assert_ne!(port["port"].as_u64(), Some(rest_port), "{service}");
            if port["name"] == "https" {
                rest_like.push(service["metadata"]["name"].as_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(rest_like, ["flinkguard-gateway"]);
    for pod in &pods {
        for c in pod["containers"].as_array().unwrap() {
            for port in c["ports"].as_array().into_iter().flatten() {
                assert_ne!(port["containerPort"].as_u64(), Some(rest_port));
            }
        }
    }

    validate(&out);
}

/// Validates every file but the kustomization.
fn validate(out: &Path) {
    let files: Vec<PathBuf> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    common::k8s::validate(&files);
}

#[test]
fn no_ingress_source_means_nobody_reaches_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), "");
    flinkguard_ok(dir.path(), &["render", "k8s", "--out", "out"]);
    let objects = load(&dir.path().join("out"));
    for p in kind(&objects, "NetworkPolicy") {
        for rule in p["spec"]["ingress"].as_array().into_iter().flatten() {
            assert!(
                !rule["ports"].to_string().contains("8443"),
                "gateway port admitted without a configured source: {p}"
            );
        }
    }
    // Namespace defaults to cluster.name.
    assert_eq!(kind(&objects, "Namespace")[0]["metadata"]["name"], "flink");
}

#[test]
fn refuses_a_non_empty_out_dir_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), "");
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("precious.txt"), "keep me").unwrap();
    let result = flinkguard(dir.path(), &["render", "k8s", "--out", "out"]);
    expect_input_error(&result, &["out", "--force"]);
    assert_eq!(
        fs::read_to_string(out.join("precious.txt")).unwrap(),
        "keep me"
    );

    flinkguard_ok(dir.path(), &["render", "k8s", "--out", "out", "--force"]);
    assert!(!out.join("precious.txt").exists());
    assert!(out.join("kustomization.yaml").is_file());
    // Nothing staged is left next to it.
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".flinkguard-render"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn missing_pki_is_one_error_naming_the_file_and_init() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), "");
    fs::remove_file(dir.path().join("pki/internal.p12")).unwrap();
    let result = flinkguard(dir.path(), &["render", "k8s", "--out", "out"]);
    expect_input_error(&result, &["internal.p12", "flinkguard init"]);
    assert!(!dir.path().join("out").exists(), "nothing half-written");
}

#[test]
fn bad_kubernetes_section_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        "kubernetes:\n  egress:\n  - name: kafka\n    cidrs: []\n    ports: [9093]\n",
    );
    let result = flinkguard(dir.path(), &["render", "k8s", "--out", "out"]);
    expect_input_error(&result, &["kubernetes.egress", "cidrs"]);
}

/// The JobManager pod template's container named `name`.
fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

#[test]
fn ha_mounts_the_api_token_with_a_configmaps_only_role_and_opens_only_the_api_server() {
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        "kubernetes:
  high_availability:
    storage_dir: s3://flink-state/ha
    api_server:
      cidrs: [172.18.0.2/32]
      ports: [6443]
",
    );
    flinkguard_ok(dir.path(), &["render", "k8s", "--out", "out"]);
    let out = dir.path().join("out");
    let objects = load(&out);

    // Exactly the verbs Flink's HA uses, on ConfigMaps only; TaskManagers only read.
    let roles = kind(&objects, "Role");
    assert_eq!(roles.len(), 2);
    for role in roles {
        let rules = role["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 1, "{role}");
        assert_eq!(rules[0]["apiGroups"], serde_json::json!([""]));
        assert_eq!(rules[0]["resources"], serde_json::json!(["configmaps"]));
        let verbs: Vec<&str> = rules[0]["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(!verbs.contains(&"*"));
        let expected: &[&str] = if role["metadata"]["name"] == "flink-jm" {
            &[
                "get",
                "list",
                "watch",
                "create",
                "update",
                "delete",
                "deletecollection",
            ]
        } else {
            &["get", "list", "watch"]
        };
        assert_eq!(verbs, expected, "{}", role["metadata"]["name"]);
    }
    for binding in kind(&objects, "RoleBinding") {
        let name = &binding["metadata"]["name"];
        assert_eq!(&binding["roleRef"]["name"], name);
        assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
        assert_eq!(&binding["subjects"][0]["name"], name);
    }
    // The token is mounted into Flink's pods, which need the API; the accounts still do not
    // hand one to any other pod.
    for pod in pod_specs(&objects) {
        assert_eq!(pod["automountServiceAccountToken"], true);
    }
    for account in kind(&objects, "ServiceAccount") {
        assert_eq!(account["automountServiceAccountToken"], false);
    }
    let egress = kind(&objects, "NetworkPolicy")
        .into_iter()
        .find(|p| p["metadata"]["name"] == "egress-kubernetes-api")
        .unwrap();
    assert_eq!(
        egress["spec"]["egress"],
        serde_json::json!([{
            "to": [{"ipBlock": {"cidr": "172.18.0.2/32"}}],
            "ports": [{"protocol": "TCP", "port": 6443}],
        }])
    );

    // HA settings in both configs; the RPC port pinned (HA would pick a random one).
    for secret in ["flink-jm-config", "flink-tm-config"] {
        let config = secret_file(&objects, secret, "config.yaml");
        for expected in [
            "type: kubernetes",
            "storageDir: s3://flink-state/ha",
            "cluster-id: flink",
            "namespace: flink",
            "port: '6123'",
        ] {
            assert!(
                config.contains(expected),
                "{secret} lacks {expected}:\n{config}"
            );
        }
    }
    validate(&out);
}

#[test]
fn gateway_state_is_a_claim_unless_loudly_ephemeral() {
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        "kubernetes:\n  gateway_state:\n    storage_size: 5Gi\n    storage_class: fast-ssd\n",
    );
    flinkguard_ok(dir.path(), &["render", "k8s", "--out", "out"]);
    let objects = load(&dir.path().join("out"));
    let claim = kind(&objects, "PersistentVolumeClaim")[0];
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "5Gi");
    assert_eq!(claim["spec"]["storageClassName"], "fast-ssd");
    let jm = pod_specs(&objects)[0];
    let state = jm["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "gateway-state")
        .unwrap();
    assert_eq!(
        state["persistentVolumeClaim"]["claimName"],
        claim["metadata"]["name"]
    );
    validate(&dir.path().join("out"));

    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        "kubernetes:\n  gateway_state:\n    ephemeral_state_lost_on_restart: true\n",
    );
    flinkguard_ok(dir.path(), &["render", "k8s", "--out", "out"]);
    let objects = load(&dir.path().join("out"));
    assert!(kind(&objects, "PersistentVolumeClaim").is_empty());
    let jm = pod_specs(&objects)[0];
    let state = jm["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "gateway-state")
        .unwrap();
    assert!(state["emptyDir"].is_object(), "{state}");
}

#[test]
fn application_mode_runs_the_images_jar_and_refuses_uploads() {
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        "kubernetes:
  application:
    jar: /opt/flink/usrlib/job.jar
    entry_class: com.example.Job
    args: [--input, kafka]
",
    );
    flinkguard_ok(dir.path(), &["render", "k8s", "--out", "out"]);
    let objects = load(&dir.path().join("out"));
    let jm = container(pod_specs(&objects)[0], "jobmanager");
    assert_eq!(
        jm["command"],
        serde_json::json!(["/opt/flink/bin/standalone-job.sh"])
    );
    assert_eq!(
        jm["args"],
        serde_json::json!([
            "start-foreground",
            "--job-classname",
            "com.example.Job",
            "--jars",
            "/opt/flink/usrlib/job.jar",
            "--",
            "--input",
            "kafka"
        ])
    );
    validate(&dir.path().join("out"));

    // Uploads stay off: asking for both is an error naming the field.
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        "kubernetes:\n  application: {jar: /opt/flink/usrlib/job.jar, entry_class: com.example.Job}\n",
    );
    let path = dir.path().join("flinkguard.yaml");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replace("web_submit: false", "web_submit: true")).unwrap();
    let result = flinkguard(dir.path(), &["render", "k8s", "--out", "out"]);
    expect_input_error(&result, &["flink.web_submit", "false"]);
    assert!(!dir.path().join("out").exists());
}

/// A Secret volume as the kubelet writes it: the files in a timestamped directory, `..data`
/// a symlink to it, and each top-level entry a symlink through `..data`. An update writes a
/// new directory and swaps `..data` in one rename, so every file changes at once.
struct SecretVolume {
    dir: PathBuf,
    generation: u32,
}

impl SecretVolume {
    /// Turns the files `lay_out` wrote into `dir` into the kubelet's layout.
    fn adopt(dir: &Path) -> SecretVolume {
        let first = dir.join("..gen-1");
        fs::create_dir(&first).unwrap();
        let entries: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| !n.to_string_lossy().starts_with(".."))
            .collect();
        for name in &entries {
            fs::rename(dir.join(name), first.join(name)).unwrap();
            std::os::unix::fs::symlink(Path::new("..data").join(name), dir.join(name)).unwrap();
        }
        std::os::unix::fs::symlink("..gen-1", dir.join("..data")).unwrap();
        SecretVolume {
            dir: dir.to_owned(),
            generation: 1,
        }
    }

    /// The kubelet's update: the new files (from a directory laid out like the volume) in a
    /// new generation, `..data` swapped to it by rename.
    fn update_from(&mut self, files: &Path) {
        self.generation += 1;
        let next = format!("..gen-{}", self.generation);
        let status = Command::new("cp")
            .arg("-rL")
            .arg(files)
            .arg(self.dir.join(&next))
            .status()
            .unwrap();
        assert!(status.success());
        let staged = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&next, &staged).unwrap();
        fs::rename(&staged, self.dir.join("..data")).unwrap();
    }
}

/// SHA-256 fingerprint of the certificate a TLS server presents.
fn served_certificate(port: u16) -> String {
    let mut connect = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", "localhost"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(connect.stdout.take().unwrap())
        .output()
        .unwrap();
    connect.wait().unwrap();
    assert!(
        x509.status.success(),
        "no certificate read from port {port}"
    );
    String::from_utf8(std::mem::take(&mut x509.stdout)).unwrap()
}

fn file_certificate(path: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Rotation as docs/kubernetes.md tells it: `pki renew-rest`, render again, apply. The
/// kubelet then swaps the gateway's Secret volume, and the running side-car serves the new
/// certificate without a restart.
#[test]
fn a_renewed_gateway_certificate_reaches_the_running_side_car_through_the_secret_volume() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, "");
    flinkguard_ok(d, &["render", "k8s", "--out", "out"]);
    let objects = load(&d.join("out"));
    let pod = pod_specs(&objects)[0];
    let gateway_fs = ContainerFs::lay_out(&objects, pod, "gateway", &d.join("pod"));
    let pki_mount = gateway_fs.host_path("/etc/flinkguard/pki");
    let mut volume = SecretVolume::adopt(&pki_mount);
    let pod_config =
        fs::read_to_string(gateway_fs.host_path("/etc/flinkguard/config/flinkguard.yaml")).unwrap();
    let config = d.join("pod/flinkguard.yaml");
    fs::write(&config, gateway_fs.relocate_yaml(&pod_config)).unwrap();
    let gateway = GatewayProcess::start_with_config(d, &config);
    let before = served_certificate(gateway.port);
    assert_eq!(before, file_certificate(&d.join("pki/rest.crt")));

    flinkguard_ok(d, &["pki", "renew-rest"]);
    flinkguard_ok(d, &["render", "k8s", "--out", "out", "--force"]);
    let objects = load(&d.join("out"));
    let renewed =
        ContainerFs::lay_out(&objects, pod_specs(&objects)[0], "gateway", &d.join("next"));
    volume.update_from(&renewed.host_path("/etc/flinkguard/pki"));
    gateway.wait_for_log("reloaded", std::time::Duration::from_secs(10));
    let after = served_certificate(gateway.port);
    assert_ne!(after, before);
    assert_eq!(after, file_certificate(&d.join("pki/rest.crt")));
}
