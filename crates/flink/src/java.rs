//! Finding the Java runtime Flink runs on, and the JDK tools that compile test jobs.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::FlinkError;

/// The oldest Java major version Flink 1.14+ and 2.x start on.
pub const MIN_JAVA_MAJOR: u32 = 11;

/// A `java` executable and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaInfo {
    /// Path of the `java` executable.
    pub java: PathBuf,
    /// Major version (8, 11, 17, 21...).
    pub major: u32,
    /// The full version string, e.g. `17.0.15`.
    pub version: String,
}

/// The JDK tools needed to compile and pack a job jar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JdkTools {
    /// The runtime these tools belong to.
    pub java: JavaInfo,
    /// Path of `javac`.
    pub javac: PathBuf,
    /// Path of `jar`.
    pub jar: PathBuf,
    /// Path of `keytool`, if present (it ships with the JRE too).
    pub keytool: Option<PathBuf>,
}

/// Finds `java` (`$JAVA_HOME/bin/java`, else on `PATH`) and checks it is Java 11 or newer.
pub fn require_java() -> Result<JavaInfo, FlinkError> {
    let java = find_tool("java").ok_or(FlinkError::JavaMissing)?;
    let output = Command::new(&java).arg("-version").output().map_err(|e| {
        FlinkError::JavaVersionUnreadable {
            java: java.clone(),
            detail: e.to_string(),
        }
    })?;
    // `java -version` prints to stderr; some wrappers print to stdout.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let Some((version, major)) = parse_java_version(&text) else {
        return Err(FlinkError::JavaVersionUnreadable {
            java,
            detail: format!("unexpected output: {}", text.trim()),
        });
    };
    if major < MIN_JAVA_MAJOR {
        return Err(FlinkError::JavaTooOld { java, major });
    }
    Ok(JavaInfo {
        java,
        major,
        version,
    })
}

/// Like [`require_java`], and also finds `javac` and `jar` (a JDK, not only a JRE).
pub fn require_javac() -> Result<JdkTools, FlinkError> {
    let java = require_java()?;
    // Prefer the tools next to the java found, so javac and java agree on the version.
    let beside = |tool: &str| {
        java.java
            .parent()
            .map(|dir| dir.join(tool))
            .filter(|p| is_executable(p))
    };
    let find = |tool: &'static str| {
        beside(tool)
            .or_else(|| find_tool(tool))
            .ok_or_else(|| FlinkError::JdkToolMissing {
                tool,
                java: java.java.clone(),
            })
    };
    let javac = find("javac")?;
    let jar = find("jar")?;
    let keytool = beside("keytool").or_else(|| find_tool("keytool"));
    Ok(JdkTools {
        java,
        javac,
        jar,
        keytool,
    })
}

/// `$JAVA_HOME/bin/<tool>` if it exists, else the first `<tool>` on `PATH`.
fn find_tool(tool: &str) -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("JAVA_HOME").filter(|h| !h.is_empty()) {
        let candidate = Path::new(&home).join("bin").join(tool);
        if is_executable(&candidate) {
            return Some(candidate);
        }
    }
    find_on_path(tool, std::env::var_os("PATH"))
}

pub(crate) fn find_on_path(tool: &str, path: Option<OsString>) -> Option<PathBuf> {
    std::env::split_paths(&path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Reads `openjdk version "17.0.15" 2025-04-15` or `java version "1.8.0_292"`.
fn parse_java_version(text: &str) -> Option<(String, u32)> {
    let line = text.lines().find(|l| l.contains(" version \""))?;
    let start = line.find('"')? + 1;
    let end = start + line[start..].find('"')?;
    let version = &line[start..end];
    let mut parts = version.split(['.', '_', '-', '+']);
    let first: u32 = parts.next()?.parse().ok()?;
    // Java 8 and older report `1.8.0`.
    let major = if first == 1 {
        parts.next()?.parse().ok()?
    } else {
        first
    };
    Some((version.to_owned(), major))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_java_version_lines() {
        let jdk17 = "openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime Environment";
        assert_eq!(parse_java_version(jdk17), Some(("17.0.15".into(), 17)));
        let jdk8 = "java version \"1.8.0_292\"\nJava(TM) SE Runtime";
        assert_eq!(parse_java_version(jdk8), Some(("1.8.0_292".into(), 8)));
        let ea = "openjdk version \"25-ea\" 2025-09-16";
        assert_eq!(parse_java_version(ea), Some(("25-ea".into(), 25)));
        assert_eq!(parse_java_version("bash: java: not found"), None);
    }

    #[test]
    fn missing_java_names_the_debian_package() {
        assert!(
            FlinkError::JavaMissing
                .to_string()
                .contains("apt-get install openjdk-17-jre-headless")
        );
        let missing = FlinkError::JdkToolMissing {
            tool: "javac",
            java: "/usr/bin/java".into(),
        };
        assert!(missing.to_string().contains("openjdk-17-jdk-headless"));
    }

    #[test]
    fn finds_tools_on_path_only_if_executable() {
        let dir = std::env::temp_dir().join(format!("flinkguard-java-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tool = dir.join("faketool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let path = Some(OsString::from(format!("/nonexistent:{}", dir.display())));
        assert_eq!(find_on_path("faketool", path.clone()), None);
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_on_path("faketool", path), Some(tool));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finds_the_installed_java() {
        // The machines have Java 17; this checks the real detection end to end.
        let java = require_java().unwrap();
        assert!(java.major >= MIN_JAVA_MAJOR, "{java:?}");
    }
}
