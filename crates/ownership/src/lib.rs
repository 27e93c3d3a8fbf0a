//! The durable record of who owns which Flink jar, job and application.
//!
//! Flink has no notion of an owner, so the gateway keeps one: the user (and groups) who uploaded
//! each jar and submitted each job or application through it. Authorization of later requests
//! on that resource ("may alice cancel this job?") depends on it, so it must not be lost.
//!
//! # Durability
//!
//! The record lives in a [redb](https://www.redb.org) database file. Every change is its own
//! transaction committed with redb's default `Durability::Immediate`, which `fdatasync`s the
//! file before the commit returns. The gateway calls [`OwnershipStore::record`] *before* it
//! sends the submission response, so once a client has seen its job id, the owner of that job
//! survives a crash of the gateway (SIGKILL, and a power cut too, as far as the disk honours
//! `fdatasync`). A crash in the middle of a commit leaves the previous state; redb repairs the
//! file on the next [`OwnershipStore::open`] (which then takes time in proportion to its size).
//!
//! # One process at a time
//!
//! redb takes an exclusive `flock` on the file for as long as the store is open, and a read-only
//! redb handle takes a shared lock that conflicts with it, so no second process can read or
//! write the record while the gateway has it open. [`OwnershipStore::open`] then fails with
//! [`OwnershipError::InUse`], whose message tells the user to stop the gateway first: CLI
//! commands that touch ownership (`flinkguard jobs adopt`) run while the gateway is stopped.
//! Within one process, share one `OwnershipStore` (it is `Send + Sync`; writes are serialized).
//!
//! # The file
//!
//! A new file is created with mode 0600 (its parent directory, if missing, with 0700), and is
//! built under a temporary name and linked into place only once it is a complete database, so a
//! crash during the very first start never leaves a half-initialized file behind. An existing
//! file that is not a redb database is refused and never written to; another program's redb
//! database is refused with its data unchanged (redb may still update its own header). Owners are
//! stored as JSON (`{"user":..,"groups":[..]}`) keyed by id (both as bytes), one table per
//! [`ResourceKind`].
//!
//! redb 3 checks checksums when it repairs a file, not on ordinary reads. A damaged record is
//! reported as [`OwnershipError::Unreadable`], but damage to redb's own header or tree pages
//! (something other than redb writing to the file) can make redb panic, or abort on a huge
//! allocation, instead of returning an error: keep backups of the file. redb 4 hardens this
//! but needs a newer Rust than this workspace's `rust-version`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod id;

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flinkguard_files::FileError;
use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, StorageError, TableDefinition,
    TableHandle, WriteTransaction,
};

pub use id::MAX_JAR_ID_LEN;

/// Who owns a resource: the principal that uploaded or submitted it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    /// The user name, as authentication established it.
    pub user: String,
    /// The user's groups at the time of the upload or submission.
    pub groups: Vec<String>,
}

/// The kinds of Flink resource that have owners; each is kept in its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// An uploaded jar (`POST /jars/upload`), id `<uuid>_<name>.jar`.
    Jar,
    /// A job (`POST /jars/:jarid/run`, `POST /jobs`), id 32 lowercase hex characters.
    Job,
    /// An application (Flink 2.x application mode), id 32 lowercase hex characters.
    Application,
}

impl ResourceKind {
    /// Every kind, for listing them all.
    pub const ALL: [ResourceKind; 3] = [
        ResourceKind::Jar,
        ResourceKind::Job,
        ResourceKind::Application,
    ];

    fn table(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        match self {
            ResourceKind::Jar => JARS,
            ResourceKind::Job => JOBS,
            ResourceKind::Application => APPLICATIONS,
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::Jar => "jar",
            ResourceKind::Job => "job",
            ResourceKind::Application => "application",
        })
    }
}

// Table names carry a prefix so that a redb file of some other program is recognisable as such.
const META_NAME: &str = "flinkguard.meta";
const META: TableDefinition<&str, u64> = TableDefinition::new(META_NAME);
// Keys and values are bytes, not `&str`: redb decodes a stored `&str` with a panicking
// `from_utf8(..).unwrap()`, and a damaged file should give an error, not a crash.
const JARS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("flinkguard.jars");
const JOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("flinkguard.jobs");
const APPLICATIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("flinkguard.applications");

/// The key in [`META`] under which the layout version is kept.
const FORMAT_KEY: &str = "format";
/// The layout this code reads and writes; bump it when the tables or values change shape.
const FORMAT: u64 = 1;

/// Why the ownership record could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OwnershipError {
    /// Another process (normally the running gateway) has the database open.
    #[error(
        "ownership database {} is in use by another flinkguard process (the gateway?): \
         only one process at a time can open it; stop the gateway and run the command again",
        path.display()
    )]
    InUse {
        /// The database file.
        path: PathBuf,
    },
    /// The file exists but is not a flinkguard ownership database. Nothing is written to a file
    /// that is not a redb database; of another program's redb database, redb may update its
    /// own header on the refused open, but no data changes.
    #[error(
        "{} is not a flinkguard ownership database ({reason}); its contents were left as they \
         were: restore it from a backup, or move it away to start an empty record (owners of \
         existing jobs then have to be assigned again with `flinkguard jobs adopt`)",
        path.display()
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The database has a layout version this flinkguard does not know (a newer one wrote it).
    #[error(
        "ownership database {} has layout version {found}, this flinkguard knows only \
         version {FORMAT}: run the flinkguard version that wrote it, or a newer one",
        path.display()
    )]
    UnknownFormat {
        /// The database file.
        path: PathBuf,
        /// The layout version found in the file.
        found: u64,
    },
    /// A file-system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Creating, syncing or linking a file failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// redb failed to read or commit.
    #[error(
        "cannot {action} in ownership database {}: {source} (check the disk: free space, \
         permissions, I/O errors in the kernel log)",
        path.display()
    )]
    Database {
        /// What was being done.
        action: &'static str,
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Box<redb::Error>,
    },
    /// The id does not have the shape Flink gives ids of this kind.
    #[error("{id:?} is not a Flink {kind} id: expected {expected}")]
    InvalidId {
        /// The kind the id was given for.
        kind: ResourceKind,
        /// The id as given.
        id: String,
        /// The shape an id of this kind has.
        expected: &'static str,
    },
    /// The resource already has a different owner.
    #[error(
        "{kind} {id} is already owned by `{}`, so it cannot be recorded for `{}`: ids are random, \
         so a second owner means a bug or a forged response; reassign it deliberately with \
         `flinkguard jobs adopt` if that is what is wanted",
        existing.user, requested.user
    )]
    AlreadyOwned {
        /// The resource kind.
        kind: ResourceKind,
        /// The resource id.
        id: String,
        /// Who owns it.
        existing: Owner,
        /// Who was to be recorded.
        requested: Owner,
    },
    /// A stored owner could not be decoded.
    #[error(
        "the owner of {kind} {id} in ownership database {} is unreadable ({reason}): something \
         other than flinkguard changed the file; restore it from a backup",
        path.display()
    )]
    Unreadable {
        /// The database file.
        path: PathBuf,
        /// The resource kind.
        kind: ResourceKind,
        /// The resource id.
        id: String,
        /// What is wrong with the stored bytes.
        reason: String,
    },
    /// An owner could not be encoded (cannot happen with `String` fields; kept to avoid a panic).
    #[error("cannot encode the owner of {kind} {id}: {source}")]
    Encode {
        /// The resource kind.
        kind: ResourceKind,
        /// The resource id.
        id: String,
        /// The encoding error.
        #[source]
        source: serde_json::Error,
    },
}

/// The ownership record, open for reading and writing. Share one per process.
pub struct OwnershipStore {
    db: Database,
    path: PathBuf,
}

impl fmt::Debug for OwnershipStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnershipStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl OwnershipStore {
    /// Opens the ownership database at `path`, creating it (mode 0600, and its parent directory
    /// with 0700) if it does not exist.
    pub fn open(path: &Path) -> Result<OwnershipStore, OwnershipError> {
        let dir = parent_dir(path);
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io_error("create directory", dir, e))?;
        }
        match fs::metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => initialize(path)?,
            Err(e) => return Err(io_error("inspect", path, e)),
        }
        // Opened by hand rather than by redb's `create`, which would create a missing file with
        // the umask's mode: the file exists by now, `initialize` made sure. An existing empty
        // file (nothing to lose) is initialized in place by redb and keeps its mode.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_error("open", path, e))?;
        let db = redb::Builder::new()
            .create_file(file)
            .map_err(|e| open_error(path, e))?;
        prepare(&db, path)?;
        Ok(OwnershipStore {
            db,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `owner` as the owner of a new resource; durable on disk when it returns.
    ///
    /// Recording the same owner again is a no-op (a retried call is harmless); a different owner
    /// for an id that already has one is refused with [`OwnershipError::AlreadyOwned`].
    pub fn record(
        &self,
        kind: ResourceKind,
        id: &str,
        owner: &Owner,
    ) -> Result<(), OwnershipError> {
        id::check(kind, id)?;
        let value = encode(kind, id, owner)?;
        let txn = self.begin_write()?;
        let existing = {
            let mut table = txn
                .open_table(kind.table())
                .map_err(self.db_error("open a table"))?;
            let existing = table.get(id.as_bytes()).map_err(self.db_error("read"))?;
            match existing {
                Some(stored) => Some(self.decode(kind, id, stored.value())?),
                None => {
                    drop(existing);
                    table
                        .insert(id.as_bytes(), value.as_slice())
                        .map_err(self.db_error("write"))?;
                    None
                }
            }
        };
        match existing {
            None => txn.commit().map_err(self.db_error("commit")),
            Some(existing) => {
                txn.abort().map_err(self.db_error("abort a transaction"))?;
                if existing == *owner {
                    Ok(())
                } else {
                    Err(OwnershipError::AlreadyOwned {
                        kind,
                        id: id.to_owned(),
                        existing,
                        requested: owner.clone(),
                    })
                }
            }
        }
    }

    /// Makes `owner` the owner of a resource, whether or not it had one; returns the previous
    /// owner, for the audit line. Durable on disk when it returns.
    pub fn adopt(
        &self,
        kind: ResourceKind,
        id: &str,
        owner: &Owner,
    ) -> Result<Option<Owner>, OwnershipError> {
        id::check(kind, id)?;
        let value = encode(kind, id, owner)?;
        let txn = self.begin_write()?;
        let previous = {
            let mut table = txn
                .open_table(kind.table())
                .map_err(self.db_error("open a table"))?;
            let previous = table
                .insert(id.as_bytes(), value.as_slice())
                .map_err(self.db_error("write"))?;
            match previous {
                Some(stored) => Some(self.decode(kind, id, stored.value())?),
                None => None,
            }
        };
        txn.commit().map_err(self.db_error("commit"))?;
        Ok(previous)
    }

    /// The owner of a resource, if one is recorded.
    pub fn owner(&self, kind: ResourceKind, id: &str) -> Result<Option<Owner>, OwnershipError> {
        id::check(kind, id)?;
        let txn = self
            .db
            .begin_read()
            .map_err(self.db_error("start reading"))?;
        let table = txn
            .open_table(kind.table())
            .map_err(self.db_error("open a table"))?;
        let stored = table.get(id.as_bytes()).map_err(self.db_error("read"))?;
        match stored {
            Some(stored) => Ok(Some(self.decode(kind, id, stored.value())?)),
            None => Ok(None),
        }
    }

    /// Every resource of `kind` with its owner, ordered by id.
    pub fn all(&self, kind: ResourceKind) -> Result<Vec<(String, Owner)>, OwnershipError> {
        let txn = self
            .db
            .begin_read()
            .map_err(self.db_error("start reading"))?;
        let table = txn
            .open_table(kind.table())
            .map_err(self.db_error("open a table"))?;
        let mut all = Vec::new();
        for entry in table.iter().map_err(self.db_error("read"))? {
            let (id, stored) = entry.map_err(self.db_error("read"))?;
            let id = String::from_utf8(id.value().to_vec()).map_err(|e| {
                self.unreadable(
                    kind,
                    &String::from_utf8_lossy(e.as_bytes()),
                    "the id is not UTF-8".to_owned(),
                )
            })?;
            let owner = self.decode(kind, &id, stored.value())?;
            all.push((id, owner));
        }
        Ok(all)
    }

    /// Removes the record of a resource that no longer exists (a deleted jar). Removing an id
    /// that has no record is not an error. Durable on disk when it returns.
    pub fn forget(&self, kind: ResourceKind, id: &str) -> Result<(), OwnershipError> {
        id::check(kind, id)?;
        let txn = self.begin_write()?;
        let removed = {
            let mut table = txn
                .open_table(kind.table())
                .map_err(self.db_error("open a table"))?;
            table
                .remove(id.as_bytes())
                .map_err(self.db_error("delete"))?
                .is_some()
        };
        if removed {
            txn.commit().map_err(self.db_error("commit"))
        } else {
            txn.abort().map_err(self.db_error("abort a transaction"))
        }
    }

    fn begin_write(&self) -> Result<WriteTransaction, OwnershipError> {
        // Blocks while another thread's write is in progress: redb serializes writers.
        self.db
            .begin_write()
            .map_err(self.db_error("start a transaction"))
    }

    fn decode(&self, kind: ResourceKind, id: &str, stored: &[u8]) -> Result<Owner, OwnershipError> {
        serde_json::from_slice(stored).map_err(|e| self.unreadable(kind, id, e.to_string()))
    }

    fn unreadable(&self, kind: ResourceKind, id: &str, reason: String) -> OwnershipError {
        OwnershipError::Unreadable {
            path: self.path.clone(),
            kind,
            id: id.to_owned(),
            reason,
        }
    }

    fn db_error<E: Into<redb::Error>>(
        &self,
        action: &'static str,
    ) -> impl FnOnce(E) -> OwnershipError + '_ {
        failed(&self.path, action)
    }
}

/// Creates a new, empty database at `path` atomically: built and committed under a temporary
/// name, then linked into place, so `path` never names a half-initialized file.
fn initialize(path: &Path) -> Result<(), OwnershipError> {
    let dir = parent_dir(path);
    let tmp = flinkguard_files::temp_sibling(path);
    let result = (|| {
        // Mode 0600 from the first byte: who owns what is nobody else's business. Not
        // `flinkguard_files::create_new`, which opens for writing only: redb reads too.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_error("create", &tmp, e))?;
        // A umask can take bits away from the mode above; the owner needs both.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error("set permissions on", &tmp, e))?;
        let db = redb::Builder::new()
            .create_file(file)
            .map_err(|e| open_error(&tmp, e))?;
        // The commit in `prepare` fsyncs the new database before it gets its name.
        prepare(&db, &tmp)?;
        drop(db);
        // A hard link, unlike a rename, never replaces: if another process created the
        // database meanwhile, theirs is kept and used.
        match fs::hard_link(&tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            // Some file systems have no hard links; a rename is atomic too, and the window in
            // which it could replace a concurrently created database is tiny.
            Err(_) if !path.exists() => {
                fs::rename(&tmp, path).map_err(|e| io_error("create", path, e))?
            }
            Err(_) => {}
        }
        Ok(flinkguard_files::sync_dir(dir)?)
    })();
    // After a successful link the temporary name is a second link to the database; after a
    // failure it is debris. Either way it goes.
    let _ = fs::remove_file(&tmp);
    result
}

/// Checks that the file is ours and of a layout we know, and creates the tables if missing.
fn prepare(db: &Database, path: &Path) -> Result<(), OwnershipError> {
    let txn = db
        .begin_write()
        .map_err(failed(path, "start a transaction"))?;
    let tables: Vec<String> = txn
        .list_tables()
        .map_err(failed(path, "list tables"))?
        .map(|t| t.name().to_owned())
        .collect();
    let mut meta = txn.open_table(META).map_err(failed(path, "open a table"))?;
    if tables.iter().any(|t| t == META_NAME) {
        let found = meta
            .get(FORMAT_KEY)
            .map_err(failed(path, "read"))?
            .map(|v| v.value());
        if found != Some(FORMAT) {
            // Returning drops the transaction, which aborts it: nothing is written.
            return Err(OwnershipError::UnknownFormat {
                path: path.to_owned(),
                found: found.unwrap_or(0),
            });
        }
    } else if !tables.is_empty() {
        // No layout version but tables: some other program's redb database.
        return Err(OwnershipError::NotADatabase {
            path: path.to_owned(),
            reason: format!(
                "it is a redb database of another program, with tables {}",
                tables.join(", ")
            ),
        });
    } else {
        meta.insert(FORMAT_KEY, FORMAT)
            .map_err(failed(path, "write"))?;
    }
    drop(meta);
    for kind in ResourceKind::ALL {
        txn.open_table(kind.table())
            .map_err(failed(path, "create a table"))?;
    }
    txn.commit().map_err(failed(path, "commit"))
}

fn open_error(path: &Path, e: DatabaseError) -> OwnershipError {
    let not_a_database = |reason: String| OwnershipError::NotADatabase {
        path: path.to_owned(),
        reason,
    };
    match e {
        DatabaseError::DatabaseAlreadyOpen => OwnershipError::InUse {
            path: path.to_owned(),
        },
        DatabaseError::UpgradeRequired(version) => not_a_database(format!(
            "a redb database in file format {version}, which this flinkguard cannot read"
        )),
        // redb reports a file that does not start with its magic number as `InvalidData`.
        DatabaseError::Storage(StorageError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
            not_a_database("it is not a redb database".to_owned())
        }
        DatabaseError::Storage(StorageError::Corrupted(detail)) => {
            not_a_database(format!("it is corrupt: {detail}"))
        }
        other => db_error("open", path, other),
    }
}

/// `db_error` for `map_err`.
fn failed<'a, E: Into<redb::Error>>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(E) -> OwnershipError + 'a {
    move |e| db_error(action, path, e)
}

fn db_error(action: &'static str, path: &Path, e: impl Into<redb::Error>) -> OwnershipError {
    OwnershipError::Database {
        action,
        path: path.to_owned(),
        source: Box::new(e.into()),
    }
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> OwnershipError {
    OwnershipError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn encode(kind: ResourceKind, id: &str, owner: &Owner) -> Result<Vec<u8>, OwnershipError> {
    serde_json::to_vec(owner).map_err(|source| OwnershipError::Encode {
        kind,
        id: id.to_owned(),
        source,
    })
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
