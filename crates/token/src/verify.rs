//! Bearer JWT verification.
//!
//! The order is fixed and cheap checks come first: size, shape, strict base64url and JSON,
//! algorithm allow-list, `crit`, key lookup by `kid` (one hash lookup), algorithm pinned by the
//! key, signature, and only then the claims: `iss`, `aud`, `exp` (required), `nbf`, the user
//! and the groups. Header members that point at keys (`jwk`, `jku`, `x5u`, `x5c`) are ignored:
//! keys come only from the configured key set.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::json::{self, JsonError};
use crate::jwk::KeyLookup;
use crate::{Algorithm, KeySetHandle, SetupError, TokenError};

/// Tokens longer than this are refused before any decoding (8 KiB, which also keeps them
/// under common HTTP header limits).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The default allowed clock skew for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The largest clock skew a configuration may allow.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// The longest user or group name accepted from a token.
const MAX_NAME_LEN: usize = 256;

/// What a [`Verifier`] accepts.
///
/// `issuers` and `audiences` must both be non-empty: a verifier that accepted any issuer or
/// any audience would take tokens minted for other services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Accepted `iss` values, compared exactly.
    pub issuers: Vec<String>,
    /// Accepted audiences: a token passes if its `aud` (a string or an array of strings)
    /// contains at least one of them.
    pub audiences: Vec<String>,
    /// Allowed clock skew for `exp` and `nbf` (default 60 s, at most [`MAX_LEEWAY`]).
    pub leeway: Duration,
    /// The claim holding the user name (default `sub`). A name starting with `/` is a JSON
    /// pointer into the claims (RFC 6901), e.g. `/ext/user`.
    pub user_claim: String,
    /// The claim holding the groups, an array of strings or absent (default `groups`). A name
    /// starting with `/` is a JSON pointer, e.g. `/realm_access/roles` for Keycloak roles.
    pub groups_claim: String,
}

impl Default for VerifierConfig {
    /// No issuer and no audience (which [`Verifier::new`] refuses), the default leeway and
    /// claim names.
    fn default() -> Self {
        VerifierConfig {
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            user_claim: "sub".to_owned(),
            groups_claim: "groups".to_owned(),
        }
    }
}

impl VerifierConfig {
    /// A configuration for these issuers and audiences with default leeway and claim names.
    pub fn new(issuers: Vec<String>, audiences: Vec<String>) -> VerifierConfig {
        VerifierConfig {
            issuers,
            audiences,
            ..VerifierConfig::default()
        }
    }

    fn check(&self) -> Result<(), SetupError> {
        let invalid = |message: String| Err(SetupError::InvalidConfig(message));
        if self.issuers.is_empty() {
            return invalid("issuers: list at least one trusted token issuer (`iss`)".into());
        }
        if self.audiences.is_empty() {
            return invalid(
                "audiences: list at least one audience (`aud`) tokens must be minted for, \
                 or tokens for any other service of the same issuer would be accepted"
                    .into(),
            );
        }
        for (field, values) in [("issuers", &self.issuers), ("audiences", &self.audiences)] {
            if values.iter().any(|v| v.is_empty()) {
                return invalid(format!("{field}: an entry is empty"));
            }
        }
        if self.leeway > MAX_LEEWAY {
            return invalid(format!(
                "leeway: {} s is more than the maximum of {} s; fix the clocks (NTP) instead",
                self.leeway.as_secs(),
                MAX_LEEWAY.as_secs()
            ));
        }
        for (field, name) in [
            ("user_claim", &self.user_claim),
            ("groups_claim", &self.groups_claim),
        ] {
            if name.is_empty() || name == "/" {
                return invalid(format!("{field}: name a claim, e.g. `sub` or `/ext/user`"));
            }
        }
        Ok(())
    }
}

/// The identity a verified token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The user (from the configured user claim).
    pub user: String,
    /// The groups (from the configured groups claim; empty when absent).
    pub groups: Vec<String>,
    /// The `iss` claim, one of the configured issuers.
    pub issuer: String,
    /// The `exp` claim.
    pub expires_at: OffsetDateTime,
    /// The `jti` claim, if any.
    pub token_id: Option<String>,
    /// The `kid` of the key that verified the token, if it had one.
    pub key_id: Option<String>,
    /// The algorithm the token was signed with.
    pub algorithm: Algorithm,
}

/// Verifies bearer JWTs for one set of issuers against one key set.
///
/// Cheap to clone; clones share the configuration and the key set handle, so replacing the
/// key set through the handle reaches every clone.
///
/// ```
/// # use flinkguard_token::*;
/// # fn demo(jwks: &str, token: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let keys = KeySetHandle::new(KeySet::from_jwks_json(jwks)?);
/// let verifier = Verifier::new(
///     VerifierConfig::new(vec!["https://idp.example.org".into()], vec!["flinkguard".into()]),
///     keys.clone(),
/// )?;
/// let identity = verifier.verify(token, time::OffsetDateTime::now_utc())?;
/// println!("{} in {:?}", identity.user, identity.groups);
/// // Later, after fetching the JWKS again: every request from now on sees the new keys.
/// keys.replace(KeySet::from_jwks_json(jwks)?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Verifier {
    config: Arc<VerifierConfig>,
    keys: KeySetHandle,
}

impl Verifier {
    /// A verifier for `config` using the keys behind `keys` (a [`KeySet`](crate::KeySet) or a
    /// shared [`KeySetHandle`]). Refuses configurations that would accept too much.
    pub fn new(
        config: VerifierConfig,
        keys: impl Into<KeySetHandle>,
    ) -> Result<Verifier, SetupError> {
        config.check()?;
        Ok(Verifier {
            config: Arc::new(config),
            keys: keys.into(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// The key set handle, to swap in refreshed keys.
    pub fn keys(&self) -> &KeySetHandle {
        &self.keys
    }

    /// Verifies a compact JWS (the part after `Bearer `) at time `now`.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<VerifiedToken, TokenError> {
        self.verify_parsed(&Unverified::parse(token)?, now)
    }

    fn verify_parsed(
        &self,
        token: &Unverified<'_>,
        now: OffsetDateTime,
    ) -> Result<VerifiedToken, TokenError> {
        let keys = self.keys.load();
        let key = match keys.lookup(token.kid.as_deref()) {
            KeyLookup::Found(key) => key,
            KeyLookup::MissingKeyId => return Err(TokenError::MissingKeyId),
            KeyLookup::UnknownKeyId => {
                // The issuer may have rotated its keys: ask for a refresh (rate-limited by
                // the refresher) and refuse this token now rather than make it wait.
                self.keys.request_refresh();
                return Err(TokenError::UnknownKeyId);
            }
        };
        if key.algorithm() != token.alg {
            return Err(TokenError::AlgorithmMismatch);
        }
        if !key.verifies(token.signing_input.as_bytes(), &token.signature) {
            return Err(TokenError::BadSignature);
        }
        let claims = &token.claims;
        let config = &*self.config;

        let issuer = match claims.get("iss") {
            None => return Err(TokenError::MissingClaim("iss")),
            Some(Value::String(iss)) => iss,
            Some(_) => return Err(TokenError::InvalidClaim("iss")),
        };
        if !config.issuers.iter().any(|trusted| trusted == issuer) {
            return Err(TokenError::UntrustedIssuer);
        }

        let audience_ok = match claims.get("aud") {
            None => return Err(TokenError::MissingClaim("aud")),
            Some(Value::String(aud)) => config.audiences.contains(aud),
            Some(Value::Array(auds)) => {
                let mut ok = false;
                for aud in auds {
                    let Value::String(aud) = aud else {
                        return Err(TokenError::InvalidClaim("aud"));
                    };
                    ok |= config.audiences.contains(aud);
                }
                ok
            }
            Some(_) => return Err(TokenError::InvalidClaim("aud")),
        };
        if !audience_ok {
            return Err(TokenError::WrongAudience);
        }

        // Leeway is at most MAX_LEEWAY, so the cast cannot overflow.
        let leeway = config.leeway.as_secs() as i64;
        let now = now.unix_timestamp();
        let exp = match claims.get("exp") {
            None => return Err(TokenError::MissingClaim("exp")),
            Some(v) => numeric_date(v).ok_or(TokenError::InvalidClaim("exp"))?,
        };
        // RFC 7519 §4.1.4: the token must not be accepted on or after `exp`.
        if now >= exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        let expires_at = OffsetDateTime::from_unix_timestamp(exp)
            .map_err(|_| TokenError::InvalidClaim("exp"))?;
        if let Some(nbf) = claims.get("nbf") {
            let nbf = numeric_date(nbf).ok_or(TokenError::InvalidClaim("nbf"))?;
            if now.saturating_add(leeway) < nbf {
                return Err(TokenError::NotYetValid);
            }
        }
        if claims
            .get("iat")
            .is_some_and(|iat| numeric_date(iat).is_none())
        {
            return Err(TokenError::InvalidClaim("iat"));
        }

        let user = match claim(claims, &config.user_claim) {
            None => return Err(TokenError::MissingClaim("user")),
            Some(Value::String(user)) if is_usable_name(user) => user.clone(),
            Some(_) => return Err(TokenError::InvalidClaim("user")),
        };
        let groups = match claim(claims, &config.groups_claim) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(group) if is_usable_name(group) => Ok(group.clone()),
                    _ => Err(TokenError::InvalidClaim("groups")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(TokenError::InvalidClaim("groups")),
        };
        let token_id = match claims.get("jti") {
            None => None,
            Some(Value::String(jti)) if is_usable_name(jti) => Some(jti.clone()),
            Some(_) => return Err(TokenError::InvalidClaim("jti")),
        };

        Ok(VerifiedToken {
            user,
            groups,
            issuer: issuer.clone(),
            expires_at,
            token_id,
            key_id: key.key_id().map(str::to_owned),
            algorithm: key.algorithm(),
        })
    }
}

/// Several verifiers, each bound to its own issuers and keys — e.g. the identity provider's
/// and flinkguard's own service tokens — with a token routed by its `iss` claim.
///
/// Routing by `iss` keeps each issuer's keys to that issuer: a key of the identity provider
/// can never vouch for a token claiming to come from `flinkguard:<cluster>`, and the other way
/// round. Every check of the chosen [`Verifier`] still applies, `iss` included.
#[derive(Debug, Clone)]
pub struct VerifierSet {
    verifiers: Vec<Verifier>,
    by_issuer: HashMap<String, usize>,
}

impl VerifierSet {
    /// Combines verifiers; each issuer may belong to one verifier only.
    pub fn new(verifiers: Vec<Verifier>) -> Result<VerifierSet, SetupError> {
        let mut by_issuer = HashMap::new();
        for (index, verifier) in verifiers.iter().enumerate() {
            for issuer in &verifier.config.issuers {
                if by_issuer.insert(issuer.clone(), index).is_some() {
                    return Err(SetupError::InvalidConfig(format!(
                        "issuer {issuer:?} is configured twice; each issuer has one key set"
                    )));
                }
            }
        }
        if verifiers.is_empty() {
            return Err(SetupError::InvalidConfig(
                "no token issuer is configured".into(),
            ));
        }
        Ok(VerifierSet {
            verifiers,
            by_issuer,
        })
    }

    /// The verifiers, in the order given.
    pub fn verifiers(&self) -> &[Verifier] {
        &self.verifiers
    }

    /// Verifies a token with the verifier of its (as yet unverified) issuer.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<VerifiedToken, TokenError> {
        let parsed = Unverified::parse(token)?;
        let issuer = match parsed.claims.get("iss") {
            None => return Err(TokenError::MissingClaim("iss")),
            Some(Value::String(iss)) => iss,
            Some(_) => return Err(TokenError::InvalidClaim("iss")),
        };
        let verifier = self
            .by_issuer
            .get(issuer)
            .and_then(|&i| self.verifiers.get(i))
            .ok_or(TokenError::UntrustedIssuer)?;
        verifier.verify_parsed(&parsed, now)
    }
}

/// A token split and decoded, nothing about it trusted yet.
#[derive(Debug)]
struct Unverified<'a> {
    signing_input: &'a str,
    alg: Algorithm,
    kid: Option<String>,
    claims: Map<String, Value>,
    signature: Vec<u8>,
}

impl<'a> Unverified<'a> {
    fn parse(token: &'a str) -> Result<Unverified<'a>, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
        if header.is_empty() || payload.is_empty() || payload.contains('.') {
            return Err(TokenError::Malformed);
        }
        let decode = |segment: &str| json::b64_decode(segment).ok_or(TokenError::BadEncoding);
        let object = |bytes: Vec<u8>| {
            json::parse_object(&bytes).map_err(|e| match e {
                JsonError::NotAnObject => TokenError::BadJson,
                JsonError::DuplicateMember => TokenError::DuplicateMember,
            })
        };
        let header = object(decode(header)?)?;
        let alg = match header.get("alg") {
            Some(Value::String(name)) => match Algorithm::from_name(name) {
                Some(alg) => alg,
                // Some libraries once accepted "None" and "NONE" too; name them all as what
                // they are.
                None if name.eq_ignore_ascii_case("none") => return Err(TokenError::Unsigned),
                None => return Err(TokenError::UnsupportedAlgorithm),
            },
            _ => return Err(TokenError::BadHeader),
        };
        if header.contains_key("crit") {
            return Err(TokenError::CriticalHeader);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(TokenError::BadHeader),
        };
        let claims = object(decode(payload)?)?;
        let signature = decode(signature)?;
        Ok(Unverified {
            signing_input,
            alg,
            kid,
            claims,
            signature,
        })
    }
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, possibly fractional (floored).
fn numeric_date(value: &Value) -> Option<i64> {
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(seconds) = n.as_i64() {
        return Some(seconds);
    }
    // Bounded well inside i64 and OffsetDateTime's range; the cast floors after `floor()`.
    n.as_f64()
        .filter(|f| f.is_finite() && f.abs() < 1e15)
        .map(|f| f.floor() as i64)
}

/// A claim by name, or by JSON pointer when the name starts with `/`.
fn claim<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c Value> {
    let Some(pointer) = name.strip_prefix('/') else {
        return claims.get(name);
    };
    let mut segments = pointer
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"));
    let first = segments.next()?;
    let mut value = claims.get(&first)?;
    for segment in segments {
        value = match value {
            Value::Object(map) => map.get(&segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// User and group names end up in policy decisions and audit lines: non-empty, bounded, and
/// free of control characters (no forged log lines).
pub(crate) fn is_usable_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && !name.chars().any(char::is_control)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::json::b64_encode;
    use crate::testkeys::{self, TestKey, signing_input};
    use crate::{KeySet, SigningKey};

    const ISS: &str = "https://idp.example.org/realms/flink";
    const AUD: &str = "flinkguard";
    const NOW: i64 = 1_750_000_000;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW).unwrap()
    }

    fn claims() -> Value {
        json!({
            "iss": ISS,
            "aud": AUD,
            "sub": "alice",
            "groups": ["team-a", "analysts"],
            "exp": NOW + 600,
            "nbf": NOW - 10,
            "iat": NOW - 10,
            "jti": "t-1",
        })
    }

    fn header(key: &TestKey, kid: &str) -> Value {
        json!({ "alg": key.algorithm().name(), "typ": "JWT", "kid": kid })
    }

    fn verifier_for(jwks: &str) -> Verifier {
        Verifier::new(
            VerifierConfig::new(vec![ISS.into()], vec![AUD.into()]),
            KeySet::from_jwks_json(jwks).unwrap(),
        )
        .unwrap()
    }

    /// A verifier trusting the RSA, EC and Ed25519 test keys under kids "rsa", "ec", "ed".
    fn verifier() -> Verifier {
        verifier_for(&format!(
            r#"{{"keys":[{},{},{}]}}"#,
            testkeys::rsa().jwk("rsa"),
            testkeys::ec().jwk("ec"),
            testkeys::ed().jwk_without_alg("ed"),
        ))
    }

    fn ec_token(claims: &Value) -> String {
        testkeys::ec().token(&header(testkeys::ec(), "ec"), claims)
    }

    fn verify(token: &str) -> Result<VerifiedToken, TokenError> {
        verifier().verify(token, now())
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }

    fn without(mut claims: Value, name: &str) -> Value {
        claims.as_object_mut().unwrap().remove(name);
        claims
    }

    #[test]
    fn rs256_es256_and_eddsa_tokens_verify_from_a_jwks() {
        for (key, kid) in [
            (testkeys::rsa(), "rsa"),
            (testkeys::ec(), "ec"),
            (testkeys::ed(), "ed"),
        ] {
            let token = key.token(&header(key, kid), &claims());
            let identity = verify(&token).unwrap();
            assert_eq!(
                identity,
                VerifiedToken {
                    user: "alice".into(),
                    groups: vec!["team-a".into(), "analysts".into()],
                    issuer: ISS.into(),
                    expires_at: OffsetDateTime::from_unix_timestamp(NOW + 600).unwrap(),
                    token_id: Some("t-1".into()),
                    key_id: Some(kid.into()),
                    algorithm: key.algorithm(),
                }
            );
        }
    }

    #[test]
    fn expiry_is_required_and_enforced_with_leeway() {
        assert_eq!(
            verify(&ec_token(&without(claims(), "exp"))),
            Err(TokenError::MissingClaim("exp"))
        );
        // Within the 60 s leeway it still passes; at exactly exp + leeway it does not.
        assert!(verify(&ec_token(&with(claims(), "exp", json!(NOW - 59)))).is_ok());
        assert_eq!(
            verify(&ec_token(&with(claims(), "exp", json!(NOW - 60)))),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&ec_token(&with(claims(), "exp", json!(NOW - 3600)))),
            Err(TokenError::Expired)
        );
        // Fractional NumericDates are floored.
        assert!(
            verify(&ec_token(&with(
                claims(),
                "exp",
                json!((NOW + 1) as f64 + 0.5)
            )))
            .is_ok()
        );
        for bad in [
            json!("tomorrow"),
            json!(null),
            json!(1e300),
            json!(u64::MAX),
        ] {
            assert_eq!(
                verify(&ec_token(&with(claims(), "exp", bad))),
                Err(TokenError::InvalidClaim("exp"))
            );
        }
        // A custom leeway of zero.
        let strict = Verifier::new(
            VerifierConfig {
                leeway: Duration::ZERO,
                ..VerifierConfig::new(vec![ISS.into()], vec![AUD.into()])
            },
            KeySet::from_jwks_json(&testkeys::ec().jwks("ec")).unwrap(),
        )
        .unwrap();
        let token = ec_token(&with(claims(), "exp", json!(NOW)));
        assert_eq!(strict.verify(&token, now()), Err(TokenError::Expired));
    }

    #[test]
    fn not_before_is_enforced_with_leeway() {
        assert!(verify(&ec_token(&with(claims(), "nbf", json!(NOW + 60)))).is_ok());
        assert_eq!(
            verify(&ec_token(&with(claims(), "nbf", json!(NOW + 61)))),
            Err(TokenError::NotYetValid)
        );
        assert!(verify(&ec_token(&without(claims(), "nbf"))).is_ok());
        assert_eq!(
            verify(&ec_token(&with(claims(), "nbf", json!("soon")))),
            Err(TokenError::InvalidClaim("nbf"))
        );
        assert_eq!(
            verify(&ec_token(&with(claims(), "iat", json!([])))),
            Err(TokenError::InvalidClaim("iat"))
        );
    }

    #[test]
    fn audience_string_or_array_must_intersect() {
        assert!(verify(&ec_token(&with(claims(), "aud", json!(["other", AUD])))).is_ok());
        assert_eq!(
            verify(&ec_token(&with(claims(), "aud", json!("other")))),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            verify(&ec_token(&with(claims(), "aud", json!([])))),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            verify(&ec_token(&with(claims(), "aud", json!([AUD, 1])))),
            Err(TokenError::InvalidClaim("aud"))
        );
        assert_eq!(
            verify(&ec_token(&with(claims(), "aud", json!({ "x": AUD })))),
            Err(TokenError::InvalidClaim("aud"))
        );
        assert_eq!(
            verify(&ec_token(&without(claims(), "aud"))),
            Err(TokenError::MissingClaim("aud"))
        );
    }

    #[test]
    fn issuer_must_be_trusted_exactly() {
        for other in [
            "https://evil.example.org/realms/flink",
            "https://idp.example.org/realms/flink/",
            "HTTPS://IDP.EXAMPLE.ORG/realms/flink",
        ] {
            assert_eq!(
                verify(&ec_token(&with(claims(), "iss", json!(other)))),
                Err(TokenError::UntrustedIssuer)
            );
        }
        assert_eq!(
            verify(&ec_token(&without(claims(), "iss"))),
            Err(TokenError::MissingClaim("iss"))
        );
        assert_eq!(
            verify(&ec_token(&with(claims(), "iss", json!([ISS])))),
            Err(TokenError::InvalidClaim("iss"))
        );
    }

    #[test]
    fn alg_none_is_refused_in_every_spelling() {
        for alg in ["none", "None", "NONE"] {
            let input = signing_input(
                json!({ "alg": alg, "typ": "JWT" }).to_string().as_bytes(),
                claims().to_string().as_bytes(),
            );
            // Unsigned tokens end with an empty signature; also try a fake one.
            for token in [format!("{input}."), format!("{input}.c2ln")] {
                assert_eq!(verify(&token), Err(TokenError::Unsigned), "{token}");
            }
        }
    }

    /// The classic confusion: the attacker signs HS256 with the server's *public* key as the
    /// HMAC secret, hoping the verifier feeds the key bytes to HMAC.
    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        use aws_lc_rs::hmac;
        for key in [testkeys::rsa(), testkeys::ec()] {
            for kid in [Some("rsa"), Some("ec"), None] {
                let mut header = json!({ "alg": "HS256", "typ": "JWT" });
                if let Some(kid) = kid {
                    header["kid"] = json!(kid);
                }
                let input = signing_input(
                    header.to_string().as_bytes(),
                    claims().to_string().as_bytes(),
                );
                for secret in [key.spki.clone(), key.jwk("rsa").into_bytes()] {
                    let tag = hmac::sign(
                        &hmac::Key::new(hmac::HMAC_SHA256, &secret),
                        input.as_bytes(),
                    );
                    let token = format!("{input}.{}", b64_encode(tag.as_ref()));
                    assert_eq!(verify(&token), Err(TokenError::UnsupportedAlgorithm));
                }
            }
        }
        for alg in ["HS384", "PS256", "RS512", "ES384", "rs256", "Ed25519", ""] {
            let input = signing_input(
                json!({ "alg": alg, "kid": "rsa" }).to_string().as_bytes(),
                claims().to_string().as_bytes(),
            );
            let token = format!(
                "{input}.{}",
                b64_encode(&testkeys::rsa().sign(input.as_bytes()))
            );
            assert_eq!(
                verify(&token),
                Err(TokenError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn header_alg_must_match_the_keys_pinned_alg() {
        // A genuine ES256 signature presented under the RSA key's kid, and the other way round.
        let ec = testkeys::ec();
        let rsa = testkeys::rsa();
        let ed = testkeys::ed();
        for (signer, alg, kid) in [
            (ec, "ES256", "rsa"),
            (rsa, "RS256", "ec"),
            (ed, "EdDSA", "ec"),
            (ec, "ES256", "ed"),
            (rsa, "ES256", "rsa"),
        ] {
            let token = signer.token(&json!({ "alg": alg, "kid": kid }), &claims());
            assert_eq!(
                verify(&token),
                Err(TokenError::AlgorithmMismatch),
                "{alg} {kid}"
            );
        }
    }

    #[test]
    fn key_ids_are_looked_up_never_searched() {
        let ec = testkeys::ec();
        assert_eq!(
            verify(&ec.token(&header(ec, "no-such-key"), &claims())),
            Err(TokenError::UnknownKeyId)
        );
        // No kid with three keys: refused, not tried against each key.
        assert_eq!(
            verify(&ec.token(&json!({ "alg": "ES256" }), &claims())),
            Err(TokenError::MissingKeyId)
        );
        // No kid with a single key: that key.
        let single = verifier_for(&ec.jwks("only"));
        let token = ec.token(&json!({ "alg": "ES256" }), &claims());
        assert_eq!(
            single.verify(&token, now()).unwrap().key_id.as_deref(),
            Some("only")
        );
        assert_eq!(
            verify(&ec.token(&json!({ "alg": "ES256", "kid": 7 }), &claims())),
            Err(TokenError::BadHeader)
        );
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let token = ec_token(&claims());
        let (input, signature) = token.rsplit_once('.').unwrap();
        let (head, _) = input.split_once('.').unwrap();
        // The payload swapped for another user's.
        let forged_claims =
            b64_encode(with(claims(), "sub", json!("admin")).to_string().as_bytes());
        assert_eq!(
            verify(&format!("{head}.{forged_claims}.{signature}")),
            Err(TokenError::BadSignature)
        );
        // One bit of the signature flipped.
        let mut sig = json::b64_decode(signature).unwrap();
        sig[10] ^= 1;
        assert_eq!(
            verify(&format!("{input}.{}", b64_encode(&sig))),
            Err(TokenError::BadSignature)
        );
        // Signatures of the wrong length, or none at all.
        for sig in ["", "AAAA", &b64_encode(&[0; 65])] {
            assert_eq!(
                verify(&format!("{input}.{sig}")),
                Err(TokenError::BadSignature)
            );
        }
        // A signature valid for a different token.
        let other = ec_token(&with(claims(), "sub", json!("bob")));
        let other_sig = other.rsplit_once('.').unwrap().1;
        assert_eq!(
            verify(&format!("{input}.{other_sig}")),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn every_single_byte_mutation_is_refused_without_panicking() {
        let token = testkeys::ed().token(&header(testkeys::ed(), "ed"), &claims());
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            for replacement in [b'A', b'_', b'.', b'='] {
                if bytes[i] == replacement {
                    continue;
                }
                let mut mutated = bytes.to_vec();
                mutated[i] = replacement;
                let mutated = String::from_utf8(mutated).unwrap();
                assert!(verify(&mutated).is_err(), "{mutated}");
            }
            assert!(verify(&token[..i]).is_err());
        }
    }

    #[test]
    fn shape_encoding_and_size_are_checked_first() {
        let token = ec_token(&claims());
        let (input, sig) = token.rsplit_once('.').unwrap();
        let (head, body) = input.split_once('.').unwrap();
        for malformed in [
            "",
            "abc",
            "a.b",
            &format!(".{body}.{sig}"),
            &format!("{head}..{sig}"),
            &format!("{token}.x.y"),
            &format!("{input}.{sig}.extra"),
        ] {
            assert_eq!(verify(malformed), Err(TokenError::Malformed), "{malformed}");
        }
        for bad in [
            format!("{head}=.{body}.{sig}"),
            format!("{head}.{body}=.{sig}"),
            format!("{input}.{sig}="),
            format!("{head}.+{body}.{sig}"),
            format!("{head}.{body} .{sig}"),
            format!("{head}.{body}.{sig}\n"),
        ] {
            assert_eq!(verify(&bad), Err(TokenError::BadEncoding), "{bad}");
        }
        let not_json = format!("{}.{body}.{sig}", b64_encode(b"not json"));
        assert_eq!(verify(&not_json), Err(TokenError::BadJson));
        let array = format!("{head}.{}.{sig}", b64_encode(b"[]"));
        assert_eq!(verify(&array), Err(TokenError::BadJson));

        let padding = "x".repeat(MAX_TOKEN_BYTES);
        let large = ec_token(&with(claims(), "pad", json!(padding)));
        assert_eq!(verify(&large), Err(TokenError::TooLarge));
        assert_eq!(
            verify(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(TokenError::TooLarge)
        );
    }

    #[test]
    fn duplicate_members_and_crit_are_refused() {
        let ec = testkeys::ec();
        let sign_raw = |header: &str, claims: &str| {
            let input = signing_input(header.as_bytes(), claims.as_bytes());
            format!("{input}.{}", b64_encode(&ec.sign(input.as_bytes())))
        };
        let good_header = r#"{"alg":"ES256","kid":"ec"}"#;
        let good_claims = claims().to_string();
        assert!(verify(&sign_raw(good_header, &good_claims)).is_ok());
        let dup_claims = good_claims.replacen('{', r#"{"sub":"admin","#, 1);
        assert_eq!(
            verify(&sign_raw(good_header, &dup_claims)),
            Err(TokenError::DuplicateMember)
        );
        assert_eq!(
            verify(&sign_raw(
                r#"{"alg":"ES256","kid":"ec","alg":"none"}"#,
                &good_claims
            )),
            Err(TokenError::DuplicateMember)
        );
        assert_eq!(
            verify(&sign_raw(
                r#"{"alg":"ES256","kid":"ec","crit":["exp"],"exp":1}"#,
                &good_claims
            )),
            Err(TokenError::CriticalHeader)
        );
        // Keys embedded in the header are never used.
        let embedded = format!(
            r#"{{"alg":"EdDSA","kid":"ec","jwk":{}}}"#,
            testkeys::ed().jwk("ec")
        );
        let input = signing_input(embedded.as_bytes(), good_claims.as_bytes());
        let token = format!(
            "{input}.{}",
            b64_encode(&testkeys::ed().sign(input.as_bytes()))
        );
        assert_eq!(verify(&token), Err(TokenError::AlgorithmMismatch));
        assert_eq!(
            verify(&sign_raw(r#"{"kid":"ec"}"#, &good_claims)),
            Err(TokenError::BadHeader)
        );
    }

    #[test]
    fn groups_claim_array_missing_or_wrong_type() {
        let groups = |value: Option<Value>| {
            let claims = match value {
                Some(v) => with(claims(), "groups", v),
                None => without(claims(), "groups"),
            };
            verify(&ec_token(&claims)).map(|t| t.groups)
        };
        assert_eq!(groups(Some(json!(["a", "b"]))).unwrap(), ["a", "b"]);
        assert_eq!(groups(Some(json!([]))).unwrap(), Vec::<String>::new());
        assert_eq!(groups(None).unwrap(), Vec::<String>::new());
        for bad in [
            json!("team-a"),
            json!(null),
            json!(3),
            json!(["a", 1]),
            json!([["a"]]),
            json!([""]),
            json!(["evil\nline"]),
            json!({ "a": true }),
        ] {
            assert_eq!(
                groups(Some(bad.clone())),
                Err(TokenError::InvalidClaim("groups")),
                "{bad}"
            );
        }
    }

    #[test]
    fn user_claim_is_required_and_clean() {
        assert_eq!(
            verify(&ec_token(&without(claims(), "sub"))),
            Err(TokenError::MissingClaim("user"))
        );
        for bad in [
            json!(""),
            json!(42),
            json!("a\u{1b}[31m"),
            json!("x".repeat(257)),
        ] {
            assert_eq!(
                verify(&ec_token(&with(claims(), "sub", bad))),
                Err(TokenError::InvalidClaim("user"))
            );
        }
        assert_eq!(
            verify(&ec_token(&with(claims(), "jti", json!(5)))),
            Err(TokenError::InvalidClaim("jti"))
        );
        assert_eq!(
            verify(&ec_token(&without(claims(), "jti")))
                .unwrap()
                .token_id,
            None
        );
    }

    #[test]
    fn claim_names_are_configurable_including_json_pointers() {
        let config = VerifierConfig {
            user_claim: "preferred_username".into(),
            groups_claim: "/realm_access/roles".into(),
            ..VerifierConfig::new(vec![ISS.into()], vec![AUD.into()])
        };
        let verifier = Verifier::new(
            config,
            KeySet::from_jwks_json(&testkeys::ec().jwks("ec")).unwrap(),
        )
        .unwrap();
        let mut claims = claims();
        claims["preferred_username"] = json!("alice@example.org");
        claims["realm_access"] = json!({ "roles": ["flink-admin"] });
        let identity = verifier.verify(&ec_token(&claims), now()).unwrap();
        assert_eq!(identity.user, "alice@example.org");
        assert_eq!(identity.groups, ["flink-admin"]);

        let mut map = Map::new();
        map.insert("a/b".into(), json!({ "c~d": [10, 20] }));
        assert_eq!(claim(&map, "/a~1b/c~0d/1"), Some(&json!(20)));
        assert_eq!(claim(&map, "/a~1b/c~0d/2"), None);
        assert_eq!(claim(&map, "/a~1b/x"), None);
        assert_eq!(claim(&map, "a/b"), map.get("a/b"));
    }

    #[test]
    fn unsafe_configurations_are_refused() {
        let keys = || KeySet::from_jwks_json(&testkeys::ec().jwks("ec")).unwrap();
        let base = VerifierConfig::new(vec![ISS.into()], vec![AUD.into()]);
        for (config, field) in [
            (
                VerifierConfig {
                    issuers: vec![],
                    ..base.clone()
                },
                "issuers",
            ),
            (
                VerifierConfig {
                    audiences: vec![],
                    ..base.clone()
                },
                "audiences",
            ),
            (
                VerifierConfig {
                    audiences: vec!["".into()],
                    ..base.clone()
                },
                "audiences",
            ),
            (
                VerifierConfig {
                    leeway: Duration::from_secs(301),
                    ..base.clone()
                },
                "leeway",
            ),
            (
                VerifierConfig {
                    user_claim: "".into(),
                    ..base.clone()
                },
                "user_claim",
            ),
            (
                VerifierConfig {
                    groups_claim: "/".into(),
                    ..base.clone()
                },
                "groups_claim",
            ),
        ] {
            let err = Verifier::new(config, keys()).unwrap_err().to_string();
            assert!(err.starts_with(field), "{err}");
        }
    }

    #[test]
    fn replaced_key_sets_take_effect_for_every_clone() {
        let rsa = testkeys::rsa();
        let ec = testkeys::ec();
        let verifier = verifier_for(&ec.jwks("k1"));
        let clone = verifier.clone();
        let rsa_token = rsa.token(&header(rsa, "k2"), &claims());
        assert_eq!(
            clone.verify(&rsa_token, now()),
            Err(TokenError::UnknownKeyId)
        );
        verifier
            .keys()
            .replace(KeySet::from_jwks_json(&rsa.jwks("k2")).unwrap());
        assert!(clone.verify(&rsa_token, now()).is_ok());
        let ec_token = ec.token(&header(ec, "k1"), &claims());
        assert_eq!(
            clone.verify(&ec_token, now()),
            Err(TokenError::UnknownKeyId)
        );
    }

    #[test]
    fn verifier_set_binds_each_issuer_to_its_own_keys() {
        let idp = verifier();
        let service_key = SigningKey::generate().unwrap();
        let service = Verifier::new(
            VerifierConfig::new(vec!["flinkguard:prod".into()], vec![AUD.into()]),
            service_key.key_set().unwrap(),
        )
        .unwrap();
        let set = VerifierSet::new(vec![idp.clone(), service.clone()]).unwrap();
        // The IdP's token verifies through the set.
        assert_eq!(
            set.verify(&ec_token(&claims()), now()).unwrap().user,
            "alice"
        );
        // A token claiming to come from flinkguard but signed with an IdP key: the service
        // verifier does not know that key.
        let forged = ec_token(&with(claims(), "iss", json!("flinkguard:prod")));
        assert_eq!(set.verify(&forged, now()), Err(TokenError::UnknownKeyId));
        assert_eq!(
            set.verify(&ec_token(&with(claims(), "iss", json!("elsewhere"))), now()),
            Err(TokenError::UntrustedIssuer)
        );
        assert_eq!(
            set.verify(&ec_token(&without(claims(), "iss")), now()),
            Err(TokenError::MissingClaim("iss"))
        );
        assert!(VerifierSet::new(vec![idp.clone(), idp]).is_err());
        assert!(VerifierSet::new(vec![]).is_err());
    }

    #[test]
    fn error_messages_do_not_leak_and_codes_are_distinct() {
        let errors = [
            TokenError::TooLarge,
            TokenError::Malformed,
            TokenError::BadEncoding,
            TokenError::BadJson,
            TokenError::DuplicateMember,
            TokenError::BadHeader,
            TokenError::Unsigned,
            TokenError::UnsupportedAlgorithm,
            TokenError::CriticalHeader,
            TokenError::MissingKeyId,
            TokenError::UnknownKeyId,
            TokenError::AlgorithmMismatch,
            TokenError::BadSignature,
            TokenError::MissingClaim("exp"),
            TokenError::InvalidClaim("groups"),
            TokenError::Expired,
            TokenError::NotYetValid,
            TokenError::UntrustedIssuer,
            TokenError::WrongAudience,
        ];
        let codes: std::collections::HashSet<_> = errors.iter().map(TokenError::code).collect();
        assert_eq!(codes.len(), errors.len());
        for e in errors {
            let text = e.to_string();
            assert!(
                text.starts_with("token") || text.starts_with("unsigned"),
                "{text}"
            );
            assert!(text.len() < 60, "{text}");
        }
    }
}
