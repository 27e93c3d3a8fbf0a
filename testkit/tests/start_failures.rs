//! Flink refusing to start, and the testkit (through `flinkguard-flink`'s diagnosis) saying why:
//! the messages a user of `flinkguard up` would see, checked against real Flink logs.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use std::process::Command;

use flinkguard_flink::{FlinkError, FlinkStartError, LikelyCause};
use flinkguard_testkit::{ClusterBuilder, TestDist};

fn start_error(
    builder: ClusterBuilder,
    before: impl FnOnce(&flinkguard_testkit::PreparedCluster),
) -> FlinkStartError {
    let prepared = builder.prepare();
    before(&prepared);
    match prepared.try_start() {
        Ok(cluster) => panic!(
            "Flink started although it should not have:\n{}",
            cluster.log_tails()
        ),
        Err(FlinkError::Start(e)) => {
            eprintln!("{e}");
            *e
        }
        Err(other) => panic!("expected a start error, got {other}"),
    }
}

#[test]
fn rest_port_in_use_is_diagnosed_with_the_port() {
    let dist = TestDist::default_version();
    let mut blocker = None;
    let err = start_error(ClusterBuilder::new(&dist).taskmanagers(1), |p| {
        blocker = Some(TcpListener::bind(("127.0.0.1", p.ports().rest)).unwrap());
    });
    let port = blocker.as_ref().unwrap().local_addr().unwrap().port();
    assert_eq!(
        err.cause,
        LikelyCause::PortInUse { port: Some(port) },
        "{err}"
    );
    assert!(err.problem.contains("JobManager"), "{}", err.problem);
}

#[test]
fn jobmanager_rpc_port_in_use_is_diagnosed_with_the_port() {
    let dist = TestDist::default_version();
    let mut blocker = None;
    let err = start_error(ClusterBuilder::new(&dist).taskmanagers(1), |p| {
        blocker = Some(TcpListener::bind(("127.0.0.1", p.ports().jm_rpc)).unwrap());
    });
    let port = blocker.as_ref().unwrap().local_addr().unwrap().port();
    assert_eq!(
        err.cause,
        LikelyCause::PortInUse { port: Some(port) },
        "{err}"
    );
}

/// A PKCS12 keystore made with keytool, the documented Flink recipe.
fn keytool_keystore(dir: &Path, password: &str) -> PathBuf {
    let path = dir.join("internal.keystore.p12");
    let status = Command::new("keytool")
        .args([
            "-genkeypair",
            "-alias",
            "flink.internal",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
        ])
        .args([
            "-dname",
            "CN=flink.internal",
            "-validity",
            "2",
            "-storetype",
            "PKCS12",
        ])
        .arg("-keystore")
        .arg(&path)
        .args(["-storepass", password, "-keypass", password])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    path
}

fn internal_ssl(builder: ClusterBuilder, keystore: &Path, password: &str) -> ClusterBuilder {
    let keystore = keystore.display().to_string();
    builder
        .config("security.ssl.internal.enabled", "true")
        .config("security.ssl.internal.keystore", &keystore)
        .config("security.ssl.internal.truststore", &keystore)
        .config("security.ssl.internal.keystore-password", password)
        .config("security.ssl.internal.truststore-password", password)
        .config("security.ssl.internal.key-password", password)
}

#[test]
fn wrong_keystore_password_is_diagnosed() {
    let dist = TestDist::default_version();
    let dir = tempfile::tempdir().unwrap();
    let keystore = keytool_keystore(dir.path(), "the-right-password");
    let builder = internal_ssl(
        ClusterBuilder::new(&dist).taskmanagers(1),
        &keystore,
        "a-wrong-password",
    );
    let err = start_error(builder, |_| {});
    assert_eq!(err.cause, LikelyCause::WrongKeystorePassword, "{err}");
}

#[test]
fn missing_keystore_is_diagnosed_with_the_path() {
    let dist = TestDist::default_version();
    let dir = tempfile::tempdir().unwrap();
    let keystore = dir.path().join("nowhere.p12");
    let builder = internal_ssl(
        ClusterBuilder::new(&dist).taskmanagers(1),
        &keystore,
        "whatever-password",
    );
    let err = start_error(builder, |_| {});
    assert_eq!(
        err.cause,
        LikelyCause::MissingKeystore {
            path: Some(keystore.display().to_string())
        },
        "{err}"
    );
}
