//! The foundation's proof: a real Flink cluster configured by `flinkguard flink-config` runs a
//! job with checkpoints over mutual TLS, and every internal port refuses plaintext clients,
//! clients without a certificate and clients with a foreign certificate.

// Test code: a failed step should fail the test loudly, with its reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use common::{flinkguard_ok, password};
use flinkguard_testkit::tls::{
    ClientIdentity, ForeignKey, TlsOutcome, listening_addresses, probe_plaintext, probe_tls,
};
use flinkguard_testkit::{ClusterBuilder, FlinkVersion, JobJar, TestDist};

/// Every TCP port `pid` listens on, from its socket inodes in /proc.
fn listening_ports_of(pid: u32) -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .map(str::to_owned)
        })
        .collect();
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in fs::read_to_string(table).unwrap().lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // cols: sl local_address rem_address st ... inode (index 9)
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                let port = cols[1].rsplit(':').next().unwrap();
                ports.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}

fn cluster_identity(pki: &Path) -> ClientIdentity {
    let bytes = fs::read(pki.join("internal.p12")).unwrap();
    let pass =
        flinkguard_pki::Password::from_file_contents(&password(&pki.join("internal.password")))
            .unwrap();
    let (key, chain) = flinkguard_pki::store::read_private_key(&bytes, &pass).unwrap();
    ClientIdentity::Given {
        cert_chain_der: chain,
        key_der: key.pkcs8_der().to_vec(),
    }
}

fn upstream_identity(pki: &Path) -> ClientIdentity {
    let bytes = fs::read(pki.join("upstream/upstream.p12")).unwrap();
    let pass = flinkguard_pki::Password::from_file_contents(&password(
        &pki.join("upstream/upstream.password"),
    ))
    .unwrap();
    let (key, chain) = flinkguard_pki::store::read_private_key(&bytes, &pass).unwrap();
    ClientIdentity::Given {
        cert_chain_der: chain,
        key_der: key.pkcs8_der().to_vec(),
    }
}

fn secured_cluster_runs_a_job_and_refuses_outsiders(version: FlinkVersion, key: &str) {
    let dist = TestDist::get(version);
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    flinkguard_ok(d, &["init", "--quiet", "--key", key]);

    // REST requires mutual TLS with the upstream identity `init` made (what the gateway
    // presents); the test talks to it with that identity, as the gateway does.
    let prepared = ClusterBuilder::new(&dist)
        .taskmanagers(2)
        .rest_upstream_identity(&d.join("pki"))
        .prepare();
    let rest_port = prepared.ports().rest;
    // The test job is uploaded through REST, so this cluster enables submission (REST stays on
    // loopback); REST listens on the testkit's free port.
    let config = fs::read_to_string(d.join("flinkguard.yaml")).unwrap();
    fs::write(
        d.join("flinkguard.yaml"),
        config
            .replace("rest_port: 8081", &format!("rest_port: {rest_port}"))
            .replace("web_submit: false", "web_submit: true"),
    )
    .unwrap();
    let conf = prepared.config_path().to_str().unwrap().to_owned();
    flinkguard_ok(
        d,
        &[
            "flink-config",
            "--flink-version",
            &version.to_string(),
            "--merge",
            &conf,
            "--out",
            &conf,
        ],
    );
    let merged = fs::read_to_string(&conf).unwrap();
    assert!(
        merged.contains("TLSv1.3") && merged.contains("fingerprint"),
        "{merged}"
    );
    assert!(merged.contains("upstream.p12"), "{merged}");

    let cluster = prepared.start();
    let jar = JobJar::build(&dist);
    let jar_id = cluster.upload_jar(&jar.path);
    let job = cluster.run_jar(&jar_id, JobJar::ENTRY_CLASS, 2, &["flinkguard-mtls"]);
    cluster.wait_job_running(&job, Duration::from_secs(90));
    let checkpoints = cluster.wait_checkpoints(&job, 2, Duration::from_secs(90));
    assert!(checkpoints >= 2);
    // Parallelism 2 over two TaskManagers with one slot used on each: the keyBy shuffle
    // crosses the data plane between them.
    assert_eq!(
        cluster.job_taskmanagers(&job).len(),
        2,
        "the job must span both TaskManagers"
    );

    // REST: loopback only, and only for the upstream identity: no plaintext, no TLS client
    // without a certificate or with a foreign one (rustls probes; curl in up_down).
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(listening_addresses(rest_port), vec![loopback]);
    let rest_addr = SocketAddr::from((loopback, rest_port));
    for outsider in [
        ClientIdentity::None,
        ClientIdentity::Foreign(ForeignKey::EcdsaP256),
        ClientIdentity::Foreign(ForeignKey::Rsa2048),
        cluster_identity(&d.join("pki")),
    ] {
        let outcome = probe_tls(rest_addr, outsider.clone());
        assert!(
            matches!(outcome, TlsOutcome::Rejected { .. }),
            "REST did not reject {outsider:?}: {outcome:?}"
        );
    }
    assert!(probe_tls(rest_addr, upstream_identity(&d.join("pki"))).is_accepted());

    // Every other port any Flink process listens on is internal: JobManager RPC and blob,
    // metric query services, TaskManager RPC and data.
    let identity = cluster_identity(&d.join("pki"));
    let mut probed = 0;
    for pid in cluster.pids() {
        for port in listening_ports_of(pid) {
            if port == rest_port {
                continue;
            }
            for ip in listening_addresses(port) {
                assert!(ip.is_loopback(), "port {port} listens on {ip}");
            }
            let addr = SocketAddr::from((loopback, port));
            let plain = probe_plaintext(addr);
            assert!(
                !plain.answered_in_plaintext(),
                "port {port} answered a plaintext client: {plain:?}"
            );
            for outsider in [
                ClientIdentity::None,
                ClientIdentity::Foreign(ForeignKey::EcdsaP256),
                ClientIdentity::Foreign(ForeignKey::Rsa2048),
            ] {
                let outcome = probe_tls(addr, outsider.clone());
                assert!(
                    matches!(outcome, TlsOutcome::Rejected { .. }),
                    "port {port} (pid {pid}) did not reject {outsider:?}: {outcome:?}"
                );
            }
            // Positive control: the probes can tell acceptance apart, and TLS 1.3 is used.
            let member = probe_tls(addr, identity.clone());
            match &member {
                TlsOutcome::Accepted { version, .. } => {
                    assert_eq!(format!("{version:?}"), "TLSv1_3", "port {port}")
                }
                other => panic!("port {port} rejected the cluster identity: {other:?}"),
            }
            probed += 1;
        }
    }
    // JobManager: RPC, blob, metrics RPC; each TaskManager: RPC, data, metrics RPC.
    assert!(probed >= 7, "only {probed} internal ports found");
    let ports = cluster.ports();
    for expected in [ports.jm_rpc, ports.blob]
        .into_iter()
        .chain(ports.tm_rpc.clone())
        .chain(ports.tm_data.clone())
    {
        assert!(
            cluster
                .pids()
                .iter()
                .any(|&pid| listening_ports_of(pid).contains(&expected)),
            "port {expected} not listening"
        );
    }
    cluster.cancel_job(&job);
}

#[test]
fn flink_cluster_2_3_ecdsa_mtls() {
    secured_cluster_runs_a_job_and_refuses_outsiders(FlinkVersion::DEFAULT, "ecdsa-p256");
}

#[test]
fn flink_cluster_2_3_rsa_mtls() {
    secured_cluster_runs_a_job_and_refuses_outsiders(FlinkVersion::DEFAULT, "rsa-3072");
}

#[test]
fn flink_cluster_1_20_flat_config_mtls() {
    secured_cluster_runs_a_job_and_refuses_outsiders(FlinkVersion::LATEST_1X, "ecdsa-p256");
}
