//! The two error types: a presented token that is refused, and a setup that cannot work.

use std::path::PathBuf;

/// Why a presented token was refused.
///
/// Every message is short, fixed text: it never echoes the token, a claim value or a key id,
/// so it can go into a 401 response and an audit line as it is. [`TokenError::code`] is a
/// stable snake_case name for log fields and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is longer than [`crate::MAX_TOKEN_BYTES`]; nothing else was looked at.
    #[error("token is too large")]
    TooLarge,
    /// Not three dot-separated segments with a non-empty header and payload (e.g. a JWE).
    #[error("token is not a signed JWT")]
    Malformed,
    /// A segment is not canonical unpadded base64url.
    #[error("token is not valid base64url")]
    BadEncoding,
    /// The header or the claims are not a JSON object.
    #[error("token header or claims are not a JSON object")]
    BadJson,
    /// The header or the claims name the same member twice, which parsers resolve differently.
    #[error("token repeats a JSON member")]
    DuplicateMember,
    /// The header lacks `alg` or has a `kid` that is not a string.
    #[error("token header is invalid")]
    BadHeader,
    /// `alg: none`: an unsigned token.
    #[error("unsigned tokens are not accepted")]
    Unsigned,
    /// An algorithm other than RS256, ES256 and EdDSA (HS256 included: no shared secrets).
    #[error("token algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The header lists critical extensions (`crit`), none of which are understood.
    #[error("token has critical header extensions")]
    CriticalHeader,
    /// No `kid` in the header while the key set holds more than one key.
    #[error("token has no key id")]
    MissingKeyId,
    /// The `kid` names no key of the key set.
    #[error("token key id is unknown")]
    UnknownKeyId,
    /// The header's `alg` is not the algorithm the selected key is pinned to.
    #[error("token algorithm does not match its key")]
    AlgorithmMismatch,
    /// The signature does not verify with the selected key.
    #[error("token signature is invalid")]
    BadSignature,
    /// A required claim is absent; the field names which (`iss`, `aud`, `exp`, `user`).
    #[error("token has no {0} claim")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an unusable value; the field names which.
    #[error("token {0} claim is invalid")]
    InvalidClaim(&'static str),
    /// `exp` is in the past, beyond the allowed clock skew.
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future, beyond the allowed clock skew.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iss` is not one of the trusted issuers.
    #[error("token issuer is not trusted")]
    UntrustedIssuer,
    /// No `aud` entry is one of the accepted audiences.
    #[error("token audience is not accepted")]
    WrongAudience,
}

impl TokenError {
    /// A stable snake_case name for audit fields and metrics, e.g. `expired`, `bad_signature`.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::TooLarge => "too_large",
            TokenError::Malformed => "malformed",
            TokenError::BadEncoding => "bad_encoding",
            TokenError::BadJson => "bad_json",
            TokenError::DuplicateMember => "duplicate_member",
            TokenError::BadHeader => "bad_header",
            TokenError::Unsigned => "unsigned",
            TokenError::UnsupportedAlgorithm => "unsupported_algorithm",
            TokenError::CriticalHeader => "critical_header",
            TokenError::MissingKeyId => "missing_key_id",
            TokenError::UnknownKeyId => "unknown_key_id",
            TokenError::AlgorithmMismatch => "algorithm_mismatch",
            TokenError::BadSignature => "bad_signature",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::InvalidClaim(_) => "invalid_claim",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::UntrustedIssuer => "untrusted_issuer",
            TokenError::WrongAudience => "wrong_audience",
        }
    }
}

/// Everything that can go wrong before a token is presented: reading a key set or the
/// signing key, an unusable verifier configuration, minting a service token. Each message
/// names the file or field and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A JWKS document cannot be used; the message says which key and why.
    #[error("invalid JWKS: {0}")]
    InvalidJwks(String),
    /// A file exists but its content is unusable.
    #[error("{}: {problem}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it and how to fix it.
        problem: String,
    },
    /// A JWKS could not be fetched from the identity provider, or what came back is not a
    /// usable key set.
    #[error("cannot fetch the JWKS from {url}: {problem}")]
    JwksFetch {
        /// The JWKS URL.
        url: String,
        /// What went wrong and, where there is one, the fix.
        problem: String,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] flinkguard_files::FileError),
    /// The PKI directory does not exist, so there is nowhere to keep the signing key.
    #[error("no PKI directory at {}; run `flinkguard init` first", .0.display())]
    NoPki(PathBuf),
    /// A verifier configuration that would accept too much; the message names the field.
    #[error("{0}")]
    InvalidConfig(String),
    /// A service-token request that cannot be honoured (bad audience, issuer or lifetime).
    #[error("{0}")]
    InvalidRequest(String),
    /// A PKI operation (key generation, PEM parsing) failed.
    #[error(transparent)]
    Pki(#[from] flinkguard_pki::PkiError),
    /// A cryptographic operation failed.
    #[error("{0}")]
    Crypto(&'static str),
}

impl SetupError {
    pub(crate) fn file(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> SetupError {
        SetupError::File(flinkguard_files::FileError::new(action, path, source))
    }

    /// Attaches the file a content error came from.
    pub(crate) fn in_file(path: &std::path::Path, err: SetupError) -> SetupError {
        match err {
            SetupError::File(_) | SetupError::InvalidFile { .. } => err,
            other => SetupError::InvalidFile {
                path: path.to_owned(),
                problem: other.to_string(),
            },
        }
    }
}
