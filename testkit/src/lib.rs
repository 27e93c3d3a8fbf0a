//! Test support for flinkguard: real Flink clusters on loopback, a test job, and TLS probes.
//!
//! Everything here runs real software: Flink distributions installed from PyPI (cached under
//! [`flinkguard_flink::cache_root`]), Java, and real TLS handshakes. Nothing is mocked.
//!
//! ```no_run
//! use flinkguard_testkit::{ClusterBuilder, JobJar, TestDist};
//! use std::time::Duration;
//!
//! let dist = TestDist::default_version();
//! let cluster = ClusterBuilder::new(&dist).taskmanagers(2).prepare().start();
//! let jar = JobJar::build(&dist);
//! let jar_id = cluster.upload_jar(&jar.path);
//! let job = cluster.run_jar(&jar_id, JobJar::ENTRY_CLASS, 2, &["smoke"]);
//! cluster.wait_job_running(&job, Duration::from_secs(60));
//! cluster.wait_checkpoints(&job, 2, Duration::from_secs(60));
//! // Dropping the cluster stops every Flink process it started.
//! ```
//!
//! Helpers panic with a descriptive message instead of returning errors: they run inside tests.
// Test support: a failed step should fail the test loudly, with the reason.
#![allow(clippy::unwrap_used)]

mod cluster;
mod config;
mod dist;
mod java;
mod job;
pub mod kdc;
mod rest;
pub mod routes;
pub mod tls;

pub use cluster::{ClusterBuilder, ClusterPorts, FlinkCluster, PreparedCluster};
pub use config::render_config;
pub use dist::TestDist;
pub use flinkguard_flink::{FlinkDist, FlinkVersion, free_port, free_ports};
pub use job::JobJar;

/// The `gateway.upstream_*` lines `flinkguard init` writes (mutual TLS with pki/upstream/),
/// each set to null: the gateway then speaks plain http upstream, as testkit clusters (and the
/// benchmarks' static backend) serve REST. Edits of flinkguard.yaml as (`from`, `to`).
pub const PLAINTEXT_UPSTREAM: [(&str, &str); 3] = [
    (
        "upstream_server_cert_file: pki/upstream/upstream.crt",
        "upstream_server_cert_file: null",
    ),
    (
        "upstream_client_cert_file: pki/upstream/upstream.crt",
        "upstream_client_cert_file: null",
    ),
    (
        "upstream_client_key_file: pki/upstream/upstream.key",
        "upstream_client_key_file: null",
    ),
];
pub use rest::{JobState, MutualTls, RestClient, RestError};
