use std::path::PathBuf;

use crate::FlinkVersion;
use crate::process::FlinkStartError;

/// Everything that can go wrong while finding Java, installing a Flink distribution or running
/// Flink processes. Each message names what failed and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlinkError {
    /// No `java` executable in `$JAVA_HOME/bin` or on `PATH`.
    #[error(
        "Java was not found (looked in $JAVA_HOME/bin and on PATH); Flink needs Java 11 or newer, \
         17 recommended: apt-get install openjdk-17-jre-headless"
    )]
    JavaMissing,
    /// `javac` or `jar` is missing: a JRE without the JDK tools.
    #[error(
        "`{tool}` was not found next to {java} or on PATH; compiling jobs needs a JDK: \
         apt-get install openjdk-17-jdk-headless"
    )]
    JdkToolMissing {
        /// The missing tool (`javac`, `jar`).
        tool: &'static str,
        /// The `java` that was found.
        java: PathBuf,
    },
    /// `java -version` printed something this code does not understand, or failed.
    #[error("could not read the Java version from `{java} -version`: {detail}")]
    JavaVersionUnreadable {
        /// The `java` executable.
        java: PathBuf,
        /// What went wrong, with the output.
        detail: String,
    },
    /// The Java found is older than Flink supports.
    #[error(
        "{java} is Java {major}; Flink needs Java 11 or newer, 17 recommended: \
         apt-get install openjdk-17-jre-headless and set JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64"
    )]
    JavaTooOld {
        /// The `java` executable.
        java: PathBuf,
        /// Its major version.
        major: u32,
    },
    /// A directory is not a Flink distribution.
    #[error("{home} is not a Flink distribution: {reason}")]
    NotADistribution {
        /// The directory given as FLINK_HOME.
        home: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// `FLINK_HOME` is not set.
    #[error(
        "FLINK_HOME is not set; point it at a Flink distribution (the directory holding bin/ and lib/)"
    )]
    FlinkHomeUnset,
    /// No cache directory could be determined.
    #[error(
        "cannot find a cache directory: none of FLINKGUARD_CACHE, XDG_CACHE_HOME or HOME is set"
    )]
    NoCacheDir,
    /// `python3` is missing, or has no pip.
    #[error(
        "installing Flink from PyPI needs {what}, which was not found: apt-get install {package}"
    )]
    PythonMissing {
        /// What was looked for (`python3`, `pip for python3`).
        what: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// `pip install` failed.
    #[error(
        "installing Flink {version} with pip failed ({status}); pip's log is {log}, it ends with:\n{tail}"
    )]
    PipFailed {
        /// The version being installed.
        version: FlinkVersion,
        /// pip's exit status.
        status: String,
        /// The full pip log.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// A file system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Flink did not become ready, or a process died while starting.
    #[error(transparent)]
    Start(#[from] Box<FlinkStartError>),
    /// A request to Flink's REST API failed.
    #[error("Flink REST request {method} {url} failed: {detail}")]
    Rest {
        /// HTTP method.
        method: &'static str,
        /// Full URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
}

impl FlinkError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        FlinkError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Adds context to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn context(self, f: impl FnOnce() -> String) -> Result<T, FlinkError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, f: impl FnOnce() -> String) -> Result<T, FlinkError> {
        self.map_err(|e| FlinkError::io(f(), e))
    }
}
