//! Keys from an identity provider's JWKS URL (its `jwks_uri`), fetched at startup and kept
//! fresh by a background task.
//!
//! * Startup fails loudly: without a first key set no token can be verified, and a gateway
//!   that starts anyway would refuse every user with a misleading 401.
//! * Afterwards a failed refresh never removes keys: the last good set stays in force, the
//!   failure is logged, and the fetch is retried with exponential backoff and jitter.
//! * Identity providers rotate keys by publishing a new one and then signing with it. A token
//!   whose `kid` is not in the set asks for an early refresh (through the [`KeySetHandle`]),
//!   but at most one fetch per [`RemoteJwksConfig::min_refetch_interval`] follows, however
//!   many such tokens arrive: tokens with made-up key ids cannot make the gateway hammer the
//!   identity provider.
//!
//! ```no_run
//! # use flinkguard_token::*;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let url: JwksUrl = "https://idp.example.org/realms/flink/protocol/openid-connect/certs".parse()?;
//! let remote = RemoteJwks::fetch_initial(RemoteJwksConfig::new(url)).await?;
//! let verifier = Verifier::new(
//!     VerifierConfig::new(vec!["https://idp.example.org/realms/flink".into()], vec!["flinkguard".into()]),
//!     remote.handle(),
//! )?;
//! let refresher = tokio::spawn(remote.run());
//! # drop((verifier, refresher)); Ok(()) }
//! ```

mod fetch;
#[cfg(test)]
mod tests;
mod url;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use crate::jwk::RefreshRequests;
use crate::{KeySetHandle, SetupError};
use fetch::Fetcher;
pub use url::JwksUrl;

/// How often the JWKS is fetched again by default: 5 minutes.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// By default, unknown key ids cause at most one fetch per 30 seconds.
pub const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// The default limit for one whole fetch (connect, TLS, request, body): 10 seconds.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The first retry delay after a failed refresh; it doubles per failure, up to the refresh
/// interval.
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Where the keys come from and how often they are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwksConfig {
    /// The identity provider's `jwks_uri`.
    pub url: JwksUrl,
    /// A PEM file of CA certificates to trust for the URL's server *instead of* the public
    /// web roots (for an identity provider behind a private CA). `None`: the Mozilla root
    /// set shipped with flinkguard (`webpki-roots`).
    pub ca_file: Option<PathBuf>,
    /// How often the key set is fetched again (default 5 minutes); also the longest delay
    /// between retries after failures.
    pub refresh_interval: Duration,
    /// The shortest time between the previous fetch and one asked for by a token with an
    /// unknown `kid` (default 30 s).
    pub min_refetch_interval: Duration,
    /// The limit for one whole fetch, connection to last byte (default 10 s).
    pub timeout: Duration,
}

impl RemoteJwksConfig {
    /// Fetching `url` with the default intervals, the default timeout and the public roots.
    pub fn new(url: JwksUrl) -> RemoteJwksConfig {
        RemoteJwksConfig {
            url,
            ca_file: None,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            min_refetch_interval: DEFAULT_MIN_REFETCH_INTERVAL,
            timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }

    fn check(&self) -> Result<(), SetupError> {
        for (field, value) in [
            ("refresh_interval", self.refresh_interval),
            ("min_refetch_interval", self.min_refetch_interval),
            ("timeout", self.timeout),
        ] {
            if value.is_zero() {
                return Err(SetupError::InvalidConfig(format!(
                    "JWKS {field} for {}: must be more than zero",
                    self.url
                )));
            }
        }
        Ok(())
    }
}

/// A key set fetched from a JWKS URL, and the task that keeps it fresh.
///
/// [`fetch_initial`](RemoteJwks::fetch_initial) fetches once; [`handle`](RemoteJwks::handle)
/// goes to [`Verifier::new`](crate::Verifier::new); [`run`](RemoteJwks::run), spawned on the
/// Tokio runtime, refreshes until the task is aborted or the runtime shuts down.
#[derive(Debug)]
pub struct RemoteJwks {
    fetcher: Fetcher,
    handle: KeySetHandle,
    requests: Arc<RefreshRequests>,
    refresh_interval: Duration,
    min_refetch_interval: Duration,
    /// When the fetch that produced the current set started.
    last_attempt: Instant,
}

impl RemoteJwks {
    /// Checks the configuration and fetches the key set once.
    ///
    /// Fails if the first fetch fails (unreachable, not trusted, not 200, not a usable
    /// JWKS...): the error names the URL and the reason, so a misconfigured gateway stops at
    /// startup instead of refusing every token.
    pub async fn fetch_initial(config: RemoteJwksConfig) -> Result<RemoteJwks, SetupError> {
        config.check()?;
        let fetcher = Fetcher::new(&config)?;
        let last_attempt = Instant::now();
        let keys = fetcher
            .fetch()
            .await
            .map_err(|problem| SetupError::JwksFetch {
                url: config.url.to_string(),
                problem,
            })?;
        let requests = Arc::new(RefreshRequests::default());
        Ok(RemoteJwks {
            handle: KeySetHandle::with_refresh_requests(keys, requests.clone()),
            fetcher,
            requests,
            refresh_interval: config.refresh_interval,
            min_refetch_interval: config.min_refetch_interval,
            last_attempt,
        })
    }

    /// The key set, for [`Verifier::new`](crate::Verifier::new): refreshes reach every
    /// verifier holding it, and its verifiers ask for an early refresh on an unknown `kid`.
    pub fn handle(&self) -> KeySetHandle {
        self.handle.clone()
    }

    /// The URL the keys come from.
    pub fn url(&self) -> &JwksUrl {
        self.fetcher.url()
    }

    /// Keeps the key set fresh; never returns. Spawn it (`tokio::spawn(remote.run())`) and
    /// abort the task to stop it.
    ///
    /// Fetches every `refresh_interval`, and earlier when a verifier met an unknown `kid`,
    /// but never sooner than `min_refetch_interval` after the previous fetch. A failed fetch
    /// leaves the current set in force, logs one line to stderr and is retried after 1 s,
    /// 2 s, 4 s... (at most `refresh_interval`, each with up to half taken off at random so
    /// that many gateways do not retry in step).
    pub async fn run(self) {
        let mut last_attempt = self.last_attempt;
        let mut next = last_attempt + self.refresh_interval;
        let mut failures: u32 = 0;
        loop {
            tokio::select! {
                () = sleep_until(next) => {}
                () = self.requests.pending() => {
                    // Requests arriving while this waits are collapsed into the same fetch.
                    sleep_until(next.min(last_attempt + self.min_refetch_interval)).await;
                }
            }
            last_attempt = Instant::now();
            match self.fetcher.fetch().await {
                Ok(keys) => {
                    self.handle.replace(keys);
                    if failures > 0 {
                        eprintln!(
                            "flinkguard: JWKS from {} fetched again after {failures} failed \
                             attempt(s)",
                            self.fetcher.url()
                        );
                    }
                    failures = 0;
                    next = last_attempt + self.refresh_interval;
                }
                Err(problem) => {
                    failures = failures.saturating_add(1);
                    let delay = retry_delay(failures, self.refresh_interval);
                    eprintln!(
                        "flinkguard: cannot refresh the JWKS from {}: {problem}; keeping the \
                         last good key set, retrying in {:.1} s",
                        self.fetcher.url(),
                        delay.as_secs_f64()
                    );
                    next = Instant::now() + delay;
                }
            }
            // Every request raised so far was answered by this fetch, successful or not; a
            // token whose kid is still unknown raises a new one.
            self.requests.clear();
        }
    }
}

/// The delay before retry number `failures` (from 1): [`FIRST_RETRY_DELAY`] doubled per
/// failure, capped at `cap`, with a random part of up to half of it taken off.
fn retry_delay(failures: u32, cap: Duration) -> Duration {
    let doubling = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
    let full = FIRST_RETRY_DELAY.saturating_mul(doubling).min(cap);
    let mut random = [0u8; 4];
    // Without randomness the delay is merely not jittered.
    let _ = aws_lc_rs::rand::fill(&mut random);
    let fraction = f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX);
    full.mul_f64(1.0 - fraction / 2.0)
}
