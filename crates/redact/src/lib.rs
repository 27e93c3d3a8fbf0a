//! Redaction of secrets in Flink REST responses, before a principal who may not see them does.
//!
//! Flink 2.3 shows secrets in many places (found on a real cluster; the fixtures under
//! `tests/fixtures` are its answers):
//!
//! * `/jobmanager/config` (and `/jobs/:jobid/jobmanager/config`,
//!   `/applications/:applicationid/jobmanager/config`): `[{"key", "value"}]` entries. Flink
//!   hides keys matching its own list (`password`, `secret`, `token`...), but not
//!   `s3.access-key`, and not secrets inside other values (`env.java.opts.jobmanager:
//!   -Dapp.db.password=...`).
//! * `/jobmanager/environment` (and its per-job twin): `jvm.options`, one JVM option per string.
//! * `/jobs/:jobid/config`: `execution-config.user-config`, the job parameters; Flink hides
//!   values of its sensitive keys but shows the others and every key, including
//!   `db.password=hunter2` (what `--db.password=hunter2` becomes in a parameter tool).
//! * The job's name, which is whatever the program chose (the test job takes its first
//!   argument): `/jobs/overview`, `/jobs/:jobid`, `/jobs/:jobid/plan`, `/jars/:jarid/plan`,
//!   `/applications/...`, logs.
//! * Exceptions: `/jobs/:jobid/exceptions`, `/applications/:applicationid/exceptions`,
//!   `/jobs/:jobid/execution-result` (also base64 Java serialization in
//!   `serialized-throwable`), and error bodies.
//! * Logs: JVM options, program arguments and every configuration property at start-up, job
//!   names, exceptions.
//!
//! So the filter is generic rather than per route: [`RedactionRules::redact_json`] walks any
//! JSON document, [`RedactionRules::redact_text`] and [`TextRedactor`] scan text, and
//! [`RedactionRules::filters`] is true for every route but a few whose answers hold no text
//! from users or configuration. What counts as a secret key is configurable
//! ([`RedactionRules::new`], [`DEFAULT_KEY_PATTERNS`]); false positives are accepted, false
//! negatives are not.
//!
//! The gateway must see a response whole and in clear: before forwarding a filtered request it
//! removes [`REQUEST_HEADERS_TO_STRIP`] (Flink 2.3 ignores them today, but a proxy in between
//! or a later Flink might not), and it checks each answer with [`check_response_framing`].
//!
//! ```
//! use flinkguard_redact::RedactionRules;
//! # fn main() -> Result<(), flinkguard_redact::RedactError> {
//! let rules = RedactionRules::default();
//! assert!(rules.filters("/jobmanager/config"));
//! let body = br#"[{"key":"s3.access-key","value":"AKIAEXAMPLE123"},{"key":"rest.port","value":"8081"}]"#;
//! let (redacted, count) = rules.redact_json(body)?;
//! assert_eq!(count, 1);
//! assert_eq!(
//!     redacted,
//!     br#"[{"key":"s3.access-key","value":"******"},{"key":"rest.port","value":"8081"}]"#
//! );
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod java;
mod json;
mod rules;
mod text;

pub use rules::{DEFAULT_KEY_PATTERNS, DEFAULT_MAX_LINE, REDACTED, RedactionRules};
pub use text::TextRedactor;

/// Route templates (as in `flinkguard_policy::routes`) whose responses are not filtered: they
/// carry only numbers, ids, states and Flink's own settings, never text from users, programs
/// or the configuration. Every other route, and any template not known here, is filtered.
pub const UNFILTERED_ROUTES: &[&str] = &[
    // The Web UI's static files, served from Flink's own jar.
    "/:*",
    // Counts of TaskManagers, slots and jobs, Flink's version and commit.
    "/overview",
    // The dashboard's settings: refresh interval, time zone, version, enabled features.
    "/config",
    // Job ids and states.
    "/jobs",
    "/jobs/:jobid/status",
];

/// Request headers to remove before forwarding a request whose response will be filtered:
/// they could make the answer compressed or partial, which the filter cannot read whole (a
/// range may start in the middle of `password=...`).
pub const REQUEST_HEADERS_TO_STRIP: &[&str] = &["accept-encoding", "range", "if-range"];

/// Why a response cannot be filtered. The gateway answers 502 instead of passing it on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// A body declared or sniffed as JSON is not valid JSON.
    #[error("the response is not valid JSON at byte {offset}: {reason}")]
    InvalidJson {
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The response is compressed (or otherwise encoded).
    #[error("the response has content encoding `{0}`, which the filter cannot read")]
    Encoded(String),
    /// The response is a byte range, not the whole body.
    #[error("the response is partial (a byte range), which the filter cannot judge")]
    Partial,
}

/// Invalid redaction rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// A pattern without any ASCII letter or digit would match every key.
    #[error("redaction pattern `{0}` has no letter or digit: it would match every key")]
    EmptyPattern(String),
    /// No patterns: nothing would be redacted.
    #[error("no redaction patterns: nothing would be redacted")]
    NoPatterns,
}

/// Checks that a response to a filtered request is whole and in clear: not `206 Partial
/// Content`, no `Content-Range`, no `Content-Encoding` but `identity`.
pub fn check_response_framing(
    status: u16,
    content_encoding: Option<&str>,
    content_range: Option<&str>,
) -> Result<(), RedactError> {
    if status == 206 || content_range.is_some() {
        return Err(RedactError::Partial);
    }
    match content_encoding.map(str::trim) {
        None | Some("") => Ok(()),
        Some(e) if e.eq_ignore_ascii_case("identity") => Ok(()),
        Some(e) => Err(RedactError::Encoded(e.to_owned())),
    }
}

impl RedactionRules {
    /// Whether responses of this route template must go through the filter: every route
    /// except [`UNFILTERED_ROUTES`], including templates this crate does not know.
    pub fn filters(&self, route: &str) -> bool {
        !UNFILTERED_ROUTES.contains(&route)
    }

    /// Redacts a JSON body (any route: the rules do not depend on the schema); returns the new
    /// body and how many values were redacted. Everything not redacted is kept byte for byte.
    /// A body that is not JSON is an error, never passed through.
    pub fn redact_json(&self, body: &[u8]) -> Result<(Vec<u8>, usize), RedactError> {
        json::redact(self, body)
    }

    /// Redacts plain text (logs, stdout): the value after a secret key in `key=value`,
    /// `key: value`, `key, value`, `-Dkey=value`, `--key=value` and `--key value` (also when
    /// the value is on the next line), quoted values whole, the credential after `Bearer` or
    /// `Basic`, and the password in `scheme://user:password@host`. Returns the new text and how
    /// many values were redacted.
    pub fn redact_text(&self, text: &str) -> (String, usize) {
        let (out, count) = self.redact_bytes(text.as_bytes());
        match String::from_utf8(out) {
            Ok(text) => (text, count),
            // Values are replaced between ASCII delimiters, so UTF-8 stays UTF-8; should that
            // ever break, a replacement character is better than a panic or a leak.
            Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), count),
        }
    }

    /// [`RedactionRules::redact_text`] for bytes that need not be UTF-8.
    pub fn redact_bytes(&self, body: &[u8]) -> (Vec<u8>, usize) {
        let mut scanner = text::Scanner::new(self, text::Mode::Replace);
        let mut out = Vec::with_capacity(body.len() + 64);
        let (count, _) = scanner.scan(body, text::Carry::Nothing, &mut out);
        (out, count)
    }

    /// A line-by-line redactor for text bodies too large to hold (log files).
    pub fn text_redactor(&self) -> TextRedactor<'_> {
        TextRedactor::new(self)
    }

    /// Redacts a whole response body as its `Content-Type` says: JSON for `application/json`
    /// and `+json`, text for `text/*`, and for anything else (or none) JSON if the body starts
    /// like JSON, text otherwise. Flink answers errors on log routes in JSON, so the type, not
    /// the route, decides.
    pub fn redact_response(
        &self,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(Vec<u8>, usize), RedactError> {
        let media = content_type
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase());
        let as_json = match media.as_deref() {
            Some(m) if m == "application/json" || m.ends_with("+json") => true,
            Some(m) if m.starts_with("text/") => false,
            _ => matches!(
                body.iter().find(|b| !b.is_ascii_whitespace()),
                Some(b'{' | b'[')
            ),
        };
        if as_json {
            self.redact_json(body)
        } else {
            Ok(self.redact_bytes(body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing() {
        assert_eq!(check_response_framing(200, None, None), Ok(()));
        assert_eq!(check_response_framing(404, Some("identity"), None), Ok(()));
        assert_eq!(
            check_response_framing(200, Some("gzip"), None),
            Err(RedactError::Encoded("gzip".into()))
        );
        assert_eq!(
            check_response_framing(206, None, None),
            Err(RedactError::Partial)
        );
        assert_eq!(
            check_response_framing(200, None, Some("bytes 0-9/100")),
            Err(RedactError::Partial)
        );
    }

    #[test]
    fn response_kind_follows_content_type() {
        let rules = RedactionRules::default();
        let json = br#"{"key":"a.token","value":"v"}"#;
        let expected = br#"{"key":"a.token","value":"******"}"#.to_vec();
        for t in [
            Some("application/json; charset=UTF-8"),
            None,
            Some("application/octet-stream"),
        ] {
            assert_eq!(
                rules.redact_response(t, json).unwrap(),
                (expected.clone(), 1),
                "{t:?}"
            );
        }
        let log = b"x password=y\n";
        assert_eq!(
            rules.redact_response(Some("text/plain"), log).unwrap(),
            (b"x password=******\n".to_vec(), 1)
        );
        assert!(
            rules
                .redact_response(Some("application/json"), b"x=1")
                .is_err()
        );
        assert!(rules.redact_response(None, b"{x").is_err());
    }
}
