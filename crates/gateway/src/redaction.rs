//! What principals without `secrets.read` do not get to see: secret-looking config values,
//! JVM options, program arguments and exception texts in Flink's answers, and in log files.

use flinkguard_redact::{DEFAULT_KEY_PATTERNS, RedactionRules};
use http::HeaderMap;
use http::header;

/// The redaction rules of this gateway.
pub(crate) struct Redaction {
    rules: RedactionRules,
}

impl Redaction {
    /// The built-in patterns plus `extra`.
    pub(crate) fn new(extra: &[String]) -> Result<Redaction, String> {
        let patterns = DEFAULT_KEY_PATTERNS
            .iter()
            .map(|p| (*p).to_owned())
            .chain(extra.iter().cloned());
        let rules = RedactionRules::new(patterns).map_err(|e| e.to_string())?;
        Ok(Redaction { rules })
    }

    /// Whether answers of this route can carry secrets.
    pub(crate) fn filters(&self, route: &str) -> bool {
        self.rules.filters(route)
    }

    /// A request target with secret-looking query values (`programArg=--db.password%20x`)
    /// masked, for audit lines.
    pub(crate) fn target_for_audit(&self, target: &str) -> String {
        // Paths are route segments and ids; only a query carries caller-chosen values, and
        // most requests have none, so they skip the text scan.
        match target.split_once('?') {
            Some((path, query)) => format!("{path}?{}", self.rules.redact_text(query).0),
            None => target.to_owned(),
        }
    }

    /// The answer with every secret replaced: JSON by structure, anything else as text. An
    /// answer that is partial, compressed, or claims to be JSON but is not, is an error: it is
    /// refused (502) rather than passed through unfiltered.
    pub(crate) fn redact(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<u8>, String> {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
        flinkguard_redact::check_response_framing(
            status,
            text(header::CONTENT_ENCODING),
            text(header::CONTENT_RANGE),
        )
        .and_then(|()| self.rules.redact_response(text(header::CONTENT_TYPE), body))
        .map(|(bytes, _)| bytes)
        .map_err(|e| format!("cannot filter Flink's answer: {e}"))
    }
}
