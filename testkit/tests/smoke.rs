//! Smoke tests of the testkit against real Flink: a plain (no TLS) cluster with two
//! TaskManagers runs the test job with checkpoints, on 2.x and 1.x, and leaves no process.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use flinkguard_flink::process::is_alive;
use flinkguard_testkit::tls::{PlaintextOutcome, listening_addresses, probe_plaintext};
use flinkguard_testkit::{ClusterBuilder, FlinkDist, FlinkVersion, JobJar, TestDist};

fn run_job_with_checkpoints(dist: &FlinkDist) {
    let t0 = Instant::now();
    let jar = JobJar::build(dist);
    let jar_time = t0.elapsed();

    let cluster = ClusterBuilder::new(dist).taskmanagers(2).prepare().start();
    eprintln!(
        "Flink {} cluster with 2 TaskManagers ready in {:.1} s (job jar in {:.1} s)",
        dist.version,
        cluster.startup_time().as_secs_f64(),
        jar_time.as_secs_f64()
    );
    let pids = cluster.pids();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|&pid| is_alive(pid)), "{pids:?}");

    let t1 = Instant::now();
    let jar_id = cluster.upload_jar(&jar.path);
    let job = cluster.run_jar(&jar_id, JobJar::ENTRY_CLASS, 2, &["smoke"]);
    cluster.wait_job_running(&job, Duration::from_secs(60));
    let running = t1.elapsed();
    // Parallelism 2 with slots spread evenly: the keyBy crosses between the TaskManagers.
    let tms = cluster.job_taskmanagers(&job);
    assert_eq!(tms.len(), 2, "job runs on {tms:?}");
    let checkpoints = cluster.wait_checkpoints(&job, 2, Duration::from_secs(60));
    eprintln!(
        "job running after {:.1} s, {checkpoints} checkpoints after {:.1} s",
        running.as_secs_f64(),
        t1.elapsed().as_secs_f64()
    );
    cluster.cancel_job(&job);

    let t2 = Instant::now();
    drop(cluster);
    eprintln!("cluster stopped in {:.1} s", t2.elapsed().as_secs_f64());
    for pid in pids {
        assert!(!is_alive(pid), "pid {pid} survived the cluster's drop");
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still exists"
        );
    }
}

#[test]
fn flink_2_runs_the_job_with_checkpoints_and_drop_leaves_no_process() {
    run_job_with_checkpoints(&TestDist::get(FlinkVersion::DEFAULT));
}

#[test]
fn flink_1_20_runs_the_job_with_checkpoints_and_drop_leaves_no_process() {
    run_job_with_checkpoints(&TestDist::get(FlinkVersion::LATEST_1X));
}

#[test]
fn plaintext_probe_sees_the_plain_rest_port_answer_in_http() {
    let dist = TestDist::default_version();
    let cluster = ClusterBuilder::new(&dist).taskmanagers(1).start();
    let rest = SocketAddr::from((Ipv4Addr::LOCALHOST, cluster.ports().rest));
    match probe_plaintext(rest) {
        PlaintextOutcome::Answered { first_bytes } => {
            assert!(first_bytes.starts_with(b"HTTP/1."), "{first_bytes:?}");
        }
        other => panic!("plain REST did not answer in plaintext: {other:?}"),
    }
    // rest.bind-address keeps REST on loopback.
    assert_eq!(
        listening_addresses(cluster.ports().rest),
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
    );
}
