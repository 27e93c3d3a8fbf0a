//! Reading the certificates of any keystore or truststore a JVM (and so Flink) may be given:
//! PKCS#12, JKS, JCEKS or PEM. Only certificates: private keys are never decrypted, so an
//! audit can look at a store without holding its secrets in memory longer than the file.
//!
//! JKS is Sun's own format (`sun.security.provider.JavaKeyStore`): certificates are stored in
//! the clear, private keys encrypted, and the whole file is protected by a SHA-1 digest over
//! the password, the phrase "Mighty Aphrodite" and the content, which is how a wrong password
//! is told apart from a corrupt file.

use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
use sha1::{Digest, Sha1};

use crate::store::StoreEntry;

/// The file format of a Java store, told by its first bytes (as Java's `KeyStore` probing does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFormat {
    /// PKCS#12, the JVM default since Java 9.
    Pkcs12,
    /// Sun's JKS.
    Jks,
    /// Sun's JCEKS (JKS with secret-key entries).
    Jceks,
    /// PEM text (Flink accepts PEM stores through `keystore-type: PEM`).
    Pem,
}

impl StoreFormat {
    /// The format of a store's bytes, if it is one Java reads.
    pub fn detect(bytes: &[u8]) -> Option<StoreFormat> {
        match bytes {
            [0xFE, 0xED, 0xFE, 0xED, ..] => Some(StoreFormat::Jks),
            [0xCE, 0xCE, 0xCE, 0xCE, ..] => Some(StoreFormat::Jceks),
            // A DER SEQUENCE: PKCS#12's PFX.
            [0x30, ..] => Some(StoreFormat::Pkcs12),
            _ if bytes.starts_with(b"-----BEGIN") || contains(bytes, b"\n-----BEGIN") => {
                Some(StoreFormat::Pem)
            }
            _ => None,
        }
    }

    /// keytool's name for the format.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreFormat::Pkcs12 => "PKCS12",
            StoreFormat::Jks => "JKS",
            StoreFormat::Jceks => "JCEKS",
            StoreFormat::Pem => "PEM",
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Why a store's certificates could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreReadError {
    /// The bytes are no format Java reads as a keystore.
    #[error("not a keystore: neither PKCS12, JKS, JCEKS nor PEM")]
    UnknownFormat,
    /// The store is encrypted and no password was given.
    #[error("the {} store needs its password to be read", .0.as_str())]
    PasswordNeeded(StoreFormat),
    /// The password does not open the store (or the file was altered).
    #[error("the password does not open this {} store, or the file was altered", .0.as_str())]
    WrongPassword(StoreFormat),
    /// The file is truncated or malformed.
    #[error("corrupt {} store: {}", .0.as_str(), .1)]
    Corrupt(StoreFormat, String),
}

/// The certificates in a store, by entry, and its format. `password` is the store password as
/// Flink's configuration gives it; PKCS#12 needs it, JKS uses it only to check integrity.
pub fn read_certificates(
    bytes: &[u8],
    password: Option<&str>,
) -> Result<(StoreFormat, Vec<StoreEntry>), StoreReadError> {
    let format = StoreFormat::detect(bytes).ok_or(StoreReadError::UnknownFormat)?;
    let entries = match format {
        StoreFormat::Pkcs12 => pkcs12(bytes, password)?,
        StoreFormat::Jks | StoreFormat::Jceks => jks(format, bytes, password)?,
        StoreFormat::Pem => pem_certificates(bytes)?,
    };
    Ok((format, entries))
}

fn pkcs12(bytes: &[u8], password: Option<&str>) -> Result<Vec<StoreEntry>, StoreReadError> {
    // A truststore written without a password (keytool -storepass '' or OpenSSL -nomacver)
    // opens with the empty one; anything else needs the real password.
    let store = KeyStore::from_pkcs12(bytes, password.unwrap_or(""), Pkcs12ImportPolicy::Relaxed)
        .map_err(|e| match password {
        None => StoreReadError::PasswordNeeded(StoreFormat::Pkcs12),
        Some(_) if e.to_string().to_ascii_lowercase().contains("mac") => {
            StoreReadError::WrongPassword(StoreFormat::Pkcs12)
        }
        Some(_) => StoreReadError::Corrupt(StoreFormat::Pkcs12, e.to_string()),
    })?;
    Ok(crate::store::entries(&store))
}

fn pem_certificates(bytes: &[u8]) -> Result<Vec<StoreEntry>, StoreReadError> {
    let blocks = pem::parse_many(bytes)
        .map_err(|e| StoreReadError::Corrupt(StoreFormat::Pem, e.to_string()))?;
    let certs: Vec<Vec<u8>> = blocks
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.contents().to_vec())
        .collect();
    let has_key = blocks.iter().any(|b| b.tag().ends_with("PRIVATE KEY"));
    Ok(if has_key {
        vec![StoreEntry::PrivateKey {
            alias: "pem".to_owned(),
            chain: certs,
        }]
    } else {
        certs
            .into_iter()
            .enumerate()
            .map(|(i, der)| StoreEntry::TrustedCertificate {
                alias: format!("pem-{i}"),
                der,
            })
            .collect()
    })
}

const JKS_PRIVATE_KEY: u32 = 1;
const JKS_TRUSTED_CERT: u32 = 2;
const JCEKS_SECRET_KEY: u32 = 3;
const JKS_DIGEST_LEN: usize = 20;

fn jks(
    format: StoreFormat,
    bytes: &[u8],
    password: Option<&str>,
) -> Result<Vec<StoreEntry>, StoreReadError> {
    let corrupt = |what: &str| StoreReadError::Corrupt(format, what.to_owned());
    if bytes.len() < 12 + JKS_DIGEST_LEN {
        return Err(corrupt("truncated"));
    }
    let (content, digest) = bytes.split_at(bytes.len() - JKS_DIGEST_LEN);
    if let Some(password) = password {
        let mut sha = Sha1::new();
        for unit in password.encode_utf16() {
            sha.update(unit.to_be_bytes());
        }
        sha.update(b"Mighty Aphrodite");
        sha.update(content);
        if sha.finalize().as_slice() != digest {
            return Err(StoreReadError::WrongPassword(format));
        }
    }
    let mut r = Reader {
        bytes: content,
        at: 4,
    };
    let version = r.u32().ok_or_else(|| corrupt("no version"))?;
    if version != 1 && version != 2 {
        return Err(corrupt(&format!("unknown version {version}")));
    }
    let count = r.u32().ok_or_else(|| corrupt("no entry count"))?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let entry = (|| {
            let tag = r.u32()?;
            let alias = r.utf()?;
            r.skip(8)?; // creation date
            match tag {
                JKS_PRIVATE_KEY => {
                    let key_len = r.u32()? as usize;
                    r.skip(key_len)?;
                    let n = r.u32()?;
                    let chain = (0..n)
                        .map(|_| r.certificate(version))
                        .collect::<Option<Vec<_>>>()?;
                    Some(Ok(StoreEntry::PrivateKey { alias, chain }))
                }
                JKS_TRUSTED_CERT => {
                    let der = r.certificate(version)?;
                    Some(Ok(StoreEntry::TrustedCertificate { alias, der }))
                }
                // A sealed Java object: its length is not written down, so nothing after it
                // can be found.
                JCEKS_SECRET_KEY => Some(Err(corrupt(
                    "secret-key entries (JCEKS) cannot be skipped; convert the store to PKCS12",
                ))),
                other => Some(Err(corrupt(&format!("unknown entry tag {other}")))),
            }
        })()
        .ok_or_else(|| corrupt("truncated entry"))??;
        entries.push(entry);
    }
    Ok(entries)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// Java's `DataInput.readUTF`: a 16-bit length, then modified UTF-8.
    fn utf(&mut self) -> Option<String> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?);
        Some(String::from_utf8_lossy(self.take(usize::from(len))?).into_owned())
    }

    /// A certificate: its type name (version 2 only, always "X.509"), length and DER.
    fn certificate(&mut self, version: u32) -> Option<Vec<u8>> {
        if version == 2 {
            self.utf()?;
        }
        let len = self.u32()? as usize;
        Some(self.take(len)?.to_vec())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_first_bytes() {
        assert_eq!(
            StoreFormat::detect(&[0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]),
            Some(StoreFormat::Jks)
        );
        assert_eq!(
            StoreFormat::detect(&[0xCE, 0xCE, 0xCE, 0xCE]),
            Some(StoreFormat::Jceks)
        );
        assert_eq!(
            StoreFormat::detect(&[0x30, 0x82, 1, 2]),
            Some(StoreFormat::Pkcs12)
        );
        assert_eq!(
            StoreFormat::detect(b"# ca\n-----BEGIN CERTIFICATE-----\n"),
            Some(StoreFormat::Pem)
        );
        assert_eq!(StoreFormat::detect(b"hello"), None);
        assert_eq!(
            read_certificates(b"hello", None),
            Err(StoreReadError::UnknownFormat)
        );
    }

    #[test]
    fn truncated_jks_is_corrupt_not_a_panic() {
        let mut bytes = vec![0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 5];
        bytes.extend([0u8; JKS_DIGEST_LEN]);
        assert!(matches!(
            read_certificates(&bytes, None),
            Err(StoreReadError::Corrupt(StoreFormat::Jks, _))
        ));
    }

    #[test]
    fn pkcs12_written_by_flinkguard_reads_back_and_needs_its_password() {
        let key = crate::KeyPair::generate(crate::KeyAlgorithm::EcdsaP256).unwrap();
        let password = crate::Password::generate();
        let spec = crate::cert::CertificateSpec {
            subject: vec![crate::cert::NameAttribute::CommonName("t".into())],
            alt_names: Vec::new(),
            profile: crate::cert::Profile::ClusterIdentity,
            validity_days: 1,
        };
        let cert = crate::cert::issue(&spec, &key, None).unwrap();
        let bytes = crate::store::keystore("k", &key, &[&cert], &password).unwrap();
        let (format, entries) = read_certificates(&bytes, Some(password.expose())).unwrap();
        assert_eq!(format, StoreFormat::Pkcs12);
        assert_eq!(
            entries,
            [StoreEntry::PrivateKey {
                alias: "k".into(),
                chain: vec![cert.clone()]
            }]
        );
        assert!(matches!(
            read_certificates(&bytes, Some("wrong-password")),
            Err(StoreReadError::WrongPassword(StoreFormat::Pkcs12))
        ));
        assert_eq!(
            read_certificates(&bytes, None),
            Err(StoreReadError::PasswordNeeded(StoreFormat::Pkcs12))
        );
    }
}
