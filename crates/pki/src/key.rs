//! Key pairs: generation, signing, PKCS#8 and SPKI encodings (aws-lc-rs underneath).

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use zeroize::Zeroizing;

use crate::PkiError;

/// The key algorithms flinkguard generates. Each one decides the TLS cipher suites Flink needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256: small, fast, supported by Java 11+.
    #[default]
    EcdsaP256,
    /// RSA 3072 bits with PKCS#1 v1.5 SHA-256 signatures.
    Rsa3072,
    /// RSA 4096 bits, as in Flink's own keytool examples.
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order the CLI lists them.
    pub const ALL: [KeyAlgorithm; 3] = [Self::EcdsaP256, Self::Rsa3072, Self::Rsa4096];

    /// The name used on the command line and in `flinkguard.yaml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
        }
    }

    /// Whether this is an elliptic-curve key (decides ECDHE-ECDSA vs ECDHE-RSA suites).
    pub fn is_ec(self) -> bool {
        matches!(self, Self::EcdsaP256)
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| PkiError::UnknownKeyAlgorithm(s.to_owned()))
    }
}

impl serde::Serialize for KeyAlgorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for KeyAlgorithm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

enum Inner {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key with its public half, able to sign certificates.
pub struct KeyPair {
    algorithm: KeyAlgorithm,
    inner: Inner,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("KeyPair")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

const EC_ALG: &signature::EcdsaSigningAlgorithm = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;

impl KeyPair {
    /// Generates a fresh key pair from the operating system's random source.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<KeyPair, PkiError> {
        let failed = || PkiError::Crypto("key generation failed");
        let (inner, pkcs8) = match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                let doc = EcdsaKeyPair::generate_pkcs8(EC_ALG, &SystemRandom::new())
                    .map_err(|_| failed())?;
                let pkcs8 = doc.as_ref().to_vec();
                let pair = EcdsaKeyPair::from_pkcs8(EC_ALG, &pkcs8).map_err(|_| failed())?;
                (Inner::Ec(pair), pkcs8)
            }
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let size = if algorithm == KeyAlgorithm::Rsa3072 {
                    KeySize::Rsa3072
                } else {
                    KeySize::Rsa4096
                };
                let pair = RsaKeyPair::generate(size).map_err(|_| failed())?;
                let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| failed())?;
                let pkcs8 = der.as_ref().to_vec();
                (Inner::Rsa(pair), pkcs8)
            }
        };
        Ok(KeyPair {
            algorithm,
            inner,
            pkcs8: Zeroizing::new(pkcs8),
        })
    }

    /// Loads a PKCS#8 private key (the `PRIVATE KEY` PEM flinkguard writes).
    pub fn from_pkcs8(der: &[u8]) -> Result<KeyPair, PkiError> {
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(EC_ALG, der) {
            return Ok(KeyPair {
                algorithm: KeyAlgorithm::EcdsaP256,
                inner: Inner::Ec(pair),
                pkcs8: Zeroizing::new(der.to_vec()),
            });
        }
        let pair = RsaKeyPair::from_pkcs8(der)
            .map_err(|_| PkiError::Crypto("not a PKCS#8 ECDSA P-256 or RSA private key"))?;
        let algorithm = match pair.public_modulus_len() * 8 {
            3072 => KeyAlgorithm::Rsa3072,
            4096 => KeyAlgorithm::Rsa4096,
            _ => return Err(PkiError::Crypto("RSA key is neither 3072 nor 4096 bits")),
        };
        Ok(KeyPair {
            algorithm,
            inner: Inner::Rsa(pair),
            pkcs8: Zeroizing::new(der.to_vec()),
        })
    }

    /// Parses a `PRIVATE KEY` PEM block.
    pub fn from_pem(text: &str) -> Result<KeyPair, PkiError> {
        let block = pem::parse(text).map_err(|_| PkiError::Crypto("not a PEM private key"))?;
        if block.tag() != "PRIVATE KEY" {
            return Err(PkiError::Crypto(
                "expected a PKCS#8 `PRIVATE KEY` PEM block",
            ));
        }
        Self::from_pkcs8(block.contents())
    }

    /// The algorithm of this key.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The private key as PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The private key as a PKCS#8 `PRIVATE KEY` PEM block.
    pub fn pkcs8_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            self.pkcs8.to_vec(),
        )))
    }

    /// The public key as a DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> Result<Vec<u8>, PkiError> {
        let failed = || PkiError::Crypto("cannot encode public key");
        match &self.inner {
            Inner::Ec(pair) => {
                let der: PublicKeyX509Der<'static> =
                    pair.public_key().as_der().map_err(|_| failed())?;
                Ok(der.as_ref().to_vec())
            }
            Inner::Rsa(pair) => {
                let der = pair.public_key().as_der().map_err(|_| failed())?;
                Ok(der.as_ref().to_vec())
            }
        }
    }

    /// The raw `subjectPublicKey` bits, hashed for key identifiers (RFC 5280 4.2.1.2 method 1).
    pub(crate) fn subject_public_key_bits(&self) -> Result<Vec<u8>, PkiError> {
        match &self.inner {
            Inner::Ec(pair) => Ok(pair.public_key().as_ref().to_vec()),
            Inner::Rsa(pair) => {
                let der = pair
                    .public_key()
                    .as_der()
                    .map_err(|_| PkiError::Crypto("cannot encode public key"))?;
                use x509_parser::prelude::FromDer;
                let (_, parsed) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der.as_ref())
                    .map_err(|_| PkiError::Crypto("cannot parse public key"))?;
                Ok(parsed.subject_public_key.data.to_vec())
            }
        }
    }

    /// Signs `message` with this key's certificate signature algorithm.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let failed = || PkiError::Crypto("signing failed");
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Ec(pair) => Ok(pair
                .sign(&rng, message)
                .map_err(|_| failed())?
                .as_ref()
                .to_vec()),
            Inner::Rsa(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| failed())?;
                Ok(sig)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip() {
        for alg in KeyAlgorithm::ALL {
            assert_eq!(alg.name().parse::<KeyAlgorithm>().unwrap(), alg);
        }
        assert!("rsa-1024".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn pkcs8_round_trip_keeps_algorithm() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa3072] {
            let key = KeyPair::generate(alg).unwrap();
            let again = KeyPair::from_pem(&key.pkcs8_pem()).unwrap();
            assert_eq!(again.algorithm(), alg);
            assert_eq!(again.spki_der().unwrap(), key.spki_der().unwrap());
        }
    }
}
