//! The test job: a tiny DataStream program compiled against the distribution's own jars.

use std::path::PathBuf;

use flinkguard_flink::{FlinkDist, require_javac};

use crate::java::{JavaSource, build_jar};

/// The job's source. It compiles unchanged against Flink 1.20 and 2.x.
const SOURCE: &str = include_str!("../java/Job.java");

/// A compiled test job jar.
///
/// The job checkpoints every second, reads an endless sequence (new Source API) throttled to
/// about 1000 records/s per subtask, keys it by `x % 8` (so at parallelism 2 records cross
/// between TaskManagers), sums per key in keyed state and discards the result. Its single
/// optional argument is the job name. It runs until cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobJar {
    /// The jar file (in the flinkguard cache; do not modify).
    pub path: PathBuf,
}

impl JobJar {
    /// The job's main class.
    pub const ENTRY_CLASS: &'static str = "flinkguard.testjob.Job";

    /// Compiles the job for `dist` with `javac -cp "<FLINK_HOME>/lib/*"` and packs it with `jar`,
    /// or returns the cached jar from an earlier build of the same source for the same version
    /// (`<cache_root>/testjob/<version>-<hash>.jar`).
    pub fn build(dist: &FlinkDist) -> JobJar {
        let jdk = require_javac().unwrap_or_else(|e| panic!("cannot build the test job: {e}"));
        let path = build_jar(
            &jdk,
            &JavaSource {
                cache_dir: "testjob",
                name: &dist.version.to_string(),
                package_dir: "flinkguard/testjob",
                file_name: "Job.java",
                text: SOURCE,
                classpath: Some(format!("{}/*", dist.lib_dir().display())),
                main_class: Some(Self::ENTRY_CLASS),
            },
        );
        JobJar { path }
    }
}
