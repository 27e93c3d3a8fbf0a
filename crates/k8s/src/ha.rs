//! Flink's Kubernetes HA (`kubernetes.high_availability`): the settings, the exact RBAC it
//! needs, and the one egress it adds (the API server).
//!
//! What Flink does with the API, read from its `flink-kubernetes` module (1.20, 2.x): leader
//! election through fabric8's `ConfigMapLock` (get, create, update of one ConfigMap per
//! component), leader retrieval and job metadata through a shared informer on ConfigMaps
//! (list, watch), `checkAndUpdateConfigMap` (get, update), and clean-up by name and by label
//! (delete, deletecollection). Nothing else: no pods, services or deployments in standalone
//! mode, so the Role names ConfigMaps only. TaskManagers only read (leader retrieval).

use flinkguard_config::HighAvailability;
use flinkguard_render::{FlinkSettings, SettingValue};
use serde_json::{Value, json};

use crate::objects::{JOBMANAGER, TASKMANAGER, flink_pods, ip_blocks, metadata, tcp};
use crate::pod_config::Inputs;

/// What the JobManager does with ConfigMaps.
const JOBMANAGER_VERBS: [&str; 7] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "delete",
    "deletecollection",
];
/// What a TaskManager does with ConfigMaps: find the leaders.
const TASKMANAGER_VERBS: [&str; 3] = ["get", "list", "watch"];

/// Flink's HA settings. The JobManager's RPC port is pinned: with HA on, Flink otherwise
/// picks a random one (`high-availability.jobmanager.port` defaults to 0), which the
/// NetworkPolicies could not name.
pub(crate) fn settings(
    ha: &HighAvailability,
    cluster_id: &str,
    namespace: &str,
    jobmanager_rpc: u16,
) -> FlinkSettings {
    let mut s = FlinkSettings::default();
    let str = |v: &str| SettingValue::Str(v.to_owned());
    s.set("high-availability.type", str("kubernetes"));
    s.set("high-availability.storageDir", str(&ha.storage_dir));
    s.set(
        "high-availability.jobmanager.port",
        str(&jobmanager_rpc.to_string()),
    );
    s.set("kubernetes.cluster-id", str(cluster_id));
    // Flink's Kubernetes client looks in `kubernetes.namespace` (default "default"), not in
    // the pod's own namespace.
    s.set("kubernetes.namespace", str(namespace));
    s
}

fn role(inputs: &Inputs, name: &str, component: &str, verbs: &[&str]) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(inputs, name, component),
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs}],
    })
}

fn role_binding(inputs: &Inputs, name: &str, component: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(inputs, name, component),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": inputs.namespace}],
    })
}

/// A Role and RoleBinding per component, bound to its own ServiceAccount.
pub(crate) fn rbac(inputs: &Inputs) -> Vec<Value> {
    vec![
        role(inputs, JOBMANAGER, "jobmanager", &JOBMANAGER_VERBS),
        role_binding(inputs, JOBMANAGER, "jobmanager"),
        role(inputs, TASKMANAGER, "taskmanager", &TASKMANAGER_VERBS),
        role_binding(inputs, TASKMANAGER, "taskmanager"),
    ]
}

/// Egress from Flink's pods to the API server's endpoints. NetworkPolicies see the endpoint
/// addresses after the `kubernetes` Service's address translation, hence addresses and ports
/// of the endpoints, not the Service's.
pub(crate) fn api_server_egress(inputs: &Inputs, ha: &HighAvailability) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(inputs, "egress-kubernetes-api", "network"),
        "spec": {
            "podSelector": flink_pods(inputs),
            "policyTypes": ["Egress"],
            "egress": [{
                "to": ip_blocks(&ha.api_server.cidrs),
                "ports": tcp(&ha.api_server.ports),
            }],
        },
    })
}
