//! The REST routes a Flink distribution really registers, read from the distribution itself.
//!
//! Flink's OpenAPI file omits routes (`GET /jobs/:jobid/yarn-cancel`, the log files), so the
//! route catalogue is checked against the classes of `flink-dist` instead: `java/ListRoutes.java`
//! instantiates every class implementing Flink's `RestHandlerSpecification` and prints its
//! method and URL template.

use std::path::PathBuf;
use std::process::Command;

use flinkguard_flink::{FlinkDist, JdkTools, require_javac};

use crate::java::{JavaSource, build_jar};

/// The lister's source. It uses reflection only, so one build serves every Flink version.
const SOURCE: &str = include_str!("../java/ListRoutes.java");

const MAIN_CLASS: &str = "flinkguard.testkit.ListRoutes";

/// Every REST route `dist` defines, as `(METHOD, template, specification class)`, sorted and
/// deduplicated, e.g. `("GET", "/jobs/:jobid/yarn-cancel",
/// "org.apache.flink.runtime.rest.messages.YarnCancelJobTerminationHeaders")`.
///
/// Templates are written as Flink writes them, without the `/v1` prefix (Flink registers every
/// route both with and without it). The list includes the Web UI's static-file fallback
/// `GET /:*` (`WebContentHandlerSpecification`), which matches every GET no other route matches.
/// Routes Flink registers only when enabled (profiler) are included; they are defined either way.
///
/// Compiles the lister once per source change (cached under
/// `<cache_root>/listroutes/listroutes-<hash>.jar`), then runs it on `dist`'s `flink-dist` jar
/// with `lib/*` on the classpath, which takes about 10 s. Panics if the lister cannot load or
/// instantiate a class that implements the interface, so a route never disappears silently;
/// what it notes on stderr is forwarded to stderr.
pub fn flink_routes(dist: &FlinkDist) -> Vec<(String, String, String)> {
    let jdk = require_javac().unwrap_or_else(|e| panic!("cannot list Flink's routes: {e}"));
    let lister = build_lister(&jdk);
    let dist_jar = flink_dist_jar(dist);
    let classpath = format!("{}:{}/*", lister.display(), dist.lib_dir().display());

    let mut command = Command::new(&jdk.java.java);
    command
        .arg("-cp")
        .arg(&classpath)
        .arg(MAIN_CLASS)
        .arg(&dist_jar);
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{stderr}",
        output.status
    );
    for line in stderr.lines() {
        eprintln!("flinkguard-testkit: {line}");
    }

    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut routes: Vec<(String, String, String)> = stdout
        .lines()
        .map(|line| {
            let mut fields = line.split('\t');
            match (fields.next(), fields.next(), fields.next()) {
                (Some(method), Some(template), Some(class)) => {
                    (method.to_owned(), template.to_owned(), class.to_owned())
                }
                _ => panic!("ListRoutes printed an unexpected line: {line:?}"),
            }
        })
        .collect();
    routes.sort();
    routes.dedup();
    routes
}

/// `lib/flink-dist-*.jar` (or `flink-dist_2.12-*.jar` for 1.14).
fn flink_dist_jar(dist: &FlinkDist) -> PathBuf {
    let lib = dist.lib_dir();
    std::fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", lib.display()))
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("flink-dist") && name.ends_with(".jar"))
        })
        .unwrap_or_else(|| panic!("no flink-dist jar in {}", lib.display()))
}

/// Compiles `ListRoutes.java` into a jar, or returns the cached jar of the same source.
fn build_lister(jdk: &JdkTools) -> PathBuf {
    // Reflection only: no Flink jars on the compile classpath, one jar for every version.
    build_jar(
        jdk,
        &JavaSource {
            cache_dir: "listroutes",
            name: "listroutes",
            package_dir: "flinkguard/testkit",
            file_name: "ListRoutes.java",
            text: SOURCE,
            classpath: None,
            main_class: None,
        },
    )
}
