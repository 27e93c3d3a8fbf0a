//! The Kubernetes objects, each built by a small function from [`Inputs`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::ManifestFile;
use crate::pod_config::{
    FLINK_PKI_DIR, GATEWAY_CONFIG_DIR, GATEWAY_PKI_DIR, GATEWAY_STATE_DIR, Inputs, SecretFile,
};

/// The JobManager's name: its Deployment, Service (`jobmanager.rpc.address`) and account.
pub(crate) const JOBMANAGER: &str = "flink-jm";
/// The TaskManagers' name: StatefulSet and headless Service, so pods are `flink-tm-0.flink-tm`.
pub(crate) const TASKMANAGER: &str = "flink-tm";
/// The gateway's Service.
pub(crate) const GATEWAY: &str = "flinkguard-gateway";
pub(crate) const FLINKGUARD_CONFIG: &str = "flinkguard-config";
const JM_FLINK_CONFIG: &str = "flink-jm-config";
const TM_FLINK_CONFIG: &str = "flink-tm-config";
pub(crate) const INTERNAL_IDENTITY: &str = "flink-internal-identity";
pub(crate) const REST_IDENTITY: &str = "flink-rest-identity";
pub(crate) const GATEWAY_PKI: &str = "flinkguard-gateway-pki";
const GATEWAY_STATE: &str = "flinkguard-gateway-state";
/// Where the image built by the repository's Dockerfile has the binary: an absolute path, so
/// the pod does not depend on the image's PATH.
pub const GATEWAY_BINARY: &str = "/usr/local/bin/flinkguard";
/// The user (and group) of Flink's official image.
const FLINK_UID: i64 = 9999;
const FLINK_HOME: &str = "/opt/flink";
pub(crate) const CONF_RW: &str = "/opt/flink/conf-rw";
pub(crate) const CONF_SECRET: &str = "/opt/flink/conf-secret";

/// Every port the rendered cluster uses. Flink's internal ports are fixed (Flink's defaults
/// pick random ones for blob and data) so NetworkPolicies can name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// JobManager RPC (`flink.rpc_port`).
    pub jobmanager_rpc: u16,
    /// JobManager blob server.
    pub blob: u16,
    /// TaskManager RPC.
    pub taskmanager_rpc: u16,
    /// TaskManager data exchange (shuffles between TaskManagers).
    pub taskmanager_data: u16,
    /// Flink REST, on the JobManager pod's loopback only.
    pub rest: u16,
    /// The gateway, the one port of the JobManager pod reachable from outside it.
    pub gateway: u16,
    /// The gateway's admin listener, loopback only.
    pub gateway_admin: u16,
}

impl Ports {
    /// The ports for these `flink.rpc_port` and `flink.rest_port`.
    pub fn new(jobmanager_rpc: u16, rest: u16) -> Ports {
        Ports {
            jobmanager_rpc,
            blob: 6124,
            taskmanager_rpc: 6122,
            taskmanager_data: 6121,
            rest,
            gateway: 8443,
            gateway_admin: 8444,
        }
    }
}

pub(crate) fn labels(inputs: &Inputs, component: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "flink",
        "app.kubernetes.io/instance": inputs.instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "flinkguard",
        "app.kubernetes.io/managed-by": "flinkguard",
    })
}

/// The labels that select a component's pods (a subset of [`labels`], stable across versions).
fn selector(inputs: &Inputs, component: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "flink",
        "app.kubernetes.io/instance": inputs.instance,
        "app.kubernetes.io/component": component,
    })
}

pub(crate) fn metadata(inputs: &Inputs, name: &str, component: &str) -> Value {
    json!({"name": name, "namespace": inputs.namespace, "labels": labels(inputs, component)})
}

/// One manifest file.
pub(crate) fn file(name: &'static str, objects: Vec<Value>, secret: bool) -> ManifestFile {
    ManifestFile {
        name,
        objects,
        secret,
    }
}

/// The files `render k8s` and `render operator` share: the Namespace, the service accounts,
/// flinkguard.yaml's ConfigMap and (unless loudly ephemeral) the gateway's state claim.
pub(crate) fn shared_files(inputs: &Inputs) -> Vec<ManifestFile> {
    let mut files = vec![
        file("namespace.yaml", vec![namespace(inputs)], false),
        file(
            "serviceaccounts.yaml",
            vec![
                service_account(inputs, JOBMANAGER, "jobmanager"),
                service_account(inputs, TASKMANAGER, "taskmanager"),
            ],
            false,
        ),
        file(
            "configmaps.yaml",
            [
                vec![flinkguard_config_map(inputs)],
                crate::connectors::config_maps(inputs),
            ]
            .concat(),
            false,
        ),
    ];
    if !inputs.k8s.gateway_state.ephemeral_state_lost_on_restart {
        files.push(file(
            "storage.yaml",
            vec![gateway_state_claim(inputs)],
            false,
        ));
    }
    files
}

/// Builds every file.
pub(crate) fn build(inputs: &Inputs) -> Vec<ManifestFile> {
    let mut files = shared_files(inputs);
    files.extend([
        file(
            "secrets.yaml",
            [secrets(inputs), crate::connectors::secrets(inputs)].concat(),
            true,
        ),
        file("jobmanager.yaml", vec![jobmanager(inputs)], false),
        file("taskmanager.yaml", vec![taskmanager(inputs)], false),
        file("services.yaml", services(inputs), false),
        file("networkpolicies.yaml", network_policies(inputs), false),
    ]);
    if inputs.k8s.high_availability.is_some() {
        files.push(file("rbac.yaml", crate::ha::rbac(inputs), false));
    }
    files
}

/// The gateway's audit log and ownership database outlive the pod on this claim.
fn gateway_state_claim(inputs: &Inputs) -> Value {
    let state = &inputs.k8s.gateway_state;
    let mut spec = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": state.storage_size}},
    });
    if let Some(class) = &state.storage_class {
        spec["storageClassName"] = json!(class);
    }
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(inputs, GATEWAY_STATE, "gateway"),
        "spec": spec,
    })
}

/// The service account token is mounted only where Flink's HA needs the API.
fn mounts_api_token(inputs: &Inputs) -> bool {
    inputs.k8s.high_availability.is_some()
}

fn namespace(inputs: &Inputs) -> Value {
    let mut labels = labels(inputs, "namespace");
    for mode in ["enforce", "audit", "warn"] {
        labels[format!("pod-security.kubernetes.io/{mode}")] = json!("restricted");
        labels[format!("pod-security.kubernetes.io/{mode}-version")] = json!("latest");
    }
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": inputs.namespace, "labels": labels},
    })
}

fn service_account(inputs: &Inputs, name: &str, component: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(inputs, name, component),
        "automountServiceAccountToken": false,
    })
}

pub(crate) fn secret(inputs: &Inputs, name: &str, component: &str, files: &[SecretFile]) -> Value {
    let mut data = serde_json::Map::new();
    for file in files {
        data.insert(file.key.clone(), json!(STANDARD.encode(&file.bytes)));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(inputs, name, component),
        "type": "Opaque",
        "immutable": false,
        "data": data,
    })
}

pub(crate) fn text_file(key: &str, text: &str) -> SecretFile {
    SecretFile {
        key: key.to_owned(),
        path: key.to_owned(),
        bytes: text.as_bytes().to_vec(),
    }
}

fn secrets(inputs: &Inputs) -> Vec<Value> {
    let file = inputs.flink_config_file;
    vec![
        // The whole Flink config is a Secret: Flink reads keystore passwords only from its
        // config file, and a split ConfigMap + Secret would need a merge step at start.
        secret(
            inputs,
            JM_FLINK_CONFIG,
            "jobmanager",
            &[text_file(file, &inputs.jobmanager_flink_config)],
        ),
        secret(
            inputs,
            TM_FLINK_CONFIG,
            "taskmanager",
            &[text_file(file, &inputs.taskmanager_flink_config)],
        ),
    ]
    .into_iter()
    .chain(identity_secrets(inputs))
    .collect()
}

/// The PKI's Secrets both renders share: Flink's internal keystore, Flink REST's keystore
/// (the upstream identity) and the gateway's files.
pub(crate) fn identity_secrets(inputs: &Inputs) -> [Value; 3] {
    [
        secret(
            inputs,
            INTERNAL_IDENTITY,
            "flink",
            std::slice::from_ref(&inputs.internal_store),
        ),
        secret(
            inputs,
            REST_IDENTITY,
            "jobmanager",
            std::slice::from_ref(&inputs.upstream_store),
        ),
        secret(inputs, GATEWAY_PKI, "gateway", &inputs.gateway_files),
    ]
}

fn flinkguard_config_map(inputs: &Inputs) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(inputs, FLINKGUARD_CONFIG, "gateway"),
        "data": {"flinkguard.yaml": inputs.flinkguard_yaml},
    })
}

pub(crate) fn container_security() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": FLINK_UID,
        "runAsGroup": FLINK_UID,
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "privileged": false,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

pub(crate) fn pod_security() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": FLINK_UID,
        "runAsGroup": FLINK_UID,
        "fsGroup": FLINK_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

pub(crate) fn resources(cpu_request: &str, cpu_limit: &str, memory: &str) -> Value {
    // Memory request = limit: Flink sizes its JVM to the process size, never beyond it.
    json!({
        "requests": {"cpu": cpu_request, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory},
    })
}

pub(crate) fn mount(name: &str, path: &str, read_only: bool) -> Value {
    json!({"name": name, "mountPath": path, "readOnly": read_only})
}

pub(crate) fn empty_dir(name: &str, memory: bool) -> Value {
    if memory {
        // Holds the Flink config with its passwords: kept off the node's disk.
        json!({"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}})
    } else {
        json!({"name": name, "emptyDir": {"sizeLimit": "2Gi"}})
    }
}

/// One Secret as a source of a projected volume, each file at its path under the mount.
pub(crate) fn projected_secret(secret: &str, files: &[SecretFile]) -> Value {
    json!({"secret": {
        "name": secret,
        "items": files.iter().map(|f| json!({"key": f.key, "path": f.path})).collect::<Vec<_>>(),
    }})
}

/// The volumes and init container every Flink pod shares: Flink's image rewrites conf/ at
/// start (its entrypoint edits config files in place), which a read-only root forbids. The pod
/// runs Flink's scripts directly instead, with FLINK_CONF_DIR on an in-memory emptyDir that an
/// init container fills with the image's log4j settings and the rendered config.
fn flink_pod_parts(inputs: &Inputs, config_secret: &str, jobmanager: bool) -> (Vec<Value>, Value) {
    let file = inputs.flink_config_file;
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
    let mut volumes = vec![
        json!({"name": "flink-pki", "projected": {
            "defaultMode": 0o440,
            "sources": pki_sources,
        }}),
        json!({"name": "flink-config-secret", "secret": {
            "secretName": config_secret, "defaultMode": 0o440,
        }}),
        empty_dir("flink-conf", true),
        empty_dir("flink-log", false),
        empty_dir("tmp", false),
    ];
    volumes.extend(crate::connectors::volumes(&inputs.connectors));
    let init = json!({
        "name": "flink-conf",
        "image": inputs.flink_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", format!(
            "cp {FLINK_HOME}/conf/log4j-console.properties {CONF_RW}/ && cp {CONF_SECRET}/{file} {CONF_RW}/{file}"
        )],
        "securityContext": container_security(),
        "resources": resources("100m", "500m", "64Mi"),
        "volumeMounts": [
            mount("flink-config-secret", CONF_SECRET, true),
            mount("flink-conf", CONF_RW, false),
        ],
    });
    (volumes, init)
}

fn flink_env() -> Vec<Value> {
    vec![
        json!({"name": "FLINK_CONF_DIR", "value": CONF_RW}),
        json!({"name": "FLINK_LOG_DIR", "value": "/opt/flink/log"}),
    ]
}

fn flink_mounts(inputs: &Inputs) -> Vec<Value> {
    let mut mounts = vec![
        mount("flink-pki", FLINK_PKI_DIR, true),
        mount("flink-conf", CONF_RW, false),
        mount("flink-log", "/opt/flink/log", false),
        mount("tmp", "/tmp", false),
    ];
    mounts.extend(crate::connectors::mounts(&inputs.connectors));
    mounts
}

pub(crate) fn port(name: &str, number: u16) -> Value {
    json!({"name": name, "containerPort": number, "protocol": "TCP"})
}

fn jobmanager(inputs: &Inputs) -> Value {
    let p = &inputs.ports;
    let (mut volumes, init) = flink_pod_parts(inputs, JM_FLINK_CONFIG, true);
    volumes.extend(gateway_volumes(inputs));
    let (command, args) = jobmanager_command(inputs);
    let flink = json!({
        "name": "jobmanager",
        "image": inputs.flink_image,
        "imagePullPolicy": "IfNotPresent",
        "command": [command],
        "args": args,
        "env": flink_env(),
        // REST (rest_port) is bound to 127.0.0.1 and deliberately not declared.
        "ports": [port("rpc", p.jobmanager_rpc), port("blob", p.blob)],
        "securityContext": container_security(),
        "resources": resources("500m", "2", "2Gi"),
        "volumeMounts": flink_mounts(inputs),
    });
    let gateway = gateway_container(inputs);
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(inputs, JOBMANAGER, "jobmanager"),
        "spec": {
            "replicas": 1,
            // Never two JobManagers (and two ownership databases) at once.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(inputs, "jobmanager")},
            "template": {
                "metadata": {"labels": labels(inputs, "jobmanager")},
                "spec": {
                    "serviceAccountName": JOBMANAGER,
                    "automountServiceAccountToken": mounts_api_token(inputs),
                    "enableServiceLinks": false,
                    "securityContext": pod_security(),
                    "initContainers": [init],
                    "containers": [flink, gateway],
                    "volumes": volumes,
                },
            },
        },
    })
}

/// A session cluster's JobManager, or in application mode the standalone application entry
/// point, which runs the image's jar's `main()` at start (no upload, no `POST /jobs`).
fn jobmanager_command(inputs: &Inputs) -> (String, Vec<String>) {
    match &inputs.k8s.application {
        None => (
            format!("{FLINK_HOME}/bin/jobmanager.sh"),
            vec!["start-foreground".to_owned()],
        ),
        Some(app) => {
            let mut args = vec![
                "start-foreground".to_owned(),
                "--job-classname".to_owned(),
                app.entry_class.clone(),
                "--jars".to_owned(),
                app.jar.clone(),
            ];
            // `--jars` takes any number of values: `--` ends it, or the job's first argument
            // would be read as a second jar.
            if !app.args.is_empty() {
                args.push("--".to_owned());
                args.extend(app.args.iter().cloned());
            }
            (format!("{FLINK_HOME}/bin/standalone-job.sh"), args)
        }
    }
}

/// The gateway side-car's volumes: flinkguard.yaml, its part of the PKI, its state.
pub(crate) fn gateway_volumes(inputs: &Inputs) -> Vec<Value> {
    vec![
        json!({"name": "gateway-config", "configMap": {
            "name": FLINKGUARD_CONFIG, "defaultMode": 0o440,
        }}),
        json!({"name": "gateway-pki", "secret": {
            "secretName": GATEWAY_PKI,
            "defaultMode": 0o440,
            "items": inputs.gateway_files.iter().map(|f| json!({"key": f.key, "path": f.path})).collect::<Vec<_>>(),
        }}),
        gateway_state_volume(inputs),
    ]
}

/// The claim by default; an emptyDir only when flinkguard.yaml says loudly that losing the
/// state with the pod is fine.
fn gateway_state_volume(inputs: &Inputs) -> Value {
    if inputs.k8s.gateway_state.ephemeral_state_lost_on_restart {
        empty_dir("gateway-state", false)
    } else {
        json!({"name": "gateway-state", "persistentVolumeClaim": {"claimName": GATEWAY_STATE}})
    }
}

/// The gateway side-car: the JobManager pod's only port for REST clients.
pub(crate) fn gateway_container(inputs: &Inputs) -> Value {
    let p = &inputs.ports;
    let config_path = format!("{GATEWAY_CONFIG_DIR}/flinkguard.yaml");
    json!({
        "name": "gateway",
        "image": inputs.gateway_image,
        "imagePullPolicy": "IfNotPresent",
        "command": [GATEWAY_BINARY, "gateway", "--config", config_path],
        "ports": [port("https", p.gateway)],
        "readinessProbe": {"tcpSocket": {"port": "https"}, "periodSeconds": 10},
        "livenessProbe": {"tcpSocket": {"port": "https"}, "periodSeconds": 20, "initialDelaySeconds": 10},
        "securityContext": container_security(),
        "resources": resources("100m", "1", "256Mi"),
        "volumeMounts": [
            mount("gateway-config", GATEWAY_CONFIG_DIR, true),
            mount("gateway-pki", GATEWAY_PKI_DIR, true),
            mount("gateway-state", GATEWAY_STATE_DIR, false),
        ],
    })
}

fn taskmanager(inputs: &Inputs) -> Value {
    let p = &inputs.ports;
    let (volumes, init) = flink_pod_parts(inputs, TM_FLINK_CONFIG, false);
    let mut env = flink_env();
    env.push(
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
    );
    let flink = json!({
        "name": "taskmanager",
        "image": inputs.flink_image,
        "imagePullPolicy": "IfNotPresent",
        "command": [format!("{FLINK_HOME}/bin/taskmanager.sh")],
        // The stable name the headless Service gives this pod, e.g. flink-tm-0.flink-tm.
        "args": ["start-foreground", format!("-Dtaskmanager.host=$(POD_NAME).{TASKMANAGER}")],
        "env": env,
        "ports": [port("rpc", p.taskmanager_rpc), port("data", p.taskmanager_data)],
        "securityContext": container_security(),
        "resources": resources("1", "2", "2Gi"),
        "volumeMounts": flink_mounts(inputs),
    });
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(inputs, TASKMANAGER, "taskmanager"),
        "spec": {
            "replicas": inputs.k8s.taskmanagers,
            "serviceName": TASKMANAGER,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector(inputs, "taskmanager")},
            "template": {
                "metadata": {"labels": labels(inputs, "taskmanager")},
                "spec": {
                    "serviceAccountName": TASKMANAGER,
                    "automountServiceAccountToken": mounts_api_token(inputs),
                    "enableServiceLinks": false,
                    "securityContext": pod_security(),
                    "initContainers": [init],
                    "containers": [flink],
                    "volumes": volumes,
                },
            },
        },
    })
}

pub(crate) fn service_port(name: &str, number: u16) -> Value {
    json!({"name": name, "port": number, "targetPort": name, "protocol": "TCP"})
}

fn services(inputs: &Inputs) -> Vec<Value> {
    let p = &inputs.ports;
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(inputs, JOBMANAGER, "jobmanager"),
            "spec": {
                "type": "ClusterIP",
                "selector": selector(inputs, "jobmanager"),
                "ports": [service_port("rpc", p.jobmanager_rpc), service_port("blob", p.blob)],
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(inputs, TASKMANAGER, "taskmanager"),
            "spec": {
                "clusterIP": "None",
                // DNS names exist before readiness, so TaskManagers can register at start.
                "publishNotReadyAddresses": true,
                "selector": selector(inputs, "taskmanager"),
                "ports": [service_port("rpc", p.taskmanager_rpc), service_port("data", p.taskmanager_data)],
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(inputs, GATEWAY, "gateway"),
            "spec": {
                "type": "ClusterIP",
                "selector": selector(inputs, "jobmanager"),
                "ports": [service_port("https", p.gateway)],
            },
        }),
    ]
}

pub(crate) fn policy(inputs: &Inputs, name: &str, pod_selector: Value, spec: Value) -> Value {
    let mut spec = spec;
    spec["podSelector"] = pod_selector;
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(inputs, name, "network"),
        "spec": spec,
    })
}

pub(crate) fn tcp(ports: &[u16]) -> Vec<Value> {
    ports
        .iter()
        .map(|p| json!({"protocol": "TCP", "port": p}))
        .collect()
}

/// NetworkPolicy peers outside the cluster, by address.
pub(crate) fn ip_blocks(cidrs: &[impl std::fmt::Display]) -> Vec<Value> {
    cidrs
        .iter()
        .map(|c| json!({"ipBlock": {"cidr": c.to_string()}}))
        .collect()
}

/// Selects the JobManager and TaskManager pods (not other workloads of the namespace).
pub(crate) fn flink_pods(inputs: &Inputs) -> Value {
    json!({"matchExpressions": [{
        "key": "app.kubernetes.io/component",
        "operator": "In",
        "values": ["jobmanager", "taskmanager"],
    }], "matchLabels": {"app.kubernetes.io/instance": inputs.instance}})
}

fn pods(inputs: &Inputs, component: &str) -> Value {
    json!({"podSelector": {"matchLabels": selector(inputs, component)}})
}

/// Every pod of the namespace: nothing in, nothing out, until a policy below allows it.
pub(crate) fn default_deny(inputs: &Inputs) -> Value {
    policy(
        inputs,
        "default-deny",
        json!({}),
        json!({"policyTypes": ["Ingress", "Egress"]}),
    )
}

/// Every pod of the namespace may ask kube-dns.
pub(crate) fn allow_dns(inputs: &Inputs) -> Value {
    policy(
        inputs,
        "allow-dns",
        json!({}),
        json!({
            "policyTypes": ["Egress"],
            "egress": [{
                "to": [{
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }],
        }),
    )
}

/// The gateway port's sources from `kubernetes.ingress_from`; empty when none is configured
/// (then no rule at all: a rule with an empty `from` would admit everyone).
pub(crate) fn gateway_sources(inputs: &Inputs) -> Vec<Value> {
    let from = &inputs.k8s.ingress_from;
    let mut sources: Vec<Value> = from
        .namespaces
        .iter()
        .map(
            |ns| json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}),
        )
        .collect();
    sources.extend(ip_blocks(&from.cidrs));
    sources
}

fn network_policies(inputs: &Inputs) -> Vec<Value> {
    let p = &inputs.ports;
    let jm = || json!({"matchLabels": selector(inputs, "jobmanager")});
    let tm = || json!({"matchLabels": selector(inputs, "taskmanager")});
    let jm_ports = [p.jobmanager_rpc, p.blob];
    let mut out = vec![
        default_deny(inputs),
        allow_dns(inputs),
        // TaskManagers call the JobManager's RPC and blob ports; the JobManager calls back on
        // the TaskManagers' RPC port.
        policy(
            inputs,
            "flink-jm",
            jm(),
            json!({
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [pods(inputs, "taskmanager")], "ports": tcp(&jm_ports)}],
                "egress": [{"to": [pods(inputs, "taskmanager")], "ports": tcp(&[p.taskmanager_rpc])}],
            }),
        ),
        // TaskManagers exchange data with each other (shuffles) on the data port.
        policy(
            inputs,
            "flink-tm",
            tm(),
            json!({
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {"from": [pods(inputs, "jobmanager")], "ports": tcp(&[p.taskmanager_rpc])},
                    {"from": [pods(inputs, "taskmanager")], "ports": tcp(&[p.taskmanager_data])},
                ],
                "egress": [
                    {"to": [pods(inputs, "jobmanager")], "ports": tcp(&jm_ports)},
                    {"to": [pods(inputs, "taskmanager")], "ports": tcp(&[p.taskmanager_data])},
                ],
            }),
        ),
    ];
    // No source configured: no rule at all. (A rule with an empty `from` would admit everyone.)
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
    if let Some(ha) = &inputs.k8s.high_availability {
        out.push(crate::ha::api_server_egress(inputs, ha));
    }
    out.extend(egress_policies(inputs, &flink_pods(inputs)));
    out
}

/// One policy per `kubernetes.egress` target, for the Flink pods `flink_pods` selects.
pub(crate) fn egress_policies(inputs: &Inputs, flink_pods: &Value) -> Vec<Value> {
    inputs
        .k8s
        .egress
        .iter()
        .map(|target| {
            policy(
                inputs,
                &format!("egress-{}", target.name),
                flink_pods.clone(),
                json!({
                    "policyTypes": ["Egress"],
                    "egress": [{
                        "to": ip_blocks(&target.cidrs),
                        "ports": tcp(&target.ports),
                    }],
                }),
            )
        })
        .collect()
}
