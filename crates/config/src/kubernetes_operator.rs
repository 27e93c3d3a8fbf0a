//! `kubernetes.operator:` — what `flinkguard render operator` needs to know about the Apache
//! Flink Kubernetes Operator's installation: where it runs (its pods alone may reach Flink's REST
//! port) and where the Kubernetes API server is (native mode: the JobManager creates its
//! TaskManager pods, and default-deny egress must let exactly that through).

use ipnet::IpNet;

use crate::kubernetes::is_dns_label;

/// `kubernetes.operator` (optional for `render k8s`, required by `render operator`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSection {
    /// The namespace the operator is installed in (`helm install -n NAMESPACE`).
    pub namespace: String,
    /// The Kubernetes API server as the pods reach it.
    pub api_server: ApiServer,
}

/// `kubernetes.operator.api_server`: the API server's endpoint addresses and ports. NetworkPolicy
/// matches traffic after the `kubernetes` Service's address is translated, so these are the
/// endpoints (`kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes`),
/// usually port 6443 (443 on some managed clusters).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiServer {
    /// Address ranges of the API server's endpoints.
    pub cidrs: Vec<IpNet>,
    /// Their TCP ports.
    pub ports: Vec<u16>,
}

impl OperatorSection {
    /// Checks what types alone cannot: `(field, message with the fix)`.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if !is_dns_label(&self.namespace) {
            return Err((
                "kubernetes.operator.namespace",
                format!(
                    "`{}` is not a namespace name (1-63 lowercase letters, digits or '-')",
                    self.namespace
                ),
            ));
        }
        self.api_server.check("kubernetes.operator.api_server")
    }
}

impl ApiServer {
    /// Checks the lists, naming `field` (where in flinkguard.yaml this one is) in the error.
    pub(crate) fn check(&self, field: &'static str) -> Result<(), (&'static str, String)> {
        if self.cidrs.is_empty() || self.ports.is_empty() || self.ports.contains(&0) {
            return Err((
                field,
                "needs at least one entry in cidrs and in ports (non-zero); take them from `kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes`".to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn section(namespace: &str, cidrs: &[&str], ports: &[u16]) -> OperatorSection {
        OperatorSection {
            namespace: namespace.to_owned(),
            api_server: ApiServer {
                cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
                ports: ports.to_vec(),
            },
        }
    }

    #[test]
    fn namespace_and_api_server_are_checked_with_the_field_named() {
        assert!(
            section("flink-operator", &["10.0.0.1/32"], &[6443])
                .check()
                .is_ok()
        );
        let (field, _) = section("Flink_Operator", &["10.0.0.1/32"], &[6443])
            .check()
            .unwrap_err();
        assert_eq!(field, "kubernetes.operator.namespace");
        for bad in [
            section("op", &[], &[6443]),
            section("op", &["10.0.0.1/32"], &[]),
            section("op", &["10.0.0.1/32"], &[0]),
        ] {
            let (field, message) = bad.check().unwrap_err();
            assert_eq!(field, "kubernetes.operator.api_server");
            assert!(message.contains("endpointslices"), "{message}");
        }
    }
}
