//! One JSON line per request, written before the response is complete for denials and after
//! it for forwarded requests.

use std::io::Write;
use std::net::SocketAddr;

use serde::Serialize;

/// What the audit line of one request holds.
#[derive(Debug, Serialize)]
pub(crate) struct AuditLine<'a> {
    pub(crate) time: String,
    pub(crate) request_id: u64,
    pub(crate) peer: SocketAddr,
    pub(crate) user: Option<&'a str>,
    pub(crate) groups: Option<&'a [String]>,
    pub(crate) auth: Option<String>,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) operation: Option<&'static str>,
    pub(crate) decision: &'static str,
    pub(crate) reason: Option<String>,
    pub(crate) status: u16,
    pub(crate) bytes: Option<u64>,
    pub(crate) duration_ms: f64,
    pub(crate) job_id: Option<&'a str>,
}

/// Writes a line to stdout. One `write_all` of the whole line under the stdout lock, so
/// concurrent requests never interleave within a line.
pub(crate) fn emit(line: &AuditLine<'_>) {
    let Ok(mut text) = serde_json::to_vec(line) else {
        return;
    };
    text.push(b'\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&text);
    let _ = out.flush();
}
