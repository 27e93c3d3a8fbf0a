//! Service tokens: JWTs flinkguard signs itself, for CI jobs and service accounts where there
//! is no identity provider.
//!
//! The signing key is an ECDSA P-256 key (tokens are ES256) kept in the PKI directory as
//! `token-signing.key` (PKCS#8 PEM, mode 0600); its public half is published next to it as
//! `token-signing.jwks` with `kid` = the key's RFC 7638 thumbprint. The gateway verifies
//! service tokens from that JWKS with the same [`Verifier`](crate::Verifier) as identity
//! provider tokens.
//!
//! The key is created on first use by [`SigningKey::load_or_create`]: written completely to a
//! temporary file, then hard-linked into place, which fails if the key already exists — so
//! an existing key is never overwritten, and two concurrent first uses agree on one key.

use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use flinkguard_files::Mode;
use flinkguard_pki::{GroupName, KeyAlgorithm, KeyPair, PkiLayout, UserName};
use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::json::b64_encode;
use crate::jwk::{ec_thumbprint_input, thumbprint};
use crate::verify::is_usable_name;
use crate::{Algorithm, KeySet, SetupError, Ttl};

/// File name of the signing key in the PKI directory.
pub const SIGNING_KEY_FILE: &str = "token-signing.key";

/// File name of the signing key's public JWKS in the PKI directory.
pub const SIGNING_JWKS_FILE: &str = "token-signing.jwks";

/// The audience service tokens carry unless told otherwise.
pub const DEFAULT_SERVICE_AUDIENCE: &str = "flinkguard";

/// The `iss` of service tokens for a cluster: `flinkguard:<cluster name>`.
pub fn service_issuer(cluster_name: &str) -> String {
    format!("flinkguard:{cluster_name}")
}

/// Where the signing key and its JWKS live in a PKI directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyFiles {
    /// The private key, PKCS#8 PEM, mode 0600.
    pub key: PathBuf,
    /// The public key set, JWKS, mode 0644: what the gateway loads.
    pub jwks: PathBuf,
}

impl SigningKeyFiles {
    /// The files in `layout`'s directory.
    pub fn in_pki(layout: &PkiLayout) -> SigningKeyFiles {
        SigningKeyFiles {
            key: layout.root().join(SIGNING_KEY_FILE),
            jwks: layout.root().join(SIGNING_JWKS_FILE),
        }
    }
}

/// What [`SigningKey::load_or_create`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyOrigin {
    /// No key existed: a new key and its JWKS were written.
    Created,
    /// The key and a JWKS holding its public key existed.
    Loaded,
    /// The key existed but the JWKS was missing or did not hold its public key (e.g. after
    /// an interrupted first run); the JWKS was written anew.
    JwksWritten,
    /// Not read from or written to a PKI directory ([`SigningKey::generate`], `from_pem`).
    InMemory,
}

/// A service-token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTokenRequest {
    /// `iss`: [`service_issuer`] of the cluster.
    pub issuer: String,
    /// `aud`: usually [`DEFAULT_SERVICE_AUDIENCE`].
    pub audience: String,
    /// `sub`.
    pub user: UserName,
    /// `groups` (omitted from the token when empty).
    pub groups: Vec<GroupName>,
    /// Lifetime: `exp` = now + ttl.
    pub ttl: Ttl,
}

/// A minted service token. `Debug` does not print the token: it is a bearer credential.
pub struct IssuedToken {
    token: Zeroizing<String>,
    /// The random `jti`.
    pub token_id: String,
    /// `iat` and `nbf`.
    pub issued_at: OffsetDateTime,
    /// `exp`.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("token_id", &self.token_id)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl IssuedToken {
    /// The compact JWS, for an `Authorization: Bearer` header.
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// The key service tokens are signed with (ECDSA P-256, ES256).
pub struct SigningKey {
    pair: EcdsaKeyPair,
    pkcs8_pem: Zeroizing<String>,
    kid: String,
    jwk: serde_json::Value,
    origin: KeyOrigin,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key in memory only (tests, or callers that store it themselves).
    pub fn generate() -> Result<SigningKey, SetupError> {
        Self::from_key_pair(&KeyPair::generate(KeyAlgorithm::EcdsaP256)?)
    }

    /// A key from a PKCS#8 `PRIVATE KEY` PEM block holding an ECDSA P-256 key.
    pub fn from_pem(text: &str) -> Result<SigningKey, SetupError> {
        Self::from_key_pair(&KeyPair::from_pem(text)?)
    }

    fn from_key_pair(key: &KeyPair) -> Result<SigningKey, SetupError> {
        if key.algorithm() != KeyAlgorithm::EcdsaP256 {
            return Err(SetupError::Crypto(
                "the token signing key must be an ECDSA P-256 key",
            ));
        }
        let pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, key.pkcs8_der())
                .map_err(|_| SetupError::Crypto("not a usable ECDSA P-256 private key"))?;
        let point = pair.public_key().as_ref();
        let (x, y) = match point {
            [0x04, coordinates @ ..] if coordinates.len() == 64 => coordinates.split_at(32),
            _ => return Err(SetupError::Crypto("unexpected P-256 public key encoding")),
        };
        let kid = thumbprint(&ec_thumbprint_input(x, y));
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64_encode(x),
            "y": b64_encode(y),
            "kid": kid,
            "alg": Algorithm::Es256.name(),
            "use": "sig",
        });
        Ok(SigningKey {
            pair,
            pkcs8_pem: key.pkcs8_pem(),
            kid,
            jwk,
            origin: KeyOrigin::InMemory,
        })
    }

    /// Loads the PKI's signing key; fails if it does not exist.
    pub fn load(layout: &PkiLayout) -> Result<SigningKey, SetupError> {
        let files = SigningKeyFiles::in_pki(layout);
        let text = Zeroizing::new(
            fs::read_to_string(&files.key).map_err(|e| SetupError::file("read", &files.key, e))?,
        );
        let mut key = Self::from_pem(&text).map_err(|e| SetupError::in_file(&files.key, e))?;
        key.origin = KeyOrigin::Loaded;
        Ok(key)
    }

    /// Loads the PKI's signing key, creating it (and its JWKS) if there is none yet. Never
    /// overwrites an existing key; rewrites the JWKS only when it lacks the key's public half.
    pub fn load_or_create(layout: &PkiLayout) -> Result<SigningKey, SetupError> {
        let files = SigningKeyFiles::in_pki(layout);
        if !layout.root().is_dir() {
            return Err(SetupError::NoPki(layout.root().to_owned()));
        }
        let mut created = false;
        if !files.key.exists() {
            let fresh = Self::generate()?;
            created = flinkguard_files::create_complete(
                &files.key,
                fresh.pkcs8_pem.as_bytes(),
                Mode::Secret,
            )?;
            // When another process won the race, its key is loaded below.
        }
        let mut key = Self::load(layout)?;
        let wrote_jwks = key.publish(&files.jwks)?;
        key.origin = match (created, wrote_jwks) {
            (true, _) => KeyOrigin::Created,
            (false, true) => KeyOrigin::JwksWritten,
            (false, false) => KeyOrigin::Loaded,
        };
        Ok(key)
    }

    /// Writes the JWKS unless `path` already holds this key's public key (possibly among
    /// others, e.g. during a rotation). Returns whether it wrote.
    fn publish(&self, path: &Path) -> Result<bool, SetupError> {
        let wanted = self.jwks_json();
        match fs::read_to_string(path) {
            Ok(existing) if existing == wanted => return Ok(false),
            Ok(existing) => {
                let holds_key = KeySet::from_jwks_json(&existing).is_ok_and(|set| {
                    set.keys()
                        .any(|k| k.thumbprint() == self.kid && k.key_id() == Some(&self.kid))
                });
                if holds_key {
                    return Ok(false);
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(SetupError::file("read", path, e)),
        }
        flinkguard_files::write_atomic(path, wanted.as_bytes(), Mode::Public)?;
        Ok(true)
    }

    /// How this key came to be.
    pub fn origin(&self) -> KeyOrigin {
        self.origin
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// The public key set (`{"keys": [ ... ]}`) as written to `token-signing.jwks`.
    pub fn jwks_json(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(&json!({ "keys": [self.jwk] })).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The public key set, for a verifier in the same process.
    pub fn key_set(&self) -> Result<KeySet, SetupError> {
        KeySet::from_jwks_json(&self.jwks_json())
    }

    /// Mints a token at time `now`.
    pub fn issue(
        &self,
        request: &ServiceTokenRequest,
        now: OffsetDateTime,
    ) -> Result<IssuedToken, SetupError> {
        for (field, value) in [("issuer", &request.issuer), ("audience", &request.audience)] {
            if !is_usable_name(value) {
                return Err(SetupError::InvalidRequest(format!(
                    "{field} must be 1 to 256 characters without control characters"
                )));
            }
        }
        let issued_at = now.unix_timestamp();
        let lifetime = i64::try_from(request.ttl.duration().as_secs())
            .map_err(|_| SetupError::InvalidRequest("lifetime too long".into()))?;
        let expires_at = issued_at.saturating_add(lifetime);
        let as_time = |t: i64| {
            OffsetDateTime::from_unix_timestamp(t)
                .map_err(|_| SetupError::InvalidRequest("the expiry is out of range".into()))
        };
        let mut id = [0u8; 16];
        SystemRandom::new()
            .fill(&mut id)
            .map_err(|_| SetupError::Crypto("no random numbers for the token id"))?;
        let token_id = b64_encode(&id);
        let header = json!({ "alg": Algorithm::Es256.name(), "kid": self.kid, "typ": "JWT" });
        let mut claims = json!({
            "iss": request.issuer,
            "aud": request.audience,
            "sub": request.user.as_str(),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": expires_at,
            "jti": token_id,
        });
        if !request.groups.is_empty() {
            claims["groups"] = request.groups.iter().map(GroupName::as_str).collect();
        }
        let input = format!(
            "{}.{}",
            b64_encode(header.to_string().as_bytes()),
            b64_encode(claims.to_string().as_bytes())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| SetupError::Crypto("signing the token failed"))?;
        Ok(IssuedToken {
            token: Zeroizing::new(format!("{input}.{}", b64_encode(signature.as_ref()))),
            token_id,
            issued_at: as_time(issued_at)?,
            expires_at: as_time(expires_at)?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::{TokenError, Verifier, VerifierConfig};

    fn request(ttl: &str) -> ServiceTokenRequest {
        ServiceTokenRequest {
            issuer: service_issuer("prod"),
            audience: DEFAULT_SERVICE_AUDIENCE.into(),
            user: "ci-deployer".parse().unwrap(),
            groups: vec!["team-a".parse().unwrap(), "ci".parse().unwrap()],
            ttl: ttl.parse().unwrap(),
        }
    }

    fn service_verifier(keys: KeySet) -> Verifier {
        Verifier::new(
            VerifierConfig::new(
                vec![service_issuer("prod")],
                vec![DEFAULT_SERVICE_AUDIENCE.into()],
            ),
            keys,
        )
        .unwrap()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn issued_tokens_verify_through_the_published_jwks() {
        let dir = tempfile::tempdir().unwrap();
        let layout = PkiLayout::new(dir.path());
        let key = SigningKey::load_or_create(&layout).unwrap();
        assert_eq!(key.origin(), KeyOrigin::Created);
        let files = SigningKeyFiles::in_pki(&layout);
        assert_eq!(mode(&files.key), 0o600);
        assert_eq!(mode(&files.jwks), 0o644);
        let pem = fs::read_to_string(&files.key).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");

        let now = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
        let issued = key.issue(&request("12h"), now).unwrap();
        assert!(!format!("{issued:?}").contains(issued.token()));
        let verifier = service_verifier(KeySet::from_jwks_file(&files.jwks).unwrap());
        let identity = verifier.verify(issued.token(), now).unwrap();
        assert_eq!(identity.user, "ci-deployer");
        assert_eq!(identity.groups, ["team-a", "ci"]);
        assert_eq!(identity.issuer, "flinkguard:prod");
        assert_eq!(identity.expires_at, now + time::Duration::hours(12));
        assert_eq!(identity.token_id.as_deref(), Some(issued.token_id.as_str()));
        assert_eq!(identity.key_id.as_deref(), Some(key.key_id()));
        assert_eq!(identity.algorithm, Algorithm::Es256);

        // Expired after its lifetime (plus leeway); ids differ between tokens.
        let later = now + time::Duration::hours(12) + time::Duration::minutes(1);
        assert_eq!(
            verifier.verify(issued.token(), later),
            Err(TokenError::Expired)
        );
        let again = key.issue(&request("12h"), now).unwrap();
        assert_ne!(again.token_id, issued.token_id);

        // Without groups the claim is omitted, and the verifier sees none.
        let mut no_groups = request("30m");
        no_groups.groups.clear();
        let token = key.issue(&no_groups, now).unwrap();
        assert!(
            verifier
                .verify(token.token(), now)
                .unwrap()
                .groups
                .is_empty()
        );

        // Another audience is refused by a verifier expecting the default one.
        let mut other = request("30m");
        other.audience = "other".into();
        let token = key.issue(&other, now).unwrap();
        assert_eq!(
            verifier.verify(token.token(), now),
            Err(TokenError::WrongAudience)
        );
    }

    #[test]
    fn existing_keys_are_reused_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let layout = PkiLayout::new(dir.path());
        let files = SigningKeyFiles::in_pki(&layout);
        let first = SigningKey::load_or_create(&layout).unwrap();
        let pem = fs::read(&files.key).unwrap();
        let second = SigningKey::load_or_create(&layout).unwrap();
        assert_eq!(second.origin(), KeyOrigin::Loaded);
        assert_eq!(second.key_id(), first.key_id());
        assert_eq!(fs::read(&files.key).unwrap(), pem);

        // A lost JWKS (e.g. a crash between the two writes) is restored from the key.
        fs::remove_file(&files.jwks).unwrap();
        let third = SigningKey::load_or_create(&layout).unwrap();
        assert_eq!(third.origin(), KeyOrigin::JwksWritten);
        assert_eq!(fs::read_to_string(&files.jwks).unwrap(), first.jwks_json());

        // A JWKS that holds this key among others (a rotation) is left alone.
        let other = SigningKey::generate().unwrap();
        let both = format!(r#"{{"keys":[{},{}]}}"#, first.jwk, other.jwk);
        fs::write(&files.jwks, &both).unwrap();
        assert_eq!(
            SigningKey::load_or_create(&layout).unwrap().origin(),
            KeyOrigin::Loaded
        );
        assert_eq!(fs::read_to_string(&files.jwks).unwrap(), both);
        // One without it is replaced.
        fs::write(&files.jwks, other.jwks_json()).unwrap();
        assert_eq!(
            SigningKey::load_or_create(&layout).unwrap().origin(),
            KeyOrigin::JwksWritten
        );

        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn concurrent_first_uses_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let layout = PkiLayout::new(dir.path());
        let kids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| SigningKey::load_or_create(&layout).unwrap().kid.clone()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(kids.iter().all(|k| k == &kids[0]), "{kids:?}");
        let key = SigningKey::load(&layout).unwrap();
        assert_eq!(key.key_id(), kids[0]);
    }

    #[test]
    fn missing_pki_and_unusable_keys_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = PkiLayout::new(dir.path().join("pki"));
        let err = SigningKey::load_or_create(&missing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("flinkguard init"), "{err}");
        assert!(!dir.path().join("pki").exists());

        let layout = PkiLayout::new(dir.path());
        let files = SigningKeyFiles::in_pki(&layout);
        let rsa = KeyPair::generate(KeyAlgorithm::Rsa3072).unwrap();
        fs::write(&files.key, rsa.pkcs8_pem().as_bytes()).unwrap();
        let err = SigningKey::load_or_create(&layout).unwrap_err().to_string();
        assert!(
            err.contains(SIGNING_KEY_FILE) && err.contains("P-256"),
            "{err}"
        );
        fs::write(&files.key, "garbage").unwrap();
        let err = SigningKey::load_or_create(&layout).unwrap_err().to_string();
        assert!(err.contains(SIGNING_KEY_FILE), "{err}");
        // The broken key was not replaced.
        assert_eq!(fs::read_to_string(&files.key).unwrap(), "garbage");
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint_and_requests_are_checked() {
        let key = SigningKey::generate().unwrap();
        let set = key.key_set().unwrap();
        let only = set.keys().next().unwrap();
        assert_eq!(only.thumbprint(), key.key_id());
        assert_eq!(only.key_id(), Some(key.key_id()));
        assert_eq!(key.key_id().len(), 43);

        let now = OffsetDateTime::now_utc();
        let mut bad = request("1h");
        bad.audience = String::new();
        assert!(
            key.issue(&bad, now)
                .unwrap_err()
                .to_string()
                .contains("audience")
        );
        let mut bad = request("1h");
        bad.issuer = "a\nb".into();
        assert!(
            key.issue(&bad, now)
                .unwrap_err()
                .to_string()
                .contains("issuer")
        );

        // The key survives a PEM round trip.
        let again = SigningKey::from_pem(&key.pkcs8_pem).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        let token = again.issue(&request("90d"), now).unwrap();
        assert!(
            service_verifier(key.key_set().unwrap())
                .verify(token.token(), now)
                .is_ok()
        );
    }
}
