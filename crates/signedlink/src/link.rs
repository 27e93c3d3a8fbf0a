//! Signing and verifying links.
//!
//! A signed link is the exact request target with three parameters appended, always last and
//! always in this order:
//!
//! ```text
//! /jobs/4f2a/exceptions?maxExceptions=10&fg-expires=1750000600&fg-kid=Ab3_x-9Q&fg-sig=<43 chars>
//! ```
//!
//! `fg-sig` is the unpadded base64url HMAC-SHA256, under the key `fg-kid`, of
//!
//! ```text
//! "flinkguard signed link v1\0" ‖ field(method) ‖ field(target) ‖ field(expires) ‖ field(kid)
//! field(x) = length of x as 8 bytes big-endian ‖ x
//! ```
//!
//! where `target` is the link without the `&fg-expires=…` suffix (without `?fg-expires=…` if
//! the target had no query) and `expires` the decimal text of `fg-expires`. The length
//! prefixes keep the fields apart: no choice of method and target can produce another
//! method and target with the same input.
//!
//! Every value has exactly one accepted spelling (digits without leading zeros, exact
//! base64url lengths, lower-case parameter names, no percent-encoding), so a link cannot be
//! varied into a second valid link. Anything else is [`LinkError::Malformed`].

use std::fmt;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flinkguard_policy::{MAX_TARGET_LEN, RequestTarget};
use time::OffsetDateTime;

use crate::keys::{KID_LEN, LinkKey};
use crate::{LinkError, LinkKeys, Ttl};

/// Query parameter carrying the expiry, Unix seconds.
pub const EXPIRES_PARAM: &str = "fg-expires";
/// Query parameter carrying the id of the key that signed.
pub const KID_PARAM: &str = "fg-kid";
/// Query parameter carrying the signature, unpadded base64url.
pub const SIGNATURE_PARAM: &str = "fg-sig";

/// Prefix of every parameter name reserved for signed links (compared case-insensitively).
const RESERVED_PREFIX: &str = "fg-";
const DOMAIN: &[u8] = b"flinkguard signed link v1\0";
/// HMAC-SHA256 output in unpadded base64url.
const SIGNATURE_LEN: usize = 43;
/// The last Unix second of year 9999: expiries past it are not accepted.
const MAX_EXPIRES: i64 = 253_402_300_799;
/// How much further than [`Ttl::MAX`] a link may expire, for clocks that disagree between
/// the host that signed and the gateway.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);
/// Longest HTTP method accepted for signing (the longest registered one is 17 characters).
const MAX_METHOD_LEN: usize = 20;

/// A signed link. `Debug` does not print the signature: the link is a bearer credential.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedLink {
    target: String,
    /// The expiry the link carries (whole seconds).
    pub expires: OffsetDateTime,
    /// The id of the key that signed.
    pub kid: String,
}

impl SignedLink {
    /// The request target with the signature: what goes after `https://host:port` in the URL.
    pub fn as_str(&self) -> &str {
        &self.target
    }

    /// The request target with the signature, owned.
    pub fn into_string(self) -> String {
        self.target
    }
}

impl fmt::Debug for SignedLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unsigned = self
            .target
            .rsplit_once(SIGNATURE_PARAM)
            .map_or("", |(head, _)| head);
        f.debug_struct("SignedLink")
            .field(
                "target",
                &format_args!("{unsigned}{SIGNATURE_PARAM}=<redacted>"),
            )
            .field("expires", &self.expires)
            .field("kid", &self.kid)
            .finish()
    }
}

/// What a valid link allows: one request, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLink {
    /// The request target without the `fg-` parameters: what the gateway forwards.
    pub target_without_signature: String,
    /// When the link expires.
    pub expires: OffsetDateTime,
    /// The id of the key that signed it.
    pub kid: String,
}

/// Whether `target` (as the gateway accepted it with [`RequestTarget::parse`]) carries any
/// `fg-` parameter, i.e. must be verified as a signed link.
///
/// Names are compared after percent-decoding and case-insensitively, so `FG-SIG` or
/// `fg%2Dsig` count too. A request for which this is true must go through
/// [`LinkKeys::verify`] and, if refused, be refused: never forwarded with its `fg-` parameters.
pub fn is_signed(target: &RequestTarget) -> bool {
    target.query().iter().any(|(name, _)| is_reserved(name))
}

fn is_reserved(decoded_name: &str) -> bool {
    decoded_name
        .get(..RESERVED_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(RESERVED_PREFIX))
}

fn is_b64url(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl LinkKeys {
    /// Signs `method` on `path_and_query` until `expires` (cut to whole seconds) with the
    /// current key.
    ///
    /// `path_and_query` is the exact request target the link will be used for, as the gateway
    /// will receive it: it must pass the gateway's strict target check (no dot segments,
    /// ambiguous encodings, empty query parameters), must not carry `fg-` parameters and
    /// must leave room for the signature within the gateway's target length limit.
    /// `method` is the HTTP method in capitals; the link is valid for that method only (a
    /// GET link does not allow HEAD). Compute `expires` with [`Ttl::expires_at`]: links
    /// expiring more than [`Ttl::MAX`] after they are used are refused by [`LinkKeys::verify`].
    pub fn sign(
        &self,
        method: &str,
        path_and_query: &str,
        expires: OffsetDateTime,
    ) -> Result<SignedLink, LinkError> {
        if method.is_empty()
            || method.len() > MAX_METHOD_LEN
            || !method.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err(LinkError::InvalidRequest(format!(
                "method `{method}` is not an HTTP method in capitals, e.g. GET"
            )));
        }
        let cannot = |why: &str| {
            LinkError::InvalidRequest(format!(
                "`{path_and_query}` cannot be signed: {why}; sign the exact path and query the \
                 request will use, e.g. /jobs/<job id>/exceptions"
            ))
        };
        let parsed = RequestTarget::parse(path_and_query).map_err(|e| cannot(&e.to_string()))?;
        if let Some((_, query)) = path_and_query.split_once('?')
            && query.split('&').any(str::is_empty)
        {
            return Err(cannot(
                "it has an empty query or empty query parameters ('?' or '&' with nothing after)",
            ));
        }
        if parsed.query().iter().any(|(name, _)| is_reserved(name)) {
            return Err(cannot(
                "query parameters starting with `fg-` are reserved for the link signature",
            ));
        }
        let seconds = expires.unix_timestamp();
        if !(1..=MAX_EXPIRES).contains(&seconds) {
            return Err(LinkError::InvalidRequest(
                "the link expiry is out of range (1970 to 9999)".into(),
            ));
        }
        let key = self.current()?;
        let expires_text = seconds.to_string();
        let tag = hmac::sign(
            &key.hmac,
            &mac_input(method, path_and_query, &expires_text, &key.kid),
        );
        let separator = if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let target = format!(
            "{path_and_query}{separator}{EXPIRES_PARAM}={expires_text}&{KID_PARAM}={kid}\
             &{SIGNATURE_PARAM}={sig}",
            kid = key.kid,
            sig = URL_SAFE_NO_PAD.encode(tag.as_ref()),
        );
        if target.len() > MAX_TARGET_LEN {
            return Err(cannot(&format!(
                "with the signature it is longer than the {MAX_TARGET_LEN} characters the \
                 gateway accepts"
            )));
        }
        Ok(SignedLink {
            target,
            expires: OffsetDateTime::from_unix_timestamp(seconds)
                .map_err(|_| LinkError::InvalidRequest("the link expiry is out of range".into()))?,
            kid: key.kid.clone(),
        })
    }

    /// Checks that `target` (the full request target as received) is a link signed for
    /// `method` on exactly this target, by a current or previous key, not expired at `now`.
    ///
    /// The link is valid up to, not including, its expiry second. Checks run in this order,
    /// so an expiry is only reported for an authentic link: form ([`LinkError::Malformed`]),
    /// key ([`LinkError::UnknownKey`]), signature ([`LinkError::BadSignature`]), expiry
    /// ([`LinkError::Expired`], [`LinkError::LifetimeTooLong`]).
    pub fn verify(
        &self,
        method: &str,
        target: &str,
        now: OffsetDateTime,
    ) -> Result<VerifiedLink, LinkError> {
        let link = split(target).ok_or(LinkError::Malformed)?;
        let key = self.find(link.kid).ok_or(LinkError::UnknownKey)?;
        check_signature(key, method, &link)?;
        let expires =
            OffsetDateTime::from_unix_timestamp(link.expires).map_err(|_| LinkError::Malformed)?;
        if now >= expires {
            return Err(LinkError::Expired);
        }
        let longest = time::Duration::try_from(Ttl::MAX.duration())
            .map_err(|_| LinkError::LifetimeTooLong)?
            + CLOCK_SKEW;
        if expires - now > longest {
            return Err(LinkError::LifetimeTooLong);
        }
        Ok(VerifiedLink {
            target_without_signature: link.unsigned.to_owned(),
            expires,
            kid: link.kid.to_owned(),
        })
    }
}

/// A link taken apart; every field checked for its canonical form.
struct Parts<'a> {
    unsigned: &'a str,
    expires_text: &'a str,
    expires: i64,
    kid: &'a str,
    signature: Vec<u8>,
}

/// Splits off the trailing `fg-expires`, `fg-kid`, `fg-sig`; `None` for anything but exactly
/// one such triple at the very end of a target the gateway would accept.
fn split(target: &str) -> Option<Parts<'_>> {
    // The gateway's own check: a target it would refuse is not a link either. It also
    // refuses a parameter given twice, after decoding (`fg-sig` and `fg%2Dsig`).
    let parsed = RequestTarget::parse(target).ok()?;
    let (path, query) = target.split_once('?')?;
    let params: Vec<&str> = query.split('&').collect();
    // `sign` never produces empty parameters; refusing them also keeps `params` aligned
    // with the decoded `parsed.query()`, which skips them.
    if params.iter().any(|p| p.is_empty()) || params.len() != parsed.query().len() {
        return None;
    }
    let [rest @ .., expires, kid, signature] = &params[..] else {
        return None;
    };
    let expires_text = expires.strip_prefix(EXPIRES_PARAM)?.strip_prefix('=')?;
    let kid = kid.strip_prefix(KID_PARAM)?.strip_prefix('=')?;
    let signature = signature.strip_prefix(SIGNATURE_PARAM)?.strip_prefix('=')?;
    // No other `fg-` parameter anywhere before the triple, in any spelling.
    if parsed
        .query()
        .get(..rest.len())?
        .iter()
        .any(|(name, _)| is_reserved(name))
    {
        return None;
    }
    let expires = canonical_seconds(expires_text)?;
    if kid.len() != KID_LEN || !is_b64url(kid) {
        return None;
    }
    if signature.len() != SIGNATURE_LEN || !is_b64url(signature) {
        return None;
    }
    // Refuses non-zero trailing bits: one spelling per signature.
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let suffix_len = EXPIRES_PARAM.len()
        + 1
        + expires_text.len()
        + 1
        + KID_PARAM.len()
        + 1
        + kid.len()
        + 1
        + SIGNATURE_PARAM.len()
        + 1
        + SIGNATURE_LEN;
    // The separator before the suffix is '?' exactly when nothing of the query is left.
    let unsigned = if rest.is_empty() {
        path
    } else {
        target
            .len()
            .checked_sub(suffix_len + 1)
            .and_then(|end| target.get(..end))?
    };
    Some(Parts {
        unsigned,
        expires_text,
        expires,
        kid,
        signature,
    })
}

/// Unix seconds as `sign` writes them: 1 to [`MAX_EXPIRES`], digits only, no leading zero.
fn canonical_seconds(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 12 || text.starts_with('0') {
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|s| (1..=MAX_EXPIRES).contains(s))
}

fn check_signature(key: &LinkKey, method: &str, link: &Parts<'_>) -> Result<(), LinkError> {
    let input = mac_input(method, link.unsigned, link.expires_text, link.kid);
    // Constant-time comparison.
    hmac::verify(&key.hmac, &input, &link.signature).map_err(|_| LinkError::BadSignature)
}

fn mac_input(method: &str, target: &str, expires: &str, kid: &str) -> Vec<u8> {
    let fields = [method, target, expires, kid];
    let mut input =
        Vec::with_capacity(DOMAIN.len() + fields.iter().map(|f| 8 + f.len()).sum::<usize>());
    input.extend_from_slice(DOMAIN);
    for field in fields {
        input.extend_from_slice(&(field.len() as u64).to_be_bytes());
        input.extend_from_slice(field.as_bytes());
    }
    input
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use flinkguard_pki::PkiLayout;

    use super::*;

    const TARGET: &str = "/jobs/4f2a/exceptions?maxExceptions=10";

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    /// Signing time, and the link's expiry ten minutes later.
    const NOW: i64 = 1_750_000_000;
    const EXPIRES: i64 = NOW + 600;

    fn signed(keys: &LinkKeys, method: &str, target: &str) -> String {
        keys.sign(method, target, at(EXPIRES))
            .unwrap()
            .into_string()
    }

    fn code(keys: &LinkKeys, method: &str, target: &str) -> &'static str {
        match keys.verify(method, target, at(NOW)) {
            Ok(_) => "ok",
            Err(e) => {
                assert!(e.is_refusal(), "{e}");
                e.code()
            }
        }
    }

    #[test]
    fn a_signed_link_verifies_for_exactly_its_request() {
        let keys = LinkKeys::generate().unwrap();
        let link = keys.sign("GET", TARGET, at(EXPIRES)).unwrap();
        let expected = format!(
            "{TARGET}&fg-expires={EXPIRES}&fg-kid={}&fg-sig=",
            keys.current_kid()
        );
        assert!(link.as_str().starts_with(&expected), "{}", link.as_str());
        assert_eq!(link.as_str().len(), expected.len() + SIGNATURE_LEN);
        assert_eq!(link.expires, at(EXPIRES));
        assert_eq!(link.kid, keys.current_kid());
        // The gateway would accept the link itself as a target.
        assert!(is_signed(&RequestTarget::parse(link.as_str()).unwrap()));
        assert!(!is_signed(&RequestTarget::parse(TARGET).unwrap()));

        let verified = keys.verify("GET", link.as_str(), at(NOW)).unwrap();
        assert_eq!(
            verified,
            VerifiedLink {
                target_without_signature: TARGET.into(),
                expires: at(EXPIRES),
                kid: keys.current_kid().into(),
            }
        );

        // Without a query, the signature starts the query.
        let link = signed(&keys, "GET", "/jobs/4f2a");
        assert!(link.starts_with("/jobs/4f2a?fg-expires="), "{link}");
        let verified = keys.verify("GET", &link, at(NOW)).unwrap();
        assert_eq!(verified.target_without_signature, "/jobs/4f2a");
        let link = signed(&keys, "GET", "/");
        assert_eq!(
            keys.verify("GET", &link, at(NOW))
                .unwrap()
                .target_without_signature,
            "/"
        );
    }

    #[test]
    fn debug_redacts_the_signature() {
        let keys = LinkKeys::generate().unwrap();
        let link = keys.sign("GET", TARGET, at(EXPIRES)).unwrap();
        let signature = link.as_str().rsplit('=').next().unwrap();
        let debug = format!("{link:?}");
        assert!(!debug.contains(signature), "{debug}");
        assert!(debug.contains("fg-sig=<redacted>"), "{debug}");
    }

    #[test]
    fn any_other_request_is_refused() {
        let keys = LinkKeys::generate().unwrap();
        let link = signed(&keys, "GET", TARGET);
        let (unsigned, suffix) = link.split_at(TARGET.len());
        let suffix = &suffix[1..]; // without the '&'
        let [expires, kid, sig]: [&str; 3] =
            suffix.split('&').collect::<Vec<_>>().try_into().unwrap();
        let sig_value = sig.strip_prefix("fg-sig=").unwrap();
        let other_sig = {
            // Flip the first character: still canonical base64url, another signature.
            let first = if sig_value.starts_with('A') { "B" } else { "A" };
            format!("fg-sig={first}{}", &sig_value[1..])
        };

        let cases: Vec<(&str, String, &str)> = vec![
            ("the link itself", link.clone(), "ok"),
            // Another path or query.
            (
                "other path",
                link.replace("/4f2a/", "/4f2b/"),
                "bad_signature",
            ),
            (
                "changed query",
                link.replace("maxExceptions=10", "maxExceptions=99"),
                "bad_signature",
            ),
            (
                "no query",
                format!("/jobs/4f2a/exceptions?{suffix}"),
                "bad_signature",
            ),
            (
                "extra parameter before",
                format!("{unsigned}&x=1&{suffix}"),
                "bad_signature",
            ),
            ("extra parameter after", format!("{link}&x=1"), "malformed"),
            (
                "changed expiry",
                link.replace(&EXPIRES.to_string(), &(EXPIRES + 60).to_string()),
                "bad_signature",
            ),
            (
                "other signature",
                format!("{unsigned}&{expires}&{kid}&{other_sig}"),
                "bad_signature",
            ),
            // Signatures that are not canonical.
            (
                "truncated signature",
                link[..link.len() - 1].to_owned(),
                "malformed",
            ),
            (
                "empty signature",
                format!("{unsigned}&{expires}&{kid}&fg-sig="),
                "malformed",
            ),
            ("long signature", format!("{link}A"), "malformed"),
            ("padded signature", format!("{link}="), "malformed"),
            (
                "standard base64",
                format!("{unsigned}&{expires}&{kid}&fg-sig={}", "+".repeat(43)),
                "malformed",
            ),
            // The triple: exactly once, in order, at the end, spelled as signed.
            ("no signature", TARGET.to_owned(), "malformed"),
            (
                "reordered",
                format!("{unsigned}&{kid}&{expires}&{sig}"),
                "malformed",
            ),
            (
                "signature first",
                format!("{unsigned}&{sig}&{expires}&{kid}"),
                "malformed",
            ),
            (
                "missing kid",
                format!("{unsigned}&{expires}&{sig}"),
                "malformed",
            ),
            (
                "duplicated signature",
                format!("{unsigned}&{expires}&{kid}&{sig}&{sig}"),
                "malformed",
            ),
            (
                "duplicated triple",
                format!("{unsigned}&{suffix}&{suffix}"),
                "malformed",
            ),
            (
                "duplicated expiry",
                format!("{unsigned}&{expires}&{expires}&{kid}&{sig}"),
                "malformed",
            ),
            (
                "fg- parameter before",
                format!("{unsigned}&fg-x=1&{suffix}"),
                "malformed",
            ),
            (
                "FG- parameter before",
                format!("{unsigned}&FG-SIG=1&{suffix}"),
                "malformed",
            ),
            (
                "encoded fg- parameter",
                format!("{unsigned}&fg%2Dsig=1&{suffix}"),
                "malformed",
            ),
            (
                "capital name",
                link.replace("fg-sig=", "FG-SIG="),
                "malformed",
            ),
            (
                "encoded name",
                link.replace("fg-sig=", "fg%2Dsig="),
                "malformed",
            ),
            (
                "encoded value",
                link.replace("fg-expires=1", "fg-expires=%31"),
                "malformed",
            ),
            (
                "leading zero",
                link.replace("fg-expires=", "fg-expires=0"),
                "malformed",
            ),
            (
                "expiry after 9999",
                link.replace(&EXPIRES.to_string(), &(MAX_EXPIRES + 1).to_string()),
                "malformed",
            ),
            (
                "zero expiry",
                link.replace(&EXPIRES.to_string(), "0"),
                "malformed",
            ),
            (
                "signed expiry",
                link.replace("fg-expires=", "fg-expires=+"),
                "malformed",
            ),
            (
                "empty parameter",
                format!("{unsigned}&&{suffix}"),
                "malformed",
            ),
            (
                "empty query before",
                format!("/jobs/4f2a/exceptions?&{suffix}"),
                "malformed",
            ),
            ("trailing '&'", format!("{link}&"), "malformed"),
            ("fragment", format!("{link}#x"), "malformed"),
            (
                "dot segment",
                link.replace("/4f2a/", "/4f2a/../4f2a/"),
                "malformed",
            ),
            ("short kid", link.replace(kid, "fg-kid=abc"), "malformed"),
            (
                "unknown kid",
                link.replace(kid, "fg-kid=AAAAAAAA"),
                "unknown_key",
            ),
        ];
        for (what, target, expected) in cases {
            assert_eq!(code(&keys, "GET", &target), expected, "{what}: {target}");
        }
        // Another method, even a "safe" one.
        for method in ["HEAD", "POST", "DELETE", "get", ""] {
            assert_eq!(code(&keys, method, &link), "bad_signature", "{method}");
        }

        // A valid link from another key set with the same kid would be no use either: the
        // kid follows from the secret, so another secret means another kid.
        let other = LinkKeys::generate().unwrap();
        assert_eq!(code(&other, "GET", &link), "unknown_key");
    }

    #[test]
    fn expiry_is_exact_to_the_second() {
        let keys = LinkKeys::generate().unwrap();
        let link = signed(&keys, "GET", TARGET);
        let verify = |now: OffsetDateTime| {
            keys.verify("GET", &link, now)
                .map(|_| ())
                .map_err(|e| e.code())
        };
        assert_eq!(verify(at(NOW)), Ok(()));
        assert_eq!(verify(at(EXPIRES - 1)), Ok(()));
        let just_before =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(EXPIRES) * 1_000_000_000 - 1)
                .unwrap();
        assert_eq!(verify(just_before), Ok(()));
        assert_eq!(verify(at(EXPIRES)), Err("expired"));
        assert_eq!(verify(at(EXPIRES + 3600)), Err("expired"));

        // An expiry is cut to the second, never lengthened.
        let link = keys
            .sign(
                "GET",
                TARGET,
                OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(EXPIRES) * 1_000_000_000 + 999_999_999,
                )
                .unwrap(),
            )
            .unwrap();
        assert_eq!(link.expires, at(EXPIRES));
        assert!(link.as_str().contains(&format!("fg-expires={EXPIRES}&")));
    }

    #[test]
    fn links_longer_than_the_longest_lifetime_are_refused() {
        let keys = LinkKeys::generate().unwrap();
        let seven_days = 7 * 24 * 3600;
        let link = keys.sign("GET", TARGET, at(NOW + seven_days)).unwrap();
        assert!(keys.verify("GET", link.as_str(), at(NOW)).is_ok());
        let link = keys
            .sign("GET", TARGET, at(NOW + seven_days + 3600))
            .unwrap();
        let err = keys.verify("GET", link.as_str(), at(NOW)).unwrap_err();
        assert_eq!(err.code(), "lifetime_too_long");
        // Once within seven days of its expiry, such a link is as good as any.
        assert!(keys.verify("GET", link.as_str(), at(NOW + 3600)).is_ok());
    }

    #[test]
    fn unsignable_requests_are_clear_errors() {
        let keys = LinkKeys::generate().unwrap();
        let expires = at(EXPIRES);
        for (method, target, expected) in [
            ("get", TARGET, "in capitals"),
            ("", TARGET, "in capitals"),
            ("GET POST", TARGET, "in capitals"),
            ("GET", "jobs", "cannot be signed"),
            (
                "GET",
                "/jobs/../jars",
                "cannot be signed: empty or dot path segments",
            ),
            ("GET", "/jobs/%2e%2e", "cannot be signed"),
            ("GET", "/jobs?", "empty query"),
            ("GET", "/jobs?a=1&&b=2", "empty query"),
            ("GET", "/jobs?a=1&", "empty query"),
            ("GET", "/jobs?fg-sig=x", "reserved"),
            ("GET", "/jobs?a=1&FG-EXPIRES=1", "reserved"),
            ("GET", "/jobs?fg%2dkid=1", "reserved"),
            ("GET", "/jobs?a=1&a=2", "more than once"),
        ] {
            let err = keys.sign(method, target, expires).unwrap_err();
            assert_eq!(err.code(), "invalid_request");
            assert!(!err.is_refusal());
            let message = err.to_string();
            assert!(message.contains(expected), "{method} {target}: {message}");
        }
        let long = format!("/jars/{}", "a".repeat(MAX_TARGET_LEN - 40));
        let err = keys.sign("GET", &long, expires).unwrap_err().to_string();
        assert!(err.contains("longer than the 4096"), "{err}");
        // (Past year 9999 cannot even be written as an `OffsetDateTime`.)
        for bad in [at(0), at(-1)] {
            let err = keys.sign("GET", TARGET, bad).unwrap_err().to_string();
            assert!(err.contains("out of range"), "{err}");
        }
    }

    #[test]
    fn rotation_keeps_links_of_the_previous_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let layout = PkiLayout::new(dir.path());
        let first = LinkKeys::load_or_create(&layout).unwrap();
        let old_link = signed(&first, "GET", TARGET);

        let second = LinkKeys::rotate(&layout).unwrap();
        // Still valid after one rotation, and new links use the new key.
        assert_eq!(code(&second, "GET", &old_link), "ok");
        let new_link = signed(&second, "GET", TARGET);
        assert!(new_link.contains(&format!("fg-kid={}&", second.current_kid())));
        assert_eq!(code(&second, "GET", &new_link), "ok");
        // The gateway's reloaded view is the same as the rotation's.
        assert_eq!(
            code(&LinkKeys::load(&layout).unwrap(), "GET", &old_link),
            "ok"
        );

        let third = LinkKeys::rotate(&layout).unwrap();
        assert_eq!(code(&third, "GET", &old_link), "unknown_key");
        assert_eq!(code(&third, "GET", &new_link), "ok");
        assert_eq!(
            code(&LinkKeys::load(&layout).unwrap(), "GET", &old_link),
            "unknown_key"
        );
    }

    #[test]
    fn the_signed_input_is_framed() {
        // Moving bytes between method and target, or target and expiry, changes the input.
        assert_ne!(
            mac_input("GE", "T/x", "1", "k"),
            mac_input("GET", "/x", "1", "k")
        );
        assert_ne!(
            mac_input("GET", "/x1", "", "k"),
            mac_input("GET", "/x", "1", "k")
        );
        assert_ne!(
            mac_input("GET", "/x", "1k", ""),
            mac_input("GET", "/x", "1", "k")
        );
    }
}
