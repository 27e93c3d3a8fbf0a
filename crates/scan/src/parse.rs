//! Flattening Flink's two configuration layouts into `key → value` strings.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use crate::ScanError;

/// Flink 1.x `flink-conf.yaml`, read the way `GlobalConfiguration.loadYAMLResource` does: not
/// YAML at all, but lines of `key: value`. Everything after the first `#` is a comment (so a
/// value cannot contain `#`), the separator is the first `": "`, and lines without one or with
/// an empty key or value are skipped. A repeated key keeps its last value.
pub(crate) fn legacy(text: &str) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    for line in text.lines() {
        let content = line.split('#').next().unwrap_or_default().trim();
        let Some((key, value)) = content.split_once(": ") else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if !key.is_empty() && !value.is_empty() {
            entries.insert(key.to_owned(), value.to_owned());
        }
    }
    entries
}

/// Flink 2.x `config.yaml`: standard YAML whose nested mappings Flink flattens by joining keys
/// with `.` (`rest: {bind-address: x}` and `rest.bind-address: x` are the same setting).
pub(crate) fn standard(text: &str) -> Result<BTreeMap<String, String>, ScanError> {
    let value: Value = serde_yaml_ng::from_str(text)?;
    let mut entries = BTreeMap::new();
    match value {
        // An all-comment file, like a trimmed-down shipped config, is an empty configuration.
        Value::Null => {}
        Value::Mapping(_) => flatten("", &value, &mut entries),
        _ => return Err(ScanError::NotAMapping),
    }
    Ok(entries)
}

fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                let Some(key) = scalar(key) else { continue };
                let full = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&full, child, out);
            }
        }
        Value::Tagged(tagged) => flatten(prefix, &tagged.value, out),
        other => {
            if let Some(text) = render(other) {
                out.insert(prefix.to_owned(), text);
            }
        }
    }
}

/// A leaf as Flink's string form. Lists become `;`-joined, the separator Flink's list options
/// accept; a `null` leaf is no setting at all, as in Flink.
fn render(value: &Value) -> Option<String> {
    match value {
        Value::Sequence(items) => Some(
            items
                .iter()
                .filter_map(render)
                .collect::<Vec<_>>()
                .join(";"),
        ),
        Value::Mapping(map) => {
            // A map inside a list (rare: only map-typed list options): `k:v,k:v`, Flink's form.
            let pairs: Vec<String> = map
                .iter()
                .filter_map(|(k, v)| Some(format!("{}:{}", scalar(k)?, render(v)?)))
                .collect();
            Some(pairs.join(","))
        }
        Value::Tagged(tagged) => render(&tagged.value),
        other => scalar(other),
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The line of every `key:` in block-style YAML (which both layouts are, in practice), as the
/// dotted key it stands for: nesting is followed by indentation, so `rest:` then
/// `  bind-address:` is `rest.bind-address`. Used only to point reports at a line; a key this
/// cannot place (flow style, multi-line scalars) simply has no line.
pub(crate) fn key_lines(text: &str) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    // (indentation, dotted key) of the mappings the current line may be nested in.
    let mut parents: Vec<(usize, String)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') || content.starts_with('-') {
            continue;
        }
        let Some((key, _)) = content.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(['"', '\'']);
        if key.is_empty() || key.contains(' ') {
            continue;
        }
        let indent = line.len() - content.len();
        while parents.last().is_some_and(|(i, _)| *i >= indent) {
            parents.pop();
        }
        let full = match parents.last() {
            Some((_, parent)) => format!("{parent}.{key}"),
            None => key.to_owned(),
        };
        lines.insert(full.clone(), index + 1);
        parents.push((indent, full));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines_follow_nesting_and_flat_keys() {
        let text = "\
# comment
rest:
  bind-address: 127.0.0.1
  port: 8081
security.ssl:
  internal:
    enabled: true
web.submit.enable: false
";
        let lines = key_lines(text);
        assert_eq!(lines["rest.bind-address"], 3);
        assert_eq!(lines["rest.port"], 4);
        assert_eq!(lines["security.ssl.internal.enabled"], 7);
        assert_eq!(lines["web.submit.enable"], 8);
    }

    #[test]
    fn legacy_reads_flat_lines_like_flink() {
        let text = "\
# a comment
rest.bind-address: 127.0.0.1   # trailing comment
web.submit.enable: false
not a setting
empty.value:
security.ssl.algorithms: A,B
rest.bind-address: 0.0.0.0
";
        let map = legacy(text);
        assert_eq!(map.get("rest.bind-address").unwrap(), "0.0.0.0");
        assert_eq!(map.get("web.submit.enable").unwrap(), "false");
        assert_eq!(map.get("security.ssl.algorithms").unwrap(), "A,B");
        assert!(!map.contains_key("empty.value"));
        assert_eq!(map.len(), 3);
    }

    #[test]
    fn standard_flattens_nested_keys_and_lists() {
        let text = "\
rest:
  bind-address: 127.0.0.1
  port: 8081
security.ssl:
  internal:
    enabled: true
web.submit.enable: false
env:
  java:
    opts:
      all: -Xss1m
metrics.reporters: [prom, jmx]
unset.key: null
";
        let map = standard(text).unwrap();
        assert_eq!(map.get("rest.bind-address").unwrap(), "127.0.0.1");
        assert_eq!(map.get("rest.port").unwrap(), "8081");
        assert_eq!(map.get("security.ssl.internal.enabled").unwrap(), "true");
        assert_eq!(map.get("web.submit.enable").unwrap(), "false");
        assert_eq!(map.get("env.java.opts.all").unwrap(), "-Xss1m");
        assert_eq!(map.get("metrics.reporters").unwrap(), "prom;jmx");
        assert!(!map.contains_key("unset.key"));
    }

    #[test]
    fn standard_accepts_empty_and_rejects_non_mappings() {
        assert!(standard("# only comments\n").unwrap().is_empty());
        assert!(matches!(
            standard("- a\n- b\n"),
            Err(ScanError::NotAMapping)
        ));
        assert!(matches!(standard("a: [\n"), Err(ScanError::Yaml(_))));
    }
}
