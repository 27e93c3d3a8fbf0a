//! Writing Flink configuration files in either format, for test clusters.

use flinkguard_flink::{ConfigFormat, FlinkDist};
use flinkguard_render::{FlinkSettings, SettingValue};
use serde_yaml_ng::Value;

/// Renders flat `key -> value` entries as a Flink configuration file with flinkguard's own
/// renderer: nested standard YAML for [`ConfigFormat::Nested`] (2.x `config.yaml`), one
/// `key: value` per line for [`ConfigFormat::Flat`] (1.x `flink-conf.yaml`). A later entry
/// with the same key wins.
pub fn render_config(format: ConfigFormat, entries: &[(String, String)]) -> String {
    let mut settings = FlinkSettings::default();
    for (key, value) in entries {
        settings.set(key, scalar(value));
    }
    flinkguard_render::render(format, &settings).unwrap()
}

/// Numbers and booleans as YAML numbers and booleans, so the file reads like a hand-written one.
fn scalar(value: &str) -> SettingValue {
    let plain_number = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    if plain_number && let Ok(n) = value.parse::<u64>() {
        return SettingValue::Int(n);
    }
    match value {
        "true" => SettingValue::Bool(true),
        "false" => SettingValue::Bool(false),
        _ => SettingValue::Str(value.to_owned()),
    }
}

/// The `env.java.opts.all` a distribution ships in its default config: the `--add-opens`
/// flags Flink needs on Java 17.
pub(crate) fn shipped_java_opts(dist: &FlinkDist) -> Option<String> {
    let conf = dist.conf_dir();
    if let Ok(text) = std::fs::read_to_string(conf.join("config.yaml")) {
        let value: Value = serde_yaml_ng::from_str(&text).ok()?;
        let nested = ["env", "java", "opts", "all"]
            .iter()
            .try_fold(&value, |node, key| node.get(*key));
        let found = nested.or_else(|| value.get("env.java.opts.all"))?;
        return found.as_str().map(str::to_owned);
    }
    let text = std::fs::read_to_string(conf.join("flink-conf.yaml")).ok()?;
    text.lines().find_map(|line| {
        line.trim()
            .strip_prefix("env.java.opts.all:")
            .map(|v| v.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_flat_and_nested() {
        let e = entries(&[
            ("rest.port", "8081"),
            ("rest.address", "127.0.0.1"),
            ("jobmanager.memory.process.size", "1024m"),
            ("rest.port", "9091"),
            ("security.ssl.internal.enabled", "true"),
        ]);
        assert!(render_config(ConfigFormat::Flat, &e).ends_with(
            "rest.port: 9091\nrest.address: 127.0.0.1\njobmanager.memory.process.size: 1024m\n\
             security.ssl.internal.enabled: true\n"
        ));
        let nested = render_config(ConfigFormat::Nested, &e);
        let parsed: Value = serde_yaml_ng::from_str(&nested).unwrap();
        assert_eq!(parsed["rest"]["port"], Value::Number(9091.into()));
        assert_eq!(parsed["rest"]["address"], Value::String("127.0.0.1".into()));
        assert_eq!(
            parsed["jobmanager"]["memory"]["process"]["size"],
            Value::String("1024m".into())
        );
        assert_eq!(
            parsed["security"]["ssl"]["internal"]["enabled"],
            Value::Bool(true)
        );
    }
}

#[cfg(test)]
mod shipped_options_tests {
    use super::*;
    use crate::TestDist;
    use flinkguard_flink::FlinkVersion;

    /// `flinkguard_flink::shipped_java_options` is what each installed distribution ships.
    #[test]
    fn the_built_in_jvm_flags_are_the_distributions_own() {
        for version in [FlinkVersion::DEFAULT, FlinkVersion::LATEST_1X] {
            let dist = TestDist::get(version);
            assert_eq!(
                shipped_java_opts(&dist).as_deref(),
                Some(flinkguard_flink::shipped_java_options(version).as_str()),
                "Flink {version}"
            );
        }
    }
}
