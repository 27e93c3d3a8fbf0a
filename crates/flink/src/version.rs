use std::fmt;
use std::str::FromStr;

/// A Flink release, `MAJOR.MINOR.PATCH` as published on PyPI (`apache-flink==2.3.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlinkVersion {
    /// Major version: 1 or 2.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Patch version.
    pub patch: u16,
}

impl FlinkVersion {
    /// The version flinkguard installs and tests against by default.
    pub const DEFAULT: FlinkVersion = FlinkVersion::new(2, 3, 0);
    /// The 1.x release the test suite covers with the flat config format.
    pub const LATEST_1X: FlinkVersion = FlinkVersion::new(1, 20, 3);
    /// The oldest release published on PyPI in the layout flinkguard installs.
    pub const OLDEST_SUPPORTED: FlinkVersion = FlinkVersion::new(1, 14, 0);

    /// A version from its parts.
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        FlinkVersion {
            major,
            minor,
            patch,
        }
    }

    /// The configuration file format this version reads from `FLINK_CONF_DIR`.
    pub fn config_format(self) -> ConfigFormat {
        if self.major >= 2 {
            ConfigFormat::Nested
        } else {
            ConfigFormat::Flat
        }
    }
}

impl Default for FlinkVersion {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for FlinkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A string that is not a Flink version flinkguard supports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a supported Flink version: {reason} (for example 2.3.0 or 1.20.3)")]
pub struct ParseVersionError {
    input: String,
    reason: &'static str,
}

impl FromStr for FlinkVersion {
    type Err = ParseVersionError;

    /// Accepts `2.3.0`, `2.3` (patch 0) and a leading `v`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseVersionError {
            input: s.to_owned(),
            reason,
        };
        let trimmed = s.trim().strip_prefix('v').unwrap_or(s.trim());
        let mut parts = trimmed.split('.');
        let mut next = |required: bool| -> Result<u16, ParseVersionError> {
            match parts.next() {
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                    p.parse().map_err(|_| err("a part is too large"))
                }
                Some(_) => Err(err("each part must be a number")),
                None if required => Err(err("expected MAJOR.MINOR[.PATCH]")),
                None => Ok(0),
            }
        };
        let version = FlinkVersion::new(next(true)?, next(true)?, next(false)?);
        if parts.next().is_some() {
            return Err(err("expected at most three parts"));
        }
        if version < FlinkVersion::OLDEST_SUPPORTED {
            return Err(err("versions before 1.14 are not supported"));
        }
        if version.major > 2 {
            return Err(err("this flinkguard knows Flink 1.x and 2.x only"));
        }
        Ok(version)
    }
}

impl serde::Serialize for FlinkVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for FlinkVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How a Flink version reads its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigFormat {
    /// Flink 2.x: `config.yaml`, standard YAML, nested keys.
    Nested,
    /// Flink 1.x: `flink-conf.yaml`, one `key: value` per line, flat keys.
    Flat,
}

impl ConfigFormat {
    /// The file name Flink looks for in its configuration directory.
    pub fn file_name(self) -> &'static str {
        match self {
            ConfigFormat::Nested => "config.yaml",
            ConfigFormat::Flat => "flink-conf.yaml",
        }
    }

    /// The format a configuration file's name implies, if it is one of Flink's names.
    pub fn from_file_name(name: &str) -> Option<ConfigFormat> {
        match name {
            "config.yaml" => Some(ConfigFormat::Nested),
            "flink-conf.yaml" => Some(ConfigFormat::Flat),
            _ => None,
        }
    }
}

/// The JVM module flags Flink ships as `env.java.opts.all` in its default config (1.20 and
/// 2.x, for Java 17 and later): without them parts of Flink fail at run time with
/// `InaccessibleObjectException` (in 2.3, running any DataStream job). A config that
/// replaces the shipped file, as a Kubernetes pod's does, must carry them itself. A test in
/// the testkit compares them with the installed distributions' files.
pub fn shipped_java_options(version: FlinkVersion) -> String {
    const EXPORTS: [&str; 7] = [
        "java.rmi/sun.rmi.registry",
        "jdk.compiler/com.sun.tools.javac.api",
        "jdk.compiler/com.sun.tools.javac.file",
        "jdk.compiler/com.sun.tools.javac.parser",
        "jdk.compiler/com.sun.tools.javac.tree",
        "jdk.compiler/com.sun.tools.javac.util",
        "java.security.jgss/sun.security.krb5",
    ];
    const OPENS: [&str; 12] = [
        "java.base/java.lang",
        "java.base/java.net",
        "java.base/java.io",
        "java.base/java.nio",
        "java.base/sun.nio.ch",
        "java.base/java.lang.reflect",
        "java.base/java.text",
        "java.base/java.time",
        "java.base/java.util",
        "java.base/java.util.concurrent",
        "java.base/java.util.concurrent.atomic",
        "java.base/java.util.concurrent.locks",
    ];
    // 1.x also exports sun.net.util; 2.x dropped it.
    let exports_1x: &[&str] = if version.major < 2 {
        &["java.base/sun.net.util"]
    } else {
        &[]
    };
    let exports = exports_1x
        .iter()
        .chain(&EXPORTS)
        .map(|p| format!("--add-exports={p}=ALL-UNNAMED"));
    let opens = OPENS.iter().map(|p| format!("--add-opens={p}=ALL-UNNAMED"));
    exports.chain(opens).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_short_versions() {
        assert_eq!("2.3.0".parse(), Ok(FlinkVersion::new(2, 3, 0)));
        assert_eq!("v1.20".parse(), Ok(FlinkVersion::new(1, 20, 0)));
    }

    #[test]
    fn rejects_garbage_old_and_future_versions() {
        for bad in [
            "", "2", "2.x", "2.3.0.1", "1.13.6", "3.0.0", "2.-1.0", "99999.1",
        ] {
            assert!(bad.parse::<FlinkVersion>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn config_format_follows_major_version() {
        assert_eq!(
            FlinkVersion::new(2, 0, 0).config_format(),
            ConfigFormat::Nested
        );
        assert_eq!(
            FlinkVersion::new(1, 20, 3).config_format(),
            ConfigFormat::Flat
        );
        assert_eq!(
            ConfigFormat::from_file_name("flink-conf.yaml"),
            Some(ConfigFormat::Flat)
        );
        assert_eq!(ConfigFormat::from_file_name("other.yaml"), None);
    }
}
