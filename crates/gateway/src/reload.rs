//! Hot reload: on SIGHUP, and when any file the current snapshot was built from changes, a
//! new snapshot is built and swapped in. Connections already open keep the snapshot they
//! started with (for TLS) and each request uses the snapshot current when it arrived. A
//! snapshot that cannot be built leaves the last good one in place, and says why.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::proxy::State;
use crate::settings::{GatewayOptions, Snapshot};

/// How often watched files are checked.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// A change is acted on once the files have stopped changing for this long, so a certificate
/// and key replaced one after the other are read as a pair.
const SETTLE: Duration = Duration::from_millis(200);

/// What identifies a version of a file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamps(paths: &[PathBuf]) -> Vec<Option<Stamp>> {
    paths.iter().map(|p| stamp(p)).collect()
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode: meta.ino(),
    })
}

/// Runs until the process ends.
pub(crate) async fn watch(state: Arc<State>, options: GatewayOptions) {
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut sources = state.snapshot.load().sources.clone();
    let mut seen = stamps(&sources);
    // The error of the last failed attempt: retried on every tick (a fix may be in a file
    // the last good snapshot did not use) but reported only when it changes.
    let mut failing: Option<String> = None;
    loop {
        let signalled = tokio::select! {
            _ = async {
                match hangup.as_mut() {
                    Some(h) => { h.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => true,
            () = tokio::time::sleep(POLL_INTERVAL) => false,
        };
        let mut current = stamps(&sources);
        if !signalled && current == seen && failing.is_none() {
            continue;
        }
        // Wait until the files stop changing.
        loop {
            tokio::time::sleep(SETTLE).await;
            let settled = stamps(&sources);
            if settled == current {
                break;
            }
            current = settled;
        }
        seen = current;
        let built = Snapshot::load(&options).await.map_err(|e| e.to_string());
        match built {
            Ok(snapshot) => {
                let old = state.snapshot.load();
                if snapshot.fixed != old.fixed {
                    eprintln!(
                        "flinkguard gateway: listen addresses, max_connections and audit settings \
                         change only on restart; the rest of the new configuration is in effect"
                    );
                }
                sources = snapshot.sources.clone();
                seen = stamps(&sources);
                state.snapshot.store(Arc::new(snapshot));
                state.metrics.reload(true);
                failing = None;
                eprintln!("flinkguard gateway: configuration and certificates reloaded");
            }
            Err(error) => {
                if failing.as_ref() != Some(&error) {
                    state.metrics.reload(false);
                    eprintln!(
                        "flinkguard gateway: reload failed, still serving the last good configuration: {error}"
                    );
                }
                failing = Some(error);
                if !signalled {
                    // Retry at the poll rate, without hammering a file mid-write.
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
            }
        }
    }
}
