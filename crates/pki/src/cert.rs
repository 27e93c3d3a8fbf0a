//! X.509 certificate encoding.
//!
//! flinkguard writes its own `TBSCertificate` instead of using a generator crate because a
//! client certificate carries one `O` attribute per group (FLIP-26's identity model), which
//! the common Rust generators cannot express. The encoding is small and fixed: v3, a random
//! 128-bit serial, and exactly the extensions each [`Profile`] needs.

use std::net::IpAddr;

use sha1::{Digest, Sha1};
use time::{Duration, OffsetDateTime};
use yasna::models::{GeneralizedTime, ObjectIdentifier, UTCTime};
use yasna::{DERWriter, Tag};

use crate::{KeyAlgorithm, KeyPair, PkiError};

/// What a certificate is for; decides basic constraints, key usage and extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A CA that signs REST server and user certificates (path length 0).
    Ca,
    /// A self-signed peer identity used as both TLS server and TLS client: Flink's cluster
    /// identity (every process), and the gateway→Flink REST identity.
    ClusterIdentity,
    /// A TLS server (the REST endpoint / gateway).
    Server,
    /// A user or service: client authentication only.
    Client,
}

/// One attribute of a distinguished name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameAttribute {
    /// `CN`: the user or host.
    CommonName(String),
    /// `O`: one per group.
    Organization(String),
    /// `OU`.
    OrganizationalUnit(String),
}

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AltName {
    /// `DNS:` name, possibly a leftmost wildcard.
    Dns(String),
    /// `IP:` address.
    Ip(IpAddr),
}

/// Everything that differs between the certificates flinkguard issues.
#[derive(Debug, Clone)]
pub struct CertificateSpec {
    /// Subject attributes in encoding order (most significant first).
    pub subject: Vec<NameAttribute>,
    /// Subject alternative names (empty for CA and client certificates).
    pub alt_names: Vec<AltName>,
    /// What the certificate is for.
    pub profile: Profile,
    /// Days of validity from now. Always explicit: nothing is valid "forever".
    pub validity_days: u32,
}

/// The CA that signs a certificate: its DER certificate and its key.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The issuer's certificate (DER).
    pub cert_der: &'a [u8],
    /// The issuer's private key.
    pub key: &'a KeyPair,
}

/// Backdating `notBefore` absorbs small clock differences between machines.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Issues a certificate for `subject_key`, self-signed when `signer` is `None`.
pub fn issue(
    spec: &CertificateSpec,
    subject_key: &KeyPair,
    signer: Option<Signer<'_>>,
) -> Result<Vec<u8>, PkiError> {
    if spec.validity_days == 0 {
        return Err(PkiError::InvalidInput(
            "validity must be at least one day".into(),
        ));
    }
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(|_| PkiError::Crypto("clock"))?;
    let not_before = now - CLOCK_SKEW;
    let not_after = now + Duration::days(i64::from(spec.validity_days));

    let subject_der = encode_name(&spec.subject);
    let (issuer_der, signing_key) = match signer {
        Some(s) => (issuer_subject_der(s.cert_der)?, s.key),
        None => (subject_der.clone(), subject_key),
    };
    let subject_key_id = key_identifier(subject_key)?;
    let authority_key_id = key_identifier(signing_key)?;
    let spki = subject_key.spki_der()?;
    let serial = random_serial();
    let sig_alg = signing_key.algorithm();

    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_tagged(Tag::context(0), |w| w.write_u8(2));
            w.next().write_bigint_bytes(&serial, true);
            write_signature_algorithm(w.next(), sig_alg);
            w.next().write_der(&issuer_der);
            w.next().write_sequence(|w| {
                write_time(w.next(), not_before);
                write_time(w.next(), not_after);
            });
            w.next().write_der(&subject_der);
            w.next().write_der(&spki);
            w.next().write_tagged(Tag::context(3), |w| {
                w.write_sequence(|w| {
                    write_extensions(
                        w,
                        spec,
                        subject_key.algorithm(),
                        &subject_key_id,
                        &authority_key_id,
                    )
                })
            });
        })
    });
    let signature = signing_key.sign(&tbs)?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            write_signature_algorithm(w.next(), sig_alg);
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
        })
    }))
}

/// PEM encoding of a DER certificate.
pub fn to_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// All `CERTIFICATE` blocks of a PEM text, as DER.
pub fn parse_pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    let blocks = pem::parse_many(text).map_err(|_| PkiError::Crypto("malformed PEM"))?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect();
    if certs.is_empty() {
        return Err(PkiError::Crypto("no CERTIFICATE block in PEM"));
    }
    Ok(certs)
}

fn oid(parts: &[u64]) -> ObjectIdentifier {
    ObjectIdentifier::from_slice(parts)
}

fn random_serial() -> [u8; 16] {
    let mut serial: [u8; 16] = rand::random();
    // Positive and exactly 16 bytes long (RFC 5280 allows up to 20).
    serial[0] = (serial[0] & 0x7f) | 0x40;
    serial
}

fn write_signature_algorithm(w: DERWriter<'_>, alg: KeyAlgorithm) {
    w.write_sequence(|w| {
        if alg.is_ec() {
            w.next().write_oid(&oid(&[1, 2, 840, 10045, 4, 3, 2])); // ecdsa-with-SHA256
        } else {
            w.next().write_oid(&oid(&[1, 2, 840, 113549, 1, 1, 11])); // sha256WithRSAEncryption
            w.next().write_null();
        }
    });
}

fn write_time(w: DERWriter<'_>, at: OffsetDateTime) {
    // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    if at.year() < 2050 {
        w.write_utctime(&UTCTime::from_datetime(at));
    } else {
        w.write_generalized_time(&GeneralizedTime::from_datetime(at));
    }
}

fn encode_name(attributes: &[NameAttribute]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            for attribute in attributes {
                let (id, value): (&[u64], &str) = match attribute {
                    NameAttribute::CommonName(v) => (&[2, 5, 4, 3], v),
                    NameAttribute::Organization(v) => (&[2, 5, 4, 10], v),
                    NameAttribute::OrganizationalUnit(v) => (&[2, 5, 4, 11], v),
                };
                w.next().write_set(|w| {
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&oid(id));
                        w.next().write_utf8_string(value);
                    })
                });
            }
        })
    })
}

fn issuer_subject_der(ca_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    let (_, ca) = x509_parser::parse_x509_certificate(ca_der)
        .map_err(|_| PkiError::Crypto("cannot parse the CA certificate"))?;
    Ok(ca.tbs_certificate.subject.as_raw().to_vec())
}

fn key_identifier(key: &KeyPair) -> Result<Vec<u8>, PkiError> {
    Ok(Sha1::digest(key.subject_public_key_bits()?).to_vec())
}

fn write_extension(w: &mut yasna::DERWriterSeq<'_>, id: &[u64], critical: bool, value: Vec<u8>) {
    w.next().write_sequence(|w| {
        w.next().write_oid(&oid(id));
        if critical {
            w.next().write_bool(true);
        }
        w.next().write_bytes(&value);
    });
}

/// keyUsage bits (RFC 5280 4.2.1.3).
const DIGITAL_SIGNATURE: u8 = 0;
const KEY_ENCIPHERMENT: u8 = 2;
const KEY_CERT_SIGN: u8 = 5;
const CRL_SIGN: u8 = 6;

fn key_usage_bits(bits: &[u8]) -> Vec<u8> {
    let highest = bits.iter().copied().max().unwrap_or(0);
    let mut byte = 0u8;
    for bit in bits {
        byte |= 0x80 >> bit;
    }
    // DER named bit strings drop trailing zero bits.
    yasna::construct_der(|w| w.write_bitvec_bytes(&[byte], usize::from(highest) + 1))
}

fn write_extensions(
    w: &mut yasna::DERWriterSeq<'_>,
    spec: &CertificateSpec,
    subject_alg: KeyAlgorithm,
    subject_key_id: &[u8],
    authority_key_id: &[u8],
) {
    let is_ca = spec.profile == Profile::Ca;
    let basic_constraints = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            if is_ca {
                w.next().write_bool(true);
                w.next().write_u8(0);
            }
        })
    });
    write_extension(w, &[2, 5, 29, 19], true, basic_constraints);

    let usage: Vec<u8> = match (spec.profile, subject_alg.is_ec()) {
        (Profile::Ca, _) => vec![KEY_CERT_SIGN, CRL_SIGN],
        (_, true) => vec![DIGITAL_SIGNATURE],
        (_, false) => vec![DIGITAL_SIGNATURE, KEY_ENCIPHERMENT],
    };
    write_extension(w, &[2, 5, 29, 15], true, key_usage_bits(&usage));

    let server_auth: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 1];
    let client_auth: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 2];
    let purposes: &[&[u64]] = match spec.profile {
        Profile::Ca => &[],
        Profile::ClusterIdentity => &[server_auth, client_auth],
        Profile::Server => &[server_auth],
        Profile::Client => &[client_auth],
    };
    if !purposes.is_empty() {
        let eku = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                for purpose in purposes {
                    w.next().write_oid(&oid(purpose));
                }
            })
        });
        write_extension(w, &[2, 5, 29, 37], false, eku);
    }

    if !spec.alt_names.is_empty() {
        let san = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                for name in &spec.alt_names {
                    match name {
                        AltName::Dns(dns) => w
                            .next()
                            .write_tagged_implicit(Tag::context(2), |w| w.write_ia5_string(dns)),
                        AltName::Ip(IpAddr::V4(ip)) => {
                            w.next().write_tagged_implicit(Tag::context(7), |w| {
                                w.write_bytes(&ip.octets())
                            })
                        }
                        AltName::Ip(IpAddr::V6(ip)) => {
                            w.next().write_tagged_implicit(Tag::context(7), |w| {
                                w.write_bytes(&ip.octets())
                            })
                        }
                    }
                }
            })
        });
        write_extension(w, &[2, 5, 29, 17], false, san);
    }

    write_extension(
        w,
        &[2, 5, 29, 14],
        false,
        yasna::construct_der(|w| w.write_bytes(subject_key_id)),
    );
    let aki = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next()
                .write_tagged_implicit(Tag::context(0), |w| w.write_bytes(authority_key_id))
        })
    });
    write_extension(w, &[2, 5, 29, 35], false, aki);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;

    fn client_spec() -> CertificateSpec {
        CertificateSpec {
            subject: vec![
                NameAttribute::Organization("team-a".into()),
                NameAttribute::Organization("ops".into()),
                NameAttribute::Organization("auditors".into()),
                NameAttribute::CommonName("alice".into()),
            ],
            alt_names: vec![],
            profile: Profile::Client,
            validity_days: 30,
        }
    }

    #[test]
    fn client_certificate_carries_one_o_per_group_and_client_auth_only() {
        let ca_key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let ca = issue(
            &CertificateSpec {
                subject: vec![NameAttribute::CommonName("test CA".into())],
                alt_names: vec![],
                profile: Profile::Ca,
                validity_days: 10,
            },
            &ca_key,
            None,
        )
        .unwrap();
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let der = issue(
            &client_spec(),
            &key,
            Some(Signer {
                cert_der: &ca,
                key: &ca_key,
            }),
        )
        .unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let groups: Vec<&str> = cert
            .subject()
            .iter_organization()
            .map(|o| o.as_str().unwrap())
            .collect();
        assert_eq!(groups, ["team-a", "ops", "auditors"]);
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        // The signature verifies against the CA's key.
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca).unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        assert_eq!(cert.issuer(), ca_cert.subject());
        assert!(ca_cert.is_ca());
    }

    #[test]
    fn server_certificate_has_sans_and_explicit_validity() {
        let key = KeyPair::generate(KeyAlgorithm::Rsa3072).unwrap();
        let spec = CertificateSpec {
            subject: vec![NameAttribute::CommonName("flink.example.org".into())],
            alt_names: vec![
                AltName::Dns("flink.example.org".into()),
                AltName::Ip("10.0.2.15".parse().unwrap()),
                AltName::Ip("::1".parse().unwrap()),
            ],
            profile: Profile::Server,
            validity_days: 90,
        };
        let der = issue(&spec, &key, None).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        cert.verify_signature(None).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        assert!(matches!(
            san.general_names[0],
            GeneralName::DNSName("flink.example.org")
        ));
        assert!(matches!(
            san.general_names[1],
            GeneralName::IPAddress([10, 0, 2, 15])
        ));
        let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp())
            / 86_400;
        assert_eq!(days, 90, "90 days plus the 5 minutes of backdating");
        assert!(!cert.is_ca());
    }

    #[test]
    fn validity_past_2049_uses_generalized_time() {
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let mut spec = client_spec();
        spec.validity_days = 40 * 365;
        let der = issue(&spec, &key, None).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(cert.validity().not_after.to_datetime().year() > 2050);
    }
}
