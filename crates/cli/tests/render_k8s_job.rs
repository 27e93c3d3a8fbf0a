//! The rendered manifests carry a configuration that works, not a sample: the Flink config
//! and Secret files `flinkguard render k8s` writes, laid out under a temp root exactly where
//! the pods mount them, start a real Flink cluster, and a real job runs on it through the
//! gateway side-car started with its rendered flinkguard.yaml.
//!
//! What differs from a pod is only what a host cannot give: the mount namespace (each mount
//! path lives under a temp root, and path values in the config files move with it) and the
//! pod network (Service and pod host names become 127.0.0.1, passed as `-D` arguments as the
//! pod's own `args` pass `taskmanager.host`). Everything else is the rendered files' own.
// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;
mod gatewaykit;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::flinkguard_ok;
use common::k8s::{ContainerFs, load, object};
use flinkguard_testkit::kdc::Realm;
use flinkguard_testkit::{
    ClusterBuilder, ClusterPorts, FlinkCluster, FlinkDist, JobJar, MutualTls, RestClient, TestDist,
    free_ports,
};
use gatewaykit::{GatewayProcess, edit_config};
use serde_json::{Value, json};

/// A Flink setting of a rendered config file, nested (2.x) or flat.
fn flink_setting(config: &str, key: &str) -> String {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(config).unwrap();
    if let Some(flat) = doc.get(key) {
        return scalar(flat);
    }
    let mut node = &doc;
    for part in key.split('.') {
        node = node
            .get(part)
            .unwrap_or_else(|| panic!("{key} is not in the rendered config:\n{config}"));
    }
    scalar(node)
}

fn scalar(value: &serde_yaml_ng::Value) -> String {
    match value {
        serde_yaml_ng::Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other).unwrap().trim().to_owned(),
    }
}

/// A container's declared port by name.
fn container_port(pod_spec: &Value, container: &str, name: &str) -> u16 {
    let container = pod_spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == container)
        .unwrap();
    let port = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{container} declares no port {name}"));
    u16::try_from(port["containerPort"].as_u64().unwrap()).unwrap()
}

/// The Flink config file the init container copies into FLINK_CONF_DIR, read from where the
/// init container's own mounts put it, relocated for the main container.
fn flink_config(
    objects: &[(String, Value)],
    pod_spec: &Value,
    container: &str,
    root: &Path,
) -> (ContainerFs, String) {
    let init = ContainerFs::lay_out(objects, pod_spec, "flink-conf", root);
    let main = ContainerFs::lay_out(objects, pod_spec, container, root);
    let init_command = pod_spec["initContainers"][0]["command"].to_string();
    let file = ["config.yaml", "flink-conf.yaml"]
        .into_iter()
        .find(|f| init_command.contains(&format!("/opt/flink/conf-secret/{f}")))
        .unwrap_or_else(|| panic!("the init container copies no Flink config: {init_command}"));
    let text =
        fs::read_to_string(init.host_path(&format!("/opt/flink/conf-secret/{file}"))).unwrap();
    let relocated = main.relocate_yaml(&text);
    (main, relocated)
}

/// A rendered deployment laid out under `d/pods`, ready to start on loopback.
struct Rendered {
    objects: Vec<(String, Value)>,
    jm_config: String,
    tm_config: String,
    ports: ClusterPorts,
}

impl Rendered {
    fn jm_pod(&self) -> &Value {
        &object(&self.objects, "Deployment", "flink-jm")["spec"]["template"]["spec"]
    }
}

/// `init`, a client certificate for `admin` (whom `init`'s policy makes an admin), the
/// `kubernetes:` section given, `render k8s`, and the pods' mounts laid out under `d/pods`,
/// with every property the test relies on checked against the manifests.
fn render_and_lay_out(d: &Path, web_submit: bool, kubernetes: &str) -> Rendered {
    flinkguard_ok(d, &["init", "--quiet"]);
    flinkguard_ok(d, &["pki", "issue-client", "--user", "admin"]);
    // Free ports for the two settings flinkguard.yaml owns (the rendered ones are fixed and
    // would collide with anything else on this host).
    let free = free_ports(4).unwrap();
    let submit = format!("web_submit: {web_submit}");
    edit_config(
        d,
        &[
            ("rest_port: 8081", &format!("rest_port: {}", free[0])),
            ("rpc_port: 6123", &format!("rpc_port: {}", free[1])),
            ("web_submit: false", &submit),
        ],
    );
    let mut config = fs::read_to_string(d.join("flinkguard.yaml")).unwrap();
    config.push_str(kubernetes);
    fs::write(d.join("flinkguard.yaml"), config).unwrap();
    flinkguard_ok(d, &["render", "k8s", "--out", "out"]);
    let objects = load(&d.join("out"));

    let jm_pod = &object(&objects, "Deployment", "flink-jm")["spec"]["template"]["spec"];
    let tm_pod = &object(&objects, "StatefulSet", "flink-tm")["spec"]["template"]["spec"];
    let (_, jm_config) = flink_config(&objects, jm_pod, "jobmanager", &d.join("pods/jm"));
    let (_, tm_config) = flink_config(&objects, tm_pod, "taskmanager", &d.join("pods/tm"));
    // The keystores are read from the laid-out Secrets, not from the host's PKI.
    let keystore = flink_setting(&jm_config, "security.ssl.internal.keystore");
    assert!(
        keystore.starts_with(d.join("pods/jm").to_str().unwrap()),
        "{keystore}"
    );
    assert!(Path::new(&keystore).is_file(), "{keystore}");
    assert!(
        !tm_config.contains("upstream.p12"),
        "the TaskManagers got the REST identity"
    );

    // The ports the containers declare (and the NetworkPolicies open) are the ones the
    // config files fix.
    let jm_rpc = container_port(jm_pod, "jobmanager", "rpc");
    let blob = container_port(jm_pod, "jobmanager", "blob");
    let tm_rpc = container_port(tm_pod, "taskmanager", "rpc");
    let tm_data = container_port(tm_pod, "taskmanager", "data");
    for (config, key, port) in [
        (&jm_config, "jobmanager.rpc.port", jm_rpc),
        (&jm_config, "blob.server.port", blob),
        (&tm_config, "taskmanager.rpc.port", tm_rpc),
        (&tm_config, "taskmanager.data.port", tm_data),
    ] {
        assert_eq!(flink_setting(config, key), port.to_string(), "{key}");
    }
    let rest = flink_setting(&jm_config, "rest.port").parse().unwrap();
    assert_eq!(flink_setting(&jm_config, "rest.bind-address"), "127.0.0.1");
    let tm_args = tm_pod["containers"][0]["args"].to_string();
    assert!(
        tm_args.contains("-Dtaskmanager.host=$(POD_NAME).flink-tm"),
        "{tm_args}"
    );
    // Two TaskManagers on one host cannot share ports: the second gets free ones.
    let ports = ClusterPorts {
        rest,
        jm_rpc,
        blob,
        tm_rpc: vec![tm_rpc, free[2]],
        tm_data: vec![tm_data, free[3]],
    };
    Rendered {
        objects,
        jm_config,
        tm_config,
        ports,
    }
}

/// The cluster as the pods would run it, on loopback: the Service name `flink-jm` and the
/// pods' own names are 127.0.0.1, and nothing listens beyond loopback on this host.
fn cluster(dist: &FlinkDist, d: &Path, rendered: &Rendered) -> ClusterBuilder {
    ClusterBuilder::new(dist)
        .own_configs(
            rendered.jm_config.clone(),
            rendered.tm_config.clone(),
            rendered.ports.clone(),
        )
        .dynamic_property("jobmanager.rpc.address", "127.0.0.1")
        .dynamic_property("jobmanager.bind-host", "127.0.0.1")
        .dynamic_property("taskmanager.bind-host", "127.0.0.1")
        .dynamic_property("taskmanager.host", "127.0.0.1")
        .rest_upstream_identity(&d.join("pki"))
}

/// The side-car, from its rendered flinkguard.yaml and the files of its own mounts, and a
/// REST client for `admin` through it.
fn gateway(d: &Path, rendered: &Rendered) -> (GatewayProcess, ContainerFs, RestClient) {
    let gateway_fs = ContainerFs::lay_out(
        &rendered.objects,
        rendered.jm_pod(),
        "gateway",
        &d.join("pods/jm"),
    );
    let pod_config =
        fs::read_to_string(gateway_fs.host_path("/etc/flinkguard/config/flinkguard.yaml")).unwrap();
    let gateway_config = d.join("pods/gateway-flinkguard.yaml");
    fs::write(&gateway_config, gateway_fs.relocate_yaml(&pod_config)).unwrap();
    let gateway = GatewayProcess::start_with_config(d, &gateway_config);
    let client = RestClient::with_mutual_tls(
        gateway.url(""),
        MutualTls {
            ca: d.join("pki/ca.crt"),
            cert: d.join("pki/clients/admin/client.crt"),
            key: d.join("pki/clients/admin/client.key"),
        },
    );
    (gateway, gateway_fs, client)
}

/// The job runs on both TaskManagers with checkpoints: parallelism 2 on two one-slot
/// TaskManagers, so the shuffle crosses the data plane, over the rendered internal mTLS.
fn assert_runs_with_checkpoints(client: &RestClient, job: &str, cluster: &FlinkCluster) {
    client
        .wait_job_running(job, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tails()));
    let checkpoints = client
        .wait_checkpoints(job, 2, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tails()));
    assert!(checkpoints >= 2);
    assert_eq!(client.job_taskmanagers(job).unwrap().len(), 2);
}

#[test]
fn rendered_session_cluster_runs_a_real_job_through_the_gateway_side_car() {
    let dist = TestDist::default_version();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    // Submission on, to upload the test job.
    let rendered = render_and_lay_out(d, true, "kubernetes:\n  taskmanagers: 2\n  task_slots: 1\n");
    let cluster = cluster(&dist, d, &rendered).start();
    let (gateway, gateway_fs, client) = gateway(d, &rendered);

    let jar = JobJar::build(&dist);
    let jar_id = client.upload_jar(&jar.path).unwrap();
    let job = client
        .run_jar(&jar_id, JobJar::ENTRY_CLASS, 2, &["rendered-k8s"])
        .unwrap_or_else(|e| panic!("{e}\n{}\n{:?}", cluster.log_tails(), gateway.log()));
    assert_runs_with_checkpoints(&client, &job, &cluster);

    // The gateway kept its state where the pod's writable volume is: the audit log names the
    // upload, and the ownership database exists.
    let audit =
        fs::read_to_string(gateway_fs.host_path("/var/lib/flinkguard/audit.jsonl")).unwrap();
    assert!(audit.contains("jars.upload"), "{audit}");
    assert!(
        gateway_fs
            .host_path("/var/lib/flinkguard/ownership.redb")
            .is_file()
    );
    client.cancel_job(&job).unwrap();
}

/// Application mode: the JobManager's rendered command and arguments start the job from the
/// jar "in the image" (the test job's jar stands at the path the image would hold it), and
/// nothing can be uploaded, not even by an admin.
#[test]
fn rendered_application_cluster_runs_its_job_and_takes_no_upload() {
    let dist = TestDist::default_version();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let image_jar = "/opt/flink/usrlib/job.jar";
    let rendered = render_and_lay_out(
        d,
        false,
        &format!(
            "kubernetes:\n  taskmanagers: 2\n  task_slots: 1\n  application:\n    jar: {image_jar}\n    entry_class: {}\n    args: [rendered-app]\n    parallelism: 2\n",
            JobJar::ENTRY_CLASS
        ),
    );
    let jobmanager = &rendered.jm_pod()["containers"][0];
    assert_eq!(
        jobmanager["command"],
        json!(["/opt/flink/bin/standalone-job.sh"])
    );
    let args: Vec<String> = serde_json::from_value(jobmanager["args"].clone()).unwrap();
    assert_eq!(args[0], "start-foreground", "{args:?}");
    assert!(args.contains(&image_jar.to_owned()), "{args:?}");
    let jar = JobJar::build(&dist);
    // What follows `start-foreground`, with the image's jar where the test's jar is.
    let args = args[1..]
        .iter()
        .map(|a| {
            if a == image_jar {
                jar.path.to_str().unwrap().to_owned()
            } else {
                a.clone()
            }
        })
        .collect();
    assert_eq!(
        flink_setting(&rendered.jm_config, "parallelism.default"),
        "2"
    );
    assert_eq!(
        flink_setting(&rendered.jm_config, "web.submit.enable"),
        "false"
    );

    let cluster = cluster(&dist, d, &rendered).application(args).start();
    let (_gateway, _, client) = gateway(d, &rendered);
    // The JobManager submits the job once its dispatcher is up, which can be after REST
    // answers: wait for it to be listed.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let job = loop {
        let overview = client.get_json("/jobs/overview").unwrap();
        let jobs = overview["jobs"].as_array().unwrap();
        assert!(jobs.len() <= 1, "{overview}");
        if let Some(job) = jobs.first() {
            break job["jid"].as_str().unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no job listed after 60 s\n{}",
            cluster.log_tails()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_runs_with_checkpoints(&client, &job, &cluster);

    let upload = client.upload_jar(&jar.path);
    assert!(
        upload.is_err(),
        "an upload to an application cluster: {upload:?}"
    );
}

/// Kerberos as rendered: the JobManager and TaskManagers start with the keytab, principal and
/// krb5.conf location of the rendered configs, read from the laid-out Secret and ConfigMap
/// (a real MIT KDC serving the realm), their JVMs carry the rendered
/// `-Djava.security.krb5.conf`, and the job runs. (No job here logs in through the JAAS
/// contexts Flink installs; a JVM login at the KDC with these files, as the KafkaClient context
/// offers it, is `render_k8s`'s real-KDC test.)
#[test]
fn rendered_kerberos_settings_start_flink_and_the_job_runs() {
    let dist = TestDist::default_version();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let mut realm = Realm::create("EXAMPLE.ORG");
    realm.add_principal("flink/flink-prod");
    let keytab = realm.export_keytab("flink/flink-prod", "flink.keytab");
    fs::create_dir_all(d.join("secrets")).unwrap();
    fs::copy(&keytab, d.join("secrets/flink.keytab")).unwrap();
    fs::copy(realm.krb5_conf(), d.join("secrets/krb5.conf")).unwrap();
    realm.start_kdc();
    let kubernetes = format!(
        "kubernetes:\n  taskmanagers: 2\n  task_slots: 1\n  egress:\n  - name: kdc\n    cidrs: [127.0.0.1/32]\n    ports: [{}]\n  kerberos:\n    principal: flink/flink-prod@EXAMPLE.ORG\n    keytab_file: secrets/flink.keytab\n    krb5_conf_file: secrets/krb5.conf\n    kafka_security_protocol: SASL_SSL\n",
        realm.port()
    );
    let rendered = render_and_lay_out(d, true, &kubernetes);
    for (config, opts) in [
        (&rendered.jm_config, "env.java.opts.jobmanager"),
        (&rendered.tm_config, "env.java.opts.taskmanager"),
    ] {
        let keytab = flink_setting(config, "security.kerberos.login.keytab");
        assert!(keytab.starts_with(d.to_str().unwrap()), "{keytab}");
        assert_eq!(
            fs::read(&keytab).unwrap(),
            fs::read(d.join("secrets/flink.keytab")).unwrap()
        );
        let krb5 = flink_setting(config, opts);
        let krb5 = krb5.strip_prefix("-Djava.security.krb5.conf=").unwrap();
        assert_eq!(
            fs::read_to_string(krb5).unwrap(),
            fs::read_to_string(d.join("secrets/krb5.conf")).unwrap()
        );
    }

    let cluster = cluster(&dist, d, &rendered).start();
    let (_gateway, _, client) = gateway(d, &rendered);
    let jar = JobJar::build(&dist);
    let jar_id = client.upload_jar(&jar.path).unwrap();
    let job = client
        .run_jar(&jar_id, JobJar::ENTRY_CLASS, 2, &["rendered-kerberos"])
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tails()));
    assert_runs_with_checkpoints(&client, &job, &cluster);

    // Every JVM got the krb5.conf option of its own rendered config (Flink logs its JVM
    // options at start).
    let jm_krb5 = flink_setting(&rendered.jm_config, "env.java.opts.jobmanager");
    let tm_krb5 = flink_setting(&rendered.tm_config, "env.java.opts.taskmanager");
    // One text per JVM: log4j may roll a log over while the JVM starts (`x.log.1` then `x.log`,
    // seen once in CI), and the options are in whichever part came first.
    let mut logs: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for entry in fs::read_dir(cluster.log_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some((jvm, _)) = name.split_once(".log") {
            logs.entry(jvm.to_owned())
                .or_default()
                .push_str(&fs::read_to_string(&path).unwrap());
        }
    }
    // A line of Flink's "JVM Options:" list, not the config property it also logs.
    let with = |option: &str| {
        logs.iter()
            .filter(|(_, text)| {
                text.lines()
                    .any(|l| l.trim_end().ends_with(option) && !l.contains("env.java.opts"))
            })
            .count()
    };
    assert!(with(&jm_krb5) >= 1, "no JobManager log names {jm_krb5}");
    assert!(
        with(&tm_krb5) >= 2,
        "not both TaskManager logs name {tm_krb5}"
    );
    client.cancel_job(&job).unwrap();
}
