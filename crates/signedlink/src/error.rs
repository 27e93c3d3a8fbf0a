//! One error type: a presented link that is refused, or a key file or signing request that
//! cannot work.

use std::path::PathBuf;

/// Why a link was refused, or why keys could not be loaded or a link not signed.
///
/// The refusals of a presented link ([`Malformed`](LinkError::Malformed),
/// [`UnknownKey`](LinkError::UnknownKey), [`BadSignature`](LinkError::BadSignature),
/// [`Expired`](LinkError::Expired), [`LifetimeTooLong`](LinkError::LifetimeTooLong)) have
/// short, fixed messages that never echo the link, so they can go into a 401 response and an
/// audit line as they are; [`LinkError::is_refusal`] tells them apart from setup errors.
/// Setup errors name the file or field and the fix. [`LinkError::code`] is a stable
/// snake_case name for log fields and metrics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The target does not end in exactly one `fg-expires`, `fg-kid`, `fg-sig` triple in that
    /// order, carries another `fg-` parameter, or a value is not in its canonical form.
    #[error("signed link is malformed")]
    Malformed,
    /// `fg-kid` names no current or previous key (e.g. signed before the last two rotations).
    #[error("signed link key is unknown")]
    UnknownKey,
    /// The signature does not match the method, target, expiry and key id.
    #[error("signed link signature is invalid")]
    BadSignature,
    /// The link's expiry has passed.
    #[error("signed link has expired")]
    Expired,
    /// The link expires further in the future than the longest lifetime allows.
    #[error("signed link expires too far in the future")]
    LifetimeTooLong,
    /// The PKI directory does not exist, so there is nowhere to keep the keys.
    #[error("no PKI directory at {}; run `flinkguard init` first", .0.display())]
    NoPki(PathBuf),
    /// The key file does not exist (loading or rotating keys that were never created).
    #[error(
        "no link-signing keys at {}; signing a link creates them (`flinkguard sign`), or check \
         that this is the right PKI directory",
        .0.display()
    )]
    NoKeys(PathBuf),
    /// The key file exists but its content is unusable.
    #[error("{}: {problem}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it and how to fix it.
        problem: String,
    },
    /// The key file could not be read or written.
    #[error(transparent)]
    File(#[from] flinkguard_files::FileError),
    /// A signing request or lifetime that cannot be honoured; the message names the field.
    #[error("{0}")]
    InvalidRequest(String),
    /// A cryptographic operation (random numbers) failed.
    #[error("{0}")]
    Crypto(&'static str),
}

impl LinkError {
    /// A stable snake_case name for audit fields and metrics, e.g. `expired`, `bad_signature`.
    pub fn code(&self) -> &'static str {
        match self {
            LinkError::Malformed => "malformed",
            LinkError::UnknownKey => "unknown_key",
            LinkError::BadSignature => "bad_signature",
            LinkError::Expired => "expired",
            LinkError::LifetimeTooLong => "lifetime_too_long",
            LinkError::NoPki(_) => "no_pki",
            LinkError::NoKeys(_) => "no_keys",
            LinkError::InvalidFile { .. } => "invalid_file",
            LinkError::File(_) => "file",
            LinkError::InvalidRequest(_) => "invalid_request",
            LinkError::Crypto(_) => "crypto",
        }
    }

    /// Whether this is the refusal of a presented link (answer 401), rather than a setup
    /// problem on the gateway's side (answer 500 and fix the keys).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            LinkError::Malformed
                | LinkError::UnknownKey
                | LinkError::BadSignature
                | LinkError::Expired
                | LinkError::LifetimeTooLong
        )
    }

    pub(crate) fn file(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> LinkError {
        LinkError::File(flinkguard_files::FileError::new(action, path, source))
    }
}
