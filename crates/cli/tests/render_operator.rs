//! `flinkguard render operator`: the real binary after `flinkguard init`. The FlinkDeployment is
//! validated against the operator's CRD schema (a copy in tests/data/k8s), its pod templates as
//! Pods by `kubernetes-validate --strict`, every other object by `kubernetes-validate --strict`;
//! every security property is checked on the parsed objects.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use common::k8s::{
    assert_locked_down, init_with_kubernetes as setup, kind, load, object, pki_secrets,
    secret_file, validate,
};
use common::{expect_input_error, flinkguard, flinkguard_ok};
use serde_json::{Value, json};

const OPERATOR: &str = "  operator:
    namespace: flink-operator
    api_server:
      cidrs: [172.18.0.2/32]
      ports: [6443]
";

const KUBERNETES: &str = "kubernetes:
  namespace: flink-prod
  ingress_from:
    namespaces: [ingress-nginx]
  egress:
  - name: kafka
    cidrs: [10.30.0.0/24]
    ports: [9093]
";

fn render(dir: &Path) -> (PathBuf, Vec<(String, Value)>) {
    flinkguard_ok(dir, &["render", "operator", "--out", "out"]);
    let out = dir.join("out");
    let objects = load(&out);
    (out, objects)
}

/// The CRD as the operator ships it (a verbatim copy in tests/data/k8s), served version
/// v1beta1.
fn crd_schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/k8s/flinkdeployments.flink.apache.org-v1.yml");
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the operator's CRD, test data)", path.display()));
    let crd: Value = serde_yaml_ng::from_str(&text).unwrap();
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1beta1")
        .unwrap();
    assert_eq!(version["served"], true);
    version["schema"]["openAPIV3Schema"].clone()
}

/// Keys of `value` the schema does not define. Kubernetes prunes unknown fields of a custom
/// resource silently, so a typo would be lost rather than refused: walk both.
fn unknown_fields(value: &Value, schema: &Value, path: &str, found: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                if let Some(s) = schema["properties"].get(key) {
                    unknown_fields(child, s, &child_path, found);
                } else if schema["additionalProperties"].is_object() {
                    unknown_fields(child, &schema["additionalProperties"], &child_path, found);
                } else if schema["additionalProperties"] != true {
                    found.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                unknown_fields(item, &schema["items"], &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// Schema errors and unknown fields of a FlinkDeployment, as text (empty: valid).
fn crd_problems(schema: &Value, deployment: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).unwrap();
    let mut problems: Vec<String> = validator
        .iter_errors(deployment)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    unknown_fields(
        &deployment["spec"],
        &schema["properties"]["spec"],
        "spec",
        &mut problems,
    );
    problems
}

#[test]
fn the_flink_deployment_validates_against_the_operators_crd_and_a_bad_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &format!("{KUBERNETES}{OPERATOR}"));
    let (_, objects) = render(dir.path());
    let deployment = object(&objects, "FlinkDeployment", "flink");
    let schema = crd_schema();

    // The CRD's flinkVersion values are the ones render operator knows.
    let enum_values: Vec<&str> = schema["properties"]["spec"]["properties"]["flinkVersion"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(enum_values, flinkguard_k8s::CRD_FLINK_VERSIONS);

    let problems = crd_problems(&schema, deployment);
    assert!(problems.is_empty(), "{problems:#?}");

    // The validator bites: a wrong enum value, a wrong type, an unknown (misspelt) field.
    let mut bad = deployment.clone();
    bad["spec"]["flinkVersion"] = json!("v9_9");
    assert!(!crd_problems(&schema, &bad).is_empty());
    let mut bad = deployment.clone();
    bad["spec"]["jobManager"]["replicas"] = json!("one");
    assert!(!crd_problems(&schema, &bad).is_empty());
    let mut bad = deployment.clone();
    bad["spec"]["jobManager"]["podTemplate"]["spec"]["securityContex"] = json!({});
    assert_eq!(
        crd_problems(&schema, &bad),
        ["spec.jobManager.podTemplate.spec.securityContex"]
    );
}

#[test]
fn rendered_objects_carry_the_security_properties() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &format!("{KUBERNETES}{OPERATOR}"));
    let (out, objects) = render(dir.path());

    // The kustomization lists exactly the files written.
    let written: BTreeSet<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "kustomization.yaml")
        .collect();
    let listed: BTreeSet<String> = objects.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(written, listed);
    assert!(written.contains("flinkdeployment.yaml") && written.contains("rbac.yaml"));

    // Namespaces: everything in flink-prod but the operator's copy of the REST identity.
    for (file, object) in &objects {
        let ns = &object["metadata"]["namespace"];
        match (object["kind"].as_str().unwrap(), file.as_str()) {
            ("Namespace", _) => assert_eq!(object["metadata"]["name"], "flink-prod"),
            (_, "operator-tls.yaml") => assert_eq!(ns, "flink-operator"),
            _ => assert_eq!(ns, "flink-prod", "{file}"),
        }
    }

    // The FlinkDeployment: native session cluster (no job), version from flink.version.
    let deployment = object(&objects, "FlinkDeployment", "flink");
    let spec = &deployment["spec"];
    assert_eq!(deployment["apiVersion"], "flink.apache.org/v1beta1");
    assert_eq!(spec["flinkVersion"], "v2_3");
    assert_eq!(spec["mode"], "native");
    assert!(spec["job"].is_null(), "a session cluster has no job");
    assert_eq!(spec["serviceAccount"], "flink-jm");

    // Every container of both pod templates, init containers and the side-car included.
    let jm = &spec["jobManager"]["podTemplate"]["spec"];
    let tm = &spec["taskManager"]["podTemplate"]["spec"];
    for pod in [jm, tm] {
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let containers: Vec<&Value> = pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(pod["initContainers"].as_array().unwrap())
            .collect();
        assert!(containers.len() >= 2);
        for c in containers {
            assert_locked_down(c);
        }
        assert_eq!(pod["containers"][0]["name"], "flink-main-container");
    }
    let names = |pod: &Value| -> Vec<String> {
        pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(jm), ["flink-main-container", "gateway"]);
    assert_eq!(names(tm), ["flink-main-container"]);
    // The API token reaches the JobManager's Flink container only: not the side-car, not the
    // TaskManagers.
    let token_mounts = |pod: &Value| -> Vec<String> {
        pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(pod["initContainers"].as_array().unwrap())
            .filter(|c| {
                c["volumeMounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount")
            })
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(token_mounts(jm), ["flink-main-container"]);
    assert!(token_mounts(tm).is_empty());
    for account in kind(&objects, "ServiceAccount") {
        assert_eq!(account["automountServiceAccountToken"], false);
    }

    // The Role is exactly what native mode uses, no wildcards, bound to the JobManager only.
    let role = object(&objects, "Role", "flink-jm");
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "list", "watch"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["flink"], "verbs": ["get", "delete"]},
            {"apiGroups": ["apps"], "resources": ["deployments/finalizers"], "resourceNames": ["flink"], "verbs": ["update"]},
        ])
    );
    assert!(!role.to_string().contains('*'));
    let binding = object(&objects, "RoleBinding", "flink-jm");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "flink-jm", "namespace": "flink-prod"}])
    );
    assert_eq!(kind(&objects, "Role").len(), 1);
    assert_eq!(kind(&objects, "RoleBinding").len(), 1);

    // Flink's config: the renderer's security, stores at the mount points, and no password.
    let config = spec["flinkConfiguration"].as_object().unwrap();
    let setting = |key: &str| config[key].as_str().unwrap();
    assert_eq!(setting("security.ssl.internal.enabled"), "true");
    assert_eq!(
        setting("security.ssl.internal.keystore"),
        "/opt/flink/pki/internal.p12"
    );
    assert_eq!(setting("security.ssl.rest.enabled"), "true");
    assert_eq!(setting("security.ssl.rest.authentication-enabled"), "true");
    assert_eq!(
        setting("security.ssl.rest.keystore"),
        "/opt/flink/pki/upstream/upstream.p12"
    );
    assert!(setting("security.ssl.rest.cert.fingerprint").len() >= 40);
    assert_eq!(
        setting("kubernetes.taskmanager.service-account"),
        "flink-tm"
    );
    assert!(!config.contains_key("rest.bind-address"));
    assert!(
        config.keys().all(|k| !k.ends_with("-password")),
        "{config:?}"
    );
    // No password or private key anywhere in the FlinkDeployment (the operator copies its
    // flinkConfiguration into a ConfigMap), nor in any ConfigMap.
    let secrets = pki_secrets(&dir.path().join("pki"));
    let text = deployment.to_string();
    assert!(!text.contains("PRIVATE KEY"));
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "FlinkDeployment holds a secret"
        );
    }
    for config_map in kind(&objects, "ConfigMap") {
        for (key, value) in config_map["data"].as_object().unwrap() {
            let value = value.as_str().unwrap();
            assert!(!value.contains("PRIVATE KEY"), "{key}");
            for secret in &secrets {
                assert!(!value.contains(secret.as_str()), "{key} holds a secret");
            }
        }
    }

    // The passwords come from Secrets, appended to the config in the pod: the JobManager gets
    // both identities' passwords, TaskManagers only the internal one.
    let internal = common::password(&dir.path().join("pki/internal.password"));
    let upstream = common::password(&dir.path().join("pki/upstream/upstream.password"));
    let jm_lines = secret_file(&objects, "flink-jm-ssl-passwords", "ssl-passwords.yaml");
    let tm_lines = secret_file(&objects, "flink-tm-ssl-passwords", "ssl-passwords.yaml");
    assert!(jm_lines.contains(&format!(
        "security.ssl.internal.keystore-password: {internal}\n"
    )));
    assert!(jm_lines.contains(&format!(
        "security.ssl.rest.keystore-password: {upstream}\n"
    )));
    assert!(tm_lines.contains(&format!("security.ssl.internal.key-password: {internal}\n")));
    assert!(!tm_lines.contains("security.ssl.rest."), "{tm_lines}");
    let init = &jm["initContainers"][0];
    let script = init["command"][2].as_str().unwrap();
    assert!(
        script.contains("/opt/flink/conf-secret/ssl-passwords.yaml"),
        "{script}"
    );
    assert_eq!(
        jm["containers"][0]["env"][0],
        json!({"name": "FLINK_CONF_DIR", "value": "/opt/flink/conf-rw"})
    );

    // The operator's copy of the REST identity: the upstream keystore and its password.
    let tls = object(&objects, "Secret", "flinkguard-operator-rest-tls");
    let store = fs::read(dir.path().join("pki/upstream/upstream.p12")).unwrap();
    for key in ["keystore.jks", "truststore.jks"] {
        let encoded = tls["data"][key].as_str().unwrap();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(bytes, store, "{key}");
    }
    assert_eq!(
        secret_file(&objects, "flinkguard-operator-rest-tls", "password"),
        upstream
    );

    // NetworkPolicies: default deny in and out; every rule names peers and ports.
    let policies = kind(&objects, "NetworkPolicy");
    assert!(policies.iter().any(|p| {
        p["spec"]["podSelector"] == json!({})
            && p["spec"]["policyTypes"] == json!(["Ingress", "Egress"])
            && p["spec"]["ingress"].is_null()
            && p["spec"]["egress"].is_null()
    }));
    for p in &policies {
        for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
            for rule in p["spec"][direction].as_array().into_iter().flatten() {
                assert!(!rule[peers].as_array().unwrap().is_empty(), "{p}");
                assert!(!rule["ports"].as_array().unwrap().is_empty(), "{p}");
            }
        }
    }
    // Flink's REST port is admitted from the operator's pods and nothing else.
    let rest_port = config["rest.port"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let mut rest_sources = Vec::new();
    for p in &policies {
        for rule in p["spec"]["ingress"].as_array().into_iter().flatten() {
            if rule["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|port| port["port"] == rest_port)
            {
                assert_eq!(
                    rule["ports"],
                    json!([{"protocol": "TCP", "port": rest_port}])
                );
                rest_sources.push(rule["from"].clone());
            }
        }
    }
    assert_eq!(
        rest_sources,
        [json!([{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "flink-operator"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "flink-kubernetes-operator"}},
        }])]
    );
    // Policies select the pods by the labels Flink's native mode sets.
    let flink_jm = object(&objects, "NetworkPolicy", "flink-jm");
    assert_eq!(
        flink_jm["spec"]["podSelector"]["matchLabels"],
        json!({"app": "flink", "component": "jobmanager", "type": "flink-native-kubernetes"})
    );
    assert_eq!(
        flink_jm["spec"]["egress"][1],
        json!({"to": [{"ipBlock": {"cidr": "172.18.0.2/32"}}], "ports": [{"protocol": "TCP", "port": 6443}]})
    );
    let gateway_ingress = object(&objects, "NetworkPolicy", "gateway-ingress");
    assert_eq!(
        gateway_ingress["spec"]["ingress"][0]["ports"],
        json!([{"protocol": "TCP", "port": 8443}])
    );
    // Our only Service is the gateway's, on the JobManager's pods.
    let services = kind(&objects, "Service");
    assert_eq!(services.len(), 1);
    assert_eq!(services[0]["spec"]["ports"][0]["port"], 8443);
    assert_eq!(
        services[0]["spec"]["selector"],
        flink_jm["spec"]["podSelector"]["matchLabels"]
    );

    validate_with_kubernetes(dir.path(), &out, deployment);
}

/// Every plain object through kubernetes-validate, and both pod templates as the Pods Flink
/// makes of them (with the config volume Flink adds), so the templates are really validated:
/// the CRD checks them only as far as its own copy of the Pod schema goes.
fn validate_with_kubernetes(dir: &Path, out: &Path, deployment: &Value) {
    let mut files: Vec<PathBuf> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("kustomization.yaml") && !p.ends_with("flinkdeployment.yaml"))
        .collect();
    let name = deployment["metadata"]["name"].as_str().unwrap();
    for component in ["jobManager", "taskManager"] {
        let template = &deployment["spec"][component]["podTemplate"];
        let mut spec = template["spec"].clone();
        spec["volumes"].as_array_mut().unwrap().push(json!({
            "name": "flink-config-volume",
            "configMap": {"name": format!("flink-config-{name}")},
        }));
        // Every mount names a volume of the pod.
        let volumes: BTreeSet<&str> = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        for c in spec["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(spec["initContainers"].as_array().unwrap())
        {
            for m in c["volumeMounts"].as_array().unwrap() {
                assert!(
                    volumes.contains(m["name"].as_str().unwrap()),
                    "{component}: {m}"
                );
            }
        }
        let pod = json!({
            "apiVersion": template["apiVersion"],
            "kind": template["kind"],
            "metadata": {
                "name": format!("{name}-{}", component.to_lowercase()),
                "namespace": deployment["metadata"]["namespace"],
                "labels": template["metadata"]["labels"],
            },
            "spec": spec,
        });
        let path = dir.join(format!("{component}-pod.yaml"));
        fs::write(&path, serde_yaml_ng::to_string(&pod).unwrap()).unwrap();
        files.push(path);
    }
    validate(&files);
}

#[test]
fn without_the_operator_section_the_error_names_it_and_shows_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), KUBERNETES);
    let result = flinkguard(dir.path(), &["render", "operator", "--out", "out"]);
    expect_input_error(&result, &["kubernetes.operator", "api_server", "namespace"]);
    assert!(!dir.path().join("out").exists(), "nothing half-written");
}

#[test]
fn a_flink_version_the_crd_does_not_know_names_flink_version() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &format!("{KUBERNETES}{OPERATOR}"));
    let path = dir.path().join("flinkguard.yaml");
    let text = fs::read_to_string(&path).unwrap();
    let mut config: Value = serde_yaml_ng::from_str(&text).unwrap();
    config["flink"]["version"] = json!("2.9.0");
    fs::write(&path, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
    let result = flinkguard(dir.path(), &["render", "operator", "--out", "out"]);
    expect_input_error(&result, &["flink.version", "2.9.0", "v2_4"]);
}

#[test]
fn kerberos_and_connector_truststores_are_refused_not_dropped() {
    for (section, field) in [
        (
            "  kerberos:\n    principal: flink@EXAMPLE.ORG\n    keytab_file: k\n    krb5_conf_file: c\n    kafka_security_protocol: SASL_SSL\n",
            "kubernetes.kerberos",
        ),
        (
            "  connector_truststores:\n  - name: kafka\n    ca_files: [ca.pem]\n",
            "kubernetes.connector_truststores",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path(), &format!("{KUBERNETES}{OPERATOR}{section}"));
        let result = flinkguard(dir.path(), &["render", "operator", "--out", "out"]);
        expect_input_error(&result, &[field, "render k8s"]);
        assert!(!dir.path().join("pki/connectors").exists(), "nothing built");
    }
}

#[test]
fn a_bad_operator_section_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        "kubernetes:\n  operator:\n    namespace: flink-operator\n    api_server: {cidrs: [], ports: [6443]}\n",
    );
    let result = flinkguard(dir.path(), &["render", "operator", "--out", "out"]);
    expect_input_error(
        &result,
        &["kubernetes.operator.api_server", "endpointslices"],
    );
}

#[test]
fn refuses_a_non_empty_out_dir_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &format!("kubernetes:\n{OPERATOR}"));
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("precious.txt"), "keep me").unwrap();
    let result = flinkguard(dir.path(), &["render", "operator", "--out", "out"]);
    expect_input_error(&result, &["out", "--force"]);
    assert_eq!(
        fs::read_to_string(out.join("precious.txt")).unwrap(),
        "keep me"
    );
    flinkguard_ok(
        dir.path(),
        &["render", "operator", "--out", "out", "--force"],
    );
    assert!(!out.join("precious.txt").exists());
    assert!(out.join("flinkdeployment.yaml").is_file());
}

/// The init container's script, run by `sh` on the layout a ConfigMap volume has in a pod
/// (`..data` symlinks), with /opt/flink moved to a temporary directory: the copy holds Flink's
/// settings and the passwords, the read-only original is untouched, and a missing config file
/// fails the container.
#[test]
fn the_init_container_appends_the_passwords_to_a_copy_of_flinks_config() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &format!("kubernetes:\n{OPERATOR}"));
    let (_, objects) = render(dir.path());
    let deployment = object(&objects, "FlinkDeployment", "flink");
    let template = &deployment["spec"]["jobManager"]["podTemplate"]["spec"];
    let script = template["initContainers"][0]["command"][2]
        .as_str()
        .unwrap();

    let root = dir.path().join("opt-flink");
    let data = root.join("conf/..2026_12_05");
    fs::create_dir_all(&data).unwrap();
    for sub in ["conf-rw", "conf-secret"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    // What native mode ships: `key: value` lines, no newline at the end.
    fs::write(data.join("config.yaml"), "rest.port: 8081").unwrap();
    fs::write(
        data.join("log4j-console.properties"),
        "rootLogger.level = INFO\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("..2026_12_05", root.join("conf/..data")).unwrap();
    for file in ["config.yaml", "log4j-console.properties"] {
        std::os::unix::fs::symlink(format!("..data/{file}"), root.join("conf").join(file)).unwrap();
    }
    let passwords = secret_file(&objects, "flink-jm-ssl-passwords", "ssl-passwords.yaml");
    fs::write(root.join("conf-secret/ssl-passwords.yaml"), &passwords).unwrap();

    let script = script.replace("/opt/flink/", &format!("{}/", root.display()));
    let run = || {
        std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap()
    };
    let result = run();
    assert!(result.status.success(), "{result:?}");
    let merged = fs::read_to_string(root.join("conf-rw/config.yaml")).unwrap();
    let parsed: Value = serde_yaml_ng::from_str(&merged).unwrap();
    assert_eq!(parsed["rest.port"], 8081);
    let internal = common::password(&dir.path().join("pki/internal.password"));
    assert_eq!(
        parsed["security.ssl.internal.keystore-password"],
        internal.as_str()
    );
    assert!(root.join("conf-rw/log4j-console.properties").is_file());
    assert_eq!(
        fs::read_to_string(data.join("config.yaml")).unwrap(),
        "rest.port: 8081"
    );

    fs::remove_file(root.join("conf/config.yaml")).unwrap();
    fs::remove_file(root.join("conf-rw/config.yaml")).unwrap();
    let result = run();
    assert!(!result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("no Flink config file"));
}

#[test]
fn application_mode_is_a_job_spec_the_crd_accepts_and_ha_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        &format!(
            "{KUBERNETES}{OPERATOR}  application:\n    jar: /opt/flink/usrlib/job.jar\n    entry_class: com.example.Job\n    args: [--input, kafka]\n    parallelism: 4\n"
        ),
    );
    let (_, objects) = render(dir.path());
    let deployment = object(&objects, "FlinkDeployment", "flink");
    assert_eq!(
        deployment["spec"]["job"],
        json!({
            "jarURI": "local:///opt/flink/usrlib/job.jar",
            "entryClass": "com.example.Job",
            "args": ["--input", "kafka"],
            "parallelism": 4,
            "upgradeMode": "stateless",
        })
    );
    let problems = crd_problems(&crd_schema(), deployment);
    assert!(problems.is_empty(), "{problems:#?}");

    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        &format!(
            "{KUBERNETES}{OPERATOR}  high_availability:\n    storage_dir: s3://b/ha\n    api_server: {{cidrs: [172.18.0.2/32], ports: [6443]}}\n"
        ),
    );
    let result = flinkguard(dir.path(), &["render", "operator", "--out", "out"]);
    expect_input_error(&result, &["kubernetes.high_availability", "render k8s"]);
}
