//! One JSON line per request, on disk before the response goes out (or, with
//! `audit_durability: unsynced_lost_on_machine_crash`, handed to the kernel before it).
//!
//! Synced lines are written by one thread with group commit: every line that arrives while the
//! previous `fdatasync` runs goes out in the next write and shares the next `fdatasync`. Each
//! request still waits until its own line is durable, so the promise is the one of a sync per
//! line, at the cost of one sync per batch; and no async worker thread ever blocks on the disk.
//!
//! Unsynced lines are written by the request's own task, one `write` to the file and one to
//! stdout, each under its lock: no thread to wake and wait for, which is most of what a synced
//! line costs besides the sync itself.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use flinkguard_config::AuditDurability;
use tokio::sync::oneshot;

/// What the audit line of one request holds.
///
/// Written by [`AuditLine::write_json`]; serde's derive is kept for the tests, as the oracle
/// the hand-written JSON must equal byte for byte.
#[derive(Debug)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(crate) struct AuditLine<'a> {
    pub(crate) time: String,
    pub(crate) request_id: u64,
    pub(crate) peer: &'a str,
    pub(crate) user: Option<&'a str>,
    pub(crate) groups: Option<&'a [String]>,
    pub(crate) auth: Option<&'static str>,
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
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    pub(crate) impersonated_by: Option<&'a str>,
    /// What a submission created (job, jar or application id).
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    pub(crate) created: Option<&'a str>,
}

impl AuditLine<'_> {
    /// Appends the line as one JSON object, the fields in declaration order, as serde_json
    /// would write it. By hand because this runs for every request: keys are constant bytes
    /// and most values need no escaping, where serde_json escapes and checks every key.
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time\":");
        json_str(out, &self.time);
        out.extend_from_slice(b",\"request_id\":");
        json_number(out, self.request_id);
        out.extend_from_slice(b",\"peer\":");
        json_str(out, self.peer);
        out.extend_from_slice(b",\"user\":");
        json_option_str(out, self.user);
        out.extend_from_slice(b",\"groups\":");
        match self.groups {
            Some(groups) => {
                out.push(b'[');
                for (i, group) in groups.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json_str(out, group);
                }
                out.push(b']');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"auth\":");
        json_option_str(out, self.auth);
        out.extend_from_slice(b",\"method\":");
        json_str(out, self.method);
        out.extend_from_slice(b",\"path\":");
        json_str(out, self.path);
        out.extend_from_slice(b",\"operation\":");
        json_option_str(out, self.operation);
        out.extend_from_slice(b",\"decision\":");
        json_str(out, self.decision);
        out.extend_from_slice(b",\"reason\":");
        json_option_str(out, self.reason.as_deref());
        out.extend_from_slice(b",\"status\":");
        json_number(out, self.status);
        out.extend_from_slice(b",\"bytes\":");
        match self.bytes {
            Some(bytes) => json_number(out, bytes),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"duration_ms\":");
        json_number(out, self.duration_ms);
        out.extend_from_slice(b",\"job_id\":");
        json_option_str(out, self.job_id);
        if let Some(by) = self.impersonated_by {
            out.extend_from_slice(b",\"impersonated_by\":");
            json_str(out, by);
        }
        if let Some(created) = self.created {
            out.extend_from_slice(b",\"created\":");
            json_str(out, created);
        }
        out.push(b'}');
    }
}

/// Bytes a JSON string cannot hold as they are: control characters, `"` and `\\`.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// A JSON string, escaped as serde_json escapes: `"`, `\\` and control characters.
fn json_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    if !text.bytes().any(|b| NEEDS_ESCAPE[usize::from(b)]) {
        // Nearly every value: nothing to escape.
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    let mut clean_from = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&text.as_bytes()[clean_from..at]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        clean_from = at + 1;
    }
    out.extend_from_slice(&text.as_bytes()[clean_from..]);
    out.push(b'"');
}

fn json_option_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => json_str(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

/// A number exactly as serde_json writes it (the same integer and float formatting).
fn json_number(out: &mut Vec<u8>, number: impl serde::Serialize) {
    // Writing a number into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &number);
}

/// Bytes reserved for one line; most lines are 300 to 400 bytes.
const LINE_CAPACITY: usize = 512;

/// A batch is written at most this large; the rest waits for the next one.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// One line on its way to the writer, and who waits for it.
struct Pending {
    text: Vec<u8>,
    written: oneshot::Sender<()>,
}

/// Where audit lines go: stdout, an append-only file, or both.
///
/// Durability: with a file and [`AuditDurability::Synced`], a request's line is written to a
/// file opened with `O_APPEND` and flushed with `fdatasync` before [`AuditSink::emit`] returns,
/// and so before the request's response is returned: a request whose response a client saw has
/// its audit line on disk, even if the gateway is killed right after. With
/// [`AuditDurability::UnsyncedLostOnMachineCrash`] the line is written before `emit` returns
/// but not synced: it survives the gateway, not the machine. Lines never interleave: whole
/// lines, one writer at a time.
#[derive(Debug)]
pub(crate) struct AuditSink {
    route: Route,
    counts: Arc<Counts>,
}

/// Who writes the lines.
#[derive(Debug)]
enum Route {
    /// The writer thread: a synced file (group commit), stdout.
    Writer(mpsc::Sender<Pending>),
    /// Each request's own task, unsynced.
    Direct {
        file: Option<(PathBuf, Mutex<File>)>,
        stdout: bool,
    },
}

/// What the sink did so far: lines per sync shows how much group commit saves.
#[derive(Debug, Default)]
struct Counts {
    lines: AtomicU64,
    /// `fdatasync` calls (one per batch written to the file).
    syncs: AtomicU64,
}

impl AuditSink {
    /// Opens (creating, mode 0600) the audit file for appending and, for synced lines, starts
    /// the writer thread.
    pub(crate) fn open(
        stdout: bool,
        file: Option<&Path>,
        durability: AuditDurability,
    ) -> std::io::Result<AuditSink> {
        let file = match file {
            Some(path) => {
                let handle = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(path)?;
                Some((path.to_owned(), handle))
            }
            None => None,
        };
        let counts = Arc::new(Counts::default());
        let route = match durability {
            AuditDurability::Synced => {
                let (lines, queue) = mpsc::channel();
                let writer = Writer {
                    queue,
                    file,
                    stdout,
                    counts: Arc::clone(&counts),
                };
                std::thread::Builder::new()
                    .name("flinkguard-audit".into())
                    .spawn(move || writer.run())?;
                Route::Writer(lines)
            }
            AuditDurability::UnsyncedLostOnMachineCrash => Route::Direct {
                file: file.map(|(path, file)| (path, Mutex::new(file))),
                stdout,
            },
        };
        Ok(AuditSink { route, counts })
    }

    /// Writes the line; returns once it is out (and, with a synced file, durable).
    pub(crate) async fn emit(&self, line: &AuditLine<'_>) {
        // Room for a typical line up front: growing the buffer field by field costs as much
        // as writing it.
        let mut text = Vec::with_capacity(LINE_CAPACITY);
        line.write_json(&mut text);
        text.push(b'\n');
        self.counts.lines.fetch_add(1, Ordering::Relaxed);
        let lines = match &self.route {
            Route::Writer(lines) => lines,
            Route::Direct { file, stdout } => {
                // One `write` to the page cache, microseconds, on this worker thread: the
                // kernel may throttle it under heavy writeback, as it does any log writer's
                // (and a full pipe on stdout blocks it, as it would block the writer thread
                // every request waits for).
                if let Some((path, file)) = file {
                    let written = file
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .write_all(&text);
                    if let Err(e) = written {
                        // Losing audit lines silently is worse than noise: say so on stderr.
                        eprintln!(
                            "flinkguard gateway: cannot write an audit line to {}: {e}",
                            path.display()
                        );
                    }
                }
                if *stdout {
                    // Rust's stdout is line-buffered: the newline flushes the line.
                    let _ = std::io::stdout().lock().write_all(&text);
                }
                return;
            }
        };
        let (written, done) = oneshot::channel();
        if lines.send(Pending { text, written }).is_err() || done.await.is_err() {
            // The writer is gone (it never exits while the sink lives): say so, loudly.
            eprintln!("flinkguard gateway: the audit writer stopped; an audit line is lost");
        }
    }

    /// The audit file, when its lines are not synced: what the gateway warns about at start.
    pub(crate) fn unsynced_file(&self) -> Option<&Path> {
        match &self.route {
            Route::Direct {
                file: Some((path, _)),
                ..
            } => Some(path),
            _ => None,
        }
    }

    /// How many `fdatasync` calls the writer made (one per batch).
    #[cfg(test)]
    fn syncs(&self) -> u64 {
        self.counts.syncs.load(Ordering::Relaxed)
    }

    /// The sink's counters in Prometheus' text format, for the admin listener's `/metrics`.
    pub(crate) fn render_metrics(&self) -> String {
        format!(
            "# HELP flinkguard_audit_lines_total Audit lines emitted, one per request (counted as each is handed to be written).\n# TYPE flinkguard_audit_lines_total counter\nflinkguard_audit_lines_total {}\n# HELP flinkguard_audit_syncs_total fdatasync calls on the audit file (one per batch of lines).\n# TYPE flinkguard_audit_syncs_total counter\nflinkguard_audit_syncs_total {}\n",
            self.counts.lines.load(Ordering::Relaxed),
            self.counts.syncs.load(Ordering::Relaxed)
        )
    }
}

/// The writer thread's side.
struct Writer {
    queue: mpsc::Receiver<Pending>,
    file: Option<(PathBuf, File)>,
    stdout: bool,
    counts: Arc<Counts>,
}

impl Writer {
    /// Until every sender is gone: take what is queued, write it, sync once, release the
    /// waiters.
    fn run(mut self) {
        while let Some(batch) = next_batch(&self.queue) {
            let mut text = Vec::with_capacity(batch.iter().map(|p| p.text.len()).sum());
            for pending in &batch {
                text.extend_from_slice(&pending.text);
            }
            if let Some((path, file)) = &mut self.file {
                let written = file.write_all(&text).and_then(|()| file.sync_data());
                self.counts.syncs.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = written {
                    // Losing audit lines silently is worse than noise: say so on stderr.
                    eprintln!(
                        "flinkguard gateway: cannot write {} audit line(s) to {}: {e}",
                        batch.len(),
                        path.display()
                    );
                }
            }
            if self.stdout {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&text);
                let _ = out.flush();
            }
            for pending in batch {
                let _ = pending.written.send(());
            }
        }
    }
}

/// The next batch: waits for one line, then takes every line already queued, up to
/// [`MAX_BATCH_BYTES`]. `None` once the sink is gone.
fn next_batch(queue: &mpsc::Receiver<Pending>) -> Option<Vec<Pending>> {
    let first = queue.recv().ok()?;
    let mut bytes = first.text.len();
    let mut batch = vec![first];
    while bytes < MAX_BATCH_BYTES {
        match queue.try_recv() {
            Ok(pending) => {
                bytes += pending.text.len();
                batch.push(pending);
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn line(request_id: u64) -> AuditLine<'static> {
        AuditLine {
            time: "2026-12-05T00:00:00Z".into(),
            request_id,
            peer: "127.0.0.1:1",
            user: Some("alice"),
            groups: None,
            auth: None,
            method: "GET",
            path: "/jobs/overview",
            operation: Some("jobs.list"),
            decision: "allow",
            reason: None,
            status: 200,
            bytes: None,
            duration_ms: 0.1,
            job_id: None,
            impersonated_by: None,
            created: None,
        }
    }

    /// The hand-written JSON equals serde_json's, escapes and absent fields included.
    #[test]
    fn the_hand_written_line_is_serde_json_s() {
        let groups = ["team \"a\"".to_owned(), "b\\c".to_owned(), String::new()];
        let awkward = "\u{0}\u{1f}\u{7f}\u{8}\u{c}\n\r\t é \u{2028} 🦀 </script>";
        let mut full = line(u64::MAX);
        full.groups = Some(&groups);
        full.auth = Some("mtls");
        full.reason = Some(awkward.into());
        full.bytes = Some(0);
        full.duration_ms = 1_234.000_5;
        full.job_id = Some(awkward);
        full.impersonated_by = Some("bob");
        full.created = Some("4f2a");
        let mut empty_groups = line(0);
        empty_groups.groups = Some(&[]);
        empty_groups.operation = None;
        empty_groups.duration_ms = 1e-7;
        for case in [line(7), full, empty_groups] {
            let mut ours = Vec::new();
            case.write_json(&mut ours);
            let theirs = serde_json::to_vec(&case).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }

    fn lines_in(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn each_line_is_in_the_file_when_emit_returns() {
        for durability in [
            AuditDurability::Synced,
            AuditDurability::UnsyncedLostOnMachineCrash,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("audit.jsonl");
            let sink = AuditSink::open(false, Some(&path), durability).unwrap();
            for id in 0..5 {
                sink.emit(&line(id)).await;
                let lines = lines_in(&path);
                assert_eq!(lines.len() as u64, id + 1, "{durability:?}");
                assert_eq!(lines.last().unwrap()["request_id"], id);
            }
            let (expected_syncs, unsynced_file) = match durability {
                AuditDurability::Synced => (5, None),
                AuditDurability::UnsyncedLostOnMachineCrash => (0, Some(path.as_path())),
            };
            assert_eq!(sink.unsynced_file(), unsynced_file);
            assert_eq!(
                sink.syncs(),
                expected_syncs,
                "{durability:?}: one at a time"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_lines_are_whole_and_all_there() {
        for durability in [
            AuditDurability::Synced,
            AuditDurability::UnsyncedLostOnMachineCrash,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("audit.jsonl");
            let sink = Arc::new(AuditSink::open(false, Some(&path), durability).unwrap());
            let tasks: Vec<_> = (0..400)
                .map(|id| {
                    let sink = Arc::clone(&sink);
                    tokio::spawn(async move { sink.emit(&line(id)).await })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            // Every line parses (none interleaved) and none is missing.
            let mut ids: Vec<u64> = lines_in(&path)
                .iter()
                .map(|l| l["request_id"].as_u64().unwrap())
                .collect();
            ids.sort_unstable();
            assert_eq!(ids, (0..400).collect::<Vec<_>>(), "{durability:?}");
            // The counters /metrics shows: every line counted, at most one sync per line.
            let metrics = sink.render_metrics();
            assert!(
                metrics.contains("flinkguard_audit_lines_total 400\n"),
                "{durability:?}: {metrics}"
            );
            let syncs = sink.syncs();
            match durability {
                AuditDurability::Synced => {
                    assert!((1..=400).contains(&syncs), "{syncs} syncs for 400 lines");
                }
                AuditDurability::UnsyncedLostOnMachineCrash => assert_eq!(syncs, 0),
            }
        }
    }

    /// Unsynced lines to a file and a copy on stdout: both written by the request's task.
    #[tokio::test]
    async fn unsynced_lines_with_stdout_still_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let sink = AuditSink::open(
            true,
            Some(&path),
            AuditDurability::UnsyncedLostOnMachineCrash,
        )
        .unwrap();
        sink.emit(&line(1)).await;
        assert_eq!(lines_in(&path).len(), 1);
        assert_eq!(sink.syncs(), 0);
    }

    #[test]
    fn a_batch_takes_everything_already_queued() {
        let (send, queue) = mpsc::channel();
        for _ in 0..7 {
            let (written, _) = oneshot::channel();
            send.send(Pending {
                text: b"{}\n".to_vec(),
                written,
            })
            .unwrap();
        }
        assert_eq!(next_batch(&queue).unwrap().len(), 7);
        drop(send);
        assert!(next_batch(&queue).is_none());
    }

    #[test]
    fn a_batch_stops_at_its_size_limit() {
        let (send, queue) = mpsc::channel();
        for _ in 0..3 {
            let (written, _) = oneshot::channel();
            send.send(Pending {
                text: vec![b'x'; MAX_BATCH_BYTES / 2],
                written,
            })
            .unwrap();
        }
        assert_eq!(next_batch(&queue).unwrap().len(), 2);
        assert_eq!(next_batch(&queue).unwrap().len(), 1);
    }
}
