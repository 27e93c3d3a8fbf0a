//! Verification keys: JWKS parsing, per-key algorithm pinning, RFC 7638 thumbprints, and a
//! key set that can be swapped atomically while requests are being verified.
//!
//! Each key verifies exactly one algorithm, decided when the key set is loaded — from the
//! key's `alg` if present, else from its `kty`/`crv` (RSA → RS256, EC P-256 → ES256,
//! OKP Ed25519 → EdDSA). A token can never pick how its key is used.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use serde_json::{Map, Value};
use tokio::sync::Notify;

use crate::SetupError;
use crate::json::{self, JsonError};

/// The largest JWKS document accepted (real ones are a few KiB).
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// The most keys one key set may hold (identity providers publish two to ten).
pub const MAX_KEYS: usize = 100;

/// The longest key id accepted in a JWKS.
const MAX_KID_LEN: usize = 256;

/// The smallest RSA modulus accepted, in bits (RFC 7518 §3.3 requires 2048).
const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits (what aws-lc-rs' RS256 verifier accepts).
const MAX_RSA_BITS: usize = 8192;

/// A JWS signature algorithm flinkguard verifies. Symmetric (`HS*`) algorithms are not
/// among them on purpose: a gateway that holds a shared secret can mint tokens, and
/// accepting HS256 is how public keys get misused as HMAC secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA keys of 2048 to 8192 bits.
    Rs256,
    /// ECDSA on P-256 with SHA-256, signature as the 64-byte `r || s`.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    /// The JOSE name (`RS256`, `ES256`, `EdDSA`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The algorithm a JOSE name stands for; names are case-sensitive (RFC 7515 §4.1.1).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            "EdDSA" => Some(Algorithm::EdDsa),
            _ => None,
        }
    }

    /// The key type this algorithm needs.
    fn kty(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RSA",
            Algorithm::Es256 => "EC",
            Algorithm::EdDsa => "OKP",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One public key, pinned to one algorithm and parsed once.
pub struct VerifyingKey {
    kid: Option<String>,
    algorithm: Algorithm,
    thumbprint: String,
    key: ParsedPublicKey,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// The key id (`kid`) the JWKS gave it, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url): names the key in logs whatever its
    /// `kid`.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Whether `signature` is this key's signature over `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

/// An immutable set of verification keys, looked up by `kid` in constant time.
///
/// Built once from a JWKS; a refreshed JWKS becomes a new `KeySet` swapped in through a
/// [`KeySetHandle`]. Keys that cannot verify a supported algorithm (encryption keys, `oct`
/// keys, PS256, P-384...) are skipped and listed by [`KeySet::skipped`]; malformed keys of a
/// supported kind, duplicate key ids and private key material make the whole set invalid.
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    by_kid: HashMap<String, usize>,
    skipped: Vec<String>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.keys)
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// The outcome of looking a token's key up.
#[derive(Debug)]
pub(crate) enum KeyLookup<'a> {
    Found(&'a VerifyingKey),
    MissingKeyId,
    UnknownKeyId,
}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`).
    pub fn from_jwks_json(text: &str) -> Result<KeySet, SetupError> {
        if text.len() > MAX_JWKS_BYTES {
            return Err(SetupError::InvalidJwks(format!(
                "the document is larger than {MAX_JWKS_BYTES} bytes"
            )));
        }
        let document = json::parse_object(text.as_bytes()).map_err(|e| {
            SetupError::InvalidJwks(match e {
                JsonError::NotAnObject => "not a JSON object".into(),
                JsonError::DuplicateMember => "a JSON object names the same member twice".into(),
            })
        })?;
        let Some(Value::Array(entries)) = document.get("keys") else {
            return Err(SetupError::InvalidJwks(
                "no `keys` array: expected {\"keys\": [ ... ]}".into(),
            ));
        };
        if entries.len() > MAX_KEYS {
            return Err(SetupError::InvalidJwks(format!(
                "{} keys; at most {MAX_KEYS} are accepted",
                entries.len()
            )));
        }
        let mut set = KeySet {
            keys: Vec::new(),
            by_kid: HashMap::new(),
            skipped: Vec::new(),
        };
        for (index, entry) in entries.iter().enumerate() {
            let kid = entry.get("kid").and_then(Value::as_str);
            let name = match kid {
                Some(kid) => format!("keys[{index}] (kid {kid:?})"),
                None => format!("keys[{index}]"),
            };
            let Value::Object(jwk) = entry else {
                return Err(SetupError::InvalidJwks(format!("{name} is not an object")));
            };
            match parse_jwk(jwk) {
                Ok(Parsed::Key(key)) => {
                    if let Some(kid) = &key.kid
                        && set.by_kid.insert(kid.clone(), set.keys.len()).is_some()
                    {
                        return Err(SetupError::InvalidJwks(format!(
                            "{name}: another key has the same kid; key ids must be unique"
                        )));
                    }
                    set.keys.push(key);
                }
                Ok(Parsed::Skipped(reason)) => set.skipped.push(format!("{name}: {reason}")),
                Err(problem) => {
                    return Err(SetupError::InvalidJwks(format!("{name}: {problem}")));
                }
            }
        }
        if set.keys.is_empty() {
            let why = if set.skipped.is_empty() {
                String::new()
            } else {
                format!(" (skipped: {})", set.skipped.join("; "))
            };
            return Err(SetupError::InvalidJwks(format!(
                "no key usable for RS256, ES256 or EdDSA signatures{why}"
            )));
        }
        Ok(set)
    }

    /// Reads and parses a JWKS file, naming the file in errors.
    pub fn from_jwks_file(path: &Path) -> Result<KeySet, SetupError> {
        let text = std::fs::read_to_string(path).map_err(|e| SetupError::file("read", path, e))?;
        Self::from_jwks_json(&text).map_err(|e| SetupError::in_file(path, e))
    }

    /// How many usable keys the set holds (at least one).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: an empty key set cannot be built.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The usable keys, in JWKS order.
    pub fn keys(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.iter()
    }

    /// Keys of the document that were ignored, each with the reason (for a startup log line).
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Finds the key for a token's `kid`: one hash lookup, never a search over keys, so an
    /// unknown `kid` costs the same as a known one. A token without `kid` is accepted only
    /// when the set holds exactly one key.
    pub(crate) fn lookup(&self, kid: Option<&str>) -> KeyLookup<'_> {
        match kid {
            Some(kid) => match self.by_kid.get(kid).and_then(|&i| self.keys.get(i)) {
                Some(key) => KeyLookup::Found(key),
                None => KeyLookup::UnknownKeyId,
            },
            None => match self.keys.as_slice() {
                [only] => KeyLookup::Found(only),
                _ => KeyLookup::MissingKeyId,
            },
        }
    }
}

/// A shared, atomically replaceable [`KeySet`].
///
/// Verifiers read the current snapshot without locking; a JWKS refresh builds a complete new
/// `KeySet` and [`replace`](KeySetHandle::replace)s it in one step, so a request sees either
/// the old set or the new one. A refresh that fails simply never calls `replace`, and the
/// last good set stays in force. Clones share the same slot.
///
/// A handle made by [`RemoteJwks`](crate::RemoteJwks) also carries a way to ask for an early
/// refresh: a verifier that meets an unknown `kid` (the identity provider may have rotated
/// its keys) raises it without waiting. A handle made with [`KeySetHandle::new`] has none,
/// and an unknown `kid` is just refused.
#[derive(Clone)]
pub struct KeySetHandle {
    slot: Arc<ArcSwap<KeySet>>,
    refresh: Option<Arc<RefreshRequests>>,
}

impl fmt::Debug for KeySetHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySetHandle")
            .field("keys", &*self.slot.load())
            .field("refreshable", &self.refresh.is_some())
            .finish()
    }
}

impl KeySetHandle {
    /// A handle holding `keys`.
    pub fn new(keys: KeySet) -> KeySetHandle {
        KeySetHandle {
            slot: Arc::new(ArcSwap::from_pointee(keys)),
            refresh: None,
        }
    }

    /// A handle holding `keys` whose verifiers raise `refresh` on an unknown `kid`.
    pub(crate) fn with_refresh_requests(
        keys: KeySet,
        refresh: Arc<RefreshRequests>,
    ) -> KeySetHandle {
        KeySetHandle {
            refresh: Some(refresh),
            ..KeySetHandle::new(keys)
        }
    }

    /// The key set in force now.
    pub fn current(&self) -> Arc<KeySet> {
        self.slot.load_full()
    }

    /// Puts `keys` in force for every verifier sharing this handle.
    pub fn replace(&self, keys: KeySet) {
        self.slot.store(Arc::new(keys));
    }

    /// A cheap read guard on the current set, for the verification hot path.
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.slot.load()
    }

    /// Asks whoever refreshes this key set to do so soon; a no-op without a refresher.
    /// Never blocks: the refresher decides when (and whether) to fetch.
    pub(crate) fn request_refresh(&self) {
        if let Some(refresh) = &self.refresh {
            refresh.request();
        }
    }
}

/// Pending requests for an early key set refresh, raised by verifiers and answered by one
/// refresher task.
///
/// Any number of requests made before the refresher gets round to them collapse into one:
/// the first sets the flag and wakes the refresher, the rest find the flag already set and
/// cost one atomic read-modify-write each. The refresher [`clear`](RefreshRequests::clear)s
/// the flag once a fetch has been attempted, so requests raised while the old set was still
/// in force do not cause a second fetch.
#[derive(Debug, Default)]
pub(crate) struct RefreshRequests {
    pending: AtomicBool,
    wake: Notify,
}

impl RefreshRequests {
    /// Raises a request (cheap, non-blocking, idempotent until cleared).
    pub(crate) fn request(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Returns once a request is pending (at once if one already is).
    pub(crate) async fn pending(&self) {
        loop {
            // A request raised between this check and the await leaves a permit in `wake`,
            // so it is not missed; a stale permit only costs one more check.
            let notified = self.wake.notified();
            if self.pending.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Marks every request raised so far as answered.
    pub(crate) fn clear(&self) {
        self.pending.store(false, Ordering::Release);
    }

    /// Whether a request is pending.
    #[cfg(test)]
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }
}

impl From<KeySet> for KeySetHandle {
    fn from(keys: KeySet) -> Self {
        KeySetHandle::new(keys)
    }
}

enum Parsed {
    Key(VerifyingKey),
    Skipped(String),
}

/// Parses one JWK. `Err` is a key that claims to be usable but is broken (the whole set is
/// refused); `Skipped` is a key that is simply not for us.
fn parse_jwk(jwk: &Map<String, Value>) -> Result<Parsed, String> {
    let text = |member: &str| -> Result<Option<&str>, String> {
        match jwk.get(member) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("`{member}` is not a string")),
        }
    };
    let kty = text("kty")?.ok_or("no `kty`")?;
    if !matches!(kty, "RSA" | "EC" | "OKP") {
        return Ok(Parsed::Skipped(format!(
            "key type {kty:?} is not supported"
        )));
    }
    if let Some(usage) = text("use")?
        && usage != "sig"
    {
        return Ok(Parsed::Skipped(format!("`use` is {usage:?}, not \"sig\"")));
    }
    if let Some(ops) = jwk.get("key_ops") {
        let Value::Array(ops) = ops else {
            return Err("`key_ops` is not an array".into());
        };
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Ok(Parsed::Skipped(
                "`key_ops` does not include \"verify\"".into(),
            ));
        }
    }
    let declared = match text("alg")? {
        None => None,
        Some(name) => match Algorithm::from_name(name) {
            Some(alg) if alg.kty() == kty => Some(alg),
            Some(alg) => {
                return Err(format!(
                    "`alg` {alg} needs `kty` {:?}, not {kty:?}",
                    alg.kty()
                ));
            }
            None => {
                return Ok(Parsed::Skipped(format!(
                    "algorithm {name:?} is not supported"
                )));
            }
        },
    };
    if jwk.contains_key("d") {
        return Err(
            "holds private key material (`d`); publish only the public key and rotate this one"
                .into(),
        );
    }
    let kid = match text("kid")? {
        None => None,
        Some("") => return Err("`kid` is empty".into()),
        Some(kid) if kid.len() > MAX_KID_LEN => {
            return Err(format!("`kid` is longer than {MAX_KID_LEN} characters"));
        }
        Some(kid) => Some(kid.to_owned()),
    };
    let bytes = |member: &str| -> Result<Vec<u8>, String> {
        let value = text(member)?.ok_or_else(|| format!("no `{member}`"))?;
        json::b64_decode(value).ok_or_else(|| format!("`{member}` is not unpadded base64url"))
    };
    let (algorithm, key, thumbprint_input) = match kty {
        "RSA" => {
            let n = strip_leading_zeros(bytes("n")?);
            let e = strip_leading_zeros(bytes("e")?);
            let bits = bit_length(&n);
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(format!(
                    "RSA modulus has {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
                ));
            }
            if e.is_empty() || e.len() > 8 || e.last().is_some_and(|b| b % 2 == 0) {
                return Err("RSA exponent `e` is not a small odd number".into());
            }
            let key = RsaPublicKeyComponents { n: &n, e: &e }
                .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
                .map_err(|_| "not a valid RSA public key".to_owned())?;
            let canonical = format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                json::b64_encode(&e),
                json::b64_encode(&n)
            );
            (Algorithm::Rs256, key, canonical)
        }
        "EC" => {
            let crv = text("crv")?.ok_or("no `crv`")?;
            if crv != "P-256" {
                return Ok(Parsed::Skipped(format!("curve {crv:?} is not supported")));
            }
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates `x` and `y` must be 32 bytes each".into());
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let key = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point)
                .map_err(|_| "not a point on P-256".to_owned())?;
            (Algorithm::Es256, key, ec_thumbprint_input(&x, &y))
        }
        _ => {
            let crv = text("crv")?.ok_or("no `crv`")?;
            if crv != "Ed25519" {
                return Ok(Parsed::Skipped(format!("curve {crv:?} is not supported")));
            }
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err("Ed25519 public key `x` must be 32 bytes".into());
            }
            let key = ParsedPublicKey::new(&signature::ED25519, &x)
                .map_err(|_| "not a valid Ed25519 public key".to_owned())?;
            let canonical = format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                json::b64_encode(&x)
            );
            (Algorithm::EdDsa, key, canonical)
        }
    };
    // `declared`, when present, already equals the algorithm implied by kty and crv.
    debug_assert!(declared.is_none_or(|d| d == algorithm));
    Ok(Parsed::Key(VerifyingKey {
        kid,
        algorithm,
        thumbprint: thumbprint(&thumbprint_input),
        key,
    }))
}

/// The RFC 7638 input for a P-256 key: required members only, sorted, no whitespace.
pub(crate) fn ec_thumbprint_input(x: &[u8], y: &[u8]) -> String {
    format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        json::b64_encode(x),
        json::b64_encode(y)
    )
}

/// SHA-256 of the canonical JWK, base64url (RFC 7638).
pub(crate) fn thumbprint(canonical_jwk: &str) -> String {
    json::b64_encode(digest::digest(&digest::SHA256, canonical_jwk.as_bytes()).as_ref())
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros);
    bytes
}

fn bit_length(big_endian: &[u8]) -> usize {
    match big_endian.first() {
        None => 0,
        Some(&first) => big_endian.len() * 8 - first.leading_zeros() as usize,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testkeys;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let canonical = format!(r#"{{"e":"AQAB","kty":"RSA","n":"{n}"}}"#);
        assert_eq!(
            thumbprint(&canonical),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        let set = KeySet::from_jwks_json(&format!(
            r#"{{"keys":[{{"kty":"RSA","n":"{n}","e":"AQAB","alg":"RS256","kid":"2011-04-29"}}]}}"#
        ))
        .unwrap();
        let key = set.keys().next().unwrap();
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(key.algorithm(), Algorithm::Rs256);
        assert_eq!(key.key_id(), Some("2011-04-29"));
    }

    #[test]
    fn algorithm_is_pinned_from_kty_and_crv_when_alg_is_absent() {
        let jwks = format!(
            r#"{{"keys":[{},{},{}]}}"#,
            testkeys::rsa().jwk_without_alg("r"),
            testkeys::ec().jwk_without_alg("e"),
            testkeys::ed().jwk_without_alg("o")
        );
        let set = KeySet::from_jwks_json(&jwks).unwrap();
        let algs: Vec<_> = set.keys().map(|k| k.algorithm()).collect();
        assert_eq!(algs, [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa]);
        assert!(
            matches!(set.lookup(Some("e")), KeyLookup::Found(k) if k.algorithm() == Algorithm::Es256)
        );
        assert!(matches!(set.lookup(Some("zz")), KeyLookup::UnknownKeyId));
        assert!(matches!(set.lookup(None), KeyLookup::MissingKeyId));
    }

    #[test]
    fn keys_not_for_us_are_skipped_not_fatal() {
        let jwks = format!(
            r#"{{"keys":[
                {{"kty":"oct","k":"c2VjcmV0"}},
                {{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}},
                {{"kty":"RSA","alg":"PS256","n":"AQAB","e":"AQAB"}},
                {{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}},
                {{"kty":"OKP","crv":"X25519","x":"AA"}},
                {{"kty":"EC","crv":"P-256","key_ops":["encrypt"],"x":"AA","y":"AA"}},
                {}
            ]}}"#,
            testkeys::ed().jwk("only")
        );
        let set = KeySet::from_jwks_json(&jwks).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.skipped().len(), 6, "{:?}", set.skipped());
        // With a single usable key, a token without kid selects it.
        assert!(matches!(set.lookup(None), KeyLookup::Found(_)));
    }

    #[test]
    fn broken_documents_are_refused_with_the_key_named() {
        let ec = testkeys::ec();
        let cases = [
            ("[]".to_owned(), "not a JSON object"),
            ("{}".to_owned(), "no `keys` array"),
            (r#"{"keys":[]}"#.to_owned(), "no key usable"),
            (r#"{"keys":[{"kty":"oct","k":"AA"}]}"#.to_owned(), "skipped"),
            (r#"{"keys":[1]}"#.to_owned(), "keys[0] is not an object"),
            (
                r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#.to_owned(),
                "RSA modulus has 17 bits",
            ),
            (
                r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#.to_owned(),
                "32 bytes",
            ),
            (
                r#"{"keys":[{"kty":"EC","alg":"RS256","crv":"P-256","x":"AA","y":"AA"}]}"#
                    .to_owned(),
                "needs `kty` \"RSA\"",
            ),
            (
                r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA=","y":"AA"}]}"#.to_owned(),
                "base64url",
            ),
            (
                r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA","d":"AA"}]}"#.to_owned(),
                "private key material",
            ),
            (
                format!(
                    r#"{{"keys":[{},{}]}}"#,
                    ec.jwk("same"),
                    testkeys::ed().jwk("same")
                ),
                "keys[1] (kid \"same\"): another key has the same kid",
            ),
            (r#"{"keys":[],"keys":[]}"#.to_owned(), "same member twice"),
            (
                // A point that is not on the curve.
                format!(
                    r#"{{"keys":[{{"kty":"EC","crv":"P-256","x":"{0}","y":"{0}"}}]}}"#,
                    json::b64_encode(&[1; 32])
                ),
                "not a point on P-256",
            ),
        ];
        for (jwks, expected) in cases {
            let err = KeySet::from_jwks_json(&jwks).unwrap_err().to_string();
            assert!(err.contains(expected), "{jwks}: {err}");
        }
        let many = format!(r#"{{"keys":[{}]}}"#, vec!["{}"; MAX_KEYS + 1].join(","));
        assert!(KeySet::from_jwks_json(&many).is_err());
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idp.jwks");
        let err = KeySet::from_jwks_file(&path).unwrap_err().to_string();
        assert!(err.contains("idp.jwks"), "{err}");
        std::fs::write(&path, r#"{"keys":[]}"#).unwrap();
        let err = KeySet::from_jwks_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("idp.jwks") && err.contains("no key usable"),
            "{err}"
        );
        std::fs::write(
            &path,
            format!(r#"{{"keys":[{}]}}"#, testkeys::ec().jwk("k")),
        )
        .unwrap();
        assert_eq!(KeySet::from_jwks_file(&path).unwrap().len(), 1);
    }

    #[test]
    fn handle_swaps_snapshots_atomically() {
        let first = KeySet::from_jwks_json(&format!(r#"{{"keys":[{}]}}"#, testkeys::ec().jwk("a")))
            .unwrap();
        let second =
            KeySet::from_jwks_json(&format!(r#"{{"keys":[{}]}}"#, testkeys::ed().jwk("b")))
                .unwrap();
        let handle = KeySetHandle::new(first);
        let clone = handle.clone();
        let before = handle.current();
        clone.replace(second);
        // A snapshot taken before the swap is unchanged; the handle now serves the new set.
        assert!(matches!(before.lookup(Some("a")), KeyLookup::Found(_)));
        assert!(matches!(
            handle.current().lookup(Some("a")),
            KeyLookup::UnknownKeyId
        ));
        assert!(matches!(
            handle.current().lookup(Some("b")),
            KeyLookup::Found(_)
        ));
    }
}
