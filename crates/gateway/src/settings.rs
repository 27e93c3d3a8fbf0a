use std::net::SocketAddr;
use std::path::PathBuf;

use flinkguard_config::LoadedConfig;
use flinkguard_policy::Policy;

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
}

impl GatewaySettings {
    /// The settings a `flinkguard.yaml` describes.
    pub fn from_config(loaded: &LoadedConfig, listen: SocketAddr) -> GatewaySettings {
        let pki = loaded.pki();
        GatewaySettings {
            listen,
            upstream: SocketAddr::from(([127, 0, 0, 1], loaded.config.flink.rest_port)),
            server_cert: pki.rest_cert(),
            server_key: pki.rest_key(),
            client_ca: vec![pki.ca_cert()],
            policy: loaded.policy.clone(),
        }
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
    /// The listen address cannot be bound.
    #[error(
        "cannot listen on {0}: {1} (is another gateway running? choose another address with --listen)"
    )]
    Listen(SocketAddr, std::io::Error),
}
