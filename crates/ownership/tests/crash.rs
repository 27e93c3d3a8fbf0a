//! SIGKILL in the middle of a stream of submissions loses no acknowledged ownership.
//!
//! The test binary re-executes itself as the "gateway": with `WRITER_ENV` set, the test
//! `crash_writer_child` records jobs from several threads in a loop and prints `ACK <id>` right
//! after each `record` returns, which is the point where the real gateway sends the submission
//! response. The parent kills it mid-stream, reopens the store and checks every acknowledged id.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flinkguard_ownership::{Owner, OwnershipError, OwnershipStore, ResourceKind};

/// Set (to the database path) only in the re-executed child.
const WRITER_ENV: &str = "FLINKGUARD_OWNERSHIP_CRASH_WRITER";
const WRITER_THREADS: u64 = 4;
/// Acknowledgements to wait for before the kill.
const ACKS_BEFORE_KILL: usize = 200;
const ROUNDS: usize = 3;

/// The owner the child records for a job id; the parent recomputes it from the id alone, so
/// any job in the store with another owner is caught too.
fn expected_owner(id: &str) -> Owner {
    let thread = &id[8..16];
    Owner {
        user: format!("user-{thread}"),
        groups: vec![format!("group-{}", &id[31..])],
    }
}

#[test]
fn crash_writer_child() {
    let Some(path) = std::env::var_os(WRITER_ENV) else {
        return; // An ordinary test run: only the parent test below does something.
    };
    let store = OwnershipStore::open(Path::new(&path)).unwrap();
    let pid = std::process::id();
    // Bounded, so a parent that never kills cannot leave it running forever.
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|s| {
        for thread in 0..WRITER_THREADS {
            let store = &store;
            s.spawn(move || {
                for n in 0u64.. {
                    if Instant::now() > deadline {
                        return;
                    }
                    let id = format!("{pid:08x}{thread:08x}{n:016x}");
                    store
                        .record(ResourceKind::Job, &id, &expected_owner(&id))
                        .unwrap();
                    // Straight to the file descriptor, past the test harness's output capture;
                    // one locked write per line so threads never interleave within a line.
                    let mut out = std::io::stdout().lock();
                    if writeln!(out, "ACK {id}")
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ownership.redb");
    let mut acknowledged = BTreeSet::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_writer_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WRITER_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let mut this_round = 0;
        let mut killed = false;
        loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                break; // EOF: the child is gone.
            }
            // A line cut short by the kill has no newline: that record was not acknowledged.
            let Some(id) = line
                .strip_suffix('\n')
                .and_then(|l| l.rsplit_once("ACK "))
                .map(|(_, id)| id)
            else {
                continue; // The test harness's own output.
            };
            assert_eq!(id.len(), 32, "{line:?}");
            acknowledged.insert(id.to_owned());
            this_round += 1;
            if this_round == ACKS_BEFORE_KILL && !killed {
                if round == 0 {
                    // While the "gateway" runs, a second process (this one) is turned away with
                    // a message that says why.
                    let err = OwnershipStore::open(&path).unwrap_err();
                    assert!(matches!(err, OwnershipError::InUse { .. }), "{err:?}");
                }
                child.kill().unwrap(); // SIGKILL
                killed = true;
                // Keep reading: lines already in the pipe were acknowledged before the kill.
            }
        }
        let status = child.wait().unwrap();
        assert!(
            killed,
            "the writer exited with {status} after only {this_round} acknowledgements"
        );

        let store = OwnershipStore::open(&path).unwrap();
        let all = store.all(ResourceKind::Job).unwrap();
        for (id, owner) in &all {
            assert_eq!(*owner, expected_owner(id), "job {id}");
        }
        let stored: BTreeSet<&str> = all.iter().map(|(id, _)| id.as_str()).collect();
        let lost: Vec<&String> = acknowledged
            .iter()
            .filter(|id| !stored.contains(id.as_str()))
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} acknowledged jobs lost their owner, e.g. {:?}",
            lost.len(),
            acknowledged.len(),
            &lost[..lost.len().min(5)]
        );
        for id in acknowledged.iter().take(3) {
            assert_eq!(
                store.owner(ResourceKind::Job, id).unwrap(),
                Some(expected_owner(id))
            );
        }
        eprintln!(
            "round {round}: {this_round} acknowledged before EOF, {} stored in total, \
             {} acknowledged in total, none lost",
            all.len(),
            acknowledged.len()
        );
    }
}
