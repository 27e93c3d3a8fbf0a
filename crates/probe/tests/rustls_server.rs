//! The scanner and the handshake probes against a real TLS server on loopback: rustls, which
//! accepts TLS 1.3 and 1.2 with AEAD suites only and refuses TLS 1.0, 1.1 and CBC.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use flinkguard_probe::hello::{HelloAnswer, TlsVersion, scan_version};
use flinkguard_probe::tls::{
    ClientIdentity, ForeignKey, LoadedIdentity, Timeouts, TlsOutcome, handshake,
};
use flinkguard_probe::{ProbeRequest, Role, Status, Target, Threat, ThreatStatus, probe};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ServerConfig, ServerConnection};

/// A TLS server that accepts connections until dropped, completing handshakes and then
/// holding each connection briefly.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(config: ServerConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let config = Arc::new(config);
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        for sock in listener.incoming() {
            if flag.load(Ordering::SeqCst) {
                break;
            }
            let Ok(mut sock) = sock else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(std::time::Duration::from_secs(3)));
                let mut conn = ServerConnection::new(config).unwrap();
                while conn.is_handshaking() {
                    if conn.complete_io(&mut sock).is_err() {
                        let _ = conn.write_tls(&mut sock);
                        return;
                    }
                }
                let _ = conn.complete_io(&mut sock);
                std::thread::sleep(std::time::Duration::from_secs(2));
            });
        }
    });
    Server {
        addr,
        stop,
        thread: Some(thread),
    }
}

/// A CA (as an issuer and its certificate), and a server certificate and key it signed.
type Pki = (
    rcgen::Issuer<'static, rcgen::KeyPair>,
    CertificateDer<'static>,
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
);

fn ca_and_server() -> Pki {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "probe test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "probe test server");
    let cert = params.signed_by(&key, &issuer).unwrap();
    (
        issuer,
        ca_cert.der().clone(),
        cert.der().clone(),
        PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

const T: Timeouts = Timeouts::PROBE;

#[test]
fn scanner_sees_what_a_rustls_server_accepts() {
    let (_, _, cert, key) = ca_and_server();
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let server = serve(config);

    for old in [TlsVersion::Tls10, TlsVersion::Tls11] {
        let scan = scan_version(server.addr, None, old, &T);
        assert!(!scan.accepted_version(), "{old:?}: {scan:?}");
        assert!(
            matches!(scan.first_answer, HelloAnswer::Alert { .. }),
            "{old:?} refused with an alert: {:?}",
            scan.first_answer
        );
    }
    let tls12 = scan_version(server.addr, None, TlsVersion::Tls12, &T);
    let names: Vec<&str> = tls12.accepted.iter().map(|s| s.name).collect();
    // An ECDSA certificate: rustls' three ECDHE-ECDSA AEAD suites, nothing else.
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ]
    );
    assert!(tls12.accepted.iter().all(|s| !s.is_weak()));
    let tls13 = scan_version(server.addr, Some("localhost"), TlsVersion::Tls13, &T);
    let mut names13: Vec<&str> = tls13.accepted.iter().map(|s| s.name).collect();
    names13.sort();
    assert_eq!(
        names13,
        vec![
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256"
        ]
    );

    // The whole probe of this endpoint: TLS, modern, no client certificate asked.
    let report = probe(&ProbeRequest {
        targets: vec![Target::from_str_checked(&server.addr.to_string())],
        ..ProbeRequest::default()
    })
    .unwrap();
    let endpoint = &report.endpoints[0];
    assert_eq!(endpoint.client_cert_required(), Some(false));
    let cert = endpoint.server_cert.as_ref().unwrap();
    assert!(
        cert.subject.contains("probe test server") && !cert.self_signed,
        "{cert:?}"
    );
    let status = |id: &str| {
        report
            .findings
            .iter()
            .find(|f| f.id == id)
            .map(|f| f.status)
    };
    assert_eq!(status("FG-PROBE-010"), Some(Status::Closed));
    assert_eq!(status("FG-PROBE-011"), Some(Status::Closed));
    assert_eq!(status("FG-PROBE-012"), Some(Status::Closed));
    // Not HTTP, so treated as internal: no client certificate required is OPEN.
    assert_eq!(endpoint.endpoint.role, Role::Unknown);
    assert_eq!(status("FG-PROBE-021"), Some(Status::Open));
    assert_eq!(
        report.threat_status(Threat::Impersonation),
        ThreatStatus::Open
    );
}

#[test]
fn client_certificate_required_and_foreign_ones_refused() {
    let (issuer, ca_cert, cert, key) = ca_and_server();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert).unwrap();
    let member_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let member = rcgen::CertificateParams::new(vec!["member".to_owned()])
        .unwrap()
        .signed_by(&member_key, &issuer)
        .unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .unwrap();
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)
        .unwrap();
    let server = serve(config);

    let none = LoadedIdentity::load(&ClientIdentity::None).unwrap();
    let anonymous = handshake(server.addr, None, &none, &T).unwrap();
    assert!(anonymous.client_cert_requested);
    assert!(
        matches!(anonymous.outcome, TlsOutcome::Rejected { .. }),
        "{anonymous:?}"
    );
    assert!(
        !anonymous.server_certs.is_empty(),
        "server certificate seen even when refused"
    );
    for kind in [ForeignKey::EcdsaP256, ForeignKey::Rsa2048] {
        let foreign = LoadedIdentity::load(&ClientIdentity::Foreign(kind)).unwrap();
        let outcome = handshake(server.addr, None, &foreign, &T).unwrap().outcome;
        assert!(
            matches!(outcome, TlsOutcome::Rejected { .. }),
            "{kind:?}: {outcome:?}"
        );
    }
    // Positive control: a member of the CA gets in.
    let given = LoadedIdentity::load(&ClientIdentity::Given {
        cert_chain_der: vec![member.der().to_vec()],
        key_der: member_key.serialize_der(),
    })
    .unwrap();
    let outcome = handshake(server.addr, None, &given, &T).unwrap().outcome;
    assert!(outcome.is_accepted(), "{outcome:?}");

    let report = probe(&ProbeRequest {
        targets: vec![Target::from_str_checked(&server.addr.to_string())],
        ..ProbeRequest::default()
    })
    .unwrap();
    assert_eq!(report.endpoints[0].client_cert_required(), Some(true));
    assert_eq!(
        report.threat_status(Threat::Impersonation),
        ThreatStatus::Closed
    );
    assert_eq!(
        report.threat_status(Threat::SecretExposure),
        ThreatStatus::Closed
    );
    assert!(!report.any_open(), "{:#?}", report.findings);
}

trait FromStrChecked {
    fn from_str_checked(text: &str) -> Self;
}

impl FromStrChecked for Target {
    fn from_str_checked(text: &str) -> Self {
        text.parse().unwrap()
    }
}

/// Discovery's credentials are the admin's: they must never be shown to a server that did not
/// prove its identity. Against a privately signed server, a client certificate without `--ca`
/// is not presented (the public roots do not know that CA); with the CA it is.
#[test]
fn discovery_presents_a_client_certificate_only_to_a_verified_server() {
    let (issuer, ca, cert, key) = ca_and_server();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .unwrap();
    let config = Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert], key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let certificate_seen = Arc::new(AtomicBool::new(false));
    let seen = certificate_seen.clone();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { continue };
            let _ = sock.set_read_timeout(Some(std::time::Duration::from_secs(3)));
            let mut conn = ServerConnection::new(config.clone()).unwrap();
            while conn.is_handshaking() {
                if conn.complete_io(&mut sock).is_err() {
                    let _ = conn.write_tls(&mut sock);
                    break;
                }
            }
            if conn.peer_certificates().is_some() {
                seen.store(true, Ordering::SeqCst);
            }
        }
    });

    let client_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "admin");
    let client = params.signed_by(&client_key, &issuer).unwrap();
    let (cert_pem, key_pem) = (client.pem(), client_key.serialize_pem());
    let ca_pem = pem::encode(&pem::Pem::new("CERTIFICATE", ca.to_vec()));
    let url: flinkguard_probe::ClusterUrl = format!("https://localhost:{port}").parse().unwrap();
    let discover_with = |ca: Option<&[u8]>| {
        let credentials = flinkguard_probe::DiscoveryCredentials::from_pem(
            Some((cert_pem.as_bytes(), key_pem.as_bytes())),
            ca,
        )
        .unwrap();
        let request = ProbeRequest {
            cluster: Some(url.clone()),
            discovery: Some(credentials),
            ..ProbeRequest::default()
        };
        probe(&request).unwrap()
    };
    discover_with(None);
    assert!(
        !certificate_seen.load(Ordering::SeqCst),
        "the client certificate went to an unverified server"
    );
    discover_with(Some(ca_pem.as_bytes()));
    assert!(
        certificate_seen.load(Ordering::SeqCst),
        "positive control: with the CA the certificate is presented"
    );
}
