//! No Flink process outlives its test: not when the test panics (`Drop` runs during unwinding)
//! and not when the test process is killed outright (`PR_SET_PDEATHSIG`).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flinkguard_flink::process::is_alive;
use flinkguard_testkit::{ClusterBuilder, TestDist};

fn wait_gone(pids: &[u32], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while pids.iter().any(|&p| is_alive(p)) {
        assert!(
            Instant::now() < deadline,
            "still alive after {timeout:?}: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_panicking_test_leaves_no_flink_process() {
    let dist = TestDist::default_version();
    let pids = std::sync::Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(|| {
        // A JobManager alone is enough to see Drop at work.
        let cluster = ClusterBuilder::new(&dist).taskmanagers(0).start();
        pids.lock().unwrap().extend(cluster.pids());
        panic!("deliberate panic with a running cluster");
    });
    assert!(result.is_err());
    let pids = pids.into_inner().unwrap();
    assert_eq!(pids.len(), 1);
    // Drop already waited for the processes to exit.
    wait_gone(&pids, Duration::from_secs(1));
}

#[test]
fn killing_the_test_process_kills_its_flink_processes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flinkguard-test-cluster-until-killed"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let pids: Vec<u32> = stdout
        .lines()
        .map(Result::unwrap)
        .find_map(|line| {
            line.strip_prefix("PIDS ")
                .map(|p| p.split(' ').map(|n| n.parse().unwrap()).collect())
        })
        .expect("the helper did not start its cluster");
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|&p| is_alive(p)));

    // SIGKILL: no Drop, no unwinding; only the kernel's parent-death signal is left.
    child.kill().unwrap();
    child.wait().unwrap();
    wait_gone(&pids, Duration::from_secs(10));
}

/// What `flinkguard up` does: a detached JobManager in its own process group, stopped later
/// by PID alone.
#[test]
fn a_detached_jobmanager_leads_its_own_process_group_and_stops_by_pid() {
    use flinkguard_flink::process::{FlinkProcessSpec, Role, StopOutcome, stop};

    struct StopOnDrop(u32);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            // Detached children have no parent-death signal: clean up even if asserts fail.
            let _ = stop(self.0);
        }
    }

    let dist = TestDist::default_version();
    let prepared = ClusterBuilder::new(&dist).taskmanagers(0).prepare();
    let spec = FlinkProcessSpec::new(
        &dist,
        Role::JobManager,
        prepared.conf_dir(),
        prepared.log_dir(),
        prepared.dir().join("pid"),
    );
    let mut process = flinkguard_flink::spawn(&spec, true).unwrap();
    let pid = process.pid();
    let _guard = StopOnDrop(pid);

    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    assert_eq!(fields[2], pid.to_string(), "process group id");

    let rest = format!("http://127.0.0.1:{}", prepared.ports().rest);
    let deadline = Instant::now() + Duration::from_secs(90);
    flinkguard_flink::wait_ready(&rest, 0, deadline, std::slice::from_mut(&mut process)).unwrap();
    assert!(is_alive(pid));

    assert_eq!(stop(pid).unwrap(), StopOutcome::Terminated);
    assert!(!is_alive(pid));
    // All its threads are gone; the kernel makes the zombie reapable a moment later.
    let reap_deadline = Instant::now() + Duration::from_secs(2);
    while process.exit_status().is_none() {
        assert!(
            Instant::now() < reap_deadline,
            "pid {pid} never became reapable"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Stopping again is harmless.
    assert_eq!(stop(pid).unwrap(), StopOutcome::NotRunning);
}
