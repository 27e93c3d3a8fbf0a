//! The PKI of a secured Flink deployment.
//!
//! * the **cluster identity**: one self-signed key pair in one PKCS#12 file that every Flink
//!   process uses as keystore *and* truststore for internal mutual TLS (RPC, blob, data plane);
//! * a **CA** for the REST endpoint and users, a REST server certificate with the hosts and IPs
//!   it is reached by, a REST truststore, and client certificates (CN = user, one O per group);
//! * the **upstream identity** (`upstream/`) for the gateway→Flink REST hop: one self-signed
//!   key pair like the cluster identity, Flink's REST keystore *and* truststore and the
//!   gateway's client certificate. Not signed by the CA: a user's client certificate must not
//!   open Flink's REST endpoint, only the gateway's.
//!
//! Keys come from aws-lc-rs; PKCS#12 files are written so that Java's keytool and Flink read
//! them (`PrivateKeyEntry`, `trustedCertEntry`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod authority;
pub mod cert;
pub mod inspect;
pub mod java_store;
mod key;
mod names;
mod password;
pub mod store;

use std::path::{Path, PathBuf};

pub use authority::{
    CA_ALIAS, CREATE_UPSTREAM_COMMAND, ClientFiles, ClientRequest, CreatedUpstream, GeneratedPki,
    INTERNAL_ALIAS, InitRequest, Installed, PkiLayout, REST_ALIAS, RenewRestRequest,
    ShownCertificate, UPSTREAM_ALIAS, UPSTREAM_DIR, ValidityDays, create_upstream, generate,
    install, issue_client, renew_rest, show,
};
pub use inspect::CertificateInfo;
pub use key::{KeyAlgorithm, KeyPair};
pub use names::{DnsName, GroupName, UserName, parse_ip};
pub use password::{GENERATED_PASSWORD_LEN, MIN_PASSWORD_LEN, Password};

/// Everything that can go wrong in the PKI, each naming what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A key algorithm name that flinkguard does not generate.
    #[error("unknown key algorithm `{0}`: use ecdsa-p256, rsa-3072 or rsa-4096")]
    UnknownKeyAlgorithm(String),
    /// A value given by the user is unusable; the message says which and why.
    #[error("{0}")]
    InvalidInput(String),
    /// PKI material exists where new material would be written.
    #[error("{} already holds PKI material; refusing to overwrite keys. Pass --force to replace it (the old files are moved aside, not deleted)", .0.display())]
    AlreadyExists(PathBuf),
    /// A file exists but its content is unusable.
    #[error("{}: {problem}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it and how to fix it.
        problem: String,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] flinkguard_files::FileError),
    /// A keystore could not be opened or written.
    #[error("keystore: {0}")]
    Keystore(String),
    /// A cryptographic operation or encoding failed.
    #[error("{0}")]
    Crypto(&'static str),
}

impl PkiError {
    pub(crate) fn file(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> PkiError {
        PkiError::File(flinkguard_files::FileError::new(action, path, source))
    }

    /// Attaches the file a content error came from.
    pub(crate) fn in_file(path: &Path, err: PkiError) -> PkiError {
        match err {
            PkiError::File(_) | PkiError::InvalidFile { .. } => err,
            other => PkiError::InvalidFile {
                path: path.to_owned(),
                problem: other.to_string(),
            },
        }
    }
}

impl From<p12_keystore::error::Error> for PkiError {
    fn from(e: p12_keystore::error::Error) -> Self {
        PkiError::Keystore(e.to_string())
    }
}
