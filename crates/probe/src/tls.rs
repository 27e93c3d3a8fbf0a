//! Full TLS handshakes with a chosen client identity, and plaintext probes.
//!
//! The probes are clients, not checkers: [`handshake`] accepts any server certificate and
//! offers every TLS 1.3 and 1.2 suite rustls' aws-lc provider has, so that the outcome says
//! what the *server* enforces (client certificates, TLS at all), not what the client insists
//! on. What TLS versions and suites a server accepts beyond what rustls speaks is the job of
//! [`crate::hello`].

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, CipherSuite, ClientConfig, ClientConnection, DigitallySignedStruct,
    ProtocolVersion, SignatureScheme, SupportedProtocolVersion,
};

use crate::ProbeError;

/// How long each step of a probe may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Duration,
    /// A whole handshake, or the first answer of a server. A JVM's first handshake can take a
    /// while (class loading, key generation).
    pub handshake: Duration,
    /// In TLS 1.3 the server judges the client certificate after the client's Finished; it
    /// says no with an alert within this time, or not at all. Also how long a plaintext probe
    /// waits for an answer.
    pub verdict: Duration,
}

impl Timeouts {
    /// What `flinkguard probe` uses: a probe of one cluster stays well under 10 seconds.
    pub const PROBE: Timeouts = Timeouts {
        connect: Duration::from_secs(2),
        handshake: Duration::from_secs(4),
        verdict: Duration::from_millis(1500),
    };
}

/// The client certificate a probe presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIdentity {
    /// No client certificate.
    None,
    /// A freshly generated self-signed certificate no server can trust: what an outsider has.
    Foreign(ForeignKey),
    /// A certificate chain (leaf first, DER) and its private key (PKCS#8, PKCS#1 or SEC1 DER).
    Given {
        /// Leaf first.
        cert_chain_der: Vec<Vec<u8>>,
        /// The leaf's private key.
        key_der: Vec<u8>,
    },
}

/// The key type of a [`ClientIdentity::Foreign`] certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignKey {
    /// ECDSA P-256 with SHA-256.
    EcdsaP256,
    /// RSA 2048 with SHA-256.
    Rsa2048,
}

impl std::fmt::Display for ForeignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ForeignKey::EcdsaP256 => "foreign ECDSA P-256",
            ForeignKey::Rsa2048 => "foreign RSA 2048",
        })
    }
}

/// What a TLS probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsOutcome {
    /// The handshake completed and the server kept the connection open afterwards.
    Accepted {
        /// Negotiated protocol version.
        version: ProtocolVersion,
        /// Negotiated cipher suite.
        suite: CipherSuite,
        /// The server's certificate chain (DER, leaf first).
        server_certs: Vec<Vec<u8>>,
    },
    /// The server refused: a TLS alert, or a close during or right after the handshake.
    Rejected {
        /// What happened, readable.
        reason: String,
        /// The alert the server sent, if it sent one.
        alert: Option<AlertDescription>,
    },
    /// The server answered with bytes that are not TLS.
    NotTls {
        /// The start of the answer.
        first_bytes: Vec<u8>,
    },
    /// The server closed the connection without sending anything.
    Closed,
    /// The server neither answered nor closed within the timeout.
    NoAnswer,
    /// The TCP connection could not be made.
    Unreachable {
        /// The connect error.
        reason: String,
    },
}

impl TlsOutcome {
    /// The handshake completed and the server kept the connection.
    pub fn is_accepted(&self) -> bool {
        matches!(self, TlsOutcome::Accepted { .. })
    }
}

/// A handshake's outcome and what the server showed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// How it ended.
    pub outcome: TlsOutcome,
    /// Whether the server sent a CertificateRequest (asked for a client certificate).
    pub client_cert_requested: bool,
    /// The server's certificate chain (DER, leaf first), when it sent one, even if the
    /// handshake failed later.
    pub server_certs: Vec<Vec<u8>>,
}

/// What a plaintext probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlaintextOutcome {
    /// The server answered something other than a TLS alert: it talks to plaintext clients.
    Answered {
        /// The start of the answer.
        first_bytes: Vec<u8>,
    },
    /// The server answered with a TLS alert record: it only speaks TLS.
    TlsAlert {
        /// The start of the answer.
        first_bytes: Vec<u8>,
    },
    /// The server closed the connection (or reset it) without answering.
    Closed,
    /// The server neither answered nor closed within the timeout.
    NoAnswer,
}

impl PlaintextOutcome {
    /// Whether a plaintext client got a plaintext answer.
    pub fn answered_in_plaintext(&self) -> bool {
        matches!(self, PlaintextOutcome::Answered { .. })
    }
}

/// How many of the server's first bytes an outcome keeps.
const FIRST_BYTES: usize = 64;

/// A client identity loaded once, so that probes of many endpoints share one foreign key.
#[derive(Debug, Clone)]
pub struct LoadedIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Option<Arc<PrivateKeyDer<'static>>>,
}

impl LoadedIdentity {
    /// Loads (and for [`ClientIdentity::Foreign`], generates) the certificate and key.
    pub fn load(client: &ClientIdentity) -> Result<Self, ProbeError> {
        Ok(match client {
            ClientIdentity::None => LoadedIdentity {
                chain: Vec::new(),
                key: None,
            },
            ClientIdentity::Foreign(kind) => {
                let (chain, key) = foreign_identity(*kind)?;
                LoadedIdentity {
                    chain,
                    key: Some(Arc::new(key)),
                }
            }
            ClientIdentity::Given {
                cert_chain_der,
                key_der,
            } => {
                let chain = cert_chain_der
                    .iter()
                    .map(|c| CertificateDer::from(c.clone()))
                    .collect();
                let key = PrivateKeyDer::try_from(key_der.clone())
                    .map_err(|e| ProbeError::Identity(format!("unreadable private key: {e}")))?;
                LoadedIdentity {
                    chain,
                    key: Some(Arc::new(key)),
                }
            }
        })
    }

    /// Whether a certificate is presented at all.
    pub fn has_certificate(&self) -> bool {
        self.key.is_some()
    }
}

/// Connects to `addr` and tries a TLS handshake presenting `client`, offering TLS 1.3 and 1.2;
/// if the server refuses that handshake outright, tries once more with TLS 1.2 only.
/// `server_name` goes into SNI when it is a DNS name.
pub fn handshake(
    addr: SocketAddr,
    server_name: Option<&str>,
    client: &LoadedIdentity,
    timeouts: &Timeouts,
) -> Result<Handshake, ProbeError> {
    let both: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    let first = handshake_with(addr, server_name, client, both, timeouts)?;
    let refused_outright = matches!(
        &first.outcome,
        TlsOutcome::Rejected {
            alert: Some(AlertDescription::ProtocolVersion | AlertDescription::HandshakeFailure),
            ..
        }
    );
    if refused_outright {
        let tls12 = handshake_with(
            addr,
            server_name,
            client,
            &[&rustls::version::TLS12],
            timeouts,
        )?;
        if tls12.outcome.is_accepted() {
            return Ok(tls12);
        }
    }
    Ok(first)
}

/// A new self-signed client certificate (with its key) that no one trusts.
pub fn foreign_identity(
    kind: ForeignKey,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ProbeError> {
    let failed = |e: rcgen::Error| ProbeError::Identity(format!("foreign certificate: {e}"));
    let algorithm = match kind {
        ForeignKey::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        ForeignKey::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
    };
    let key = match kind {
        ForeignKey::EcdsaP256 => rcgen::KeyPair::generate_for(algorithm),
        ForeignKey::Rsa2048 => {
            rcgen::KeyPair::generate_rsa_for(algorithm, rcgen::RsaKeySize::_2048)
        }
    }
    .map_err(failed)?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).map_err(failed)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "flinkguard foreign probe");
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = params.self_signed(&key).map_err(failed)?;
    let key_der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| ProbeError::Identity(format!("foreign key: {e}")))?;
    Ok((vec![cert.der().clone()], key_der))
}

/// rustls' aws-lc provider with every suite it has, not only the default ones.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: aws_lc_rs::ALL_CIPHER_SUITES.to_vec(),
        ..aws_lc_rs::default_provider()
    })
}

/// A client config that trusts any server certificate and presents `client` when asked,
/// recording whether the server asked.
pub(crate) fn probe_client_config(
    client: &LoadedIdentity,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<(ClientConfig, Arc<Observed>), ProbeError> {
    let provider = provider();
    let observed = Arc::new(Observed::default());
    let certified = match &client.key {
        Some(key) => {
            let signing = provider
                .key_provider
                .load_private_key(key.clone_key())
                .map_err(|e| ProbeError::Identity(format!("client key: {e}")))?;
            Some(Arc::new(CertifiedKey::new(client.chain.clone(), signing)))
        }
        None => None,
    };
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| ProbeError::Identity(format!("TLS client: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert {
            algorithms: provider.signature_verification_algorithms,
            observed: observed.clone(),
        }))
        .with_client_cert_resolver(Arc::new(RecordingResolver {
            certified,
            observed: observed.clone(),
        }));
    Ok((config, observed))
}

/// The SNI name for `server_name` when it is a DNS name, else the address itself.
pub(crate) fn server_name_for(addr: SocketAddr, server_name: Option<&str>) -> ServerName<'static> {
    server_name
        .filter(|name| name.parse::<std::net::IpAddr>().is_err())
        .and_then(|name| ServerName::try_from(name.to_owned()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
}

/// What the server showed during a handshake.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    client_cert_requested: AtomicBool,
    server_certs: Mutex<Vec<Vec<u8>>>,
}

impl Observed {
    pub(crate) fn server_certs(&self) -> Vec<Vec<u8>> {
        self.server_certs
            .lock()
            .map(|certs| certs.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug)]
struct RecordingResolver {
    certified: Option<Arc<CertifiedKey>>,
    observed: Arc<Observed>,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.observed
            .client_cert_requested
            .store(true, Ordering::SeqCst);
        self.certified.clone()
    }

    fn has_certs(&self) -> bool {
        // Always true, so that rustls asks `resolve` and the request is recorded.
        true
    }
}

fn handshake_with(
    addr: SocketAddr,
    server_name: Option<&str>,
    client: &LoadedIdentity,
    versions: &[&'static SupportedProtocolVersion],
    timeouts: &Timeouts,
) -> Result<Handshake, ProbeError> {
    let (config, observed) = probe_client_config(client, versions)?;
    let mut conn = ClientConnection::new(Arc::new(config), server_name_for(addr, server_name))
        .map_err(|e| ProbeError::Identity(format!("TLS client: {e}")))?;
    let outcome = drive(&mut conn, addr, timeouts);
    Ok(Handshake {
        outcome,
        client_cert_requested: observed.client_cert_requested.load(Ordering::SeqCst),
        server_certs: observed.server_certs(),
    })
}

fn drive(conn: &mut ClientConnection, addr: SocketAddr, timeouts: &Timeouts) -> TlsOutcome {
    let sock = match TcpStream::connect_timeout(&addr, timeouts.connect) {
        Ok(sock) => sock,
        Err(e) => {
            return TlsOutcome::Unreachable {
                reason: format!("cannot connect to {addr}: {e}"),
            };
        }
    };
    let _ = sock.set_nodelay(true);
    let _ = sock.set_write_timeout(Some(timeouts.handshake));
    let mut io = Recorder::new(sock);

    let deadline = Instant::now() + timeouts.handshake;
    while conn.is_handshaking() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return handshake_timeout(&io);
        }
        let _ = io.sock.set_read_timeout(Some(remaining));
        if let Err(e) = conn.complete_io(&mut io) {
            return handshake_error(&io, &e);
        }
    }
    while conn.wants_write() {
        if let Err(e) = conn.write_tls(&mut io) {
            return TlsOutcome::Rejected {
                reason: format!("connection failed right after the handshake: {e}"),
                alert: None,
            };
        }
    }
    let version = conn.protocol_version();
    let suite = conn.negotiated_cipher_suite().map(|s| s.suite());
    let server_certs = conn
        .peer_certificates()
        .map(|cs| cs.iter().map(|c| c.to_vec()).collect())
        .unwrap_or_default();

    // The verdict on a TLS 1.3 client certificate arrives after the handshake.
    let verdict_deadline = Instant::now() + timeouts.verdict;
    loop {
        let remaining = verdict_deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        let _ = io.sock.set_read_timeout(Some(remaining));
        match conn.read_tls(&mut io) {
            Ok(0) => {
                return TlsOutcome::Rejected {
                    reason: "the server closed the connection after the handshake".to_owned(),
                    alert: None,
                };
            }
            Ok(_) => match conn.process_new_packets() {
                Err(e) => return rejected_by(&e),
                Ok(state) if state.peer_has_closed() => {
                    return TlsOutcome::Rejected {
                        reason: "the server sent close_notify right after the handshake".to_owned(),
                        alert: Some(AlertDescription::CloseNotify),
                    };
                }
                Ok(state) => {
                    // Application data (unusual) is drained; session tickets need nothing.
                    if state.plaintext_bytes_to_read() > 0 {
                        let mut sink = vec![0; state.plaintext_bytes_to_read()];
                        let _ = conn.reader().read(&mut sink);
                    }
                }
            },
            Err(e) if is_timeout(&e) => break,
            Err(e) => {
                return TlsOutcome::Rejected {
                    reason: format!("connection failed right after the handshake: {e}"),
                    alert: None,
                };
            }
        }
    }
    match (version, suite) {
        (Some(version), Some(suite)) => TlsOutcome::Accepted {
            version,
            suite,
            server_certs,
        },
        _ => TlsOutcome::Rejected {
            reason: "handshake finished without a negotiated version".to_owned(),
            alert: None,
        },
    }
}

fn handshake_timeout(io: &Recorder) -> TlsOutcome {
    if io.first.is_empty() {
        TlsOutcome::NoAnswer
    } else if !looks_like_tls(&io.first) {
        TlsOutcome::NotTls {
            first_bytes: io.first.clone(),
        }
    } else {
        TlsOutcome::Rejected {
            reason: "the handshake stalled".to_owned(),
            alert: None,
        }
    }
}

fn handshake_error(io: &Recorder, e: &io::Error) -> TlsOutcome {
    if !io.first.is_empty() && !looks_like_tls(&io.first) {
        return TlsOutcome::NotTls {
            first_bytes: io.first.clone(),
        };
    }
    if is_timeout(e) {
        return handshake_timeout(io);
    }
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return rejected_by(tls);
    }
    let closed = matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    );
    if closed && io.first.is_empty() {
        return TlsOutcome::Closed;
    }
    TlsOutcome::Rejected {
        reason: format!("the connection failed during the handshake: {e}"),
        alert: None,
    }
}

fn rejected_by(e: &rustls::Error) -> TlsOutcome {
    let alert = match e {
        rustls::Error::AlertReceived(alert) => Some(*alert),
        _ => None,
    };
    let reason = match alert {
        Some(alert) => format!("the server sent the alert {alert:?}"),
        None => e.to_string(),
    };
    TlsOutcome::Rejected { reason, alert }
}

pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// TLS records start with a content type 20..=24 and a major version 3.
pub(crate) fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(20..=24)) && bytes.get(1).is_none_or(|&b| b == 3)
}

/// A socket that remembers the first bytes the server sent.
struct Recorder {
    sock: TcpStream,
    first: Vec<u8>,
}

impl Recorder {
    fn new(sock: TcpStream) -> Self {
        Recorder {
            sock,
            first: Vec::new(),
        }
    }
}

impl Read for Recorder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        let keep = n.min(FIRST_BYTES.saturating_sub(self.first.len()));
        self.first.extend_from_slice(&buf[..keep]);
        Ok(n)
    }
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

/// Accepts every server certificate (this is a probe of the server's demands on clients),
/// while still checking the handshake signatures so the handshake itself is genuine; keeps
/// the certificate chain it was shown.
#[derive(Debug)]
struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
    observed: Arc<Observed>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut certs) = self.observed.server_certs.lock() {
            *certs = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.to_vec())
                .collect();
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Connects to `addr`, sends an HTTP request line and some binary bytes in plaintext, and
/// reports whether the server answered in plaintext. Reads nothing from the server's state:
/// the request is a `GET` and the binary bytes are no valid frame of any Flink protocol.
pub fn probe_plaintext(addr: SocketAddr, timeouts: &Timeouts) -> PlaintextOutcome {
    let Ok(mut sock) = TcpStream::connect_timeout(&addr, timeouts.connect) else {
        return PlaintextOutcome::Closed;
    };
    let _ = sock.set_write_timeout(Some(timeouts.verdict));
    let request = b"GET /config HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if sock.write_all(request).is_err() {
        return PlaintextOutcome::Closed;
    }
    // Something that is neither HTTP nor TLS, for servers with a binary protocol.
    let _ = sock.write_all(&[0, 0, 0, 16, 0xca, 0xfe, 0xba, 0xbe, 1, 2, 3, 4, 5, 6, 7, 8]);
    let _ = sock.set_read_timeout(Some(timeouts.verdict));
    let mut buf = [0u8; FIRST_BYTES];
    match sock.read(&mut buf) {
        Ok(0) => PlaintextOutcome::Closed,
        Ok(n) if buf[0] == 0x15 => PlaintextOutcome::TlsAlert {
            first_bytes: buf[..n].to_vec(),
        },
        Ok(n) => PlaintextOutcome::Answered {
            first_bytes: buf[..n].to_vec(),
        },
        Err(e) if is_timeout(&e) => PlaintextOutcome::NoAnswer,
        Err(_) => PlaintextOutcome::Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const FAST: Timeouts = Timeouts {
        connect: Duration::from_secs(2),
        handshake: Duration::from_secs(5),
        verdict: Duration::from_millis(500),
    };

    #[test]
    fn foreign_identities_are_usable_by_rustls() {
        for kind in [ForeignKey::EcdsaP256, ForeignKey::Rsa2048] {
            let loaded = LoadedIdentity::load(&ClientIdentity::Foreign(kind)).unwrap();
            assert!(loaded.has_certificate());
            probe_client_config(&loaded, &[&rustls::version::TLS13]).unwrap();
        }
    }

    #[test]
    fn unreadable_given_key_is_an_error_not_a_panic() {
        let bad = ClientIdentity::Given {
            cert_chain_der: vec![vec![1, 2, 3]],
            key_der: vec![0xff; 8],
        };
        assert!(matches!(
            LoadedIdentity::load(&bad),
            Err(ProbeError::Identity(_))
        ));
    }

    #[test]
    fn plaintext_server_is_seen_as_not_tls_and_as_plaintext() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut sock, _) = listener.accept().unwrap();
                let mut buf = [0u8; 512];
                let _ = sock.read(&mut buf);
                let _ = sock.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let none = LoadedIdentity::load(&ClientIdentity::None).unwrap();
        match handshake(addr, None, &none, &FAST).unwrap().outcome {
            TlsOutcome::NotTls { first_bytes } => assert!(first_bytes.starts_with(b"HTTP/1.1 400")),
            other => panic!("expected NotTls, got {other:?}"),
        }
        assert!(probe_plaintext(addr, &FAST).answered_in_plaintext());
        server.join().unwrap();
    }

    #[test]
    fn silent_closing_and_absent_servers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            // First connection: close at once. Second: read and stay silent.
            let (sock, _) = listener.accept().unwrap();
            drop(sock);
            let (mut sock, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = sock.read(&mut buf);
            std::thread::sleep(FAST.verdict + Duration::from_millis(500));
        });
        assert_eq!(probe_plaintext(addr, &FAST), PlaintextOutcome::Closed);
        assert_eq!(probe_plaintext(addr, &FAST), PlaintextOutcome::NoAnswer);
        server.join().unwrap();

        let none = LoadedIdentity::load(&ClientIdentity::None).unwrap();
        let gone = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(matches!(
            handshake(gone, None, &none, &FAST).unwrap().outcome,
            TlsOutcome::Unreachable { .. }
        ));
    }
}
