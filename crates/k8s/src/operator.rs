//! `flinkguard render operator`: a `FlinkDeployment` for the Apache Flink Kubernetes Operator
//! (native mode, session cluster) with the same security as `render k8s`, plus the objects it
//! needs around it: service accounts and the JobManager's Role, Secrets, the gateway's
//! ConfigMap and Service, NetworkPolicies on the labels Flink gives its pods.
//!
//! Three things differ from `render k8s`, each forced by how the operator and Flink's native
//! mode work (docs/kubernetes.md has the research):
//!
//! - **REST listens on the pod's address**, not loopback: the operator polls and drives the
//!   cluster through Flink's REST API at the `<name>-rest` Service, and native mode drops
//!   `rest.bind-address` from the config it ships anyway. Mutual TLS with the pinned upstream
//!   identity stays on, and a NetworkPolicy admits the REST port only from the operator's pods.
//!   The operator presents that identity from its own Secret (its Helm chart's `tls.*` values):
//!   [`OPERATOR_REST_TLS`] is rendered for it, in the operator's namespace.
//! - **Keystore passwords are not in `flinkConfiguration`**: the operator writes that map into a
//!   ConfigMap (`flink-config-<name>`). An init container appends the passwords, from a Secret, to
//!   a copy of that config in an in-memory emptyDir, and Flink reads the copy (`FLINK_CONF_DIR`).
//!   The operator's own REST client takes its passwords from its environment, not from the map.
//! - **The JobManager talks to the Kubernetes API** (it creates and deletes its TaskManager
//!   pods): its account gets exactly the Role Flink's native resource manager uses, its token is
//!   mounted into the Flink container only, and its egress to the API server is allowed.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::objects::{
    CONF_RW, CONF_SECRET, INTERNAL_IDENTITY, JOBMANAGER, REST_IDENTITY, TASKMANAGER, allow_dns,
    container_security, default_deny, egress_policies, empty_dir, file, gateway_container,
    gateway_sources, gateway_volumes, identity_secrets, ip_blocks, labels, metadata, mount,
    pod_security, policy, projected_secret, resources, secret, service_port, shared_files, tcp,
    text_file,
};
use crate::pod_config::{FLINK_PKI_DIR, Inputs, SecretFile};
use crate::{K8sError, ManifestFile, Manifests};
use flinkguard_config::{LoadedConfig, OperatorSection};
use flinkguard_flink::FlinkVersion;
use flinkguard_render::{FlinkSettings, SettingValue};

/// The `flinkVersion` values of the operator's CRD (`FlinkDeployment`, served version v1beta1).
/// A test checks this list against the CRD itself.
pub const CRD_FLINK_VERSIONS: &[&str] = &[
    "v1_13", "v1_14", "v1_15", "v1_16", "v1_17", "v1_18", "v1_19", "v1_20", "v2_0", "v2_1", "v2_2",
    "v2_3", "v2_4",
];

/// The Secret, in the operator's namespace, that its Helm chart mounts with `tls.create=true`
/// (`tls.secretName`, `tls.secretKeyRef`): the upstream identity as keystore and truststore.
pub const OPERATOR_REST_TLS: &str = "flinkguard-operator-rest-tls";
/// The label every pod of the operator's Helm chart carries (`flink-operator.selectorLabels`).
const OPERATOR_POD_LABEL: (&str, &str) = ("app.kubernetes.io/name", "flink-kubernetes-operator");
/// Secrets with the keystore passwords, as lines appended to Flink's config in the pod.
const JM_PASSWORDS: &str = "flink-jm-ssl-passwords";
const TM_PASSWORDS: &str = "flink-tm-ssl-passwords";
const PASSWORDS_FILE: &str = "ssl-passwords.yaml";
/// The volume Flink's native mode mounts its config ConfigMap from, and where.
const FLINK_CONF_VOLUME: &str = "flink-config-volume";
const FLINK_CONF_DIR: &str = "/opt/flink/conf";
/// The container Flink merges its own settings into (`Constants.MAIN_CONTAINER_NAME`).
const MAIN_CONTAINER: &str = "flink-main-container";
/// Where fabric8 (Flink's Kubernetes client) reads the service account's token.
const TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Flink's memory notation (`m` = MiB) for the CR, and the same size as a Kubernetes quantity.
const FLINK_MEMORY: &str = "2048m";
const POD_MEMORY: &str = "2Gi";

/// Renders the `render operator` manifests. Refuses a config without `kubernetes.operator`, a
/// `flink.version` the CRD has no value for, and any secret value in a ConfigMap or in the
/// FlinkDeployment (whose flinkConfiguration the operator copies into a ConfigMap).
pub fn render_operator(loaded: &LoadedConfig) -> Result<Manifests, K8sError> {
    // Before reading inputs, which would build connector truststores this render cannot use.
    crate::connectors::refuse_for_operator(loaded)?;
    let inputs = Inputs::read(loaded)?;
    let unsupported = |field, message: String| K8sError::Unsupported {
        path: loaded.path.clone(),
        field,
        message,
    };
    let Some(operator) = inputs.k8s.operator.clone() else {
        return Err(unsupported(
            "kubernetes.operator",
            "missing; render operator needs the operator's namespace and the API server's endpoints, e.g.\n  kubernetes:\n    operator:\n      namespace: flink-operator\n      api_server: {cidrs: [10.0.0.1/32], ports: [6443]}".to_owned(),
        ));
    };
    if inputs.k8s.high_availability.is_some() {
        return Err(unsupported(
            "kubernetes.high_availability",
            "render operator does not configure Flink's Kubernetes HA yet (the JobManager's Role would need ConfigMaps too); remove it, or use render k8s".to_owned(),
        ));
    }
    if !is_deployment_name(&inputs.instance) {
        return Err(unsupported(
            "cluster.name",
            format!(
                "`{}` cannot name a FlinkDeployment: the operator accepts a lowercase letter, then up to 44 lowercase letters, digits or '-', not ending in '-'",
                inputs.instance
            ),
        ));
    }
    let flink_version = crd_flink_version(inputs.version)
        .ok_or_else(|| unsupported("flink.version", unsupported_version(inputs.version)))?;
    let pki = loaded.pki();
    let upstream_password = pki.read_password(&pki.upstream_password())?;
    let split = split_passwords(&inputs.security)
        .map_err(|key| unsupported("pki", format!("{key}: the password must be alphanumeric (it is written into Flink's config file in the pod); recreate it with `flinkguard init --force` or `{} --force`", flinkguard_pki::CREATE_UPSTREAM_COMMAND)))?;
    let parts = Parts {
        inputs: &inputs,
        operator: &operator,
        flink_version,
        settings: split.settings,
        jm_passwords: split.jobmanager,
        tm_passwords: split.taskmanager,
        upstream_password: upstream_password.expose().to_owned(),
    };
    let manifests = Manifests {
        files: parts.build(),
    };
    crate::check_no_secret_in_config_maps(&manifests, &inputs.secret_values)?;
    check_no_secret_in_flink_deployment(&manifests, &inputs.secret_values)?;
    Ok(manifests)
}

/// The CRD's `flinkVersion` for a Flink release (`v2_3` for 2.3.x), if the CRD has one.
pub fn crd_flink_version(version: FlinkVersion) -> Option<&'static str> {
    let wanted = format!("v{}_{}", version.major, version.minor);
    CRD_FLINK_VERSIONS.iter().copied().find(|v| *v == wanted)
}

/// The names the operator's validator accepts (`DefaultValidator.DEPLOYMENT_NAME_PATTERN`,
/// `[a-z]([-a-z0-9]{0,43}[a-z0-9])?`): Flink derives Service names from it.
fn is_deployment_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let inner = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    (1..=45).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(inner)
        && !name.ends_with('-')
}

fn unsupported_version(version: FlinkVersion) -> String {
    format!(
        "{version} has no flinkVersion in the Flink Kubernetes Operator's CRD (it knows {}); choose one of those Flink versions",
        CRD_FLINK_VERSIONS.join(", ")
    )
}

/// The security settings split into what may be in the CR and the password lines per pod.
struct Split {
    settings: FlinkSettings,
    jobmanager: String,
    taskmanager: String,
}

/// Moves every `*-password` setting out of the settings into the two password files (the
/// TaskManagers serve no REST and get no REST password). Err: the key of a password that is
/// not plain alphanumeric, which the file format could not carry unquoted for every Flink.
fn split_passwords(security: &FlinkSettings) -> Result<Split, String> {
    let mut settings = FlinkSettings::default();
    let mut jobmanager = String::new();
    let mut taskmanager = String::new();
    for (key, value) in security.iter() {
        if !key.ends_with("-password") {
            settings.set(key, value.clone());
            continue;
        }
        let text = value.to_string();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(key.to_owned());
        }
        // Flat `key: value` lines: what Flink 1.x's flink-conf.yaml parser reads, and valid
        // YAML next to Flink 2.x's config.yaml.
        let line = format!("{key}: {text}\n");
        jobmanager.push_str(&line);
        if !key.starts_with("security.ssl.rest.") {
            taskmanager.push_str(&line);
        }
    }
    Ok(Split {
        settings,
        jobmanager,
        taskmanager,
    })
}

/// The one check the ConfigMap guard cannot do: the FlinkDeployment is not a ConfigMap, but
/// the operator writes its flinkConfiguration into one (`flink-config-<name>`).
fn check_no_secret_in_flink_deployment(
    manifests: &Manifests,
    secrets: &[String],
) -> Result<(), K8sError> {
    for object in manifests.objects() {
        if object["kind"] != "FlinkDeployment" {
            continue;
        }
        let text = object.to_string();
        if secrets
            .iter()
            .any(|s| !s.is_empty() && text.contains(s.as_str()))
            || text.contains("PRIVATE KEY-----")
        {
            let name = object["metadata"]["name"].as_str().unwrap_or("?");
            return Err(K8sError::SecretInConfigMap(format!("flink-config-{name}")));
        }
    }
    Ok(())
}

struct Parts<'a> {
    inputs: &'a Inputs,
    operator: &'a OperatorSection,
    flink_version: &'static str,
    settings: FlinkSettings,
    jm_passwords: String,
    tm_passwords: String,
    upstream_password: String,
}

impl Parts<'_> {
    fn build(&self) -> Vec<ManifestFile> {
        let mut files = shared_files(self.inputs);
        files.extend([
            file("rbac.yaml", self.rbac(), false),
            file("secrets.yaml", self.secrets(), true),
            file("operator-tls.yaml", vec![self.operator_tls()], true),
            file("flinkdeployment.yaml", vec![self.flink_deployment()], false),
            file("services.yaml", vec![self.gateway_service()], false),
            file("networkpolicies.yaml", self.network_policies(), false),
        ]);
        files
    }

    /// The name of the FlinkDeployment, which is Flink's `kubernetes.cluster-id`.
    fn name(&self) -> &str {
        &self.inputs.instance
    }

    /// The labels Flink's native mode puts on a component's pods (`KubernetesUtils`): what
    /// selectors can rely on, whatever the pod template says.
    fn native_selector(&self, component: &str) -> Value {
        json!({
            "app": self.name(),
            "component": component,
            "type": "flink-native-kubernetes",
        })
    }

    /// The exact API access of Flink's native resource manager (`KubernetesResourceManagerDriver`
    /// through `Fabric8FlinkKubeClient`), without HA: TaskManager pods are created, watched and
    /// listed by label, and deleted; the JobManager's Deployment is read to become their owner
    /// (with `blockOwnerDeletion`, which the OwnerReferencesPermissionEnforcement admission
    /// plugin allows only to who may update the owner's finalizers) and deleted when a
    /// cluster deregisters. Nothing for ConfigMaps: the operator creates the config and pod
    /// template ConfigMaps, and only Kubernetes HA (not rendered) writes more.
    fn rbac(&self) -> Vec<Value> {
        let inputs = self.inputs;
        let name = self.name();
        vec![
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": metadata(inputs, JOBMANAGER, "jobmanager"),
                "rules": [
                    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "list", "watch"]},
                    {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": [name], "verbs": ["get", "delete"]},
                    {"apiGroups": ["apps"], "resources": ["deployments/finalizers"], "resourceNames": [name], "verbs": ["update"]},
                ],
            }),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": metadata(inputs, JOBMANAGER, "jobmanager"),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": JOBMANAGER},
                "subjects": [{"kind": "ServiceAccount", "name": JOBMANAGER, "namespace": inputs.namespace}],
            }),
        ]
    }

    fn secrets(&self) -> Vec<Value> {
        let inputs = self.inputs;
        let mut secrets = identity_secrets(inputs).to_vec();
        secrets.extend([
            secret(
                inputs,
                JM_PASSWORDS,
                "jobmanager",
                &[text_file(PASSWORDS_FILE, &self.jm_passwords)],
            ),
            secret(
                inputs,
                TM_PASSWORDS,
                "taskmanager",
                &[text_file(PASSWORDS_FILE, &self.tm_passwords)],
            ),
        ]);
        secrets
    }

    /// For the operator's pod, in its namespace: the upstream identity under the names its Helm
    /// chart mounts (`/opt/flink/tls-cert/{keystore,truststore}.jks`; Flink opens them with
    /// `security.ssl.rest.keystore-type: PKCS12` from the CR) and its password.
    fn operator_tls(&self) -> Value {
        let store = &self.inputs.upstream_store.bytes;
        let files = [
            SecretFile {
                key: "keystore.jks".into(),
                path: "keystore.jks".into(),
                bytes: store.clone(),
            },
            SecretFile {
                key: "truststore.jks".into(),
                path: "truststore.jks".into(),
                bytes: store.clone(),
            },
            text_file("password", &self.upstream_password),
        ];
        let mut object = secret(self.inputs, OPERATOR_REST_TLS, "operator", &files);
        object["metadata"]["namespace"] = json!(self.operator.namespace);
        object
    }

    /// flinkConfiguration: the renderer's security settings without passwords, and what a
    /// native cluster needs fixed (ports named by NetworkPolicies, the TaskManagers' account).
    fn flink_configuration(&self) -> BTreeMap<String, String> {
        let p = &self.inputs.ports;
        let mut s = FlinkSettings::default();
        // Native mode sets rest.address itself (the pod's address) and drops rest.bind-address
        // from the config it ships; REST must be reachable by the operator in any case.
        for (key, value) in self.settings.iter() {
            if key != "rest.bind-address" && key != "rest.address" {
                s.set(key, value.clone());
            }
        }
        let str = |v: &str| SettingValue::Str(v.to_owned());
        let port = |v: u16| SettingValue::Int(u64::from(v));
        s.set("rest.port", port(p.rest));
        s.set("jobmanager.rpc.port", port(p.jobmanager_rpc));
        s.set("blob.server.port", port(p.blob));
        s.set("taskmanager.rpc.port", port(p.taskmanager_rpc));
        s.set("taskmanager.data.port", port(p.taskmanager_data));
        s.set(
            "taskmanager.numberOfTaskSlots",
            SettingValue::Int(u64::from(self.inputs.k8s.task_slots)),
        );
        s.set("io.tmp.dirs", str("/tmp"));
        // Native mode ships this map, not the image's config.yaml, and with it would go the
        // JVM flags Flink needs on Java 17.
        s.set(
            "env.java.opts.all",
            str(&flinkguard_flink::shipped_java_options(self.inputs.version)),
        );
        s.set("kubernetes.rest-service.exposed.type", str("ClusterIP"));
        // spec.serviceAccount is the JobManager's; TaskManagers need no API access at all.
        s.set("kubernetes.taskmanager.service-account", str(TASKMANAGER));
        s.iter()
            .map(|(k, v)| (k.to_owned(), v.to_string()))
            .collect()
    }

    fn flink_deployment(&self) -> Value {
        let inputs = self.inputs;
        let resource = json!({"cpu": 1.0, "memory": FLINK_MEMORY});
        let mut deployment = json!({
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkDeployment",
            "metadata": metadata(inputs, self.name(), "flink"),
            "spec": {
                "image": inputs.flink_image,
                "imagePullPolicy": "IfNotPresent",
                "flinkVersion": self.flink_version,
                "mode": "native",
                "serviceAccount": JOBMANAGER,
                "flinkConfiguration": self.flink_configuration(),
                "jobManager": {
                    "replicas": 1,
                    "resource": resource,
                    "podTemplate": self.pod_template(true),
                },
                "taskManager": {
                    "resource": resource,
                    "podTemplate": self.pod_template(false),
                },
            },
        });
        // Application mode: the operator starts the image's jar; stateless upgrades, because
        // last-state needs HA, which this render does not configure for the operator.
        if let Some(app) = &inputs.k8s.application {
            let mut job = json!({
                "jarURI": format!("local://{}", app.jar),
                "entryClass": app.entry_class,
                "args": app.args,
                "upgradeMode": "stateless",
            });
            if let Some(parallelism) = app.parallelism {
                job["parallelism"] = json!(parallelism);
            }
            deployment["spec"]["job"] = job;
        }
        deployment
    }

    /// A pod template: Flink merges its own settings (command, ports, config mount, resources
    /// from `resource`) into the container named [`MAIN_CONTAINER`] and keeps everything else.
    fn pod_template(&self, jobmanager: bool) -> Value {
        let inputs = self.inputs;
        let component = if jobmanager {
            "jobmanager"
        } else {
            "taskmanager"
        };
        let mut pki_sources = vec![projected_secret(
            INTERNAL_IDENTITY,
            std::slice::from_ref(&inputs.internal_store),
        )];
        if jobmanager {
            pki_sources.push(projected_secret(
                REST_IDENTITY,
                std::slice::from_ref(&inputs.upstream_store),
            ));
        }
        let passwords = if jobmanager {
            JM_PASSWORDS
        } else {
            TM_PASSWORDS
        };
        let mut volumes = vec![
            json!({"name": "flink-pki", "projected": {"defaultMode": 0o440, "sources": pki_sources}}),
            json!({"name": "flink-passwords", "secret": {"secretName": passwords, "defaultMode": 0o440}}),
            empty_dir("flink-conf", true),
            empty_dir("flink-log", false),
            empty_dir("tmp", false),
        ];
        let mut mounts = vec![
            mount("flink-pki", FLINK_PKI_DIR, true),
            mount("flink-conf", CONF_RW, false),
            mount("flink-log", "/opt/flink/log", false),
            mount("tmp", "/tmp", false),
        ];
        if jobmanager {
            // The token goes to the Flink container alone, not to the gateway side-car:
            // `automountServiceAccountToken` would mount it into every container.
            volumes.push(json!({"name": "kube-api-access", "projected": {
                "defaultMode": 0o440,
                "sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
                ],
            }}));
            mounts.push(mount("kube-api-access", TOKEN_DIR, true));
            volumes.extend(gateway_volumes(inputs));
        }
        let mut containers = vec![json!({
            "name": MAIN_CONTAINER,
            "env": [
                {"name": "FLINK_CONF_DIR", "value": CONF_RW},
                {"name": "FLINK_LOG_DIR", "value": "/opt/flink/log"},
            ],
            "securityContext": container_security(),
            // What Flink sets from `resource` anyway (limit factor 1), stated so the template
            // alone is a complete, restricted pod.
            "resources": resources("1", "1", POD_MEMORY),
            "volumeMounts": mounts,
        })];
        if jobmanager {
            containers.push(gateway_container(inputs));
        }
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"labels": labels(inputs, component)},
            "spec": {
                "automountServiceAccountToken": false,
                "enableServiceLinks": false,
                "securityContext": pod_security(),
                "initContainers": [self.conf_init()],
                "containers": containers,
                "volumes": volumes,
            },
        })
    }

    /// Copies the config Flink ships (a read-only ConfigMap mount) to the in-memory emptyDir
    /// FLINK_CONF_DIR points at, and appends the keystore passwords from their Secret. Either
    /// file name Flink may use is handled; finding neither fails the pod rather than starting
    /// Flink without TLS passwords.
    fn conf_init(&self) -> Value {
        let script = format!(
            "set -eu; cp -L {FLINK_CONF_DIR}/* {CONF_RW}/; found=0; \
             for f in config.yaml flink-conf.yaml; do \
             if [ -f {CONF_RW}/$f ]; then printf '\\n' >> {CONF_RW}/$f; \
             cat {CONF_SECRET}/{PASSWORDS_FILE} >> {CONF_RW}/$f; found=1; fi; done; \
             [ $found = 1 ] || {{ echo 'no Flink config file in {FLINK_CONF_DIR}' >&2; exit 1; }}"
        );
        json!({
            "name": "flink-conf",
            "image": self.inputs.flink_image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", script],
            "securityContext": container_security(),
            "resources": resources("100m", "500m", "64Mi"),
            "volumeMounts": [
                // Flink's native mode adds this volume (its config ConfigMap) to every pod.
                mount(FLINK_CONF_VOLUME, FLINK_CONF_DIR, true),
                mount("flink-passwords", CONF_SECRET, true),
                mount("flink-conf", CONF_RW, false),
            ],
        })
    }

    /// The gateway's Service: the only way to REST from outside the namespace's policies.
    fn gateway_service(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(self.inputs, crate::objects::GATEWAY, "gateway"),
            "spec": {
                "type": "ClusterIP",
                "selector": self.native_selector("jobmanager"),
                "ports": [service_port("https", self.inputs.ports.gateway)],
            },
        })
    }

    fn network_policies(&self) -> Vec<Value> {
        let inputs = self.inputs;
        let p = &inputs.ports;
        let jm = || json!({"matchLabels": self.native_selector("jobmanager")});
        let tm = || json!({"matchLabels": self.native_selector("taskmanager")});
        let jm_pods = || json!({"podSelector": jm()});
        let tm_pods = || json!({"podSelector": tm()});
        let jm_ports = [p.jobmanager_rpc, p.blob];
        let operator_pods = json!({
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.operator.namespace}},
            "podSelector": {"matchLabels": {OPERATOR_POD_LABEL.0: OPERATOR_POD_LABEL.1}},
        });
        let api = &self.operator.api_server;
        let api_peers = ip_blocks(&api.cidrs);
        let mut out = vec![
            default_deny(inputs),
            allow_dns(inputs),
            policy(
                inputs,
                "flink-jm",
                jm(),
                json!({
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [
                        {"from": [tm_pods()], "ports": tcp(&jm_ports)},
                        // Flink's REST port, for the operator alone (mutual TLS on top).
                        {"from": [operator_pods], "ports": tcp(&[p.rest])},
                    ],
                    "egress": [
                        {"to": [tm_pods()], "ports": tcp(&[p.taskmanager_rpc])},
                        // Native mode: the JobManager creates and deletes TaskManager pods.
                        {"to": api_peers, "ports": tcp(&api.ports)},
                    ],
                }),
            ),
            policy(
                inputs,
                "flink-tm",
                tm(),
                json!({
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [
                        {"from": [jm_pods()], "ports": tcp(&[p.taskmanager_rpc])},
                        {"from": [tm_pods()], "ports": tcp(&[p.taskmanager_data])},
                    ],
                    "egress": [
                        {"to": [jm_pods()], "ports": tcp(&jm_ports)},
                        {"to": [tm_pods()], "ports": tcp(&[p.taskmanager_data])},
                    ],
                }),
            ),
        ];
        let sources = gateway_sources(inputs);
        if !sources.is_empty() {
            out.push(policy(
                inputs,
                "gateway-ingress",
                jm(),
                json!({
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": sources, "ports": tcp(&[p.gateway])}],
                }),
            ));
        }
        out.extend(egress_policies(
            inputs,
            &json!({"matchExpressions": [{
                "key": "component",
                "operator": "In",
                "values": ["jobmanager", "taskmanager"],
            }], "matchLabels": {"app": self.name(), "type": "flink-native-kubernetes"}}),
        ));
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flink_versions_map_to_the_crd_enum() {
        assert_eq!(crd_flink_version(FlinkVersion::new(2, 3, 0)), Some("v2_3"));
        assert_eq!(
            crd_flink_version(FlinkVersion::new(1, 20, 3)),
            Some("v1_20")
        );
        assert_eq!(crd_flink_version(FlinkVersion::new(2, 9, 0)), None);
        let message = unsupported_version(FlinkVersion::new(2, 9, 0));
        assert!(
            message.contains("2.9.0") && message.contains("v2_4"),
            "{message}"
        );
    }

    #[test]
    fn deployment_names_follow_the_operators_pattern() {
        for good in ["flink", "f", "prod-2", &"a".repeat(45)] {
            assert!(is_deployment_name(good), "{good}");
        }
        for bad in ["", "2prod", "prod-", "Prod", "pro_d", &"a".repeat(46)] {
            assert!(!is_deployment_name(bad), "{bad}");
        }
    }

    #[test]
    fn passwords_leave_the_settings_and_taskmanagers_get_no_rest_password() {
        let mut s = FlinkSettings::default();
        let str = |v: &str| SettingValue::Str(v.to_owned());
        s.set(
            "security.ssl.internal.keystore",
            str("/opt/flink/pki/internal.p12"),
        );
        s.set("security.ssl.internal.keystore-password", str("Internal1"));
        s.set("security.ssl.rest.key-password", str("Rest2"));
        let split = split_passwords(&s).unwrap();
        assert!(
            split
                .settings
                .iter()
                .all(|(k, _)| !k.ends_with("-password"))
        );
        assert!(
            split
                .settings
                .get("security.ssl.internal.keystore")
                .is_some()
        );
        assert_eq!(
            split.jobmanager,
            "security.ssl.internal.keystore-password: Internal1\nsecurity.ssl.rest.key-password: Rest2\n"
        );
        assert_eq!(
            split.taskmanager,
            "security.ssl.internal.keystore-password: Internal1\n"
        );

        s.set("security.ssl.rest.key-password", str("a: b"));
        assert_eq!(
            split_passwords(&s).err().as_deref(),
            Some("security.ssl.rest.key-password")
        );
    }

    #[test]
    fn a_secret_in_the_flink_deployment_is_refused_naming_the_operators_config_map() {
        let manifests = |config: Value| Manifests {
            files: vec![ManifestFile {
                name: "flinkdeployment.yaml",
                objects: vec![json!({
                    "kind": "FlinkDeployment",
                    "metadata": {"name": "prod"},
                    "spec": {"flinkConfiguration": config},
                })],
                secret: false,
            }],
        };
        let secrets = vec!["s3cretPassw0rd".to_owned()];
        assert!(
            check_no_secret_in_flink_deployment(&manifests(json!({"a": "b"})), &secrets).is_ok()
        );
        let err = check_no_secret_in_flink_deployment(
            &manifests(json!({"security.ssl.internal.keystore-password": "s3cretPassw0rd"})),
            &secrets,
        )
        .unwrap_err();
        assert!(matches!(err, K8sError::SecretInConfigMap(ref n) if n == "flink-config-prod"));
    }
}
