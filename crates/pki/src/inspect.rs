//! Reading certificates back: what `flinkguard pki show` prints.

use sha1::Sha1;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::public_key::PublicKey;

use crate::PkiError;

/// Certificates expiring sooner than this are flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The facts about one certificate that operators check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertificateInfo {
    /// Subject DN (RFC 4514 order as x509-parser prints it).
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// Subject alternative names as `DNS:name` / `IP:addr`.
    pub alt_names: Vec<String>,
    /// Start of validity (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Key type and size, e.g. `EC P-256`, `RSA 3072`.
    pub key: String,
    /// The public key's size in bits (RSA modulus, EC field), when the key type is known.
    pub key_bits: Option<usize>,
    /// The algorithm the issuer signed with, e.g. `sha256WithRSAEncryption`, `ecdsa-with-SHA256`.
    pub signature_algorithm: String,
    /// Whether subject and issuer are the same name (a self-signed certificate, whose own
    /// signature proves nothing: it is trusted by being pinned or installed as a root).
    pub self_signed: bool,
    /// Whether this is a CA certificate.
    pub is_ca: bool,
    /// Extended key usages (`serverAuth`, `clientAuth`).
    pub extended_key_usage: Vec<String>,
    /// SHA-1 fingerprint in keytool's notation (`AB:CD:...`), what
    /// `security.ssl.internal.cert.fingerprint` pins.
    pub sha1: String,
    /// SHA-256 fingerprint in keytool's notation.
    pub sha256: String,
}

impl CertificateInfo {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertificateInfo, PkiError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|_| PkiError::Crypto("not a valid X.509 certificate"))?;
        let mut alt_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => alt_names.push(format!("DNS:{dns}")),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            alt_names.push(format!("IP:{ip}"));
                        }
                    }
                    other => alt_names.push(other.to_string()),
                }
            }
        }
        let mut extended_key_usage = Vec::new();
        if let Ok(Some(eku)) = cert.extended_key_usage() {
            if eku.value.server_auth {
                extended_key_usage.push("serverAuth".to_owned());
            }
            if eku.value.client_auth {
                extended_key_usage.push("clientAuth".to_owned());
            }
        }
        let (key, key_bits) = match cert.public_key().parsed() {
            Ok(PublicKey::RSA(rsa)) => (format!("RSA {}", rsa.key_size()), Some(rsa.key_size())),
            Ok(PublicKey::EC(point)) => match point.key_size() {
                256 => ("EC P-256".to_owned(), Some(256)),
                n => (format!("EC {n} bits"), Some(n)),
            },
            Ok(_) | Err(_) => ("unknown".to_owned(), None),
        };
        let signature_oid = &cert.signature_algorithm.algorithm;
        let signature_algorithm = x509_parser::oid_registry::OidRegistry::default()
            .with_crypto()
            .get(signature_oid)
            .map(|entry| entry.sn().to_owned())
            .unwrap_or_else(|| signature_oid.to_id_string());
        Ok(CertificateInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string(),
            alt_names,
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            key,
            key_bits,
            signature_algorithm,
            self_signed: cert.subject() == cert.issuer(),
            is_ca: cert.is_ca(),
            extended_key_usage,
            sha1: keytool_fingerprint(&Sha1::digest(der)),
            sha256: keytool_fingerprint(&Sha256::digest(der)),
        })
    }

    /// Whole days until the certificate expires (negative once expired).
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_days()
    }

    /// A warning when the certificate is expired, not yet valid, or expires within
    /// [`EXPIRY_WARNING_DAYS`].
    pub fn validity_warning(&self, now: OffsetDateTime) -> Option<String> {
        if now < self.not_before {
            return Some("not yet valid".to_owned());
        }
        let days = self.days_left(now);
        if now > self.not_after {
            Some("EXPIRED".to_owned())
        } else if days < EXPIRY_WARNING_DAYS {
            Some(format!("expires in {days} days"))
        } else {
            None
        }
    }
}

/// Uppercase hex pairs joined by colons, as `keytool -list -v` prints fingerprints.
pub fn keytool_fingerprint(digest: &[u8]) -> String {
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The SHA-1 fingerprint of a DER certificate in keytool's notation.
pub fn sha1_fingerprint(der: &[u8]) -> String {
    keytool_fingerprint(&Sha1::digest(der))
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_use_keytool_notation() {
        assert_eq!(keytool_fingerprint(&[0x0a, 0xff, 0x10]), "0A:FF:10");
    }
}
