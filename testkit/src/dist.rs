use std::time::{Duration, Instant};

use flinkguard_flink::{FlinkDist, FlinkVersion, InstallProgress};

/// Flink distributions for tests, installed once per machine into the shared cache.
#[derive(Debug, Clone, Copy)]
pub struct TestDist;

impl TestDist {
    /// The distribution of `version`, installing it from PyPI if it is not cached (about 350 MB;
    /// progress goes to stderr). Parallel test processes install it once: the rest wait.
    pub fn get(version: FlinkVersion) -> FlinkDist {
        let mut last_report: Option<Instant> = None;
        let mut report = |progress: InstallProgress| match progress {
            InstallProgress::AlreadyInstalled { .. } => {}
            InstallProgress::Downloading { bytes, elapsed } => {
                // One line every 5 s is enough for a test log.
                if last_report.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                    last_report = Some(Instant::now());
                    eprintln!(
                        "flinkguard-testkit: installing Flink {version}: {} MB after {} s",
                        bytes / 1_000_000,
                        elapsed.as_secs()
                    );
                }
            }
            other => eprintln!("flinkguard-testkit: Flink {version}: {other:?}"),
        };
        FlinkDist::install(version, &mut report)
            .unwrap_or_else(|e| panic!("cannot get Flink {version} for the tests: {e}"))
    }

    /// [`FlinkVersion::DEFAULT`] (2.3.0).
    pub fn default_version() -> FlinkDist {
        TestDist::get(FlinkVersion::DEFAULT)
    }

    /// [`FlinkVersion::LATEST_1X`] (1.20.3), the flat `flink-conf.yaml` format.
    pub fn latest_1x() -> FlinkDist {
        TestDist::get(FlinkVersion::LATEST_1X)
    }
}
