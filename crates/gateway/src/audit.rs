//! One JSON line per request, written before the response is complete for denials and after
//! it for forwarded requests.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
    /// The real caller when `user` is impersonated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) impersonated_by: Option<&'a str>,
    /// What a submission created (job, jar or application id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) created: Option<&'a str>,
}

/// Where audit lines go: stdout, an append-only file, or both.
///
/// Durability: with a file, each line is written with one `write` of the whole line to a file
/// opened with `O_APPEND` and flushed with `fdatasync` before the request's response is
/// returned, so a request whose response a client saw has its audit line on disk, even if the
/// gateway is killed right after. Lines never interleave: one writer at a time, whole lines.
#[derive(Debug)]
pub(crate) struct AuditSink {
    stdout: bool,
    file: Option<(PathBuf, Mutex<File>)>,
}

impl AuditSink {
    /// Opens (creating, mode 0600) the audit file for appending.
    pub(crate) fn open(stdout: bool, file: Option<&Path>) -> std::io::Result<AuditSink> {
        let file = match file {
            Some(path) => {
                let handle = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(path)?;
                Some((path.to_owned(), Mutex::new(handle)))
            }
            None => None,
        };
        Ok(AuditSink { stdout, file })
    }

    pub(crate) fn emit(&self, line: &AuditLine<'_>) {
        let Ok(mut text) = serde_json::to_vec(line) else {
            return;
        };
        text.push(b'\n');
        if let Some((path, file)) = &self.file {
            let written = file
                .lock()
                .map_err(|_| std::io::Error::other("audit writer poisoned"))
                .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_data()));
            if let Err(e) = written {
                // Losing audit lines silently is worse than noise: say so on stderr.
                eprintln!(
                    "flinkguard gateway: cannot write the audit line to {}: {e}",
                    path.display()
                );
            }
        }
        if self.stdout {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&text);
            let _ = out.flush();
        }
    }
}
