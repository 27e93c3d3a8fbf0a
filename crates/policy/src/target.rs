//! One path, decided once.
//!
//! Flink's REST server decodes each path segment a second time after Netty decoded the path
//! once, sends every unmatched GET to its static-file handler, and turns `+` into a space in
//! query values. The gateway must never decide on one path and have Flink act on another, so
//! [`RequestTarget::parse`] accepts only targets for which that question cannot arise — one
//! percent-decoding gives the final text of every segment — and rejects everything else with
//! a reason for a 400. The accepted target is forwarded byte for byte.

use std::fmt;

/// Longest request target accepted (path and query).
pub const MAX_TARGET_LEN: usize = 4096;
/// Most path segments accepted.
pub const MAX_SEGMENTS: usize = 32;

/// A request target the gateway can decide on: origin-form, every segment unambiguous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTarget {
    raw: String,
    path_len: usize,
    segments: Vec<String>,
    query: Vec<(String, String)>,
}

/// Why a request target was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// Longer than [`MAX_TARGET_LEN`] or more than [`MAX_SEGMENTS`] segments.
    #[error("request target too long")]
    TooLong,
    /// Not origin-form (`/path?query`): absolute-form, authority-form or `*`.
    #[error("request target must be a path starting with '/'")]
    NotOriginForm,
    /// A byte that has no place in a request target (control, NUL, space, non-ASCII, `\`, `#`).
    #[error("request target contains a forbidden character")]
    ForbiddenCharacter,
    /// `;` path parameters, which servers interpret differently.
    #[error("path parameters (';') are not allowed")]
    PathParameter,
    /// `//`, a trailing `/`, `.` or `..` segments (also percent-encoded).
    #[error("empty or dot path segments are not allowed")]
    AmbiguousSegment,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-encoding")]
    MalformedEncoding,
    /// A segment that would decode to something else a second time, or to a separator:
    /// encoded `/`, `\`, `%`, `+`, `;`, `?`, `#`, NUL or control characters.
    #[error("encoded separators, control characters or double encoding are not allowed")]
    AmbiguousEncoding,
    /// Percent-decoding gives bytes that are not UTF-8.
    #[error("percent-encoding does not decode to UTF-8")]
    InvalidUtf8,
    /// The same query parameter twice: which one Flink uses is not ours to guess.
    #[error("query parameter `{0}` appears more than once")]
    DuplicateQueryParameter(String),
}

impl RequestTarget {
    /// Parses and checks the request target exactly as it came in the request line.
    pub fn parse(raw: &str) -> Result<RequestTarget, TargetError> {
        if raw.len() > MAX_TARGET_LEN {
            return Err(TargetError::TooLong);
        }
        if !raw.starts_with('/') {
            return Err(TargetError::NotOriginForm);
        }
        if !raw.bytes().all(allowed_in_target) {
            return Err(TargetError::ForbiddenCharacter);
        }
        let (path, query) = match raw.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (raw, None),
        };
        if path.contains(';') {
            return Err(TargetError::PathParameter);
        }
        let mut segments = Vec::new();
        if path != "/" {
            for segment in path[1..].split('/') {
                if segments.len() == MAX_SEGMENTS {
                    return Err(TargetError::TooLong);
                }
                segments.push(decode_segment(segment)?);
            }
        }
        let query = match query {
            Some(q) => parse_query(q)?,
            None => Vec::new(),
        };
        Ok(RequestTarget {
            raw: raw.to_owned(),
            path_len: path.len(),
            segments,
            query,
        })
    }

    /// The target exactly as received and as it is forwarded.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The target exactly as received, given up whole (to forward it without a copy).
    pub fn into_string(self) -> String {
        self.raw
    }

    /// The path part, undecoded.
    pub fn path(&self) -> &str {
        &self.raw[..self.path_len]
    }

    /// The decoded path segments (`/jobs/abc` → `["jobs", "abc"]`; `/` → `[]`).
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Decoded query parameters in order.
    pub fn query(&self) -> &[(String, String)] {
        &self.query
    }

    /// The decoded value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for RequestTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// RFC 3986 `pchar`, `/` and `?` (path and query), plus `%` for encodings. Excludes `#`
/// (fragments are never sent), `\`, spaces, controls and non-ASCII.
fn allowed_in_target(b: u8) -> bool {
    ALLOWED_IN_TARGET[usize::from(b)]
}

/// [`allowed_in_target`] as a table: it is asked for every byte of every request's target.
static ALLOWED_IN_TARGET: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~!$&'()*+,;=:@/?%";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

/// Bytes that must not appear in a decoded segment: after one decoding they would either be
/// decoded again by Flink (`%`, `+`) or change the path's structure.
fn ambiguous_when_decoded(b: u8) -> bool {
    b < 0x20 || b == 0x7f || b"/\\%+;?#".contains(&b)
}

/// One path segment of a target [`RequestTarget::parse`] has checked: allowed bytes only, no
/// `;`, no `?`.
fn decode_segment(segment: &str) -> Result<String, TargetError> {
    if segment.is_empty() {
        return Err(TargetError::AmbiguousSegment);
    }
    if segment.contains('+') {
        // Flink's second decoding may read '+' as a space.
        return Err(TargetError::AmbiguousEncoding);
    }
    if !segment.contains('%') {
        // Nothing to decode (most segments). The target's bytes are all allowed ASCII, and
        // the separators among them (`/`, `?`, `;`) cannot be inside a segment.
        if segment == "." || segment == ".." {
            return Err(TargetError::AmbiguousSegment);
        }
        return Ok(segment.to_owned());
    }
    let bytes = percent_decode(segment)?;
    if bytes.iter().any(|&b| ambiguous_when_decoded(b)) {
        return Err(TargetError::AmbiguousEncoding);
    }
    let text = String::from_utf8(bytes).map_err(|_| TargetError::InvalidUtf8)?;
    if text == "." || text == ".." {
        return Err(TargetError::AmbiguousSegment);
    }
    Ok(text)
}

fn parse_query(query: &str) -> Result<Vec<(String, String)>, TargetError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_query_component(k)?;
        let value = decode_query_component(v)?;
        if out.iter().any(|(existing, _)| *existing == key) {
            return Err(TargetError::DuplicateQueryParameter(key));
        }
        out.push((key, value));
    }
    Ok(out)
}

/// Query components as Netty decodes them: `+` is a space, `%XX` a byte.
fn decode_query_component(text: &str) -> Result<String, TargetError> {
    let bytes = percent_decode(&text.replace('+', " "))?;
    if bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(TargetError::AmbiguousEncoding);
    }
    String::from_utf8(bytes).map_err(|_| TargetError::InvalidUtf8)
}

fn percent_decode(text: &str) -> Result<Vec<u8>, TargetError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(TargetError::MalformedEncoding)?;
            let hi = hex_value(hex[0]).ok_or(TargetError::MalformedEncoding)?;
            let lo = hex_value(hex[1]).ok_or(TargetError::MalformedEncoding)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_targets_keep_their_exact_text() {
        let t = RequestTarget::parse("/jobs/4f2a/vertices?get=a,b&x=1%20y").unwrap();
        assert_eq!(t.as_str(), "/jobs/4f2a/vertices?get=a,b&x=1%20y");
        assert_eq!(t.path(), "/jobs/4f2a/vertices");
        assert_eq!(t.segments(), ["jobs", "4f2a", "vertices"]);
        assert_eq!(t.query_param("x"), Some("1 y"));
        assert_eq!(RequestTarget::parse("/").unwrap().segments().len(), 0);
        let jar = RequestTarget::parse("/jars/5e7b_my%20job.jar/run").unwrap();
        assert_eq!(jar.segments()[1], "5e7b_my job.jar");
    }

    #[test]
    fn everything_flink_could_read_differently_is_rejected() {
        use TargetError::*;
        let cases: &[(&str, TargetError)] = &[
            ("jobs", NotOriginForm),
            ("http://evil/jobs", NotOriginForm),
            ("*", NotOriginForm),
            ("/jobs%2foverview", AmbiguousEncoding),
            ("/jobs%2Foverview", AmbiguousEncoding),
            ("/jobs/%252e%252e/x", AmbiguousEncoding),
            ("/jobs/%2541", AmbiguousEncoding),
            ("/jobs/a+b", AmbiguousEncoding),
            ("/jobs/a%2bb", AmbiguousEncoding),
            ("/jobs/%5c..", AmbiguousEncoding),
            ("/jobs/%00", AmbiguousEncoding),
            ("/jobs/%0a", AmbiguousEncoding),
            ("/jobs/../jars", AmbiguousSegment),
            ("/jobs/./x", AmbiguousSegment),
            ("/jobs/%2e%2e/x", AmbiguousSegment),
            ("/jobs/%2E", AmbiguousSegment),
            ("/jobs//x", AmbiguousSegment),
            ("/jobs/", AmbiguousSegment),
            ("/jobs;x=1/overview", PathParameter),
            ("/jobs/overview;", PathParameter),
            ("/jobs\\overview", ForbiddenCharacter),
            ("/jobs/\u{0}", ForbiddenCharacter),
            ("/jobs/é", ForbiddenCharacter),
            ("/jobs overview", ForbiddenCharacter),
            ("/jobs#x", ForbiddenCharacter),
            ("/jobs/%zz", MalformedEncoding),
            ("/jobs/%4", MalformedEncoding),
            ("/jobs/%ff%fe", InvalidUtf8),
            ("/jobs?a=1&a=2", DuplicateQueryParameter("a".into())),
            ("/jobs?a=%00", AmbiguousEncoding),
            ("/jobs?a=%c3", InvalidUtf8),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                RequestTarget::parse(raw).as_ref().err(),
                Some(expected),
                "{raw}"
            );
        }
        assert_eq!(
            RequestTarget::parse(&format!("/{}", "a/".repeat(40) + "a")),
            Err(TooLong)
        );
        assert_eq!(
            RequestTarget::parse(&format!("/{}", "a".repeat(5000))),
            Err(TooLong)
        );
    }

    #[test]
    fn encoded_unicode_is_fine_once() {
        let t = RequestTarget::parse("/jars/caf%C3%A9.jar").unwrap();
        assert_eq!(t.segments()[1], "café.jar");
    }
}
