//! Bearer tokens for the gateway.
//!
//! * **Verification** of JWTs from an identity provider or from flinkguard itself: RS256,
//!   ES256 and EdDSA, keys from a JWKS, each key pinned to one algorithm; `iss`, `aud`, `exp`
//!   (required) and `nbf` enforced with a small clock skew; user and groups taken from
//!   configurable claims. Every refusal is a distinct [`TokenError`] whose message never
//!   echoes the token, so it can go into a 401 response and an audit line as it is.
//! * **Service tokens** for CI jobs and service accounts: ES256 JWTs signed with a key kept in
//!   the PKI directory ([`SigningKey`]), verified by the gateway with the same code path.
//!
//! The key set behind a [`Verifier`] is a [`KeySetHandle`]: an immutable [`KeySet`] snapshot
//! that a JWKS refresh replaces atomically. [`RemoteJwks`] fetches it from an identity
//! provider's `jwks_uri` and keeps it fresh, refetching early (rate-limited) when a token names
//! an unknown key.
//!
//! ```
//! use flinkguard_token::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::generate()?;
//! let now = time::OffsetDateTime::now_utc();
//! let issued = key.issue(
//!     &ServiceTokenRequest {
//!         issuer: service_issuer("prod"),
//!         audience: DEFAULT_SERVICE_AUDIENCE.into(),
//!         user: "ci-deployer".parse()?,
//!         groups: vec!["team-a".parse()?],
//!         ttl: "12h".parse()?,
//!     },
//!     now,
//! )?;
//! let verifier = Verifier::new(
//!     VerifierConfig::new(vec![service_issuer("prod")], vec![DEFAULT_SERVICE_AUDIENCE.into()]),
//!     key.key_set()?,
//! )?;
//! let identity = verifier.verify(issued.token(), now)?;
//! assert_eq!((identity.user.as_str(), identity.groups), ("ci-deployer", vec!["team-a".to_owned()]));
//! assert_eq!(verifier.verify("eyJhbGciOiJub25lIn0.e30.", now), Err(TokenError::Unsigned));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod json;
mod jwk;
mod remote;
mod service;
#[cfg(test)]
mod testkeys;
mod ttl;
mod verify;

pub use error::{SetupError, TokenError};
pub use jwk::{Algorithm, KeySet, KeySetHandle, MAX_JWKS_BYTES, MAX_KEYS, VerifyingKey};
pub use remote::{
    DEFAULT_FETCH_TIMEOUT, DEFAULT_MIN_REFETCH_INTERVAL, DEFAULT_REFRESH_INTERVAL, JwksUrl,
    RemoteJwks, RemoteJwksConfig,
};
pub use service::{
    DEFAULT_SERVICE_AUDIENCE, IssuedToken, KeyOrigin, SIGNING_JWKS_FILE, SIGNING_KEY_FILE,
    ServiceTokenRequest, SigningKey, SigningKeyFiles, service_issuer,
};
pub use ttl::{Ttl, format_lifetime, parse_lifetime};
pub use verify::{
    DEFAULT_LEEWAY, MAX_LEEWAY, MAX_TOKEN_BYTES, VerifiedToken, Verifier, VerifierConfig,
    VerifierSet,
};
