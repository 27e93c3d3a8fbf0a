use std::net::SocketAddr;
use std::path::PathBuf;

use flinkguard_config::LoadedConfig;
use std::sync::Arc;

use flinkguard_policy::Policy;
use flinkguard_token::{Verifier, VerifierConfig, VerifierSet};

/// Everything the gateway runs with, resolved from flinkguard.yaml and the PKI.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// Flink's REST endpoint on loopback (`127.0.0.1:8081`).
    pub upstream: SocketAddr,
    /// Server certificate chain, PEM.
    pub server_cert: PathBuf,
    /// Server private key, PEM.
    pub server_key: PathBuf,
    /// CA certificates that client certificates must chain to, PEM.
    pub client_ca: Vec<PathBuf>,
    /// The policy requests are decided by.
    pub policy: Policy,
    /// Verifies bearer tokens; `None` accepts none.
    pub tokens: Option<Arc<VerifierSet>>,
    /// The issuer of service tokens, to tell them apart from IdP tokens in audit lines.
    pub service_issuer: String,
    /// Append audit lines here (fdatasync'd per line before the response).
    pub audit_file: Option<PathBuf>,
    /// Also write audit lines to stdout.
    pub audit_stdout: bool,
    /// Largest request body forwarded; larger declared bodies get 413 before being read.
    pub max_body_bytes: usize,
}

impl GatewaySettings {
    /// The settings a `flinkguard.yaml` describes. With service tokens on, the signing key is
    /// created if missing (never replaced), so tokens minted later verify without a restart.
    pub fn from_config(
        loaded: &LoadedConfig,
        listen: SocketAddr,
    ) -> Result<GatewaySettings, GatewayError> {
        let pki = loaded.pki();
        let service_issuer = flinkguard_token::service_issuer(&loaded.config.cluster.name);
        let tokens = if loaded.config.gateway.service_tokens {
            let key = flinkguard_token::SigningKey::load_or_create(&pki)
                .map_err(|e| GatewayError::Tokens(e.to_string()))?;
            let verifier = Verifier::new(
                VerifierConfig::new(
                    vec![service_issuer.clone()],
                    vec![flinkguard_token::DEFAULT_SERVICE_AUDIENCE.to_owned()],
                ),
                key.key_set()
                    .map_err(|e| GatewayError::Tokens(e.to_string()))?,
            )
            .map_err(|e| GatewayError::Tokens(e.to_string()))?;
            Some(Arc::new(
                VerifierSet::new(vec![verifier])
                    .map_err(|e| GatewayError::Tokens(e.to_string()))?,
            ))
        } else {
            None
        };
        Ok(GatewaySettings {
            listen,
            upstream: SocketAddr::from(([127, 0, 0, 1], loaded.config.flink.rest_port)),
            server_cert: pki.rest_cert(),
            server_key: pki.rest_key(),
            client_ca: vec![pki.ca_cert()],
            policy: loaded.policy.clone(),
            tokens,
            service_issuer,
            audit_file: loaded
                .config
                .gateway
                .audit_file
                .as_ref()
                .map(|p| loaded.base_dir.join(p)),
            audit_stdout: loaded.config.gateway.audit_stdout,
            max_body_bytes: usize::try_from(loaded.config.gateway.max_body_bytes)
                .unwrap_or(usize::MAX),
        })
    }
}

/// Why the gateway cannot start; each names the file or address and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
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
    #[error("service tokens: {0}")]
    Tokens(String),
    /// The audit file cannot be opened: the gateway does not run unaudited.
    #[error("cannot open the audit file {}: {source}", path.display())]
    Audit {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The listen address cannot be bound.
    #[error(
        "cannot listen on {0}: {1} (is another gateway running? choose another address with --listen)"
    )]
    Listen(SocketAddr, std::io::Error),
}
