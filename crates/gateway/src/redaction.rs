//! What principals without `secrets.read` do not get to see: secret-looking config values,
//! JVM options and program arguments in JSON answers, and in log files.

use flinkguard_redact::RedactionRules;
use http::HeaderMap;
use http::header;

/// The redaction rules of this gateway.
pub(crate) struct Redaction {
    rules: RedactionRules,
}

impl Redaction {
    pub(crate) fn new(rules: RedactionRules) -> Redaction {
        Redaction { rules }
    }

    /// Whether answers of this route can carry secrets.
    pub(crate) fn filters(&self, route: &str) -> bool {
        self.rules.filters(route)
    }

    /// The answer with every secret replaced. JSON is rewritten by structure; anything else
    /// (log files, stdout) as text. An answer that claims to be JSON but is not is an error:
    /// it is refused rather than passed through unfiltered.
    pub(crate) fn redact(
        &self,
        route: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<u8>, String> {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if json {
            self.rules
                .redact_json(route, body)
                .map(|(bytes, _)| bytes)
                .map_err(|e| format!("cannot filter Flink's answer: {e}"))
        } else {
            let text = String::from_utf8_lossy(body);
            Ok(self.rules.redact_text(&text).0.into_bytes())
        }
    }
}
