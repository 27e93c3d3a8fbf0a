//! Writing Flink configuration files in either format, for test clusters.

use flinkguard_flink::{ConfigFormat, FlinkDist};
use serde_yaml_ng::{Mapping, Value};

/// Renders flat `key -> value` entries as a Flink configuration file: nested standard YAML for
/// [`ConfigFormat::Nested`] (2.x `config.yaml`), one `key: value` per line for
/// [`ConfigFormat::Flat`] (1.x `flink-conf.yaml`). A later entry with the same key wins.
///
/// Panics if a key is both a value and a prefix of another key (`a: 1` and `a.b: 2`), which the
/// nested format cannot express.
pub fn render_config(format: ConfigFormat, entries: &[(String, String)]) -> String {
    let mut unique: Vec<(&str, &str)> = Vec::new();
    for (key, value) in entries {
        match unique.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => unique.push((key, value)),
        }
    }
    match format {
        ConfigFormat::Flat => unique.iter().map(|(k, v)| format!("{k}: {v}\n")).collect(),
        ConfigFormat::Nested => {
            let mut root = Mapping::new();
            for (key, value) in &unique {
                insert_nested(&mut root, key, value);
            }
            serde_yaml_ng::to_string(&root).unwrap()
        }
    }
}

fn insert_nested(root: &mut Mapping, key: &str, value: &str) {
    let parts: Vec<&str> = key.split('.').collect();
    let (leaf, path) = parts.split_last().unwrap();
    let mut node = root;
    for part in path {
        let child = node
            .entry(Value::String((*part).to_owned()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        node = match child {
            Value::Mapping(m) => m,
            _ => panic!("config key {key}: `{part}` is already a value, not a section"),
        };
    }
    let previous = node.insert(Value::String((*leaf).to_owned()), scalar(value));
    assert!(
        !matches!(previous, Some(Value::Mapping(_))),
        "config key {key} is also a section"
    );
}

/// Numbers and booleans as YAML numbers and booleans, so the file reads like a hand-written one.
fn scalar(value: &str) -> Value {
    let plain_number = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    if plain_number && let Ok(n) = value.parse::<u64>() {
        return Value::Number(n.into());
    }
    match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(value.to_owned()),
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
        assert_eq!(
            render_config(ConfigFormat::Flat, &e),
            "rest.port: 9091\nrest.address: 127.0.0.1\njobmanager.memory.process.size: 1024m\n\
             security.ssl.internal.enabled: true\n"
        );
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

    #[test]
    #[should_panic(expected = "already a value")]
    fn rejects_a_key_that_is_also_a_section() {
        render_config(ConfigFormat::Nested, &entries(&[("a", "1"), ("a.b", "2")]));
    }
}
