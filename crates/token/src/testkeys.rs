//! Test keys (generated once per test run) and a hand-rolled JWS signer, so tests can craft
//! exactly the tokens an attacker would.

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::Value;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::Algorithm;
use crate::json::b64_encode;

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private key with its public JWK members.
pub(crate) struct TestKey {
    signer: Signer,
    /// The JWK members other than `kid` and `alg`, as JSON text without braces.
    members: String,
    /// The public key as DER SubjectPublicKeyInfo (what an attacker would use as HMAC key).
    pub(crate) spki: Vec<u8>,
}

pub(crate) fn rsa() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key");
        let spki = pair.public_key().as_der().expect("SPKI").as_ref().to_vec();
        // Take n and e out of the SubjectPublicKeyInfo, as one would from a certificate.
        let (_, info) = SubjectPublicKeyInfo::from_der(&spki).expect("parse SPKI");
        let Ok(PublicKey::RSA(rsa)) = info.parsed() else {
            panic!("not an RSA key")
        };
        let strip = |b: &[u8]| {
            b.iter()
                .skip_while(|&&x| x == 0)
                .copied()
                .collect::<Vec<u8>>()
        };
        let members = format!(
            r#""kty":"RSA","n":"{}","e":"{}""#,
            b64_encode(&strip(rsa.modulus)),
            b64_encode(&strip(rsa.exponent))
        );
        TestKey {
            signer: Signer::Rsa(pair),
            members,
            spki,
        }
    })
}

pub(crate) fn ec() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new()).expect("EC key");
        let pair = EcdsaKeyPair::from_pkcs8(alg, doc.as_ref()).expect("EC key");
        let point = pair.public_key().as_ref().to_vec();
        let spki = pair.public_key().as_der().expect("SPKI").as_ref().to_vec();
        let members = format!(
            r#""kty":"EC","crv":"P-256","x":"{}","y":"{}""#,
            b64_encode(&point[1..33]),
            b64_encode(&point[33..65])
        );
        TestKey {
            signer: Signer::Ec(pair),
            members,
            spki,
        }
    })
}

pub(crate) fn ed() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let pair = Ed25519KeyPair::generate().expect("Ed25519 key");
        let x = pair.public_key().as_ref().to_vec();
        let members = format!(r#""kty":"OKP","crv":"Ed25519","x":"{}""#, b64_encode(&x));
        TestKey {
            signer: Signer::Ed(pair),
            members,
            spki: x,
        }
    })
}

impl TestKey {
    pub(crate) fn algorithm(&self) -> Algorithm {
        match self.signer {
            Signer::Rsa(_) => Algorithm::Rs256,
            Signer::Ec(_) => Algorithm::Es256,
            Signer::Ed(_) => Algorithm::EdDsa,
        }
    }

    /// The public JWK with `kid` and `alg`.
    pub(crate) fn jwk(&self, kid: &str) -> String {
        format!(
            r#"{{{},"kid":"{kid}","alg":"{}","use":"sig"}}"#,
            self.members,
            self.algorithm().name()
        )
    }

    /// The public JWK with `kid` only: the algorithm follows from kty/crv.
    pub(crate) fn jwk_without_alg(&self, kid: &str) -> String {
        format!(r#"{{{},"kid":"{kid}"}}"#, self.members)
    }

    /// A JWKS holding only this key.
    pub(crate) fn jwks(&self, kid: &str) -> String {
        format!(r#"{{"keys":[{}]}}"#, self.jwk(kid))
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Rsa(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .expect("sign");
                sig
            }
            Signer::Ec(pair) => pair.sign(&rng, message).expect("sign").as_ref().to_vec(),
            Signer::Ed(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }

    /// A compact JWS of exactly these header and claims, signed with this key.
    pub(crate) fn token(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header.to_string().as_bytes(), claims.to_string().as_bytes());
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", b64_encode(&sig))
    }
}

/// `base64url(header) . base64url(claims)` of raw bytes (which need not be valid JSON).
pub(crate) fn signing_input(header: &[u8], claims: &[u8]) -> String {
    format!("{}.{}", b64_encode(header), b64_encode(claims))
}
