//! The test job: a tiny DataStream program compiled against the distribution's own jars.

use std::path::PathBuf;
use std::process::Command;

use flinkguard_flink::{FlinkDist, cache_root, require_javac};
use sha2::{Digest, Sha256};

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
        let mut hasher = Sha256::new();
        hasher.update(SOURCE.as_bytes());
        let hash = hex::encode(&hasher.finalize()[..8]);
        let cache = cache_root().unwrap().join("testjob");
        let path = cache.join(format!("{}-{hash}.jar", dist.version));
        if path.is_file() {
            return JobJar { path };
        }

        let jdk = require_javac().unwrap_or_else(|e| panic!("cannot build the test job: {e}"));
        std::fs::create_dir_all(&cache).unwrap();
        // Build next to the cache so the final rename is atomic; parallel builders each use
        // their own dir and the last rename wins with identical content.
        let work = tempfile::Builder::new()
            .prefix(".build-")
            .tempdir_in(&cache)
            .unwrap();
        let src_dir = work.path().join("src/flinkguard/testjob");
        let classes = work.path().join("classes");
        std::fs::create_dir_all(&src_dir).unwrap();
        std::fs::create_dir_all(&classes).unwrap();
        let source = src_dir.join("Job.java");
        std::fs::write(&source, SOURCE).unwrap();

        let classpath = format!("{}/*", dist.lib_dir().display());
        run(Command::new(&jdk.javac)
            .args(["--release", "11", "-nowarn", "-encoding", "UTF-8", "-cp"])
            .arg(&classpath)
            .arg("-d")
            .arg(&classes)
            .arg(&source));
        let jar = work.path().join("job.jar");
        run(Command::new(&jdk.jar)
            .arg("--create")
            .arg("--file")
            .arg(&jar)
            .arg("--main-class")
            .arg(Self::ENTRY_CLASS)
            .arg("-C")
            .arg(&classes)
            .arg("."));
        std::fs::rename(&jar, &path).unwrap();
        JobJar { path }
    }
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
