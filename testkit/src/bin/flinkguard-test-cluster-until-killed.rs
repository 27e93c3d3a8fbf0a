//! Starts a Flink cluster (JobManager + one TaskManager), prints `PIDS <jm> <tm>` and waits.
//!
//! Used by testkit's lifecycle test, which SIGKILLs this process to prove that Flink processes
//! die with the process that started them (parent-death signal), with no Drop to help.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::Duration;

use flinkguard_testkit::{ClusterBuilder, TestDist};

fn main() {
    let dist = TestDist::default_version();
    let cluster = ClusterBuilder::new(&dist).taskmanagers(1).start();
    let pids: Vec<String> = cluster.pids().iter().map(u32::to_string).collect();
    println!("PIDS {}", pids.join(" "));
    std::io::stdout().flush().unwrap();
    // Bounded, so a forgotten helper cannot outlive a test run by much.
    std::thread::sleep(Duration::from_secs(120));
}
