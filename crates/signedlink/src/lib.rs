//! Pre-authenticated links (FLIP-26's signed artifact URLs).
//!
//! A principal allowed to sign asks for a link to one request, e.g. `GET` on a job's
//! exceptions, valid for ten minutes; whoever holds the link may make exactly that request
//! through the gateway until it expires, without a certificate or a token. The link is the
//! request target with `fg-expires`, `fg-kid` and `fg-sig` appended (see [`LinkKeys::sign`]
//! and the format in the `link` module); the signature is an HMAC-SHA256 over method, target,
//! expiry and key id with a key only flinkguard holds.
//!
//! The keys live in the PKI directory as [`LINK_KEYS_FILE`] (mode 0600): a current key that
//! signs and the previous one that still verifies, so [`LinkKeys::rotate`] does not break
//! links signed just before it; the rotation after that revokes them.
//!
//! ```
//! use flinkguard_signedlink::{LinkKeys, Ttl};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = LinkKeys::generate()?;
//! let now = time::OffsetDateTime::now_utc();
//! let expires = "10m".parse::<Ttl>()?.expires_at(now)?;
//! let link = keys.sign("GET", "/jobs/4f2a/exceptions?maxExceptions=10", expires)?;
//! assert!(link.as_str().starts_with("/jobs/4f2a/exceptions?maxExceptions=10&fg-expires="));
//!
//! let verified = keys.verify("GET", link.as_str(), now)?;
//! assert_eq!(verified.target_without_signature, "/jobs/4f2a/exceptions?maxExceptions=10");
//! assert!(keys.verify("DELETE", link.as_str(), now).is_err());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod keys;
mod link;
mod ttl;

pub use error::LinkError;
pub use keys::{LINK_KEYS_FILE, LinkKeys, link_keys_file};
pub use link::{EXPIRES_PARAM, KID_PARAM, SIGNATURE_PARAM, SignedLink, VerifiedLink, is_signed};
pub use ttl::Ttl;
