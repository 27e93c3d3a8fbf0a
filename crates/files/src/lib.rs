//! Atomic, permission-aware file writes.
//!
//! Every file flinkguard writes goes through here: it is written to a temporary file in the
//! same directory, flushed to disk, given its final mode and then renamed over the target, so
//! a reader (or a crash) sees either the old file or the complete new one, never half of it.
//! Secrets get mode 0600 *before* any byte is written, so they are never readable by others.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Who may read a file once written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Private keys, passwords, keystores, configs that embed passwords: owner only (0600).
    Secret,
    /// Certificates and other public material (0644).
    Public,
}

impl Mode {
    /// The Unix permission bits for this mode.
    pub fn bits(self) -> u32 {
        match self {
            Mode::Secret => 0o600,
            Mode::Public => 0o644,
        }
    }
}

/// A file operation that failed, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}: {source}")]
pub struct FileError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl FileError {
    /// Wraps an I/O error with what was being done to which path.
    pub fn new(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        FileError {
            action,
            path: path.into(),
            source,
        }
    }

    /// The path the operation failed on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying I/O error kind.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

/// Writes `contents` to `path` atomically with the given mode, replacing any existing file.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<(), FileError> {
    let dir = parent_dir(path);
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut file = create_new(&tmp, mode)?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|e| FileError::new("write", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| FileError::new("replace", path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` with `contents` and `mode` unless it exists, never replacing it: the content
/// is complete and on disk before the name appears (written to a temporary sibling, then
/// hard-linked, which fails with `AlreadyExists` instead of replacing). Returns whether this
/// call created the file. For keys that must never be overwritten.
pub fn create_complete(path: &Path, contents: &[u8], mode: Mode) -> Result<bool, FileError> {
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut file = create_new(&tmp, mode)?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|e| FileError::new("write", &tmp, e))?;
        drop(file);
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(FileError::new("create", path, e)),
        }
    })();
    let _ = fs::remove_file(&tmp);
    if let Ok(true) = result {
        sync_dir(parent_dir(path))?;
    }
    result
}

/// Creates `path` with `mode`, failing if it exists; the mode is set at creation so the
/// content is never visible to others, whatever the umask.
pub fn create_new(path: &Path, mode: Mode) -> Result<File, FileError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode.bits())
        .open(path)
        .map_err(|e| FileError::new("create", path, e))?;
    // The umask may have removed bits from 0644; set them explicitly.
    file.set_permissions(fs::Permissions::from_mode(mode.bits()))
        .map_err(|e| FileError::new("set permissions on", path, e))?;
    Ok(file)
}

/// Creates a directory (and parents) that only the owner can enter (0700).
pub fn create_private_dir(path: &Path) -> Result<(), FileError> {
    fs::create_dir_all(path).map_err(|e| FileError::new("create directory", path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .map_err(|e| FileError::new("set permissions on", path, e))
}

/// Flushes a directory entry change (create, rename) to disk.
pub fn sync_dir(dir: &Path) -> Result<(), FileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FileError::new("sync directory", dir, e))
}

/// A path next to `path` that no one else uses: `.name.tmp-<random>`.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nonce: u64 = rand::random();
    parent_dir(path).join(format!(".{name}.tmp-{nonce:016x}"))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_are_owner_only_and_replace_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.password");
        write_atomic(&path, b"one", Mode::Secret).unwrap();
        write_atomic(&path, b"two", Mode::Secret).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn public_files_are_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        write_atomic(&path, b"cert", Mode::Public).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn failure_names_the_path_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join("x");
        let err = write_atomic(&missing, b"x", Mode::Secret).unwrap_err();
        assert!(err.to_string().contains("no-such-dir"), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
