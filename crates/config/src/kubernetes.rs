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
    /// Flink's Kubernetes HA (leader election and job metadata in ConfigMaps). Off by
    /// default: it needs the API, so it is the one setting that mounts a service account
    /// token, with a Role for ConfigMaps only.
    pub high_availability: Option<HighAvailability>,
    /// Application mode: the job's jar is in the image and the JobManager runs its `main()`;
    /// nothing is uploaded. Default: a session cluster.
    pub application: Option<Application>,
    /// The gateway's writable state (audit log, job ownership database).
    pub gateway_state: GatewayState,
    /// The Flink Kubernetes Operator's installation, for `render operator`. Default: none.
    pub operator: Option<crate::OperatorSection>,
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
            high_availability: None,
            application: None,
            gateway_state: GatewayState::default(),
            operator: None,
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

/// `kubernetes.high_availability`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HighAvailability {
    /// `high-availability.storageDir`: a filesystem every JobManager pod reaches and that
    /// outlives them (`s3://bucket/flink/ha`, `hdfs://...`); the metadata in ConfigMaps
    /// points into it.
    pub storage_dir: String,
    /// The Kubernetes API server's endpoints: the pods' only egress beyond Flink, DNS and
    /// `egress`. Required, because default-deny egress would otherwise cut Flink off from
    /// its leader election.
    pub api_server: crate::ApiServer,
}

/// `kubernetes.application`: the job the JobManager runs at start.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// The job's jar inside `kubernetes.image`, e.g. `/opt/flink/usrlib/job.jar`.
    pub jar: String,
    /// The class whose `main()` builds the job.
    pub entry_class: String,
    /// Arguments to `main()`.
    #[serde(default)]
    pub args: Vec<String>,
    /// `parallelism.default` for the job. Default: Flink's.
    #[serde(default)]
    pub parallelism: Option<u32>,
}

/// `kubernetes.gateway_state`: where the gateway keeps its audit log and the job ownership
/// database. A PersistentVolumeClaim by default: job owners decide who may cancel what, and
/// must survive a restarted pod.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayState {
    /// The claim's size (a Kubernetes quantity such as `1Gi`).
    pub storage_size: String,
    /// The claim's storage class. Default: the cluster's default class.
    pub storage_class: Option<String>,
    /// `true`: an emptyDir instead of a claim. Job owners and the audit log are then lost
    /// whenever the JobManager pod is replaced, and owned jobs become admin-only.
    pub ephemeral_state_lost_on_restart: bool,
}

impl Default for GatewayState {
    fn default() -> Self {
        GatewayState {
            storage_size: "1Gi".to_owned(),
            storage_class: None,
            ephemeral_state_lost_on_restart: false,
        }
    }
}

/// Whether `size` is a binary or decimal storage quantity: digits and a suffix.
fn is_storage_quantity(size: &str) -> bool {
    let digits = size.trim_end_matches(char::is_alphabetic);
    let suffix = &size[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().any(|b| b != b'0')
        && ["Ki", "Mi", "Gi", "Ti", "k", "M", "G", "T"].contains(&suffix)
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

/// Whether `name` is a DNS-1123 subdomain (StorageClass names).
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// HA metadata must outlive the JobManager pod and be reachable from its successor: a
/// `file://` path or a bare path would be the pod's own disk.
fn check_ha_storage_dir(dir: &str) -> Result<(), (&'static str, String)> {
    let field = "kubernetes.high_availability.storage_dir";
    let Some((scheme, rest)) = dir.split_once("://") else {
        return Err((
            field,
            format!("`{dir}` has no scheme; use a shared filesystem such as s3://bucket/flink/ha"),
        ));
    };
    if scheme.eq_ignore_ascii_case("file") {
        return Err((
            field,
            format!(
                "`{dir}` is the pod's own disk, which a new JobManager pod does not see; use a shared filesystem such as s3://bucket/flink/ha"
            ),
        ));
    }
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        || rest.trim_matches('/').is_empty()
        || dir.contains(char::is_whitespace)
    {
        return Err((
            field,
            format!("`{dir}` is not a filesystem URI; e.g. s3://bucket/flink/ha"),
        ));
    }
    Ok(())
}

impl Application {
    fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.jar.starts_with('/') || !self.jar.ends_with(".jar") || self.jar.contains("..") {
            return Err((
                "kubernetes.application.jar",
                format!(
                    "`{}` must be the absolute path of a .jar inside kubernetes.image, e.g. /opt/flink/usrlib/job.jar",
                    self.jar
                ),
            ));
        }
        let java_name = |part: &str| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
                && part
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        };
        if !self.entry_class.split('.').all(java_name) {
            return Err((
                "kubernetes.application.entry_class",
                format!(
                    "`{}` is not a Java class name; e.g. com.example.MyJob",
                    self.entry_class
                ),
            ));
        }
        if self.parallelism == Some(0) {
            return Err((
                "kubernetes.application.parallelism",
                "0 is not a parallelism; leave it out for Flink's default".to_owned(),
            ));
        }
        Ok(())
    }
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
        if let Some(ha) = &self.high_availability {
            check_ha_storage_dir(&ha.storage_dir)?;
            ha.api_server
                .check("kubernetes.high_availability.api_server")?;
        }
        if let Some(app) = &self.application {
            app.check()?;
        }
        let state = &self.gateway_state;
        if !is_storage_quantity(&state.storage_size) {
            return Err((
                "kubernetes.gateway_state.storage_size",
                format!(
                    "`{}` is not a storage size; e.g. 1Gi or 500Mi",
                    state.storage_size
                ),
            ));
        }
        if let Some(class) = &state.storage_class
            && !is_dns_subdomain(class)
        {
            return Err((
                "kubernetes.gateway_state.storage_class",
                format!("`{class}` is not a StorageClass name"),
            ));
        }
        if let Some(operator) = &self.operator {
            operator.check()?;
        }
        crate::connectors::check(self.kerberos.as_ref(), &self.connector_truststores)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod ha_application_state_tests {
    use super::*;

    fn section(yaml: &str) -> Result<(), (&'static str, String)> {
        let section: KubernetesSection = serde_yaml_ng::from_str(yaml).unwrap();
        section.check()
    }

    #[test]
    fn ha_storage_must_be_a_shared_filesystem() {
        assert!(section("high_availability: {storage_dir: s3://bucket/flink/ha, api_server: {cidrs: [10.0.0.1/32], ports: [6443]}}").is_ok());
        assert!(section("high_availability: {storage_dir: hdfs://nn:8020/flink/ha, api_server: {cidrs: [10.0.0.1/32], ports: [6443]}}").is_ok());
        for (dir, hint) in [
            ("file:///tmp/ha", "pod's own disk"),
            ("/flink/ha", "no scheme"),
            ("s3://", "not a filesystem URI"),
        ] {
            let (field, message) = section(&format!(
                "high_availability: {{storage_dir: '{dir}', api_server: {{cidrs: [10.0.0.1/32], ports: [6443]}}}}"
            ))
            .unwrap_err();
            assert_eq!(field, "kubernetes.high_availability.storage_dir");
            assert!(message.contains(hint), "{dir}: {message}");
        }
        let (field, _) = section(
            "high_availability: {storage_dir: s3://b/ha, api_server: {cidrs: [], ports: [6443]}}",
        )
        .unwrap_err();
        assert_eq!(field, "kubernetes.high_availability.api_server");
    }

    #[test]
    fn application_needs_an_absolute_jar_and_a_class_name() {
        let ok = "application: {jar: /opt/flink/usrlib/job.jar, entry_class: com.example.Job}";
        assert!(section(ok).is_ok());
        for (yaml, field) in [
            (
                "application: {jar: job.jar, entry_class: com.example.Job}",
                "kubernetes.application.jar",
            ),
            (
                "application: {jar: /opt/flink/usrlib/../x.jar, entry_class: com.example.Job}",
                "kubernetes.application.jar",
            ),
            (
                "application: {jar: /opt/flink/usrlib/job.jar, entry_class: 'com.example.Job; rm'}",
                "kubernetes.application.entry_class",
            ),
            (
                "application: {jar: /opt/flink/usrlib/job.jar, entry_class: a.B, parallelism: 0}",
                "kubernetes.application.parallelism",
            ),
        ] {
            assert_eq!(section(yaml).unwrap_err().0, field, "{yaml}");
        }
        let unknown: Result<KubernetesSection, _> =
            serde_yaml_ng::from_str("application: {jar: /a.jar, entry_class: A, main: B}");
        assert!(unknown.is_err(), "unknown fields are refused");
    }

    #[test]
    fn gateway_state_is_a_claim_by_default_and_its_size_is_checked() {
        let section_default = KubernetesSection::default();
        assert!(
            !section_default
                .gateway_state
                .ephemeral_state_lost_on_restart
        );
        assert_eq!(section_default.gateway_state.storage_size, "1Gi");
        assert!(section("gateway_state: {storage_size: 500Mi, storage_class: fast-ssd}").is_ok());
        for size in ["1 GB", "0Gi", "Gi", "1.5Gi", "10"] {
            let (field, _) =
                section(&format!("gateway_state: {{storage_size: '{size}'}}")).unwrap_err();
            assert_eq!(field, "kubernetes.gateway_state.storage_size", "{size}");
        }
        let (field, _) = section("gateway_state: {storage_class: Fast_SSD}").unwrap_err();
        assert_eq!(field, "kubernetes.gateway_state.storage_class");
    }
}
