//! The HMAC keys links are signed with, kept in the PKI directory as `link-signing.keys`.
//!
//! The file holds the current key and at most one previous key, newest first:
//!
//! ```text
//! # comment lines explaining the file
//! flinkguard-link-keys v1
//! key <kid> <32-byte secret, unpadded base64url>
//! key <kid> <previous secret>
//! ```
//!
//! The kid is derived from the secret (8 base64url characters of a SHA-256 over it), so a
//! damaged or hand-edited line is detected on load instead of silently verifying nothing.

use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{self, SHA256};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flinkguard_files::Mode;
use flinkguard_pki::PkiLayout;
use zeroize::Zeroizing;

use crate::LinkError;

/// File name of the link-signing keys in the PKI directory (mode 0600).
pub const LINK_KEYS_FILE: &str = "link-signing.keys";

/// Length of a secret: the HMAC-SHA256 output size, the length RFC 2104 recommends.
const SECRET_LEN: usize = 32;
/// Length of a kid: 6 bytes of SHA-256 in base64url. Enough to tell two keys apart, short
/// enough for a URL; it identifies, it does not authenticate.
pub(crate) const KID_LEN: usize = 8;
/// Keys kept: the current one and the one before it.
const MAX_KEYS: usize = 2;

const FORMAT_LINE: &str = "flinkguard-link-keys v1";
const FILE_HEADER: &str = "\
# flinkguard link-signing keys (HMAC-SHA256). Secret: anyone holding this file can sign
# links for any request. Newest first: the first key signs new links, every key here
# verifies. Written by flinkguard; rotating the keys replaces this file.
";

/// One key: its id, secret and the HMAC key made from it.
pub(crate) struct LinkKey {
    pub(crate) kid: String,
    secret: Zeroizing<Vec<u8>>,
    pub(crate) hmac: hmac::Key,
}

impl LinkKey {
    fn from_secret(secret: Zeroizing<Vec<u8>>) -> LinkKey {
        LinkKey {
            kid: kid_of(&secret),
            hmac: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            secret,
        }
    }

    fn generate() -> Result<LinkKey, LinkError> {
        let mut secret = Zeroizing::new(vec![0u8; SECRET_LEN]);
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| LinkError::Crypto("no random numbers for a link-signing key"))?;
        Ok(LinkKey::from_secret(secret))
    }
}

/// A key id that follows from the secret. Domain-separated so it is never the output of any
/// other use of SHA-256 over the same bytes.
fn kid_of(secret: &[u8]) -> String {
    let mut context = digest::Context::new(&SHA256);
    context.update(b"flinkguard link key id v1\0");
    context.update(secret);
    URL_SAFE_NO_PAD.encode(&context.finish().as_ref()[..6])
}

/// Where the keys live in a PKI directory.
pub fn link_keys_file(layout: &PkiLayout) -> PathBuf {
    layout.root().join(LINK_KEYS_FILE)
}

/// The keys signed links are signed and verified with: the current key, which signs, and the
/// previous one, which still verifies, so links signed just before a rotation stay valid
/// until they expire.
pub struct LinkKeys {
    /// Newest first; 1 to [`MAX_KEYS`] keys with distinct kids.
    pub(crate) keys: Vec<LinkKey>,
}

impl fmt::Debug for LinkKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("LinkKeys")
            .field("kids", &self.kids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl LinkKeys {
    /// One fresh key in memory only (tests, or callers that keep keys themselves).
    pub fn generate() -> Result<LinkKeys, LinkError> {
        Ok(LinkKeys {
            keys: vec![LinkKey::generate()?],
        })
    }

    /// The id of the key new links are signed with.
    pub fn current_kid(&self) -> &str {
        // `keys` is never empty: every constructor makes or checks at least one.
        self.keys.first().map_or("", |k| k.kid.as_str())
    }

    /// The ids of all keys that verify, newest first.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    pub(crate) fn current(&self) -> Result<&LinkKey, LinkError> {
        self.keys
            .first()
            .ok_or(LinkError::Crypto("no link-signing key loaded"))
    }

    pub(crate) fn find(&self, kid: &str) -> Option<&LinkKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Loads the PKI's keys; fails if the file does not exist or is damaged.
    pub fn load(layout: &PkiLayout) -> Result<LinkKeys, LinkError> {
        let path = link_keys_file(layout);
        match read(&path)? {
            Some(keys) => Ok(keys),
            None => Err(LinkError::NoKeys(path)),
        }
    }

    /// Loads the PKI's keys, creating a first key if there is no key file yet. Never replaces
    /// an existing file, damaged or not: a damaged file is an error naming it.
    pub fn load_or_create(layout: &PkiLayout) -> Result<LinkKeys, LinkError> {
        if !layout.root().is_dir() {
            return Err(LinkError::NoPki(layout.root().to_owned()));
        }
        let path = link_keys_file(layout);
        if let Some(keys) = read(&path)? {
            return Ok(keys);
        }
        let fresh = LinkKeys::generate()?;
        // When another process won the race to create the file, its keys are loaded below,
        // so both agree on one key.
        flinkguard_files::create_complete(&path, fresh.file_text().as_bytes(), Mode::Secret)?;
        LinkKeys::load(layout)
    }

    /// Makes a new current key, keeps the current one as the previous key (links it signed
    /// stay valid until they expire) and drops the key before it (links it signed stop
    /// working). The file is replaced atomically; a running gateway verifies with the new
    /// keys once it reloads them.
    ///
    /// Two rotations at the same moment both read the same file and the last write wins: the
    /// other's new key is lost, with any link signed with it in that instant. Rotate from
    /// one place.
    pub fn rotate(layout: &PkiLayout) -> Result<LinkKeys, LinkError> {
        let mut keys = LinkKeys::load(layout)?;
        keys.keys.truncate(MAX_KEYS - 1);
        keys.keys.insert(0, LinkKey::generate()?);
        let path = link_keys_file(layout);
        flinkguard_files::write_atomic(&path, keys.file_text().as_bytes(), Mode::Secret)?;
        Ok(keys)
    }

    fn file_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(format!("{FILE_HEADER}{FORMAT_LINE}\n"));
        for key in &self.keys {
            text.push_str("key ");
            text.push_str(&key.kid);
            text.push(' ');
            text.push_str(&Zeroizing::new(URL_SAFE_NO_PAD.encode(&key.secret[..])));
            text.push('\n');
        }
        text
    }
}

/// Reads and parses the key file; `None` if it does not exist.
fn read(path: &Path) -> Result<Option<LinkKeys>, LinkError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => Zeroizing::new(text),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == ErrorKind::InvalidData => {
            return Err(invalid_file(path, "it is not text"));
        }
        Err(e) => return Err(LinkError::file("read", path, e)),
    };
    parse(&text)
        .map(Some)
        .map_err(|problem| invalid_file(path, &problem))
}

fn invalid_file(path: &Path, problem: &str) -> LinkError {
    LinkError::InvalidFile {
        path: path.to_owned(),
        problem: format!(
            "{problem}; this file is written by flinkguard: restore it from a backup, or delete \
             it and sign again to create a new key (links signed with the old keys then stop \
             working)"
        ),
    }
}

/// Parses the file strictly; the error says what is wrong, never printing a secret.
fn parse(text: &str) -> Result<LinkKeys, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim_end()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
    match lines.next() {
        Some((_, FORMAT_LINE)) => {}
        _ => return Err(format!("it does not start with `{FORMAT_LINE}`")),
    }
    let mut keys: Vec<LinkKey> = Vec::new();
    for (number, line) in lines {
        let fields: Vec<&str> = line.split(' ').collect();
        let [label, kid, secret] = fields[..] else {
            return Err(format!("line {number} is not `key <id> <secret>`"));
        };
        if label != "key" {
            return Err(format!("line {number} is not `key <id> <secret>`"));
        }
        let secret = URL_SAFE_NO_PAD
            .decode(secret)
            .ok()
            .map(Zeroizing::new)
            .filter(|s| s.len() == SECRET_LEN)
            .ok_or_else(|| {
                format!("line {number}: the secret is not {SECRET_LEN} bytes of base64url")
            })?;
        let key = LinkKey::from_secret(secret);
        if key.kid != kid {
            return Err(format!(
                "line {number}: the key id `{kid}` does not belong to its secret (the line was \
                 edited or damaged)"
            ));
        }
        if keys.iter().any(|k| k.kid == key.kid) {
            return Err(format!("line {number}: key `{kid}` appears twice"));
        }
        keys.push(key);
    }
    if keys.is_empty() {
        return Err("it holds no key".into());
    }
    if keys.len() > MAX_KEYS {
        return Err(format!(
            "it holds {} keys; at most {MAX_KEYS} are kept (the current and the previous)",
            keys.len()
        ));
    }
    Ok(LinkKeys { keys })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn pki() -> (tempfile::TempDir, PkiLayout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = PkiLayout::new(dir.path());
        (dir, layout)
    }

    #[test]
    fn created_once_owner_only_and_never_overwritten() {
        let (_dir, layout) = pki();
        let path = link_keys_file(&layout);
        let first = LinkKeys::load_or_create(&layout).unwrap();
        assert_eq!(mode(&path), 0o600);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(first.kids().count(), 1);
        assert_eq!(first.current_kid().len(), KID_LEN);

        let again = LinkKeys::load_or_create(&layout).unwrap();
        assert_eq!(again.current_kid(), first.current_kid());
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(
            LinkKeys::load(&layout).unwrap().current_kid(),
            first.current_kid()
        );
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(layout.root()).unwrap().count(), 1);
    }

    #[test]
    fn concurrent_first_uses_agree_on_one_key() {
        let (_dir, layout) = pki();
        let kids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        LinkKeys::load_or_create(&layout)
                            .unwrap()
                            .current_kid()
                            .to_owned()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");
    }

    #[test]
    fn rotation_keeps_the_previous_key_and_drops_the_one_before() {
        let (_dir, layout) = pki();
        let path = link_keys_file(&layout);
        let one = LinkKeys::load_or_create(&layout).unwrap();
        let two = LinkKeys::rotate(&layout).unwrap();
        assert_eq!(
            two.kids().collect::<Vec<_>>(),
            [two.current_kid(), one.current_kid()]
        );
        assert_ne!(two.current_kid(), one.current_kid());
        assert_eq!(mode(&path), 0o600);
        let three = LinkKeys::rotate(&layout).unwrap();
        assert_eq!(
            three.kids().collect::<Vec<_>>(),
            [three.current_kid(), two.current_kid()]
        );
        // What was written is what was returned.
        let loaded = LinkKeys::load(&layout).unwrap();
        assert_eq!(
            loaded.kids().collect::<Vec<_>>(),
            three.kids().collect::<Vec<_>>()
        );
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read_dir(layout.root()).unwrap().count(), 1);
    }

    #[test]
    fn missing_directory_and_missing_keys_are_named() {
        let (dir, _) = pki();
        let nowhere = PkiLayout::new(dir.path().join("missing"));
        let err = LinkKeys::load_or_create(&nowhere).unwrap_err();
        assert_eq!(err.code(), "no_pki");
        assert!(err.to_string().contains("flinkguard init"), "{err}");

        let (_dir, layout) = pki();
        for err in [
            LinkKeys::load(&layout).unwrap_err(),
            LinkKeys::rotate(&layout).unwrap_err(),
        ] {
            assert_eq!(err.code(), "no_keys");
            assert!(err.to_string().contains(LINK_KEYS_FILE), "{err}");
        }
        // Rotating nothing created nothing.
        assert!(!link_keys_file(&layout).exists());
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it_and_is_left_alone() {
        let (_dir, layout) = pki();
        let path = link_keys_file(&layout);
        let good = LinkKeys::load_or_create(&layout).unwrap();
        LinkKeys::rotate(&layout).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let key_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("key ")).collect();
        let first = key_lines[0];
        let secret = first.rsplit(' ').next().unwrap();
        let cases = [
            (String::new(), "does not start with"),
            ("garbage\n".to_owned(), "does not start with"),
            (format!("{FORMAT_LINE}\n"), "holds no key"),
            (
                text.replace(FORMAT_LINE, "flinkguard-link-keys v2"),
                "does not start with",
            ),
            (
                text.replace(first, &first[..first.len() - 4]),
                "is not 32 bytes",
            ),
            (
                text.replace(first, &first.replace(' ', "  ")),
                "is not `key <id> <secret>`",
            ),
            (
                text.replace(first, &first.replacen("key", "kee", 1)),
                "is not `key",
            ),
            (
                text.replace(first, &format!("key AAAAAAAA {secret}")),
                "does not belong to its secret",
            ),
            (format!("{text}{first}\n"), "appears twice"),
            (
                format!("{text}key {} {}\n", good.current_kid(), "x"),
                "is not 32 bytes",
            ),
        ];
        for (content, expected) in cases {
            fs::write(&path, &content).unwrap();
            for err in [
                LinkKeys::load(&layout).unwrap_err(),
                LinkKeys::load_or_create(&layout).unwrap_err(),
                LinkKeys::rotate(&layout).unwrap_err(),
            ] {
                let message = err.to_string();
                assert_eq!(err.code(), "invalid_file", "{message}");
                assert!(message.contains(&path.display().to_string()), "{message}");
                assert!(message.contains(expected), "{expected}: {message}");
                assert!(message.contains("restore it from a backup"), "{message}");
                // The secret is never echoed.
                assert!(!message.contains(secret), "{message}");
            }
            // Nothing replaced the damaged file.
            assert_eq!(fs::read_to_string(&path).unwrap(), content);
        }

        // Three keys: more than are ever kept.
        let extra = LinkKeys::generate().unwrap();
        let extra_line = extra.file_text().lines().last().unwrap().to_owned();
        fs::write(&path, format!("{text}{extra_line}\n")).unwrap();
        let err = LinkKeys::load(&layout).unwrap_err().to_string();
        assert!(err.contains("holds 3 keys"), "{err}");

        fs::write(&path, [0xffu8, 0xfe, 0x00]).unwrap();
        let err = LinkKeys::load(&layout).unwrap_err().to_string();
        assert!(err.contains("not text"), "{err}");
    }

    #[test]
    fn debug_never_prints_secrets() {
        let keys = LinkKeys::generate().unwrap();
        let text = keys.file_text();
        let secret = text.lines().last().unwrap().rsplit(' ').next().unwrap();
        let debug = format!("{keys:?}");
        assert!(debug.contains(keys.current_kid()), "{debug}");
        assert!(!debug.contains(secret), "{debug}");
    }
}
