//! Probing what a listening socket accepts: TLS with a given client identity, or plaintext.
//!
//! The probes are clients, not checkers: [`probe_tls`] accepts any server certificate and
//! offers every TLS 1.3 and 1.2 suite rustls' aws-lc provider has, so that the outcome says
//! what the *server* enforces (client certificates, TLS at all), not what the client insists
//! on.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CipherSuite, ClientConfig, ClientConnection, DigitallySignedStruct,
    ProtocolVersion, SignatureScheme, SupportedProtocolVersion,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A JVM's first handshake can take a while (class loading, key generation).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// In TLS 1.3 the server judges the client certificate after the client's Finished; it says
/// no with an alert within this time, or not at all.
const VERDICT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many of the server's first bytes an outcome keeps.
const FIRST_BYTES: usize = 64;

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
}

impl TlsOutcome {
    /// The handshake completed and the server kept the connection.
    pub fn is_accepted(&self) -> bool {
        matches!(self, TlsOutcome::Accepted { .. })
    }
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

/// Connects to `addr` and tries a TLS handshake presenting `client`, offering TLS 1.3 and 1.2;
/// if the server refuses that handshake outright, tries once more with TLS 1.2 only.
pub fn probe_tls(addr: SocketAddr, client: ClientIdentity) -> TlsOutcome {
    let (chain, key) = identity(&client);
    let both: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    let first = probe_with(
        addr,
        chain.clone(),
        key.as_ref().map(|k| k.clone_key()),
        both,
    );
    let refused_outright = matches!(
        &first,
        TlsOutcome::Rejected {
            alert: Some(AlertDescription::ProtocolVersion | AlertDescription::HandshakeFailure),
            ..
        }
    );
    if refused_outright {
        let tls12 = probe_with(addr, chain, key, &[&rustls::version::TLS12]);
        if tls12.is_accepted() {
            return tls12;
        }
    }
    first
}

fn identity(
    client: &ClientIdentity,
) -> (Vec<CertificateDer<'static>>, Option<PrivateKeyDer<'static>>) {
    match client {
        ClientIdentity::None => (Vec::new(), None),
        ClientIdentity::Foreign(kind) => {
            let (chain, key) = foreign_identity(*kind);
            (chain, Some(key))
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
                .unwrap_or_else(|e| panic!("ClientIdentity::Given: unreadable private key: {e}"));
            (chain, Some(key))
        }
    }
}

/// A new self-signed client certificate (with its key) that no one trusts.
pub fn foreign_identity(
    kind: ForeignKey,
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
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
    .unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "flinkguard foreign probe");
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = params.self_signed(&key).unwrap();
    let key_der = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    (vec![cert.der().clone()], key_der)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: aws_lc_rs::ALL_CIPHER_SUITES.to_vec(),
        ..aws_lc_rs::default_provider()
    })
}

fn probe_with(
    addr: SocketAddr,
    chain: Vec<CertificateDer<'static>>,
    key: Option<PrivateKeyDer<'static>>,
    versions: &[&'static SupportedProtocolVersion],
) -> TlsOutcome {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(
            provider.signature_verification_algorithms,
        )));
    let config = match key {
        Some(key) => builder
            .with_client_auth_cert(chain, key)
            .unwrap_or_else(|e| panic!("client identity rejected by rustls: {e}")),
        None => builder.with_no_client_auth(),
    };
    let server_name = ServerName::IpAddress(addr.ip().into());
    let mut conn = ClientConnection::new(Arc::new(config), server_name).unwrap();

    let sock = match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
        Ok(sock) => sock,
        Err(e) => {
            return TlsOutcome::Rejected {
                reason: format!("cannot connect to {addr}: {e}"),
                alert: None,
            };
        }
    };
    let _ = sock.set_nodelay(true);
    let mut io = Recorder::new(sock);

    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
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
    let verdict_deadline = Instant::now() + VERDICT_TIMEOUT;
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

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// TLS records start with a content type 20..=24 and a major version 3.
fn looks_like_tls(bytes: &[u8]) -> bool {
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

/// Accepts every server certificate (this is a probe of the server's client-side demands),
/// while still checking the handshake signatures so the handshake itself is genuine.
#[derive(Debug)]
struct AcceptAnyServerCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Connects to `addr`, sends an HTTP request line and some binary bytes in plaintext, and
/// reports whether the server answered in plaintext.
pub fn probe_plaintext(addr: SocketAddr) -> PlaintextOutcome {
    let Ok(mut sock) = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) else {
        return PlaintextOutcome::Closed;
    };
    let request = b"GET /config HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if sock.write_all(request).is_err() {
        return PlaintextOutcome::Closed;
    }
    // Something that is neither HTTP nor TLS, for servers with a binary protocol.
    let _ = sock.write_all(&[0, 0, 0, 16, 0xca, 0xfe, 0xba, 0xbe, 1, 2, 3, 4, 5, 6, 7, 8]);
    let _ = sock.set_read_timeout(Some(VERDICT_TIMEOUT));
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

/// The local addresses with a TCP socket listening on `port`, from `/proc/net/tcp` and
/// `/proc/net/tcp6` (this network namespace). `0.0.0.0` / `::` mean all interfaces.
/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`, how a JVM's dual-stack socket bound to
/// 127.0.0.1 appears) are reported as IPv4.
pub fn listening_addresses(port: u16) -> Vec<IpAddr> {
    let mut found = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(file) {
            for addr in parse_proc_net_tcp(&text, port) {
                if !found.contains(&addr) {
                    found.push(addr);
                }
            }
        }
    }
    found
}

fn parse_proc_net_tcp(text: &str, port: u16) -> Vec<IpAddr> {
    const LISTEN: &str = "0A";
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            if state != LISTEN {
                return None;
            }
            let (addr, port_hex) = local.split_once(':')?;
            if u16::from_str_radix(port_hex, 16).ok()? != port {
                return None;
            }
            parse_proc_addr(addr)
        })
        .collect()
}

/// The kernel prints each 32-bit word of the address in host byte order (little-endian here).
fn parse_proc_addr(hex: &str) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => {
            let octets: [u8; 16] = bytes.try_into().ok()?;
            let v6 = Ipv6Addr::from(octets);
            // Java listens on dual-stack sockets: 127.0.0.1 shows as ::ffff:127.0.0.1.
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_proc_net_tcp() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
           1: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n\
           2: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0\n";
        assert_eq!(
            parse_proc_net_tcp(v4, 8081),
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            ]
        );
        assert!(parse_proc_net_tcp(v4, 8080).is_empty());
        let v6 = "  sl  local_address                         remote_address                        st\n\
           0: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 0\n";
        assert_eq!(
            parse_proc_net_tcp(v6, 8081),
            vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        let mapped = "  sl  local_address                         remote_address                        st\n\
           0: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 0A 0\n";
        assert_eq!(
            parse_proc_net_tcp(mapped, 8081),
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
        );
    }

    #[test]
    fn listening_addresses_sees_a_real_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(
            listening_addresses(port),
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
        );
        drop(listener);
        assert!(listening_addresses(port).is_empty());
    }

    #[test]
    fn foreign_identities_are_usable_by_rustls() {
        for kind in [ForeignKey::EcdsaP256, ForeignKey::Rsa2048] {
            let (chain, key) = foreign_identity(kind);
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(
                    provider().signature_verification_algorithms,
                )))
                .with_client_auth_cert(chain, key)
                .unwrap();
        }
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
        match probe_tls(addr, ClientIdentity::None) {
            TlsOutcome::NotTls { first_bytes } => assert!(first_bytes.starts_with(b"HTTP/1.1 400")),
            other => panic!("expected NotTls, got {other:?}"),
        }
        assert!(probe_plaintext(addr).answered_in_plaintext());
        server.join().unwrap();
    }

    #[test]
    fn silent_and_closing_servers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            // First connection: close at once. Second: read and stay silent.
            let (sock, _) = listener.accept().unwrap();
            drop(sock);
            let (mut sock, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = sock.read(&mut buf);
            std::thread::sleep(VERDICT_TIMEOUT + Duration::from_millis(500));
        });
        assert_eq!(probe_plaintext(addr), PlaintextOutcome::Closed);
        assert_eq!(probe_plaintext(addr), PlaintextOutcome::NoAnswer);
        server.join().unwrap();
    }
}
