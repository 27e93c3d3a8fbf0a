#![allow(clippy::unwrap_used, missing_docs)]
use std::io::Write;
use std::time::Duration;
use flinkguard_testkit::{ClusterBuilder, TestDist};
fn main() {
    let dist = TestDist::default_version();
    let cluster = ClusterBuilder::new(&dist).taskmanagers(1).start();
    println!("PORTS {:?} PIDS {:?} DIR {}", cluster.ports(), cluster.pids(), cluster.dir().display());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(1500));
}
