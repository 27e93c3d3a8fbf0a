//! Flink distributions: validating a `FLINK_HOME`, and installing one from PyPI into a cache
//! shared by every flinkguard command and test process on the machine.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{FlinkError, IoContext};
use crate::java::find_on_path;
use crate::{ConfigFormat, FlinkVersion};

/// A Flink distribution on disk: `home` holds `bin/`, `conf/`, `lib/`, `opt/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlinkDist {
    /// `FLINK_HOME`, absolute.
    pub home: PathBuf,
    /// The version, read from the `flink-dist` jar's file name.
    pub version: FlinkVersion,
}

/// What [`FlinkDist::install`] is doing, for a progress indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstallProgress {
    /// The version is in the cache already; nothing to do.
    AlreadyInstalled {
        /// Its `FLINK_HOME`.
        home: PathBuf,
    },
    /// Another process holds the install lock for this version; waiting for it to finish.
    WaitingForLock {
        /// The lock file.
        lock: PathBuf,
    },
    /// pip started (the download is about 350 MB).
    Started {
        /// pip's log file.
        log: PathBuf,
    },
    /// pip is running; `bytes` is how much it has downloaded and unpacked so far.
    Downloading {
        /// Size of the install's scratch directory.
        bytes: u64,
        /// Time since pip started.
        elapsed: Duration,
    },
    /// pip finished; checking the result and moving it into place.
    Finishing,
    /// The distribution is ready.
    Installed {
        /// Its `FLINK_HOME`.
        home: PathBuf,
        /// How long the install took.
        elapsed: Duration,
    },
}

impl FlinkDist {
    /// Validates a distribution directory and reads its version.
    pub fn from_home(home: impl AsRef<Path>) -> Result<FlinkDist, FlinkError> {
        let given = home.as_ref();
        let home = std::path::absolute(given).unwrap_or_else(|_| given.to_path_buf());
        let invalid = |reason: String| FlinkError::NotADistribution {
            home: home.clone(),
            reason,
        };
        if !home.is_dir() {
            return Err(invalid("the directory does not exist".into()));
        }
        let script = home.join("bin").join("jobmanager.sh");
        if !script.is_file() {
            return Err(invalid(format!("{} is missing", script.display())));
        }
        let lib = home.join("lib");
        let entries = fs::read_dir(&lib)
            .map_err(|e| invalid(format!("cannot read {}: {e}", lib.display())))?;
        let mut jars = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("flink-dist") && name.ends_with(".jar") {
                jars.push(name);
            }
        }
        let [jar] = jars.as_slice() else {
            return Err(invalid(if jars.is_empty() {
                format!("no lib/flink-dist-*.jar in {}", lib.display())
            } else {
                format!(
                    "several flink-dist jars in {}: {}",
                    lib.display(),
                    jars.join(", ")
                )
            }));
        };
        let version = version_from_dist_jar(jar).map_err(|reason| {
            invalid(format!("cannot read the version from lib/{jar}: {reason}"))
        })?;
        Ok(FlinkDist { home, version })
    }

    /// The distribution `FLINK_HOME` points at.
    pub fn from_env() -> Result<FlinkDist, FlinkError> {
        match std::env::var_os("FLINK_HOME") {
            Some(home) if !home.is_empty() => FlinkDist::from_home(home),
            _ => Err(FlinkError::FlinkHomeUnset),
        }
    }

    /// Where [`FlinkDist::install`] puts `version`: `<cache_root>/flink/<version>/pyflink`.
    pub fn cached_home(version: FlinkVersion) -> Result<PathBuf, FlinkError> {
        Ok(cache_root()?
            .join("flink")
            .join(version.to_string())
            .join("pyflink"))
    }

    /// The cached distribution of `version`, if it has been installed.
    pub fn cached(version: FlinkVersion) -> Result<Option<FlinkDist>, FlinkError> {
        let home = FlinkDist::cached_home(version)?;
        Ok(FlinkDist::from_home(home)
            .ok()
            .filter(|d| d.version == version))
    }

    /// Returns the cached distribution of `version`, installing it from PyPI first if needed.
    ///
    /// Safe to call from many processes at once: one installs while the others wait on a file
    /// lock. The install goes to a scratch directory that is renamed into place only when pip
    /// succeeded, so an interrupted install never looks complete.
    pub fn install(
        version: FlinkVersion,
        progress: &mut dyn FnMut(InstallProgress),
    ) -> Result<FlinkDist, FlinkError> {
        if let Some(dist) = FlinkDist::cached(version)? {
            progress(InstallProgress::AlreadyInstalled {
                home: dist.home.clone(),
            });
            return Ok(dist);
        }
        let flink_dir = cache_root()?.join("flink");
        fs::create_dir_all(&flink_dir)
            .context(|| format!("cannot create the cache directory {}", flink_dir.display()))?;
        let lock_path = flink_dir.join(format!("{version}.lock"));
        let _lock = lock_exclusive(&lock_path, progress)?;
        // Another process may have installed it while this one waited.
        if let Some(dist) = FlinkDist::cached(version)? {
            progress(InstallProgress::AlreadyInstalled {
                home: dist.home.clone(),
            });
            return Ok(dist);
        }
        let final_dir = flink_dir.join(version.to_string());
        if final_dir.exists() {
            return Err(FlinkError::NotADistribution {
                home: final_dir.join("pyflink"),
                reason: format!(
                    "{} exists but does not hold a complete Flink {version}; remove it and retry",
                    final_dir.display()
                ),
            });
        }
        remove_stale_scratch_dirs(&flink_dir, version);
        let scratch = flink_dir.join(format!(".tmp-{version}-{}", std::process::id()));
        let result = pip_install(version, &flink_dir, &scratch, &final_dir, progress);
        // Best effort: on success only the emptied scratch dir is left; on failure, a partial
        // install that must not linger.
        let _ = fs::remove_dir_all(&scratch);
        result
    }

    /// `bin/<script>`.
    pub fn bin(&self, script: &str) -> PathBuf {
        self.home.join("bin").join(script)
    }

    /// The distribution's own `conf/` directory (log4j files, default config).
    pub fn conf_dir(&self) -> PathBuf {
        self.home.join("conf")
    }

    /// The `lib/` directory, whose jars are the classpath for compiling jobs.
    pub fn lib_dir(&self) -> PathBuf {
        self.home.join("lib")
    }

    /// The configuration format this distribution reads.
    pub fn config_format(&self) -> ConfigFormat {
        self.version.config_format()
    }
}

/// The flinkguard cache: `$FLINKGUARD_CACHE`, else `$XDG_CACHE_HOME/flinkguard`, else
/// `~/.cache/flinkguard`.
pub fn cache_root() -> Result<PathBuf, FlinkError> {
    cache_root_from(|name| std::env::var_os(name))
}

fn cache_root_from(var: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, FlinkError> {
    let set = |name| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("FLINKGUARD_CACHE") {
        return Ok(dir);
    }
    if let Some(dir) = set("XDG_CACHE_HOME") {
        return Ok(dir.join("flinkguard"));
    }
    set("HOME")
        .map(|home| home.join(".cache").join("flinkguard"))
        .ok_or(FlinkError::NoCacheDir)
}

/// `flink-dist-2.3.0.jar` (1.15+) or `flink-dist_2.12-1.14.6.jar` (1.14, Scala suffix).
fn version_from_dist_jar(name: &str) -> Result<FlinkVersion, String> {
    let rest = name
        .strip_prefix("flink-dist")
        .and_then(|r| r.strip_suffix(".jar"))
        .ok_or_else(|| "not a flink-dist jar".to_owned())?;
    let rest = match rest.strip_prefix("_2.1") {
        // Skip the Scala version (`_2.12`): everything up to the next dash.
        Some(scala) => scala.split_once('-').map(|(_, v)| v).unwrap_or(""),
        None => rest.strip_prefix('-').unwrap_or(""),
    };
    rest.parse::<FlinkVersion>().map_err(|e| e.to_string())
}

/// Holds an exclusive lock on `path` until dropped.
fn lock_exclusive(
    path: &Path,
    progress: &mut dyn FnMut(InstallProgress),
) -> Result<File, FlinkError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .context(|| format!("cannot open the install lock {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            progress(InstallProgress::WaitingForLock {
                lock: path.to_path_buf(),
            });
            file.lock()
                .context(|| format!("cannot lock {}", path.display()))?;
        }
        Err(TryLockError::Error(e)) => {
            return Err(FlinkError::io(format!("cannot lock {}", path.display()), e));
        }
    }
    Ok(file)
}

/// Scratch directories of installs that were interrupted. Only called under the version's lock,
/// so none of them belongs to a running install.
fn remove_stale_scratch_dirs(flink_dir: &Path, version: FlinkVersion) {
    let prefix = format!(".tmp-{version}-");
    let Ok(entries) = fs::read_dir(flink_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn pip_install(
    version: FlinkVersion,
    flink_dir: &Path,
    scratch: &Path,
    final_dir: &Path,
    progress: &mut dyn FnMut(InstallProgress),
) -> Result<FlinkDist, FlinkError> {
    let python =
        find_on_path("python3", std::env::var_os("PATH")).ok_or(FlinkError::PythonMissing {
            what: "python3",
            package: "python3 python3-pip",
        })?;
    let has_pip = Command::new(&python)
        .args(["-m", "pip", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_pip {
        return Err(FlinkError::PythonMissing {
            what: "pip for python3",
            package: "python3-pip",
        });
    }

    let target = scratch.join("target");
    // pip downloads into TMPDIR; pointing it into the scratch dir makes the download's
    // progress visible as the scratch dir's size.
    let pip_tmp = scratch.join("pip-tmp");
    fs::create_dir_all(&pip_tmp).context(|| format!("cannot create {}", pip_tmp.display()))?;
    let log_path = flink_dir.join(format!("{version}.pip.log"));
    let log = File::create(&log_path)
        .context(|| format!("cannot create pip's log {}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .context(|| format!("cannot share {}", log_path.display()))?;

    let started = Instant::now();
    let mut child = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "--target",
        ])
        .arg(&target)
        .arg(format!("apache-flink=={version}"))
        .arg(format!("apache-flink-libraries=={version}"))
        .env("TMPDIR", &pip_tmp)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .context(|| format!("cannot run {} -m pip", python.display()))?;
    progress(InstallProgress::Started {
        log: log_path.clone(),
    });

    let status = loop {
        if let Some(status) = child
            .try_wait()
            .context(|| "cannot wait for pip".to_owned())?
        {
            break status;
        }
        progress(InstallProgress::Downloading {
            bytes: dir_size(scratch),
            elapsed: started.elapsed(),
        });
        std::thread::sleep(Duration::from_millis(500));
    };
    if !status.success() {
        return Err(FlinkError::PipFailed {
            version,
            status: status.to_string(),
            tail: tail_lines(&log_path, 30),
            log: log_path,
        });
    }

    progress(InstallProgress::Finishing);
    let installed = FlinkDist::from_home(target.join("pyflink"))?;
    if installed.version != version {
        return Err(FlinkError::NotADistribution {
            home: installed.home,
            reason: format!(
                "pip installed Flink {} instead of {version}",
                installed.version
            ),
        });
    }
    fs::rename(&target, final_dir).context(|| {
        format!(
            "cannot move the installed distribution {} to {}",
            target.display(),
            final_dir.display()
        )
    })?;
    let home = final_dir.join("pyflink");
    progress(InstallProgress::Installed {
        home: home.clone(),
        elapsed: started.elapsed(),
    });
    FlinkDist::from_home(home)
}

/// Total size of the regular files below `dir`, ignoring files that vanish meanwhile.
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// The last `n` lines of a text file, or a note saying why it could not be read.
pub(crate) fn tail_lines(path: &Path, n: usize) -> String {
    match File::open(path) {
        Ok(file) => {
            let mut lines: std::collections::VecDeque<String> = Default::default();
            for line in BufReader::new(file).lines() {
                let line = match line {
                    Ok(l) => l,
                    Err(_) => continue,
                };
                if lines.len() == n {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
            lines.into_iter().collect::<Vec<_>>().join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn cache_root_prefers_flinkguard_then_xdg_then_home() {
        let all = env(&[
            ("FLINKGUARD_CACHE", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(cache_root_from(all).unwrap(), PathBuf::from("/c"));
        let xdg = env(&[
            ("FLINKGUARD_CACHE", ""),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(
            cache_root_from(xdg).unwrap(),
            PathBuf::from("/x/flinkguard")
        );
        let home = env(&[("HOME", "/h")]);
        assert_eq!(
            cache_root_from(home).unwrap(),
            PathBuf::from("/h/.cache/flinkguard")
        );
        assert!(matches!(
            cache_root_from(env(&[])),
            Err(FlinkError::NoCacheDir)
        ));
    }

    #[test]
    fn version_from_dist_jar_names() {
        assert_eq!(
            version_from_dist_jar("flink-dist-2.3.0.jar"),
            Ok(FlinkVersion::new(2, 3, 0))
        );
        assert_eq!(
            version_from_dist_jar("flink-dist-1.20.3.jar"),
            Ok(FlinkVersion::new(1, 20, 3))
        );
        assert_eq!(
            version_from_dist_jar("flink-dist_2.12-1.14.6.jar"),
            Ok(FlinkVersion::new(1, 14, 6))
        );
        assert!(version_from_dist_jar("flink-dist-2.3-SNAPSHOT.jar").is_err());
        assert!(version_from_dist_jar("flink-dist.jar").is_err());
    }

    #[test]
    fn from_home_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let err = FlinkDist::from_home(dir.path()).unwrap_err().to_string();
        assert!(err.contains("bin/jobmanager.sh is missing"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");

        fs::create_dir_all(dir.path().join("bin")).unwrap();
        fs::write(dir.path().join("bin/jobmanager.sh"), "").unwrap();
        fs::create_dir_all(dir.path().join("lib")).unwrap();
        let err = FlinkDist::from_home(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no lib/flink-dist-*.jar"), "{err}");

        fs::write(dir.path().join("lib/flink-dist-2.1.1.jar"), "").unwrap();
        let dist = FlinkDist::from_home(dir.path()).unwrap();
        assert_eq!(dist.version, FlinkVersion::new(2, 1, 1));
        assert_eq!(dist.config_format(), ConfigFormat::Nested);
    }

    #[test]
    fn missing_home_is_a_clear_error() {
        let err = FlinkDist::from_home("/nonexistent/flink")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/flink"), "{err}");
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log");
        let text: String = (1..=50).map(|i| format!("line {i}\n")).collect();
        fs::write(&file, text).unwrap();
        let tail = tail_lines(&file, 3);
        assert_eq!(tail, "line 48\nline 49\nline 50");
        assert!(tail_lines(&dir.path().join("nope"), 3).contains("cannot read"));
    }
}
