//! `kubernetes:` — what `flinkguard render k8s` needs beyond the rest of the file: where the
//! cluster runs, which images, and who may talk to it over the network.

use ipnet::IpNet;

use crate::connectors::{ConnectorTruststore, KerberosSettings};

/// `kubernetes:` (optional; every field has a secure default).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSection {
    /// The namespace every object lives in. Default: `cluster.name`.
    pub namespace: Option<String>,
    /// Flink's container image. Default: `flink:<flink.version>-java17`.
    pub image: Option<String>,
    /// The gateway side-car's image (flinkguard itself). Default: `flinkguard:<version>`.
    pub gateway_image: Option<String>,
    /// TaskManager replicas of the StatefulSet.
    pub taskmanagers: u32,
    /// `taskmanager.numberOfTaskSlots`.
    pub task_slots: u32,
    /// Who may reach the gateway's port. Empty (the default): nobody, until listed.
    pub ingress_from: IngressFrom,
    /// Where Flink's pods may connect besides each other and DNS: the sources and sinks jobs
    /// use. Empty (the default): nowhere.
    pub egress: Vec<EgressTarget>,
    /// The Kerberos identity jobs log in with (keytab, krb5.conf, Kafka SASL/GSSAPI).
    /// Unset (the default): no Kerberos.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kerberos: Option<KerberosSettings>,
    /// CAs of the servers connectors talk to, as PKCS#12 truststores mounted for jobs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connector_truststores: Vec<ConnectorTruststore>,
}

impl Default for KubernetesSection {
    fn default() -> Self {
        KubernetesSection {
            namespace: None,
            image: None,
            gateway_image: None,
            taskmanagers: 1,
            task_slots: 1,
            ingress_from: IngressFrom::default(),
            egress: Vec::new(),
            kerberos: None,
            connector_truststores: Vec::new(),
        }
    }
}

/// `kubernetes.ingress_from`: sources allowed to the gateway port, by namespace or address.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngressFrom {
    /// Namespaces (every pod in them) by name.
    pub namespaces: Vec<String>,
    /// Address ranges, e.g. a load balancer's or an office network's.
    pub cidrs: Vec<IpNet>,
}

/// One entry of `kubernetes.egress`: a source or sink jobs connect to. NetworkPolicy selects
/// peers outside the cluster by address only, so targets are address ranges and ports, not
/// host names.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressTarget {
    /// What it is (`kafka`, `elasticsearch`), used in the policy's name.
    pub name: String,
    /// Address ranges of its servers.
    pub cidrs: Vec<IpNet>,
    /// TCP ports on them.
    pub ports: Vec<u16>,
}

/// Whether `name` is a DNS-1123 label (what Kubernetes accepts for namespaces and names).
pub(crate) fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

impl KubernetesSection {
    /// Checks what types alone cannot: `(field, message with the fix)`.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(ns) = &self.namespace
            && !is_dns_label(ns)
        {
            return Err((
                "kubernetes.namespace",
                format!("`{ns}` must be 1-63 lowercase letters, digits or '-'"),
            ));
        }
        for (field, image) in [
            ("kubernetes.image", &self.image),
            ("kubernetes.gateway_image", &self.gateway_image),
        ] {
            if let Some(image) = image
                && (image.trim().is_empty() || image.contains(char::is_whitespace))
            {
                return Err((
                    field,
                    format!("`{image}` is not an image reference; e.g. flink:2.3.0-java17"),
                ));
            }
        }
        if self.taskmanagers == 0 || self.taskmanagers > 1000 {
            return Err((
                "kubernetes.taskmanagers",
                format!("{} is not between 1 and 1000", self.taskmanagers),
            ));
        }
        if self.task_slots == 0 || self.task_slots > 1024 {
            return Err((
                "kubernetes.task_slots",
                format!("{} is not between 1 and 1024", self.task_slots),
            ));
        }
        for ns in &self.ingress_from.namespaces {
            if !is_dns_label(ns) {
                return Err((
                    "kubernetes.ingress_from.namespaces",
                    format!(
                        "`{ns}` is not a namespace name (1-63 lowercase letters, digits or '-')"
                    ),
                ));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for target in &self.egress {
            if !is_dns_label(&target.name) || target.name.len() > 40 {
                return Err((
                    "kubernetes.egress",
                    format!(
                        "name `{}` must be 1-40 lowercase letters, digits or '-' (it names a NetworkPolicy)",
                        target.name
                    ),
                ));
            }
            if !names.insert(target.name.as_str()) {
                return Err((
                    "kubernetes.egress",
                    format!(
                        "name `{}` is listed twice; give each target its own name",
                        target.name
                    ),
                ));
            }
            if target.cidrs.is_empty() || target.ports.is_empty() {
                return Err((
                    "kubernetes.egress",
                    format!(
                        "`{}` needs at least one entry in cidrs and in ports (NetworkPolicy cannot select host names)",
                        target.name
                    ),
                ));
            }
            if target.ports.contains(&0) {
                return Err((
                    "kubernetes.egress",
                    format!("`{}`: port 0 is not a port", target.name),
                ));
            }
        }
        crate::connectors::check(self.kerberos.as_ref(), &self.connector_truststores)?;
        Ok(())
    }
}
