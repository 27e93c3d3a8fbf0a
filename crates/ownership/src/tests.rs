use std::os::unix::fs::PermissionsExt;

use super::*;

const JOB: &str = "0123456789abcdef0123456789abcdef";
const JOB2: &str = "fedcba9876543210fedcba9876543210";
const JAR: &str = "8f1e2d3c-4b5a-4697-8a9b-0c1d2e3f4a5b_WordCount.jar";

fn owner(user: &str, groups: &[&str]) -> Owner {
    Owner {
        user: user.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn store() -> (tempfile::TempDir, OwnershipStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = OwnershipStore::open(&dir.path().join("ownership.redb")).unwrap();
    (dir, store)
}

#[test]
fn the_store_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<OwnershipStore>();
}

#[test]
fn record_owner_all_and_kinds_are_separate() {
    let (_dir, store) = store();
    let alice = owner("alice", &["team-a"]);
    let bob = owner("bob", &[]);
    store.record(ResourceKind::Job, JOB2, &alice).unwrap();
    store.record(ResourceKind::Job, JOB, &bob).unwrap();
    store.record(ResourceKind::Jar, JAR, &alice).unwrap();

    assert_eq!(
        store.owner(ResourceKind::Job, JOB).unwrap(),
        Some(bob.clone())
    );
    assert_eq!(
        store.owner(ResourceKind::Jar, JAR).unwrap(),
        Some(alice.clone())
    );
    // The same id under another kind is another resource.
    assert_eq!(store.owner(ResourceKind::Application, JOB).unwrap(), None);
    assert_eq!(
        store.all(ResourceKind::Job).unwrap(),
        vec![(JOB.to_owned(), bob), (JOB2.to_owned(), alice.clone())],
        "ordered by id"
    );
    assert_eq!(
        store.all(ResourceKind::Jar).unwrap(),
        vec![(JAR.to_owned(), alice)]
    );
    assert!(store.all(ResourceKind::Application).unwrap().is_empty());
}

#[test]
fn recording_again_is_a_no_op_and_a_second_owner_is_refused() {
    let (_dir, store) = store();
    let alice = owner("alice", &["team-a"]);
    store.record(ResourceKind::Job, JOB, &alice).unwrap();
    store.record(ResourceKind::Job, JOB, &alice).unwrap();

    let mallory = owner("mallory", &["team-a"]);
    let err = store.record(ResourceKind::Job, JOB, &mallory).unwrap_err();
    let OwnershipError::AlreadyOwned {
        kind,
        id,
        existing,
        requested,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(
        (*kind, id.as_str(), existing, requested),
        (ResourceKind::Job, JOB, &alice, &mallory)
    );
    assert!(
        err.to_string().contains("already owned by `alice`"),
        "{err}"
    );
    // Even the same user with other groups is another owner: the groups decided authorization.
    let regrouped = owner("alice", &["team-b"]);
    assert!(store.record(ResourceKind::Job, JOB, &regrouped).is_err());
    assert_eq!(store.owner(ResourceKind::Job, JOB).unwrap(), Some(alice));
}

#[test]
fn adopt_assigns_or_replaces_and_returns_the_previous_owner() {
    let (_dir, store) = store();
    let alice = owner("alice", &[]);
    let bob = owner("bob", &["ops"]);
    assert_eq!(store.adopt(ResourceKind::Job, JOB, &alice).unwrap(), None);
    assert_eq!(
        store.adopt(ResourceKind::Job, JOB, &bob).unwrap(),
        Some(alice)
    );
    assert_eq!(
        store.owner(ResourceKind::Job, JOB).unwrap(),
        Some(bob.clone())
    );
    // An adopted resource is recorded like any other.
    store.record(ResourceKind::Job, JOB, &bob).unwrap();
}

#[test]
fn forget_removes_and_forgetting_nothing_is_fine() {
    let (_dir, store) = store();
    let alice = owner("alice", &[]);
    store.record(ResourceKind::Jar, JAR, &alice).unwrap();
    store.forget(ResourceKind::Jar, JAR).unwrap();
    assert_eq!(store.owner(ResourceKind::Jar, JAR).unwrap(), None);
    store.forget(ResourceKind::Jar, JAR).unwrap();
    // A forgotten id can be recorded for someone else.
    store
        .record(ResourceKind::Jar, JAR, &owner("bob", &[]))
        .unwrap();
}

#[test]
fn every_method_refuses_an_invalid_id_and_stores_nothing() {
    let (_dir, store) = store();
    let alice = owner("alice", &[]);
    let invalid = |r: Result<(), OwnershipError>| {
        assert!(matches!(r, Err(OwnershipError::InvalidId { .. })), "{r:?}");
    };
    invalid(store.record(ResourceKind::Job, JAR, &alice));
    invalid(store.record(ResourceKind::Jar, JOB, &alice));
    invalid(store.record(ResourceKind::Application, "../etc/passwd", &alice));
    invalid(store.adopt(ResourceKind::Job, "", &alice).map(drop));
    invalid(
        store
            .owner(ResourceKind::Job, &JOB.to_uppercase())
            .map(drop),
    );
    invalid(store.forget(ResourceKind::Jar, "x.jar"));
    for kind in ResourceKind::ALL {
        assert!(store.all(kind).unwrap().is_empty());
    }
}

#[test]
fn the_record_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ownership.redb");
    let alice = owner("alice", &["team-a", "ops"]);
    {
        let store = OwnershipStore::open(&path).unwrap();
        store
            .record(ResourceKind::Application, JOB, &alice)
            .unwrap();
        store.record(ResourceKind::Jar, JAR, &alice).unwrap();
        store.forget(ResourceKind::Jar, JAR).unwrap();
    }
    let store = OwnershipStore::open(&path).unwrap();
    assert_eq!(
        store.all(ResourceKind::Application).unwrap(),
        vec![(JOB.to_owned(), alice)]
    );
    assert!(store.all(ResourceKind::Jar).unwrap().is_empty());
}

#[test]
fn a_new_file_is_owner_only_in_a_new_private_directory_with_no_debris() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").join("flinkguard");
    let path = state.join("ownership.redb");
    let _store = OwnershipStore::open(&path).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&state), 0o700);
    // The temporary file the database was built in is gone.
    let names: Vec<_> = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["ownership.redb"]);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ownership.redb");
    // Plain text, and text behind redb's magic number (a database with a wrecked header).
    let mut wrecked = b"redb\x1a\x0a\xa9\x0d\x0a".to_vec();
    wrecked.extend(std::iter::repeat_n(0x5a, 8192));
    for contents in [b"owners: alice\n".to_vec(), wrecked] {
        fs::write(&path, &contents).unwrap();
        let err = OwnershipStore::open(&path).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, OwnershipError::NotADatabase { .. }),
            "{err:?}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("left as they were"), "{message}");
        assert_eq!(fs::read(&path).unwrap(), contents);
    }
}

#[test]
fn another_programs_redb_database_is_refused_and_its_data_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(TableDefinition::<u64, u64>::new("sessions"))
            .unwrap()
            .insert(1, 2)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = OwnershipStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("tables sessions"), "{err}");
    // redb keeps its own header up to date on any writable open, so the bytes may change, but
    // nothing was committed: the other program's data is there and no table of ours is.
    let db = Database::open(&path).unwrap();
    let txn = db.begin_read().unwrap();
    let tables: Vec<String> = txn
        .list_tables()
        .unwrap()
        .map(|t| t.name().to_owned())
        .collect();
    assert_eq!(tables, vec!["sessions"]);
    let sessions = txn
        .open_table(TableDefinition::<u64, u64>::new("sessions"))
        .unwrap();
    assert_eq!(sessions.get(1).unwrap().unwrap().value(), 2);
}

#[test]
fn a_newer_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ownership.redb");
    drop(OwnershipStore::open(&path).unwrap());
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(FORMAT_KEY, FORMAT + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = OwnershipStore::open(&path).unwrap_err();
    assert!(
        matches!(err, OwnershipError::UnknownFormat { found: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn an_unreadable_owner_is_reported_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ownership.redb");
    drop(OwnershipStore::open(&path).unwrap());
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(JOBS)
            .unwrap()
            .insert(JOB.as_bytes(), b"{not json".as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = OwnershipStore::open(&path).unwrap();
    let err = store.owner(ResourceKind::Job, JOB).unwrap_err();
    assert!(err.to_string().contains(&format!("job {JOB}")), "{err}");
    assert!(store.all(ResourceKind::Job).is_err());
    // adopt reports the previous owner for the audit, so it cannot pretend there was none.
    let alice = owner("alice", &[]);
    assert!(store.adopt(ResourceKind::Job, JOB, &alice).is_err());
    store.forget(ResourceKind::Job, JOB).unwrap();
    store.record(ResourceKind::Job, JOB, &alice).unwrap();
}

#[test]
fn a_second_open_while_the_store_is_open_says_it_is_in_use() {
    let (dir, _store) = store();
    let path = dir.path().join("ownership.redb");
    let err = OwnershipStore::open(&path).unwrap_err();
    assert!(matches!(err, OwnershipError::InUse { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("in use by another flinkguard process (the gateway?)"),
        "{message}"
    );
    assert!(message.contains("stop the gateway"), "{message}");
}

#[test]
fn concurrent_records_from_many_threads_all_land() {
    let (_dir, store) = store();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let store = &store;
            s.spawn(move || {
                for i in 0..10u32 {
                    let id = format!("{t:016x}{i:016x}");
                    store
                        .record(ResourceKind::Job, &id, &owner(&format!("user-{t}"), &[]))
                        .unwrap();
                }
            });
        }
    });
    let all = store.all(ResourceKind::Job).unwrap();
    assert_eq!(all.len(), 40);
    for (id, owner) in all {
        let t = u32::from_str_radix(&id[..16], 16).unwrap();
        assert_eq!(owner.user, format!("user-{t}"));
    }
}

#[test]
fn a_record_damaged_on_disk_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ownership.redb");
    {
        let store = OwnershipStore::open(&path).unwrap();
        store
            .record(ResourceKind::Job, JOB, &owner("alice", &[]))
            .unwrap();
    }
    // Damage every copy of the stored owner (redb copies pages on write) and of the id.
    let mut bytes = fs::read(&path).unwrap();
    let mut damaged = 0;
    for (from, to) in [
        (&b"\"user\""[..], &b"\"us\xffr\""[..]),
        (JOB.as_bytes(), &[0xff; 32][..]),
    ] {
        while let Some(at) = bytes.windows(from.len()).position(|w| w == from) {
            bytes[at..at + from.len()].copy_from_slice(to);
            damaged += 1;
        }
    }
    assert!(damaged >= 2);
    fs::write(&path, &bytes).unwrap();

    let store = OwnershipStore::open(&path).unwrap();
    let err = store.all(ResourceKind::Job).unwrap_err();
    assert!(matches!(err, OwnershipError::Unreadable { .. }), "{err:?}");
    assert!(
        err.to_string().contains("restore it from a backup"),
        "{err}"
    );
}
