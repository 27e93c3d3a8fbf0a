//! Anonymous REST checks: what an unauthenticated client can read and do through Flink's REST
//! API, tested without side effects.
//!
//! What Flink 2.3.0 answers (default settings, verified): `GET /config` 200 with
//! `flink-version`; `POST /jobs` with the body `[` 400 "Request did not match expected format
//! JobSubmitRequestBody"; `POST /jars/upload` with an empty multipart body 400 "Exactly 1 file
//! must be sent, received 0" (400 "POST request not allowed" when `web.submit.enable` is
//! false); `PATCH
//! /jobs/000…0?mode=cancel` 404 "Job could not be found"; `POST /jobs/000…0/savepoints` and
//! `/checkpoints` with the body `[` 400 "Request did not match expected format ..."; the
//! CVE-2020-17519 path 404 "This file does not exist in JobManager log dir".

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ClientConfig;

use crate::http::{self, Request, Response};
use crate::tls::Timeouts;
use crate::{Status, Threat};

/// A job id no job has: Flink draws job ids from 128 random bits, so all zeros is never one in
/// practice; the requests that name it cannot touch a real job.
const NO_JOB: &str = "00000000000000000000000000000000";

/// One anonymous REST check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestCheck {
    /// The finding id.
    pub id: &'static str,
    /// What an OPEN result means.
    pub title: &'static str,
    /// The threat it opens.
    pub threat: Threat,
    /// HTTP method.
    pub method: &'static str,
    /// Path and query.
    pub path: &'static str,
    /// Content-Type of the body.
    pub content_type: Option<&'static str>,
    /// The body.
    pub body: &'static [u8],
    /// How the answer is judged.
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Version,
    Traversal,
    /// A write whose handler answered 400 about the request body: the handler was reached.
    Write,
    /// A write on the job [`NO_JOB`]: "job not found" means the handler was reached.
    WriteOnMissingJob,
}

/// Every REST check, in the order they run.
pub const CHECKS: &[RestCheck] = &[
    // Safe: POST /jobs needs a multipart body with a serialized JobGraph file; the body `[`
    // is not even the JSON object the handler expects, so it fails before anything is read,
    // stored or run.
    RestCheck {
        id: "FG-PROBE-001",
        title: "anonymous job submission (POST /jobs)",
        threat: Threat::JobControl,
        method: "POST",
        path: "/jobs",
        content_type: Some("application/json"),
        body: b"[",
        kind: Kind::Write,
    },
    // Safe: a multipart body with no part at all; Flink stores nothing and says a file is
    // missing.
    RestCheck {
        id: "FG-PROBE-002",
        title: "anonymous jar upload (POST /jars/upload), which lets anyone run code",
        threat: Threat::JobControl,
        method: "POST",
        path: "/jars/upload",
        content_type: Some("multipart/form-data; boundary=flinkguardprobe"),
        body: b"--flinkguardprobe--\r\n",
        kind: Kind::Write,
    },
    // Safe: cancels the job NO_JOB, which does not exist.
    RestCheck {
        id: "FG-PROBE-003",
        title: "anonymous job cancellation (PATCH /jobs/:jobid)",
        threat: Threat::JobControl,
        method: "PATCH",
        path: "/jobs/00000000000000000000000000000000?mode=cancel",
        content_type: None,
        body: b"",
        kind: Kind::WriteOnMissingJob,
    },
    // Safe: the body `[` fails to parse before a savepoint could be triggered (and the job
    // NO_JOB does not exist).
    RestCheck {
        id: "FG-PROBE-004",
        title: "anonymous savepoint trigger (POST /jobs/:jobid/savepoints), which can also cancel jobs",
        threat: Threat::StateAccess,
        method: "POST",
        path: "/jobs/00000000000000000000000000000000/savepoints",
        content_type: Some("application/json"),
        body: b"[",
        kind: Kind::Write,
    },
    // Safe: as the savepoint check.
    RestCheck {
        id: "FG-PROBE-005",
        title: "anonymous checkpoint trigger (POST /jobs/:jobid/checkpoints)",
        threat: Threat::StateAccess,
        method: "POST",
        path: "/jobs/00000000000000000000000000000000/checkpoints",
        content_type: Some("application/json"),
        body: b"[",
        kind: Kind::Write,
    },
    RestCheck {
        id: "FG-PROBE-006",
        title: "anonymous read of the cluster overview (GET /overview)",
        threat: Threat::SecretExposure,
        method: "GET",
        path: "/overview",
        content_type: None,
        body: b"",
        kind: Kind::Read,
    },
    RestCheck {
        id: "FG-PROBE-007",
        title: "anonymous read of the whole cluster configuration (GET /jobmanager/config)",
        threat: Threat::SecretExposure,
        method: "GET",
        path: "/jobmanager/config",
        content_type: None,
        body: b"",
        kind: Kind::Read,
    },
    RestCheck {
        id: "FG-PROBE-008",
        title: "Flink version disclosed to anonymous clients (GET /config)",
        threat: Threat::SecretExposure,
        method: "GET",
        path: "/config",
        content_type: None,
        body: b"",
        kind: Kind::Version,
    },
    // Safe: a GET of a log file name; on a vulnerable Flink it reads /etc/passwd, nothing more.
    RestCheck {
        id: "FG-PROBE-009",
        title: "CVE-2020-17519: any file readable through the log handler",
        threat: Threat::SecretExposure,
        method: "GET",
        path: "/jobmanager/logs/..%252f..%252f..%252f..%252fetc%252fpasswd",
        content_type: None,
        body: b"",
        kind: Kind::Traversal,
    },
];

/// The result of one check on one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestResult {
    /// The check.
    pub check: RestCheck,
    /// OPEN, CLOSED or UNKNOWN.
    pub status: Status,
    /// The status code and message, or why there was none.
    pub evidence: String,
}

/// Runs every check against `addr` as an anonymous client (over TLS with `tls`, which must
/// carry no client certificate). With `only_if_http`, first checks with one `GET /config`
/// (waiting at most `timeouts.verdict`) that the endpoint speaks HTTP at all, and returns
/// nothing when it does not.
pub fn run_checks(
    addr: SocketAddr,
    host: &str,
    base_path: &str,
    tls: Option<Arc<ClientConfig>>,
    timeouts: &Timeouts,
    only_if_http: bool,
) -> Vec<RestResult> {
    if only_if_http {
        let quick = Timeouts {
            handshake: timeouts.verdict,
            ..*timeouts
        };
        let path = format!("{base_path}/config");
        let request = Request {
            method: "GET",
            path: &path,
            content_type: None,
            body: b"",
        };
        if http::send(addr, host, tls.clone(), &request, &quick).is_err() {
            return Vec::new();
        }
    }
    CHECKS
        .iter()
        .map(|check| {
            let path = format!("{base_path}{}", check.path);
            let request = Request {
                method: check.method,
                path: &path,
                content_type: check.content_type,
                body: check.body,
            };
            let (status, evidence) = match http::send(addr, host, tls.clone(), &request, timeouts) {
                Ok(response) => judge(check, &response),
                Err(e) => (
                    Status::Unknown,
                    format!("{} {}: no answer ({e})", check.method, check.path),
                ),
            };
            RestResult {
                check: *check,
                status,
                evidence,
            }
        })
        .collect()
}

/// Every check CLOSED because the TLS layer refused anonymous clients.
pub fn closed_by_tls(reason: &str) -> Vec<RestResult> {
    CHECKS
        .iter()
        .map(|check| RestResult {
            check: *check,
            status: Status::Closed,
            evidence: format!("TLS refuses clients without a certificate ({reason})"),
        })
        .collect()
}

/// Judges an answer to `check`.
pub fn judge(check: &RestCheck, response: &Response) -> (Status, String) {
    let code = response.status;
    let message = response
        .flink_error()
        .map(|m| format!(" \"{}\"", shorten(&m)))
        .unwrap_or_default();
    let said = format!("{} {} answered {code}{message}", check.method, check.path);
    if code == 401 || code == 403 {
        return (Status::Closed, format!("{said}: authentication required"));
    }
    if code >= 500 {
        return (Status::Unknown, format!("{said}: cannot tell"));
    }
    // Flink 2.3 answers a disabled feature (web.submit.enable: false) with 400 "POST request
    // not allowed" rather than 404.
    let write = matches!(check.kind, Kind::Write | Kind::WriteOnMissingJob);
    if write && code == 400 && message.to_lowercase().contains("request not allowed") {
        return (Status::Closed, format!("{said}: disabled"));
    }
    match check.kind {
        Kind::Read if code == 200 => (Status::Open, said),
        Kind::Version if code == 200 => {
            let version = serde_json::from_slice::<serde_json::Value>(&response.body)
                .ok()
                .and_then(|v| v.get("flink-version")?.as_str().map(str::to_owned));
            match version {
                Some(version) => (Status::Open, format!("{said}: flink-version {version}")),
                None => (Status::Closed, format!("{said} without flink-version")),
            }
        }
        Kind::Traversal => {
            if code == 200 && response.text().contains("root:") {
                (
                    Status::Open,
                    format!("{said} with the content of /etc/passwd"),
                )
            } else {
                (Status::Closed, said)
            }
        }
        Kind::Write if code == 400 && !message.is_empty() => (
            Status::Open,
            format!("{said}: the handler parsed the request, so it would accept a valid one"),
        ),
        Kind::WriteOnMissingJob if code == 404 && names_missing_job(&message) => (
            Status::Open,
            format!("{said}: the handler looked the job up, so it would cancel a real one"),
        ),
        Kind::Write | Kind::WriteOnMissingJob if (200..300).contains(&code) => {
            (Status::Open, format!("{said}: accepted"))
        }
        _ => (Status::Closed, said),
    }
}

/// Flink's handler says "Job could not be found" (cancel) or "Job <id> not found"; a router
/// 404 ("Not found: /jobs/...") does not count.
fn names_missing_job(message: &str) -> bool {
    let message = message.to_lowercase();
    message.contains("job could not be found")
        || message.contains(&format!("job {NO_JOB} not found"))
}

fn shorten(message: &str) -> String {
    let message = message
        .strip_prefix("org.apache.flink.runtime.rest.handler.RestHandlerException: ")
        .unwrap_or(message);
    if message.chars().count() > 120 {
        let cut: String = message.chars().take(117).collect();
        format!("{cut}...")
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn check(id: &str) -> &'static RestCheck {
        CHECKS.iter().find(|c| c.id == id).unwrap()
    }

    // The bodies are what Flink 2.3.0 answered, stack traces cut.
    #[test]
    fn flink_answers_are_open() {
        let submit = response(
            400,
            r#"{"errors":["org.apache.flink.runtime.rest.handler.RestHandlerException: Request did not match expected format JobSubmitRequestBody.\n\tat org..."]}"#,
        );
        let (status, evidence) = judge(check("FG-PROBE-001"), &submit);
        assert_eq!(status, Status::Open);
        assert!(evidence.contains("JobSubmitRequestBody"), "{evidence}");
        let upload = response(
            400,
            r#"{"errors":["org.apache.flink.runtime.rest.handler.RestHandlerException: Exactly 1 file must be sent, received 0.\n\tat"]}"#,
        );
        assert_eq!(judge(check("FG-PROBE-002"), &upload).0, Status::Open);
        let cancel = response(
            404,
            r#"{"errors":["org.apache.flink.runtime.rest.handler.RestHandlerException: Job could not be found.\n\tat"]}"#,
        );
        assert_eq!(judge(check("FG-PROBE-003"), &cancel).0, Status::Open);
        let no_route = response(
            404,
            r#"{"errors":["Not found: /jobs/00000000000000000000000000000000"]}"#,
        );
        assert_eq!(judge(check("FG-PROBE-003"), &no_route).0, Status::Closed);
        let config = response(200, r#"{"refresh-interval":3000,"flink-version":"2.3.0"}"#);
        let (status, evidence) = judge(check("FG-PROBE-008"), &config);
        assert_eq!(status, Status::Open);
        assert!(evidence.contains("2.3.0"));
        let passwd = response(200, "root:x:0:0:root:/root:/bin/bash\n");
        assert_eq!(judge(check("FG-PROBE-009"), &passwd).0, Status::Open);
    }

    #[test]
    fn denials_and_disabled_features_are_closed() {
        let denied = response(401, r#"{"errors":["authentication required"]}"#);
        for c in CHECKS {
            assert_eq!(judge(c, &denied).0, Status::Closed, "{}", c.id);
            assert_eq!(judge(c, &response(403, "")).0, Status::Closed, "{}", c.id);
        }
        // web.submit.enable: false, as Flink 2.3.0 answers it.
        let no_upload = response(400, r#"{"errors":["POST request not allowed"]}"#);
        assert_eq!(judge(check("FG-PROBE-002"), &no_upload).0, Status::Closed);
        let not_found = response(404, r#"{"errors":["Not found: /jars/upload"]}"#);
        assert_eq!(judge(check("FG-PROBE-002"), &not_found).0, Status::Closed);
        let patched = response(
            404,
            r#"{"errors":["This file does not exist in JobManager log dir."]}"#,
        );
        assert_eq!(judge(check("FG-PROBE-009"), &patched).0, Status::Closed);
        assert_eq!(
            judge(check("FG-PROBE-001"), &response(502, "")).0,
            Status::Unknown
        );
    }
}
