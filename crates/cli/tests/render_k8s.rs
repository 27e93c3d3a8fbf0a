//! `flinkguard render k8s`: the real binary after `flinkguard init`; every property is checked
//! on the parsed objects, and every object is validated by `kubernetes-validate --strict`.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;
mod gatewaykit;

use base64::Engine as _;
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

/// The pod's container named `name`.
fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    named(&pod["containers"], name)
}

/// The pod's volume named `name`.
fn volume<'a>(pod: &'a Value, name: &str) -> &'a Value {
    named(&pod["volumes"], name)
}

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("nothing named {name} in {list}"))
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
    let state = volume(jm, "gateway-state");
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
    let state = volume(jm, "gateway-state");
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

// ---- Kerberos and connector truststores ----

const REALM: &str = "EXAMPLE.ORG";
const PRINCIPAL: &str = "flink/flink-prod";

/// A CA certificate made by openssl, as a user's PKI would hand it over.
fn openssl_ca(dir: &Path, cn: &str) -> String {
    let key = dir.join(format!("{cn}.key"));
    let cert = dir.join(format!("{cn}.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/O=Example/CN={cn}"),
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::remove_file(&key).unwrap();
    fs::read_to_string(cert).unwrap()
}

/// flinkguard.yaml with Kerberos from `realm` and truststores for Kafka (three CAs in two
/// files, one of them in both) and Elasticsearch; returns the CNs of Kafka's CAs.
fn setup_connectors(dir: &Path, realm: &flinkguard_testkit::kdc::Realm) -> Vec<String> {
    let secrets = dir.join("secrets");
    let certs = dir.join("certs");
    fs::create_dir_all(&secrets).unwrap();
    fs::create_dir_all(&certs).unwrap();
    realm.add_principal(PRINCIPAL);
    let keytab = realm.export_keytab(PRINCIPAL, "flink.keytab");
    fs::copy(&keytab, secrets.join("flink.keytab")).unwrap();
    fs::copy(realm.krb5_conf(), secrets.join("krb5.conf")).unwrap();
    let kafka_cas = ["Kafka Root CA", "Kafka Issuing CA", "Kafka Old Root CA"];
    let root = openssl_ca(&certs, kafka_cas[0]);
    let issuing = openssl_ca(&certs, kafka_cas[1]);
    let old = openssl_ca(&certs, kafka_cas[2]);
    fs::write(certs.join("kafka-bundle.pem"), format!("{root}{issuing}")).unwrap();
    // Bundles overlap in practice: the root again, next to the old root.
    fs::write(certs.join("kafka-old.pem"), format!("{old}{root}")).unwrap();
    openssl_ca(&certs, "Elastic CA");
    setup(
        dir,
        &format!(
            "{KUBERNETES}  - name: kdc
    cidrs: [127.0.0.1/32]
    ports: [{kdc_port}]
  kerberos:
    principal: {PRINCIPAL}@{REALM}
    keytab_file: secrets/flink.keytab
    krb5_conf_file: secrets/krb5.conf
  connector_truststores:
  - name: kafka
    ca_files: [certs/kafka-bundle.pem, certs/kafka-old.pem]
  - name: elasticsearch
    ca_files: [certs/Elastic CA.pem]
",
            kdc_port = realm.port()
        ),
    );
    kafka_cas.iter().map(|s| (*s).to_owned()).collect()
}

fn secret_bytes(objects: &[(String, Value)], secret: &str, key: &str) -> Vec<u8> {
    let object = kind(objects, "Secret")
        .into_iter()
        .find(|o| o["metadata"]["name"] == secret)
        .unwrap_or_else(|| panic!("no Secret {secret}"));
    base64::engine::general_purpose::STANDARD
        .decode(object["data"][key].as_str().unwrap())
        .unwrap()
}

/// A container's mount of `volume`: `(mountPath, readOnly)`.
fn mount_of(container: &Value, volume: &str) -> Option<(String, bool)> {
    container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume)
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap().to_owned(),
                m["readOnly"] == true,
            )
        })
}

/// A dotted key of a rendered Flink config (nested config.yaml or flat flink-conf.yaml).
fn flink_setting(config: &Value, key: &str) -> String {
    let flat = &config[key];
    let value = if flat.is_null() {
        key.split('.').fold(config, |v, k| &v[k])
    } else {
        flat
    };
    match value {
        Value::String(s) => s.clone(),
        Value::Null => panic!("{key} is not set in {config}"),
        other => other.to_string(),
    }
}

#[test]
fn kerberos_and_truststores_are_secrets_mounted_read_only_for_flink_only() {
    let dir = tempfile::tempdir().unwrap();
    let realm = flinkguard_testkit::kdc::Realm::create(REALM);
    let kafka_cas = setup_connectors(dir.path(), &realm);
    flinkguard_ok(dir.path(), &["render", "k8s", "--out", "out"]);
    let out = dir.path().join("out");
    let objects = load(&out);

    // The keytab: in one Secret, byte for byte, and nowhere else.
    let keytab = fs::read(dir.path().join("secrets/flink.keytab")).unwrap();
    assert_eq!(
        secret_bytes(&objects, "flink-kerberos-keytab", "flink.keytab"),
        keytab
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(&keytab);
    for (file, object) in &objects {
        let text = object.to_string();
        let is_keytab_secret =
            object["kind"] == "Secret" && object["metadata"]["name"] == "flink-kerberos-keytab";
        assert_eq!(
            text.contains(&encoded),
            is_keytab_secret,
            "{file}: {}",
            object["metadata"]["name"]
        );
        if object["kind"] == "Secret" {
            assert_eq!(file, "secrets.yaml");
        }
    }
    // krb5.conf: a ConfigMap, as given.
    let krb5 = kind(&objects, "ConfigMap")
        .into_iter()
        .find(|o| o["metadata"]["name"] == "flink-krb5-conf")
        .unwrap();
    assert_eq!(
        krb5["data"]["krb5.conf"].as_str().unwrap(),
        fs::read_to_string(dir.path().join("secrets/krb5.conf")).unwrap()
    );

    // Mounted read-only into JobManager and TaskManager, never the gateway; files 0440.
    let pods = pod_specs(&objects);
    for pod in &pods {
        let volume = |name: &str| {
            pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == name)
                .cloned()
        };
        let kerberos = volume("flink-kerberos").unwrap();
        let sources = kerberos["projected"]["sources"].as_array().unwrap();
        assert!(
            sources
                .iter()
                .any(|s| s["configMap"]["name"] == "flink-krb5-conf")
        );
        let keytab_source = sources
            .iter()
            .find(|s| s["secret"]["name"] == "flink-kerberos-keytab")
            .unwrap();
        assert_eq!(keytab_source["secret"]["items"][0]["mode"], 0o440);
        assert_eq!(kerberos["projected"]["defaultMode"], 0o440);
        assert_eq!(
            volume("flink-connectors").unwrap()["secret"]["defaultMode"],
            0o440
        );
        for c in pod["containers"].as_array().unwrap() {
            let flink = c["name"] == "jobmanager" || c["name"] == "taskmanager";
            for (volume, path) in [
                ("flink-kerberos", "/opt/flink/kerberos"),
                ("flink-connectors", "/opt/flink/connectors"),
            ] {
                if flink {
                    assert_eq!(
                        mount_of(c, volume),
                        Some((path.to_owned(), true)),
                        "{}",
                        c["name"]
                    );
                } else {
                    assert_eq!(mount_of(c, volume), None, "{} gets {volume}", c["name"]);
                }
            }
        }
    }

    // Flink logs in from the mounted keytab, with krb5.conf from the mount.
    for (secret, opts) in [
        ("flink-jm-config", "env.java.opts.jobmanager"),
        ("flink-tm-config", "env.java.opts.taskmanager"),
    ] {
        let flink: Value =
            serde_yaml_ng::from_str(&secret_file(&objects, secret, "config.yaml")).unwrap();
        assert_eq!(
            flink_setting(&flink, "security.kerberos.login.keytab"),
            "/opt/flink/kerberos/flink.keytab"
        );
        assert_eq!(
            flink_setting(&flink, "security.kerberos.login.principal"),
            format!("{PRINCIPAL}@{REALM}")
        );
        assert_eq!(
            flink_setting(&flink, "security.kerberos.login.use-ticket-cache"),
            "false"
        );
        assert_eq!(
            flink_setting(&flink, "security.kerberos.login.contexts"),
            "Client,KafkaClient"
        );
        assert_eq!(
            flink_setting(&flink, opts),
            "-Djava.security.krb5.conf=/opt/flink/kerberos/krb5.conf"
        );
    }

    // Kafka's client properties: SASL/GSSAPI over TLS with the mounted truststore.
    let props = String::from_utf8(secret_bytes(
        &objects,
        "flink-connectors",
        "kafka-client.properties",
    ))
    .unwrap();
    let password_file = dir.path().join("pki/connectors/kafka-truststore.password");
    let password = fs::read_to_string(&password_file)
        .unwrap()
        .trim()
        .to_owned();
    for line in [
        "security.protocol=SASL_SSL".to_owned(),
        "sasl.mechanism=GSSAPI".to_owned(),
        "sasl.kerberos.service.name=kafka".to_owned(),
        "ssl.truststore.location=/opt/flink/connectors/kafka-truststore.p12".to_owned(),
        "ssl.truststore.type=PKCS12".to_owned(),
        format!("ssl.truststore.password={password}"),
    ] {
        assert!(props.lines().any(|l| l == line), "{line}:\n{props}");
    }
    assert_eq!(
        String::from_utf8(secret_bytes(
            &objects,
            "flink-connectors",
            "kafka-truststore.password"
        ))
        .unwrap()
        .trim(),
        password
    );

    // No password of the PKI, the truststores' included, in any ConfigMap.
    let secrets = pki_secrets(&dir.path().join("pki"));
    assert!(secrets.contains(&password));
    for config_map in kind(&objects, "ConfigMap") {
        for value in config_map["data"].as_object().unwrap().values() {
            for secret in &secrets {
                assert!(!value.as_str().unwrap().contains(secret.as_str()));
            }
        }
    }

    // Java's keytool reads the rendered truststore: every Kafka CA, each once, trusted.
    let store = dir.path().join("kafka-truststore.p12");
    fs::write(
        &store,
        secret_bytes(&objects, "flink-connectors", "kafka-truststore.p12"),
    )
    .unwrap();
    let listing = Command::new("keytool")
        .args([
            "-list",
            "-v",
            "-storetype",
            "PKCS12",
            "-storepass",
            &password,
            "-keystore",
        ])
        .arg(&store)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    assert!(text.contains("Your keystore contains 3 entries"), "{text}");
    assert_eq!(
        text.matches("Entry type: trustedCertEntry").count(),
        3,
        "{text}"
    );
    for cn in &kafka_cas {
        assert_eq!(
            text.matches(&format!("Owner: CN={cn}, O=Example")).count(),
            1,
            "{cn}:\n{text}"
        );
    }
    // A wrong password is refused: the store is protected by the rendered password.
    let wrong = Command::new("keytool")
        .args([
            "-list",
            "-storetype",
            "PKCS12",
            "-storepass",
            "wrong-password",
            "-keystore",
        ])
        .arg(&store)
        .output()
        .unwrap();
    assert!(!wrong.status.success());

    // Rendering again changes no Secret (no churn on `kubectl apply`).
    flinkguard_ok(dir.path(), &["render", "k8s", "--out", "out2"]);
    assert_eq!(
        fs::read_to_string(out.join("secrets.yaml")).unwrap(),
        fs::read_to_string(dir.path().join("out2/secrets.yaml")).unwrap()
    );

    validate(&out);
}

#[test]
fn the_rendered_keytab_and_krb5_conf_log_in_at_a_real_kdc() {
    let dir = tempfile::tempdir().unwrap();
    let mut realm = flinkguard_testkit::kdc::Realm::create(REALM);
    setup_connectors(dir.path(), &realm);
    flinkguard_ok(dir.path(), &["render", "k8s", "--out", "out"]);
    let objects = load(&dir.path().join("out"));

    // The TaskManager container's mounts, laid out from the rendered Secret and ConfigMap as
    // the kubelet would (items, modes), under a temp root.
    let tm_pod =
        &common::k8s::object(&objects, "StatefulSet", "flink-tm")["spec"]["template"]["spec"];
    let tm = ContainerFs::lay_out(&objects, tm_pod, "taskmanager", &dir.path().join("pods/tm"));
    let mounted_keytab = tm.host_path("/opt/flink/kerberos/flink.keytab");
    let mounted_krb5 = tm.host_path("/opt/flink/kerberos/krb5.conf");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&mounted_keytab).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o440, "the keytab is group-readable only");
    }

    realm.start_kdc();
    let principal = format!("{PRINCIPAL}@{REALM}");
    let ok = realm.kinit(&mounted_keytab, &principal, &mounted_krb5);
    assert!(
        ok.status.success(),
        "kinit with the rendered keytab failed: {}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // A real JVM logs in from the mounted keytab exactly as the rendered Flink config says:
    // krb5.conf through the JVM option, keytab and principal from security.kerberos.login.*.
    let flink: Value = serde_yaml_ng::from_str(&tm.relocate_yaml(&secret_file(
        &objects,
        "flink-tm-config",
        "config.yaml",
    )))
    .unwrap();
    let jvm = flink_setting(&flink, "env.java.opts.taskmanager");
    assert_eq!(
        jvm,
        format!("-Djava.security.krb5.conf={}", mounted_krb5.display())
    );
    let keytab = flink_setting(&flink, "security.kerberos.login.keytab");
    assert_eq!(Path::new(&keytab), mounted_keytab);
    let login_principal = flink_setting(&flink, "security.kerberos.login.principal");
    let login = realm.java_login(&[jvm.as_str()], Path::new(&keytab), &login_principal);
    let said = String::from_utf8_lossy(&login.stdout);
    assert!(
        login.status.success(),
        "JAAS login failed: {said}{}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert!(said.contains(&format!("principal {principal}")), "{said}");
    assert!(
        said.contains(&format!("ticket krbtgt/{REALM}@{REALM}")),
        "{said}"
    );
    // Without the JVM option the JVM does not find the realm's KDC: the option is what works.
    let without = realm.java_login(&[], Path::new(&keytab), &login_principal);
    let reason = String::from_utf8_lossy(&without.stderr);
    assert!(!without.status.success(), "logged in without krb5.conf");
    assert!(reason.contains("Cannot locate KDC"), "{reason}");

    // A stale keytab (its keys replaced since) does not log in, and neither does another
    // principal with the rendered keytab.
    let stale = realm.export_keytab(PRINCIPAL, "stale.keytab");
    realm.export_keytab(PRINCIPAL, "rekeyed.keytab");
    let refused = realm.kinit(&stale, &principal, &mounted_krb5);
    let reason = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a stale keytab logged in");
    // Refused by its keys (the KDC answered), not for want of a KDC.
    assert!(reason.contains("Password incorrect"), "{reason}");
    let refused = realm.kinit(&mounted_keytab, &format!("someone@{REALM}"), &mounted_krb5);
    assert!(
        !refused.status.success(),
        "the keytab logged in as another principal"
    );
}

#[test]
fn a_keytab_for_another_principal_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let realm = flinkguard_testkit::kdc::Realm::create(REALM);
    setup_connectors(dir.path(), &realm);
    realm.add_principal("someone-else");
    let other = realm.export_keytab("someone-else", "other.keytab");
    fs::copy(other, dir.path().join("secrets/flink.keytab")).unwrap();
    let result = flinkguard(dir.path(), &["render", "k8s", "--out", "out"]);
    expect_input_error(
        &result,
        &[
            "kubernetes.kerberos.keytab_file",
            "flink.keytab",
            "someone-else@EXAMPLE.ORG",
        ],
    );
    assert!(!dir.path().join("out").exists(), "nothing half-written");
}
