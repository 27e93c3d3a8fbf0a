//! Java sources of the test kit compiled into jars, cached by the hash of their source.

use std::path::PathBuf;
use std::process::Command;

use flinkguard_flink::{JdkTools, cache_root};
use sha2::{Digest, Sha256};

/// One single-file Java program to compile.
pub(crate) struct JavaSource<'a> {
    /// Cache folder under the cache root (`testjob`, `listroutes`).
    pub(crate) cache_dir: &'a str,
    /// Start of the jar's file name; the source hash follows (`2.3.0` → `2.3.0-<hash>.jar`).
    pub(crate) name: &'a str,
    /// The class's package as a path (`flinkguard/testjob`).
    pub(crate) package_dir: &'a str,
    /// The source file's name (`Job.java`).
    pub(crate) file_name: &'a str,
    /// The source text.
    pub(crate) text: &'a str,
    /// `javac -cp`, if the program compiles against other jars.
    pub(crate) classpath: Option<String>,
    /// `Main-Class` of the jar.
    pub(crate) main_class: Option<&'a str>,
}

/// Compiles `source` with `javac --release 11` and packs it with `jar`, or returns the jar an
/// earlier build of the same source left in the cache.
pub(crate) fn build_jar(jdk: &JdkTools, source: &JavaSource<'_>) -> PathBuf {
    let hash = hex::encode(&Sha256::digest(source.text.as_bytes())[..8]);
    let cache = cache_root().unwrap().join(source.cache_dir);
    let path = cache.join(format!("{}-{hash}.jar", source.name));
    if path.is_file() {
        return path;
    }
    std::fs::create_dir_all(&cache).unwrap();
    // Build next to the cache so the final rename is atomic; parallel builders each use their
    // own dir and the last rename wins with identical content.
    let work = tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(&cache)
        .unwrap();
    let src_dir = work.path().join("src").join(source.package_dir);
    let classes = work.path().join("classes");
    std::fs::create_dir_all(&src_dir).unwrap();
    std::fs::create_dir_all(&classes).unwrap();
    let file = src_dir.join(source.file_name);
    std::fs::write(&file, source.text).unwrap();

    let mut javac = Command::new(&jdk.javac);
    javac.args(["--release", "11", "-nowarn", "-encoding", "UTF-8"]);
    if let Some(classpath) = &source.classpath {
        javac.arg("-cp").arg(classpath);
    }
    run(javac.arg("-d").arg(&classes).arg(&file));
    let jar = work.path().join("out.jar");
    let mut pack = Command::new(&jdk.jar);
    pack.arg("--create").arg("--file").arg(&jar);
    if let Some(main) = source.main_class {
        pack.arg("--main-class").arg(main);
    }
    run(pack.arg("-C").arg(&classes).arg("."));
    std::fs::rename(&jar, &path).unwrap();
    path
}

/// Runs a build tool, panicking with its output if it fails.
pub(crate) fn run(command: &mut Command) {
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
