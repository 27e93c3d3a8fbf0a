//! What the gateway runs with, read from flinkguard.yaml and the PKI.
//!
//! Two parts: [`Fixed`] settings bound at start (listen addresses, the audit file), and a
//! [`Snapshot`] of everything hot-reloadable (certificates, policy, token keys, trusted
//! proxies, limits). A snapshot is built completely or not at all: a reload that fails keeps
//! the last good one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flinkguard_config::{
    AuditDurability, ClientCertificates, Config, GroupAttribute, LoadedConfig,
};
use flinkguard_policy::Policy;
use flinkguard_token::{
    KeySet, KeySetHandle, RemoteJwks, RemoteJwksConfig, SetupError, Verifier, VerifierConfig,
    VerifierSet,
};
use http::HeaderName;
use ipnet::IpNet;

use crate::upstream::Upstream;

/// Where the gateway was told to start: the config file and command-line overrides.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// flinkguard.yaml.
    pub config_path: PathBuf,
    /// Overrides `gateway.listen`.
    pub listen: Option<SocketAddr>,
    /// Overrides `gateway.admin_listen` (`Some(None)`: no admin listener).
    pub admin_listen: Option<Option<SocketAddr>>,
}

/// Settings bound when the gateway starts; a reload that changes them is logged and ignored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fixed {
    pub(crate) listen: SocketAddr,
    pub(crate) admin_listen: Option<SocketAddr>,
    pub(crate) max_connections: usize,
    pub(crate) audit_file: Option<PathBuf>,
    pub(crate) audit_durability: AuditDurability,
    pub(crate) audit_stdout: bool,
    pub(crate) ownership_file: PathBuf,
    pub(crate) redact_patterns: Vec<String>,
}

impl Fixed {
    pub(crate) fn from_config(loaded: &LoadedConfig, options: &GatewayOptions) -> Fixed {
        let gateway = &loaded.config.gateway;
        Fixed {
            listen: options.listen.unwrap_or(gateway.listen),
            admin_listen: options.admin_listen.unwrap_or(gateway.admin_listen),
            max_connections: gateway.max_connections,
            audit_file: gateway.audit_file.as_ref().map(|p| loaded.base_dir.join(p)),
            audit_durability: gateway.audit_durability,
            audit_stdout: gateway.audit_stdout,
            ownership_file: loaded.base_dir.join(&gateway.ownership_file),
            redact_patterns: gateway.redact_patterns.clone(),
        }
    }
}

/// Identity headers believed from proxies at these addresses.
#[derive(Debug, Clone)]
pub(crate) struct TrustedProxies {
    pub(crate) cidrs: Vec<IpNet>,
    pub(crate) user_header: HeaderName,
    pub(crate) groups_header: HeaderName,
}

impl TrustedProxies {
    pub(crate) fn trusts(&self, peer: SocketAddr) -> bool {
        let ip = peer.ip().to_canonical();
        self.cidrs.iter().any(|net| net.contains(&ip))
    }
}

/// Time limits, from `gateway.timeouts`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) header_read: Duration,
    pub(crate) idle: Duration,
    pub(crate) request: Duration,
    pub(crate) shutdown_grace: Duration,
}

/// Everything a request is decided and forwarded with; replaced whole on reload.
pub(crate) struct Snapshot {
    pub(crate) fixed: Fixed,
    pub(crate) tls: Arc<rustls::ServerConfig>,
    pub(crate) group_attributes: Vec<GroupAttribute>,
    pub(crate) policy: Policy,
    /// Verifies bearer tokens; `None` accepts none.
    pub(crate) tokens: Option<VerifierSet>,
    /// The external decision service, if configured.
    pub(crate) webhook: Option<crate::webhook::Webhook>,
    /// Keys of signed links.
    pub(crate) links: flinkguard_signedlink::LinkKeys,
    /// The issuer of service tokens, to tell them apart from IdP tokens in audit lines.
    pub(crate) service_issuer: String,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) upstream: Upstream,
    pub(crate) max_body_bytes: u64,
    pub(crate) timeouts: Timeouts,
    /// The files this snapshot was built from; a change to any of them triggers a reload.
    pub(crate) sources: Vec<PathBuf>,
    _refreshers: Vec<Refresher>,
}

impl Snapshot {
    /// Reads flinkguard.yaml and every file it points to, and fetches every JWKS URL once.
    pub(crate) async fn load(options: &GatewayOptions) -> Result<Snapshot, GatewayError> {
        let loaded =
            Config::load(&options.config_path).map_err(|e| GatewayError::Config(e.to_string()))?;
        let gateway = &loaded.config.gateway;
        let pki = loaded.pki();
        let resolve = |p: &Path| loaded.base_dir.join(p);
        let mut sources = vec![options.config_path.clone()];

        let mut client_ca = vec![pki.ca_cert()];
        client_ca.extend(gateway.client_ca_files.iter().map(|p| resolve(p)));
        let tls = crate::tls::server_config(
            &pki.rest_cert(),
            &pki.rest_key(),
            &client_ca,
            gateway.client_certificates == ClientCertificates::Required,
        )?;
        sources.extend([pki.rest_cert(), pki.rest_key()]);
        sources.extend(client_ca);

        let service_issuer = flinkguard_token::service_issuer(&loaded.config.cluster.name);
        let mut verifiers = Vec::new();
        let mut refreshers = Vec::new();
        if gateway.service_tokens {
            // Created if missing (never replaced), so tokens minted later verify.
            let key = flinkguard_token::SigningKey::load_or_create(&pki)
                .map_err(|e| GatewayError::Tokens(e.to_string()))?;
            verifiers.push(
                Verifier::new(
                    VerifierConfig::new(
                        vec![service_issuer.clone()],
                        vec![flinkguard_token::DEFAULT_SERVICE_AUDIENCE.to_owned()],
                    ),
                    key.key_set()
                        .map_err(|e| GatewayError::Tokens(e.to_string()))?,
                )
                .map_err(|e| GatewayError::Tokens(e.to_string()))?,
            );
            let files = flinkguard_token::SigningKeyFiles::in_pki(&pki);
            sources.extend([files.key, files.jwks]);
        }
        for (index, issuer) in gateway.jwt.iter().enumerate() {
            let field = format!("gateway.jwt[{index}]");
            let keys = match (&issuer.jwks_file, &issuer.jwks_url) {
                (Some(file), _) => {
                    let file = resolve(file);
                    sources.push(file.clone());
                    KeySetHandle::new(
                        KeySet::from_jwks_file(&file)
                            .map_err(|e| GatewayError::Tokens(format!("{field}.jwks_file: {e}")))?,
                    )
                }
                (None, Some(url)) => {
                    let problem =
                        |e: SetupError| GatewayError::Tokens(format!("{field}.jwks_url: {e}"));
                    let mut remote = RemoteJwksConfig::new(url.parse().map_err(problem)?);
                    remote.ca_file = issuer.jwks_ca_file.as_ref().map(|p| resolve(p));
                    remote.refresh_interval = Duration::from_secs(issuer.jwks_refresh_seconds);
                    remote.min_refetch_interval =
                        Duration::from_secs(issuer.jwks_min_refetch_seconds);
                    sources.extend(remote.ca_file.clone());
                    let remote = RemoteJwks::fetch_initial(remote).await.map_err(problem)?;
                    let handle = remote.handle();
                    refreshers.push(Refresher(tokio::spawn(remote.run())));
                    handle
                }
                (None, None) => {
                    return Err(GatewayError::Tokens(format!(
                        "{field}: set jwks_file or jwks_url"
                    )));
                }
            };
            let config = VerifierConfig {
                issuers: issuer.issuers.clone(),
                audiences: issuer.audiences.clone(),
                leeway: Duration::from_secs(issuer.leeway_seconds),
                user_claim: issuer.user_claim.clone(),
                groups_claim: issuer.groups_claim.clone(),
            };
            verifiers.push(
                Verifier::new(config, keys)
                    .map_err(|e| GatewayError::Tokens(format!("{field}: {e}")))?,
            );
        }
        let tokens = if verifiers.is_empty() {
            None
        } else {
            Some(VerifierSet::new(verifiers).map_err(|e| GatewayError::Tokens(e.to_string()))?)
        };

        // Created if missing (never replaced); `flinkguard pki rotate-link-key` rotates it.
        let links = flinkguard_signedlink::LinkKeys::load_or_create(&pki)
            .map_err(|e| GatewayError::Tokens(format!("signed links: {e}")))?;
        sources.push(flinkguard_signedlink::link_keys_file(&pki));

        let proxies = &gateway.trusted_proxies;
        // Checked by the config parser already.
        let header = |name: &str| {
            HeaderName::try_from(name.to_ascii_lowercase())
                .map_err(|e| GatewayError::Config(format!("gateway.trusted_proxies: {e}")))
        };
        let trusted_proxies = TrustedProxies {
            cidrs: proxies.cidrs.iter().map(|c| c.0).collect(),
            user_header: header(&proxies.user_header)?,
            groups_header: header(&proxies.groups_header)?,
        };

        let upstream_tls = crate::upstream::UpstreamTls::from_config(&loaded);
        sources.extend(upstream_tls.sources());
        let upstream = Upstream::new(loaded.config.flink.rest_port, &upstream_tls)?;

        let webhook = match &gateway.authorization_webhook {
            Some(hook) => {
                let ca = hook.ca_file.as_ref().map(|p| resolve(p));
                sources.extend(ca.clone());
                Some(crate::webhook::Webhook::new(hook, ca.as_deref())?)
            }
            None => None,
        };

        let t = &gateway.timeouts;
        Ok(Snapshot {
            fixed: Fixed::from_config(&loaded, options),
            tls,
            group_attributes: gateway.group_attributes.clone(),
            policy: loaded.policy.clone(),
            tokens,
            links,
            webhook,
            service_issuer,
            trusted_proxies,
            upstream,
            max_body_bytes: gateway.max_body_bytes,
            timeouts: Timeouts {
                header_read: Duration::from_secs(t.header_read_seconds),
                idle: Duration::from_secs(t.idle_seconds),
                request: Duration::from_secs(t.request_seconds),
                shutdown_grace: Duration::from_secs(t.shutdown_grace_seconds),
            },
            sources,
            _refreshers: refreshers,
        })
    }
}

/// A background JWKS refresh, stopped when the snapshot that uses its keys is dropped (after
/// a reload, once the last request holding the old snapshot finished).
pub(crate) struct Refresher(tokio::task::JoinHandle<()>);

impl Drop for Refresher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why the gateway cannot start or reload; each names the file or address and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// flinkguard.yaml cannot be used.
    #[error("{0}")]
    Config(String),
    /// A certificate or key file is missing or unusable.
    #[error("{}: {problem}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The token verification keys cannot be set up.
    #[error("bearer tokens: {0}")]
    Tokens(String),
    /// The ownership store cannot be opened.
    #[error("{0}")]
    Ownership(String),
    /// The redaction patterns are unusable.
    #[error("gateway.redact_patterns: {0}")]
    Redaction(String),
    /// The audit file cannot be opened: the gateway does not run unaudited.
    #[error("cannot open the audit file {}: {source}", path.display())]
    Audit {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A listen address cannot be bound.
    #[error(
        "cannot listen on {0}: {1} (is another gateway running? choose another address with --listen / --admin-listen)"
    )]
    Listen(SocketAddr, std::io::Error),
}
