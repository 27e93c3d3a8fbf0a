//! Installs a Flink distribution into the flinkguard cache and prints progress, the way a CLI
//! would. `cargo run -p flinkguard-testkit --example install_flink -- 2.3.0`
//! (set `FLINKGUARD_CACHE` to install somewhere else).
#![allow(clippy::unwrap_used)]

use flinkguard_flink::{FlinkDist, FlinkVersion, InstallProgress};

fn main() {
    let version: FlinkVersion = std::env::args()
        .nth(1)
        .map(|v| v.parse().unwrap())
        .unwrap_or(FlinkVersion::DEFAULT);
    let mut last_mb = u64::MAX;
    let mut progress = |p: InstallProgress| match p {
        InstallProgress::Downloading { bytes, elapsed } => {
            let mb = bytes / 10_000_000 * 10;
            if mb != last_mb {
                last_mb = mb;
                eprintln!("[{:>5.1} s] {mb} MB", elapsed.as_secs_f64());
            }
        }
        other => eprintln!("{other:?}"),
    };
    match FlinkDist::install(version, &mut progress) {
        Ok(dist) => println!("FLINK_HOME={}", dist.home.display()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
