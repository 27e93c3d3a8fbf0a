//! `flinkguard probe`: attacks a live Flink cluster's endpoints, without side effects, and
//! reports which FLIP-26 threats are open, with evidence.
//!
//! For each endpoint: is it reachable; does it speak TLS or plaintext; which TLS versions and
//! suites it accepts ([`hello`], a raw ClientHello scanner); does it require a client
//! certificate, and does it accept a foreign self-signed one ([`tls`]); and for REST endpoints,
//! what an anonymous client can read and do ([`rest`]). With a cluster URL, the JobManager and
//! TaskManager ports are discovered through REST ([`discover`]).
//!
//! ```no_run
//! use flinkguard_probe::{ProbeRequest, probe};
//!
//! let request = ProbeRequest {
//!     cluster: Some("http://127.0.0.1:8081".parse().unwrap()),
//!     ..ProbeRequest::default()
//! };
//! let report = probe(&request).unwrap();
//! for finding in &report.findings {
//!     println!("{} {} {} {}", finding.id, finding.status, finding.endpoint, finding.evidence);
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod discover;
pub mod hello;
pub mod http;
pub mod rest;
pub mod tls;

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

pub use flinkguard_scan::Threat;
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use crate::hello::{TlsVersion, VersionScan};
use crate::rest::RestResult;
use crate::tls::{
    ClientIdentity, ForeignKey, Handshake, LoadedIdentity, PlaintextOutcome, Timeouts, TlsOutcome,
};

/// What can go wrong before probing starts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// A client identity (certificate or key) is unusable.
    #[error("{0}")]
    Identity(String),
    /// A target or URL is malformed or does not resolve.
    #[error("{0}")]
    BadInput(String),
}

/// OPEN, CLOSED, or could not be determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// An anonymous or foreign client can do it.
    Open,
    /// It could not be determined (no answer, a server error).
    Unknown,
    /// Refused.
    Closed,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Open => "OPEN",
            Status::Unknown => "UNKNOWN",
            Status::Closed => "CLOSED",
        })
    }
}

/// What an endpoint is, as far as the probe knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Flink's REST API (or a gateway in front of it).
    Rest,
    /// JobManager RPC (Pekko).
    JobManagerRpc,
    /// The JobManager's blob server.
    Blob,
    /// TaskManager RPC (Pekko).
    TaskManagerRpc,
    /// TaskManager data port (Netty shuffle).
    TaskManagerData,
    /// Given with `--target`: found to be REST if it answers HTTP, else treated as internal.
    Unknown,
}

impl Role {
    /// Internal endpoints are for cluster members only: JobManager, TaskManagers.
    pub fn is_internal(self) -> bool {
        !matches!(self, Role::Rest | Role::Unknown)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Rest => "REST",
            Role::JobManagerRpc => "JobManager RPC",
            Role::Blob => "blob server",
            Role::TaskManagerRpc => "TaskManager RPC",
            Role::TaskManagerData => "TaskManager data",
            Role::Unknown => "target",
        })
    }
}

/// One endpoint to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host as given or discovered (a name or an address).
    pub host: String,
    /// The resolved address.
    pub addr: SocketAddr,
    /// What it is.
    pub role: Role,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.role, self.addr)
    }
}

/// `HOST:PORT` (or `[IPv6]:PORT`), resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host as given.
    pub host: String,
    /// The first address it resolves to.
    pub addr: SocketAddr,
}

impl FromStr for Target {
    type Err = ProbeError;

    fn from_str(text: &str) -> Result<Self, ProbeError> {
        let bad = |why: &str| {
            ProbeError::BadInput(format!(
                "{text:?} {why}; expected HOST:PORT, e.g. 127.0.0.1:6123"
            ))
        };
        let (host, addr) = parse_authority(text, None).map_err(|why| bad(&why))?;
        Ok(Target { host, addr })
    }
}

/// `HOST:PORT`, `[IPv6]:PORT`, or without `:PORT` when there is a default: the host as
/// given (brackets removed) and the first address it resolves to.
fn parse_authority(text: &str, default_port: Option<u16>) -> Result<(String, SocketAddr), String> {
    let (host, port) = match (text.rsplit_once(':'), default_port) {
        (Some((host, port)), _) if !port.contains(']') => (
            host,
            port.parse::<u16>()
                .map_err(|_| "has no valid port".to_owned())?,
        ),
        (_, Some(port)) => (text, port),
        (_, None) => return Err("has no port".to_owned()),
    };
    if port == 0 {
        return Err("has port 0".to_owned());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("has no host".to_owned());
    }
    Ok((host.to_owned(), resolve(host, port)?))
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("does not resolve ({e})"))?
        .next()
        .ok_or_else(|| "does not resolve".to_owned())
}

/// A cluster's REST URL: `http://HOST:PORT` or `https://HOST:PORT`, optionally with a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    /// https?
    pub tls: bool,
    /// The host as given.
    pub host: String,
    /// The resolved address.
    pub addr: SocketAddr,
    /// A path prefix without a trailing slash (often empty).
    pub base_path: String,
}

impl FromStr for ClusterUrl {
    type Err = ProbeError;

    fn from_str(text: &str) -> Result<Self, ProbeError> {
        let bad = |why: &str| {
            ProbeError::BadInput(format!(
                "{text:?} {why}; expected http://HOST:PORT or https://HOST:PORT, e.g. http://127.0.0.1:8081"
            ))
        };
        let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("is not an http or https URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.contains('@') || path.contains(['?', '#']) {
            return Err(bad("has credentials, a query or a fragment"));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, addr) =
            parse_authority(authority, Some(default_port)).map_err(|why| bad(&why))?;
        Ok(ClusterUrl {
            tls,
            host,
            addr,
            base_path: path.to_owned(),
        })
    }
}

/// Credentials used only to discover a cluster's endpoints through its REST API; every probe
/// itself stays anonymous.
#[derive(Debug, Clone)]
pub struct DiscoveryCredentials {
    config: Arc<ClientConfig>,
}

impl DiscoveryCredentials {
    /// From PEM: a client certificate chain and key (either both or none), and the CA that
    /// signed the server's certificate. Without a CA, a client certificate is presented only
    /// to servers with a publicly trusted certificate; anonymous discovery does not check the
    /// server (it only reads ports, from a target under test).
    pub fn from_pem(
        cert_and_key: Option<(&[u8], &[u8])>,
        ca: Option<&[u8]>,
    ) -> Result<Self, ProbeError> {
        let provider = tls::provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ProbeError::Identity(e.to_string()))?;
        let builder = match ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca) {
                    let cert = cert.map_err(|e| ProbeError::Identity(format!("CA file: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| ProbeError::Identity(format!("CA file: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(ProbeError::Identity(
                        "CA file: no certificate in it".to_owned(),
                    ));
                }
                builder.with_root_certificates(roots)
            }
            // Anonymous discovery reads what any scanner may read, from a target that is
            // under test anyway; a client certificate, though, is only presented to a server
            // that proves who it is (the public roots, as curl does without --cacert).
            None if cert_and_key.is_some() => builder.with_root_certificates(
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            ),
            None => return Self::anonymous_unchecked(),
        };
        let config = match cert_and_key {
            Some((cert, key)) => {
                let (chain, key) = parse_identity(cert, key)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| ProbeError::Identity(format!("client certificate: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(DiscoveryCredentials {
            config: Arc::new(config),
        })
    }

    /// No client certificate, and any server certificate accepted.
    fn anonymous_unchecked() -> Result<Self, ProbeError> {
        let identity = ClientIdentity::None;
        let (config, _) = tls::probe_client_config(
            &LoadedIdentity::load(&identity)?,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )?;
        Ok(DiscoveryCredentials {
            config: Arc::new(config),
        })
    }
}

fn parse_identity(
    cert: &[u8],
    key: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ProbeError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| ProbeError::Identity(format!("certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(ProbeError::Identity(
            "certificate file: no certificate in it".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| ProbeError::Identity(format!("key file: {e}")))?;
    Ok((chain, key))
}

/// What to probe.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    /// Endpoints given explicitly.
    pub targets: Vec<Target>,
    /// A cluster to discover through REST (and probe as a REST endpoint).
    pub cluster: Option<ClusterUrl>,
    /// Credentials for discovery only.
    pub discovery: Option<DiscoveryCredentials>,
    /// Per-step timeouts.
    pub timeouts: Timeouts,
    /// The whole probe ends by then; endpoints not finished are reported UNKNOWN.
    pub deadline: Duration,
}

impl Default for ProbeRequest {
    fn default() -> Self {
        ProbeRequest {
            targets: Vec::new(),
            cluster: None,
            discovery: None,
            timeouts: Timeouts::PROBE,
            deadline: Duration::from_secs(9),
        }
    }
}

/// A server certificate, summarized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// End of validity.
    pub not_after: String,
    /// Subject equals issuer.
    pub self_signed: bool,
}

impl CertSummary {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Option<CertSummary> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        Some(CertSummary {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_after: cert.validity().not_after.to_string(),
            self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
        })
    }
}

/// How an endpoint talks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// No TCP connection.
    Unreachable(String),
    /// Answers ClientHellos with TLS records.
    Tls,
    /// Never answered a ClientHello with TLS; the evidence says what it did instead.
    Plaintext(String),
    /// The probe did not finish before the deadline.
    TimedOut,
}

/// Everything learned about one endpoint.
#[derive(Debug, Clone)]
pub struct EndpointReport {
    /// The endpoint (its role may have been refined: a `--target` answering HTTP is REST).
    pub endpoint: Endpoint,
    /// TLS or not.
    pub transport: Transport,
    /// Per TLS version: accepted suites.
    pub versions: Vec<VersionScan>,
    /// Handshake without a client certificate.
    pub anonymous: Option<Handshake>,
    /// Handshakes with foreign self-signed certificates (ECDSA P-256, RSA 2048).
    pub foreign: Vec<(ForeignKey, Handshake)>,
    /// The server certificate.
    pub server_cert: Option<CertSummary>,
    /// The plaintext probe's outcome.
    pub plaintext: Option<PlaintextOutcome>,
    /// Anonymous REST checks, for HTTP endpoints.
    pub rest: Vec<RestResult>,
}

impl EndpointReport {
    /// A report with nothing found yet.
    fn new(endpoint: Endpoint, transport: Transport) -> Self {
        EndpointReport {
            endpoint,
            transport,
            versions: Vec::new(),
            anonymous: None,
            foreign: Vec::new(),
            server_cert: None,
            plaintext: None,
            rest: Vec::new(),
        }
    }

    /// TLS versions the server accepted.
    pub fn accepted_versions(&self) -> Vec<TlsVersion> {
        self.versions
            .iter()
            .filter(|v| v.accepted_version())
            .map(|v| v.version)
            .collect()
    }

    /// Whether a handshake without a client certificate was refused while the server asked
    /// for one: `Some(true)` required, `Some(false)` not required, `None` not TLS.
    pub fn client_cert_required(&self) -> Option<bool> {
        let anonymous = self.anonymous.as_ref()?;
        match anonymous.outcome {
            TlsOutcome::Accepted { .. } => Some(false),
            TlsOutcome::Rejected { .. } => Some(true),
            _ => None,
        }
    }
}

/// One finding: a check's verdict on one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable id, e.g. `FG-PROBE-001`.
    pub id: &'static str,
    /// What OPEN means.
    pub title: &'static str,
    /// The threat.
    pub threat: Threat,
    /// OPEN, CLOSED or UNKNOWN.
    pub status: Status,
    /// The endpoint, e.g. `JobManager RPC 127.0.0.1:6123`.
    pub endpoint: String,
    /// What the server answered.
    pub evidence: String,
}

/// The verdict on one threat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreatStatus {
    /// At least one finding is OPEN.
    Open,
    /// None OPEN, but at least one could not be determined.
    Unknown,
    /// Every finding CLOSED.
    Closed,
    /// No check of this threat applied to the endpoints probed.
    NotTested,
}

impl fmt::Display for ThreatStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ThreatStatus::Open => "OPEN",
            ThreatStatus::Unknown => "UNKNOWN",
            ThreatStatus::Closed => "CLOSED",
            ThreatStatus::NotTested => "NOT TESTED",
        })
    }
}

/// The threats, in report order.
pub const THREATS: [Threat; 4] = [
    Threat::JobControl,
    Threat::StateAccess,
    Threat::SecretExposure,
    Threat::Impersonation,
];

/// The probe's result.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every endpoint probed.
    pub endpoints: Vec<EndpointReport>,
    /// Every finding, OPEN first.
    pub findings: Vec<Finding>,
    /// What could not be discovered or probed.
    pub notes: Vec<String>,
    /// How long the probe took.
    pub elapsed: Duration,
}

impl Report {
    /// The verdict on `threat`.
    pub fn threat_status(&self, threat: Threat) -> ThreatStatus {
        let statuses: Vec<Status> = self
            .findings
            .iter()
            .filter(|f| f.threat == threat)
            .map(|f| f.status)
            .collect();
        if statuses.contains(&Status::Open) {
            ThreatStatus::Open
        } else if statuses.contains(&Status::Unknown) {
            ThreatStatus::Unknown
        } else if statuses.is_empty() {
            ThreatStatus::NotTested
        } else {
            ThreatStatus::Closed
        }
    }

    /// Whether any threat is OPEN or could not be shown CLOSED.
    pub fn any_open(&self) -> bool {
        THREATS.iter().any(|&t| {
            matches!(
                self.threat_status(t),
                ThreatStatus::Open | ThreatStatus::Unknown
            )
        })
    }
}

/// Probes every target and, with a cluster URL, every endpoint discovered through it, all in
/// parallel, within `request.deadline`.
pub fn probe(request: &ProbeRequest) -> Result<Report, ProbeError> {
    let start = Instant::now();
    let deadline = start + request.deadline;
    let timeouts = request.timeouts;
    let mut endpoints: Vec<Endpoint> = request
        .targets
        .iter()
        .map(|t| Endpoint {
            host: t.host.clone(),
            addr: t.addr,
            role: Role::Unknown,
        })
        .collect();
    let mut notes = Vec::new();
    let mut base_paths = Vec::new();
    if let Some(url) = &request.cluster {
        let tls = url.tls.then(|| match &request.discovery {
            Some(credentials) => Ok(credentials.config.clone()),
            None => DiscoveryCredentials::anonymous_unchecked().map(|c| c.config),
        });
        let tls = tls.transpose()?;
        let found = discover::discover(url, tls, &timeouts);
        notes.extend(found.notes);
        endpoints.retain(|e| e.addr != url.addr);
        endpoints.insert(
            0,
            Endpoint {
                host: url.host.clone(),
                addr: url.addr,
                role: Role::Rest,
            },
        );
        base_paths.push((url.addr, url.base_path.clone()));
        for e in found.endpoints {
            if !endpoints.iter().any(|known| known.addr == e.addr) {
                endpoints.push(e);
            }
        }
    }
    let identities = Arc::new(Identities {
        none: LoadedIdentity::load(&ClientIdentity::None)?,
        foreign: vec![
            (
                ForeignKey::EcdsaP256,
                LoadedIdentity::load(&ClientIdentity::Foreign(ForeignKey::EcdsaP256))?,
            ),
            (
                ForeignKey::Rsa2048,
                LoadedIdentity::load(&ClientIdentity::Foreign(ForeignKey::Rsa2048))?,
            ),
        ],
    });

    let (sender, receiver) = mpsc::channel();
    for (index, endpoint) in endpoints.iter().enumerate() {
        let endpoint = endpoint.clone();
        let sender = sender.clone();
        let identities = identities.clone();
        let base_path = base_paths
            .iter()
            .find(|(addr, _)| *addr == endpoint.addr)
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        std::thread::spawn(move || {
            let report = probe_endpoint(endpoint, &base_path, &identities, &timeouts);
            let _ = sender.send((index, report));
        });
    }
    drop(sender);
    let mut reports: Vec<Option<EndpointReport>> = vec![None; endpoints.len()];
    while reports.iter().any(Option::is_none) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(remaining) {
            Ok((index, report)) => reports[index] = Some(report),
            Err(_) => break,
        }
    }
    let reports: Vec<EndpointReport> = reports
        .into_iter()
        .zip(endpoints)
        .map(|(report, endpoint)| {
            report.unwrap_or_else(|| {
                notes.push(format!(
                    "{endpoint}: not finished within {:?}",
                    request.deadline
                ));
                EndpointReport::new(endpoint, Transport::TimedOut)
            })
        })
        .collect();
    let mut findings: Vec<Finding> = reports.iter().flat_map(findings_of).collect();
    findings.sort_by_key(|f| (f.status, f.id));
    Ok(Report {
        endpoints: reports,
        findings,
        notes,
        elapsed: start.elapsed(),
    })
}

#[derive(Debug)]
struct Identities {
    none: LoadedIdentity,
    foreign: Vec<(ForeignKey, LoadedIdentity)>,
}

fn sni(endpoint: &Endpoint) -> Option<String> {
    Some(endpoint.host.clone()).filter(|h| h.parse::<std::net::IpAddr>().is_err())
}

fn probe_endpoint(
    mut endpoint: Endpoint,
    base_path: &str,
    identities: &Arc<Identities>,
    timeouts: &Timeouts,
) -> EndpointReport {
    let mut report = EndpointReport::new(endpoint.clone(), Transport::TimedOut);
    if let Err(e) = std::net::TcpStream::connect_timeout(&endpoint.addr, timeouts.connect) {
        report.transport = Transport::Unreachable(e.to_string());
        return report;
    }
    let addr = endpoint.addr;
    let name = sni(&endpoint);
    // Every probe of the endpoint at once: each is one connection and bounded by `timeouts`.
    let scans: Vec<_> = TlsVersion::ALL
        .into_iter()
        .map(|version| {
            let name = name.clone();
            let t = *timeouts;
            std::thread::spawn(move || hello::scan_version(addr, name.as_deref(), version, &t))
        })
        .collect();
    let handshake_thread = |identity: LoadedIdentity| {
        let name = name.clone();
        let t = *timeouts;
        std::thread::spawn(move || tls::handshake(addr, name.as_deref(), &identity, &t))
    };
    let anonymous = handshake_thread(identities.none.clone());
    let foreign: Vec<_> = identities
        .foreign
        .iter()
        .map(|(kind, identity)| (*kind, handshake_thread(identity.clone())))
        .collect();
    let t = *timeouts;
    let plaintext = std::thread::spawn(move || tls::probe_plaintext(addr, &t));

    report.versions = scans.into_iter().filter_map(|h| h.join().ok()).collect();
    report.anonymous = anonymous.join().ok().and_then(Result::ok);
    report.foreign = foreign
        .into_iter()
        .filter_map(|(kind, h)| Some((kind, h.join().ok()?.ok()?)))
        .collect();
    report.plaintext = plaintext.join().ok();

    let speaks_tls = report.versions.iter().any(|v| v.first_answer.is_tls())
        || report.anonymous.as_ref().is_some_and(|h| {
            h.outcome.is_accepted()
                || matches!(h.outcome, TlsOutcome::Rejected { alert: Some(_), .. })
        });
    if speaks_tls {
        report.transport = Transport::Tls;
        report.server_cert = report
            .anonymous
            .iter()
            .chain(report.foreign.iter().map(|(_, h)| h))
            .find_map(|h| h.server_certs.first())
            .and_then(|der| CertSummary::from_der(der));
    } else {
        report.transport = Transport::Plaintext(plaintext_evidence(&report));
    }

    // REST: a known REST endpoint, or a target that answers HTTP.
    let plain_http = matches!(&report.plaintext, Some(PlaintextOutcome::Answered { first_bytes }) if first_bytes.starts_with(b"HTTP/"));
    let anonymous_accepted = report
        .anonymous
        .as_ref()
        .is_some_and(|h| h.outcome.is_accepted());
    let tls_config = || {
        tls::probe_client_config(
            &identities.none,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )
        .ok()
        .map(|(config, _)| Arc::new(config))
    };
    match report.transport {
        Transport::Plaintext(_) if plain_http || endpoint.role == Role::Rest => {
            endpoint.role = Role::Rest;
            report.rest = rest::run_checks(addr, &endpoint.host, base_path, None, timeouts, false);
        }
        Transport::Tls if anonymous_accepted => {
            let known = endpoint.role == Role::Rest;
            let results = rest::run_checks(
                addr,
                &endpoint.host,
                base_path,
                tls_config(),
                timeouts,
                !known,
            );
            if !results.is_empty() {
                endpoint.role = Role::Rest;
                report.rest = results;
            }
        }
        Transport::Tls if endpoint.role == Role::Rest => {
            let reason = report
                .anonymous
                .as_ref()
                .map(|h| outcome_text(&h.outcome))
                .unwrap_or_default();
            report.rest = rest::closed_by_tls(&reason);
        }
        _ => {}
    }
    report.endpoint = endpoint;
    report
}

fn plaintext_evidence(report: &EndpointReport) -> String {
    let hello = report
        .versions
        .iter()
        .find(|v| v.version == TlsVersion::Tls12)
        .map(|v| match &v.first_answer {
            hello::HelloAnswer::NotTls { first_bytes } => {
                format!(
                    "answered a ClientHello with non-TLS bytes {}",
                    printable(first_bytes)
                )
            }
            hello::HelloAnswer::Closed => "closed the connection on a ClientHello".to_owned(),
            hello::HelloAnswer::NoAnswer => "did not answer a ClientHello".to_owned(),
            other => format!("answered a ClientHello with {other:?}"),
        })
        .unwrap_or_else(|| "no TLS answer".to_owned());
    match &report.plaintext {
        Some(PlaintextOutcome::Answered { first_bytes }) => {
            format!(
                "{hello}; a plaintext client got the answer {}",
                printable(first_bytes)
            )
        }
        _ => hello,
    }
}

fn printable(bytes: &[u8]) -> String {
    let text: String = bytes
        .iter()
        .take(24)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    format!("\"{text}\"")
}

fn outcome_text(outcome: &TlsOutcome) -> String {
    match outcome {
        TlsOutcome::Accepted { version, suite, .. } => format!("accepted ({version:?}, {suite:?})"),
        TlsOutcome::Rejected { reason, .. } => format!("refused: {reason}"),
        TlsOutcome::NotTls { .. } => "not TLS".to_owned(),
        TlsOutcome::Closed => "closed without a word".to_owned(),
        TlsOutcome::NoAnswer => "no answer".to_owned(),
        TlsOutcome::Unreachable { reason } => format!("unreachable: {reason}"),
    }
}

fn findings_of(report: &EndpointReport) -> Vec<Finding> {
    let endpoint = report.endpoint.to_string();
    let mut out = Vec::new();
    let mut add = |id, title, threat, status, evidence: String| {
        out.push(Finding {
            id,
            title,
            threat,
            status,
            endpoint: endpoint.clone(),
            evidence,
        })
    };
    let internal = report.endpoint.role.is_internal()
        || (report.endpoint.role == Role::Unknown && report.rest.is_empty());
    match &report.transport {
        Transport::Unreachable(_) => return out,
        Transport::TimedOut => {
            add(
                "FG-PROBE-010",
                "traffic readable on the wire (no TLS)",
                Threat::SecretExposure,
                Status::Unknown,
                "the probe did not finish before the deadline".to_owned(),
            );
            return out;
        }
        Transport::Plaintext(evidence) => {
            add(
                "FG-PROBE-010",
                "traffic readable on the wire (no TLS)",
                Threat::SecretExposure,
                Status::Open,
                format!("plaintext: {evidence}"),
            );
            if internal {
                add(
                    "FG-PROBE-020",
                    "internal endpoint without TLS: anyone can pose as a cluster member",
                    Threat::Impersonation,
                    Status::Open,
                    format!("plaintext: {evidence}"),
                );
            }
        }
        Transport::Tls => {
            let versions = report.accepted_versions();
            let names: Vec<&str> = versions.iter().map(|v| v.name()).collect();
            add(
                "FG-PROBE-010",
                "traffic readable on the wire (no TLS)",
                Threat::SecretExposure,
                Status::Closed,
                format!("TLS ({})", names.join(", ")),
            );
            let old: Vec<&str> = versions
                .iter()
                .filter(|v| v.is_deprecated())
                .map(|v| v.name())
                .collect();
            add(
                "FG-PROBE-011",
                "deprecated TLS versions (1.0, 1.1) accepted",
                Threat::SecretExposure,
                if old.is_empty() {
                    Status::Closed
                } else {
                    Status::Open
                },
                if old.is_empty() {
                    format!("accepts only {}", names.join(", "))
                } else {
                    format!("accepts {}", old.join(", "))
                },
            );
            let suites: Vec<&hello::Suite> = report
                .versions
                .iter()
                .flat_map(|v| v.accepted.iter())
                .collect();
            let mut weak: Vec<&str> = suites
                .iter()
                .filter(|s| s.is_weak())
                .map(|s| s.name)
                .collect();
            weak.dedup();
            let mut all: Vec<&str> = suites.iter().map(|s| s.name).collect();
            all.sort();
            all.dedup();
            add(
                "FG-PROBE-012",
                "weak cipher suites accepted (not AEAD with forward secrecy)",
                Threat::SecretExposure,
                if weak.is_empty() {
                    Status::Closed
                } else {
                    Status::Open
                },
                if weak.is_empty() {
                    format!("accepts only {}", all.join(", "))
                } else {
                    format!("accepts {}", weak.join(", "))
                },
            );
            if internal {
                if let Some(anonymous) = &report.anonymous {
                    let accepted = anonymous.outcome.is_accepted();
                    add(
                        "FG-PROBE-021",
                        "internal endpoint accepts clients without a certificate",
                        Threat::Impersonation,
                        if accepted {
                            Status::Open
                        } else {
                            Status::Closed
                        },
                        format!(
                            "handshake without a client certificate {}; the server {} a certificate",
                            outcome_text(&anonymous.outcome),
                            if anonymous.client_cert_requested {
                                "asked for"
                            } else {
                                "did not ask for"
                            }
                        ),
                    );
                }
                for (kind, handshake) in &report.foreign {
                    let accepted = handshake.outcome.is_accepted();
                    add(
                        "FG-PROBE-022",
                        "internal endpoint accepts a foreign self-signed client certificate",
                        Threat::Impersonation,
                        if accepted {
                            Status::Open
                        } else {
                            Status::Closed
                        },
                        format!("{kind} certificate {}", outcome_text(&handshake.outcome)),
                    );
                }
            }
        }
    }
    for result in &report.rest {
        add(
            result.check.id,
            result.check.title,
            result.check.threat,
            result.status,
            result.evidence.clone(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_and_urls() {
        let t: Target = "127.0.0.1:6123".parse().unwrap();
        assert_eq!(t.addr.port(), 6123);
        let v6: Target = "[::1]:6123".parse().unwrap();
        assert!(v6.addr.is_ipv6());
        for bad in [
            "127.0.0.1",
            "127.0.0.1:x",
            ":80",
            "127.0.0.1:0",
            "no.such.host.invalid:1",
        ] {
            let err = bad.parse::<Target>().unwrap_err().to_string();
            assert!(err.contains("HOST:PORT"), "{bad}: {err}");
        }
        let url: ClusterUrl = "https://127.0.0.1:8443/flink/".parse().unwrap();
        assert!(url.tls);
        assert_eq!(url.addr.port(), 8443);
        assert_eq!(url.base_path, "/flink");
        let plain: ClusterUrl = "http://localhost".parse().unwrap();
        assert_eq!(plain.addr.port(), 80);
        for bad in [
            "127.0.0.1:8081",
            "ftp://x:1",
            "http://:8081",
            "http://u@h:1",
            "http://h:99999",
        ] {
            assert!(bad.parse::<ClusterUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn threat_status_rules() {
        let finding = |threat, status| Finding {
            id: "FG-PROBE-000",
            title: "",
            threat,
            status,
            endpoint: String::new(),
            evidence: String::new(),
        };
        let report = Report {
            endpoints: Vec::new(),
            findings: vec![
                finding(Threat::JobControl, Status::Closed),
                finding(Threat::JobControl, Status::Open),
                finding(Threat::SecretExposure, Status::Closed),
                finding(Threat::StateAccess, Status::Unknown),
            ],
            notes: Vec::new(),
            elapsed: Duration::ZERO,
        };
        assert_eq!(report.threat_status(Threat::JobControl), ThreatStatus::Open);
        assert_eq!(
            report.threat_status(Threat::SecretExposure),
            ThreatStatus::Closed
        );
        assert_eq!(
            report.threat_status(Threat::StateAccess),
            ThreatStatus::Unknown
        );
        assert_eq!(
            report.threat_status(Threat::Impersonation),
            ThreatStatus::NotTested
        );
        assert!(report.any_open());
    }
}
