//! A real HTTP(S) server on 127.0.0.1 serving a JWKS whose answer the test changes, counting
//! the requests it gets; the fetcher and the refresh loop run unmodified against it.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::{Body, Bytes, Frame, SizeHint};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls_pki_types::PrivateKeyDer;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::testkeys::{self, TestKey};
use crate::{MAX_JWKS_BYTES, TokenError, Verifier, VerifierConfig};

const ISS: &str = "https://idp.example.org/realms/flink";
const AUD: &str = "flinkguard";
const PATH: &str = "/realms/flink/protocol/openid-connect/certs";

/// What the server answers to the next requests.
#[derive(Debug, Clone)]
enum Answer {
    /// 200 with this JWKS.
    Jwks(String),
    /// This status with this body.
    Status(u16, String),
    /// 200 with a body of `len` bytes, its length declared or sent chunked.
    Oversized { len: usize, declared: bool },
    /// 302 to this location.
    Redirect(String),
    /// Never answers.
    Hang,
}

/// One request the server got.
#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    method: String,
    target: String,
    host: String,
}

struct Server {
    url: String,
    answer: Arc<Mutex<Answer>>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Server {
    /// Serves `answer` over plain http on 127.0.0.1 (or https with `tls`).
    async fn start(answer: Answer, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = Server {
            url: format!("{scheme}://127.0.0.1:{port}{PATH}"),
            answer: Arc::new(Mutex::new(answer)),
            hits: Arc::default(),
        };
        let (answer, hits) = (server.answer.clone(), server.hits.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (answer, hits, tls) = (answer.clone(), hits.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let (answer, hits) = (answer.clone(), hits.clone());
                        async move { respond(request, &answer, &hits).await }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(config) => {
                            let Ok(stream) = TlsAcceptor::from(config).accept(tcp).await else {
                                return;
                            };
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        server
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }

    fn url(&self) -> JwksUrl {
        self.url.parse().unwrap()
    }
}

async fn respond(
    request: Request<hyper::body::Incoming>,
    answer: &Mutex<Answer>,
    hits: &Mutex<Vec<Hit>>,
) -> Result<Response<TestBody>, Infallible> {
    hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        method: request.method().to_string(),
        target: request.uri().to_string(),
        host: request
            .headers()
            .get(hyper::header::HOST)
            .map(|h| h.to_str().unwrap().to_owned())
            .unwrap_or_default(),
    });
    let answer = answer.lock().unwrap().clone();
    let response = Response::builder();
    Ok(match answer {
        Answer::Jwks(jwks) => response.body(TestBody::full(jwks.into_bytes())),
        Answer::Status(status, body) => response
            .status(status)
            .body(TestBody::full(body.into_bytes())),
        Answer::Oversized { len, declared } => {
            // A JWKS-looking start, then padding: only the size is wrong.
            let mut body = br#"{"keys":[],"pad":""#.to_vec();
            body.resize(len, b'x');
            let chunks = body.chunks(64 * 1024).map(Bytes::copy_from_slice).collect();
            response.body(TestBody {
                chunks,
                declared: declared.then_some(len as u64),
            })
        }
        Answer::Redirect(location) => response
            .status(302)
            .header(hyper::header::LOCATION, location)
            .body(TestBody::full(Vec::new())),
        Answer::Hang => std::future::pending().await,
    }
    .unwrap())
}

/// A body sent in chunks, with its length declared (Content-Length) or not (chunked).
struct TestBody {
    chunks: VecDeque<Bytes>,
    declared: Option<u64>,
}

impl TestBody {
    fn full(bytes: Vec<u8>) -> TestBody {
        TestBody {
            declared: Some(bytes.len() as u64),
            chunks: VecDeque::from([Bytes::from(bytes)]),
        }
    }
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.chunks.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }

    fn size_hint(&self) -> SizeHint {
        match self.declared {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        }
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost: (server config, certificate PEM).
fn tls_identity() -> (Arc<rustls::ServerConfig>, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    (Arc::new(config), certified.cert.pem())
}

fn jwks(key: &TestKey, kid: &str) -> Answer {
    Answer::Jwks(key.jwks(kid))
}

fn token(key: &TestKey, kid: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    key.token(
        &json!({ "alg": key.algorithm().name(), "typ": "JWT", "kid": kid }),
        &json!({ "iss": ISS, "aud": AUD, "sub": "alice", "exp": now + 600 }),
    )
}

fn verifier(handle: KeySetHandle) -> Verifier {
    Verifier::new(
        VerifierConfig::new(vec![ISS.into()], vec![AUD.into()]),
        handle,
    )
    .unwrap()
}

fn verify(verifier: &Verifier, token: &str) -> Result<String, TokenError> {
    verifier
        .verify(token, time::OffsetDateTime::now_utc())
        .map(|t| t.key_id.unwrap_or_default())
}

/// Loopback config with a long refresh interval, so only unknown kids cause fetches.
fn config(server: &Server, min_refetch_interval: Duration) -> RemoteJwksConfig {
    RemoteJwksConfig {
        refresh_interval: Duration::from_secs(60),
        min_refetch_interval,
        timeout: Duration::from_secs(2),
        ..RemoteJwksConfig::new(server.url())
    }
}

/// Polls `condition` every few milliseconds, failing the test after 5 s.
async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn write_pem(dir: &Path, name: &str, pem: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

fn setup_error(result: Result<RemoteJwks, SetupError>) -> String {
    result.unwrap_err().to_string()
}

#[tokio::test]
async fn initial_fetch_over_https_trusting_the_ca_file() {
    let (tls, cert_pem) = tls_identity();
    let server = Server::start(jwks(testkeys::ec(), "a"), Some(tls)).await;
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteJwks::fetch_initial(RemoteJwksConfig {
        ca_file: Some(write_pem(dir.path(), "idp-ca.pem", &cert_pem)),
        ..RemoteJwksConfig::new(server.url())
    })
    .await
    .unwrap();
    assert!(remote.url().is_https());
    let verifier = verifier(remote.handle());
    assert_eq!(
        verify(&verifier, &token(testkeys::ec(), "a")),
        Ok("a".into())
    );
    let hits = server.hits();
    assert_eq!(hits.len(), 1);
    let port = server.url().port();
    assert_eq!(
        (
            hits[0].method.as_str(),
            hits[0].target.as_str(),
            hits[0].host.clone()
        ),
        ("GET", PATH, format!("127.0.0.1:{port}"))
    );
}

#[tokio::test]
async fn untrusted_server_certificate_fails_startup_with_the_fix() {
    let (tls, _) = tls_identity();
    let server = Server::start(jwks(testkeys::ec(), "a"), Some(tls)).await;
    let (_, other_ca) = tls_identity();
    let dir = tempfile::tempdir().unwrap();
    let other_ca = write_pem(dir.path(), "other-ca.pem", &other_ca);

    let err = setup_error(
        RemoteJwks::fetch_initial(RemoteJwksConfig {
            ca_file: Some(other_ca.clone()),
            ..RemoteJwksConfig::new(server.url())
        })
        .await,
    );
    assert!(
        err.contains(&format!("cannot fetch the JWKS from {}", server.url)),
        "{err}"
    );
    assert!(
        err.contains("the server's certificate is not trusted"),
        "{err}"
    );
    assert!(
        err.contains(&format!("by a CA in {}", other_ca.display())),
        "{err}"
    );

    // Without a CA file only the public roots are trusted, which a self-signed cert is not.
    let err = setup_error(RemoteJwks::fetch_initial(RemoteJwksConfig::new(server.url())).await);
    assert!(err.contains(&server.url), "{err}");
    assert!(
        err.contains("the server's certificate is not trusted"),
        "{err}"
    );
    assert!(err.contains("set the CA file to that CA's PEM"), "{err}");

    assert_eq!(
        server.count(),
        0,
        "no request is sent over an untrusted connection"
    );
}

#[tokio::test]
async fn unusable_ca_files_are_named() {
    let server = Server::start(jwks(testkeys::ec(), "a"), None).await;
    let https: JwksUrl = "https://127.0.0.1:1/certs".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let empty = write_pem(dir.path(), "empty.pem", "no PEM here\n");
    for (ca_file, expected) in [
        (&missing, "missing.pem"),
        (&empty, "empty.pem: holds no CERTIFICATE"),
    ] {
        let err = setup_error(
            RemoteJwks::fetch_initial(RemoteJwksConfig {
                ca_file: Some(ca_file.clone()),
                ..RemoteJwksConfig::new(https.clone())
            })
            .await,
        );
        assert!(err.contains(expected), "{err}");
    }
    // A CA file makes no sense for plain http.
    let err = setup_error(
        RemoteJwks::fetch_initial(RemoteJwksConfig {
            ca_file: Some(empty.clone()),
            ..RemoteJwksConfig::new(server.url())
        })
        .await,
    );
    assert!(
        err.contains("which is plain http; use https or remove the CA file"),
        "{err}"
    );
    let err = setup_error(
        RemoteJwks::fetch_initial(RemoteJwksConfig {
            min_refetch_interval: Duration::ZERO,
            ..RemoteJwksConfig::new(server.url())
        })
        .await,
    );
    assert!(err.contains("min_refetch_interval"), "{err}");
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn startup_fails_naming_the_url_and_the_reason() {
    let server = Server::start(Answer::Hang, None).await;
    let b_jwks = testkeys::ed().jwks("b");
    let cases = [
        (Answer::Status(500, b_jwks.clone()), "the server answers HTTP 500 Internal Server Error, not 200 OK".to_owned()),
        (Answer::Status(204, String::new()), "HTTP 204 No Content, not 200 OK".to_owned()),
        (
            Answer::Redirect("https://elsewhere.example.org/jwks".into()),
            "HTTP 302 Found redirecting to \"https://elsewhere.example.org/jwks\"; redirects are not followed".to_owned(),
        ),
        (Answer::Status(200, "<html>sign in</html>".into()), "invalid JWKS: not a JSON object".to_owned()),
        (Answer::Jwks(r#"{"keys":[]}"#.into()), "invalid JWKS: no key usable".to_owned()),
        (
            Answer::Oversized { len: MAX_JWKS_BYTES + 1, declared: true },
            format!("the document is larger than {MAX_JWKS_BYTES} bytes"),
        ),
        (
            Answer::Oversized { len: MAX_JWKS_BYTES + 1, declared: false },
            format!("the document is larger than {MAX_JWKS_BYTES} bytes"),
        ),
        (Answer::Hang, "no complete answer within 200 ms".to_owned()),
    ];
    for (answer, expected) in cases {
        server.set(answer.clone());
        let err = setup_error(
            RemoteJwks::fetch_initial(RemoteJwksConfig {
                timeout: Duration::from_millis(200),
                ..RemoteJwksConfig::new(server.url())
            })
            .await,
        );
        assert!(
            err.starts_with(&format!("cannot fetch the JWKS from {}: ", server.url)),
            "{answer:?}: {err}"
        );
        assert!(err.contains(&expected), "{answer:?}: {err}");
    }
    // Nothing listening.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url: JwksUrl = format!("http://127.0.0.1:{port}/jwks").parse().unwrap();
    let err = setup_error(RemoteJwks::fetch_initial(RemoteJwksConfig::new(url)).await);
    assert!(
        err.contains(&format!("cannot connect to 127.0.0.1 port {port}")),
        "{err}"
    );
}

#[tokio::test]
async fn key_rotation_is_picked_up_by_one_refetch_on_the_unknown_kid() {
    let server = Server::start(jwks(testkeys::ec(), "a"), None).await;
    let remote = RemoteJwks::fetch_initial(config(&server, Duration::from_millis(50)))
        .await
        .unwrap();
    let verifier = verifier(remote.handle());
    let refresher = tokio::spawn(remote.run());
    let (old, new) = (token(testkeys::ec(), "a"), token(testkeys::ed(), "b"));
    assert_eq!(verify(&verifier, &old), Ok("a".into()));

    // The identity provider rotates to a new key and signs with it.
    server.set(jwks(testkeys::ed(), "b"));
    // This request fails at once (it does not wait for the fetch)...
    assert_eq!(verify(&verifier, &new), Err(TokenError::UnknownKeyId));
    // ...but causes one fetch, after which the new key verifies.
    wait_for("the new key to be in force", || {
        verify(&verifier, &new).is_ok()
    })
    .await;
    assert_eq!(verify(&verifier, &new), Ok("b".into()));
    assert_eq!(verify(&verifier, &old), Err(TokenError::UnknownKeyId));
    assert_eq!(server.count(), 2);
    refresher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_cause_at_most_one_fetch_per_min_refetch_interval() {
    const MIN_REFETCH: Duration = Duration::from_millis(400);
    // The server's clock sees a request a little after the fetch started.
    const SLACK: Duration = Duration::from_millis(30);
    let server = Server::start(jwks(testkeys::ec(), "a"), None).await;
    let remote = RemoteJwks::fetch_initial(config(&server, MIN_REFETCH))
        .await
        .unwrap();
    let verifier = verifier(remote.handle());
    let requests = remote.requests.clone();
    let refresher = tokio::spawn(remote.run());
    let unknown = token(testkeys::ed(), "never-published");
    // A fetch is over once the requests it answered are cleared; requests raised while it
    // is under way count as answered by it.
    let fetched = |count: usize| server.count() >= count && !requests.is_pending();
    let burst = || {
        let barrier = Barrier::new(50);
        std::thread::scope(|scope| {
            for _ in 0..50 {
                scope.spawn(|| {
                    barrier.wait();
                    assert_eq!(verify(&verifier, &unknown), Err(TokenError::UnknownKeyId));
                });
            }
        });
    };

    burst();
    wait_for("the refetch", || fetched(2)).await;
    assert_eq!(server.count(), 2, "50 unknown-kid tokens cause one fetch");
    burst();
    wait_for("the second refetch", || fetched(3)).await;
    assert_eq!(server.count(), 3, "50 more cause one more fetch");
    // No request is left over: nothing more happens in the next interval.
    tokio::time::sleep(MIN_REFETCH + Duration::from_millis(150)).await;
    let hits = server.hits();
    assert_eq!(
        hits.len(),
        3,
        "100 unknown-kid tokens in two bursts cause two fetches"
    );
    for pair in hits.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap + SLACK >= MIN_REFETCH, "fetches only {gap:?} apart");
    }
    refresher.abort();
}

#[tokio::test]
async fn failed_refreshes_keep_the_last_good_key_set() {
    let server = Server::start(jwks(testkeys::ec(), "a"), None).await;
    let remote = RemoteJwks::fetch_initial(RemoteJwksConfig {
        // Frequent refreshes; retries after failures are capped at this too.
        refresh_interval: Duration::from_millis(60),
        min_refetch_interval: Duration::from_millis(10),
        timeout: Duration::from_millis(150),
        ..RemoteJwksConfig::new(server.url())
    })
    .await
    .unwrap();
    let handle = remote.handle();
    let verifier = verifier(handle.clone());
    let refresher = tokio::spawn(remote.run());
    let (old, new) = (token(testkeys::ec(), "a"), token(testkeys::ed(), "b"));
    let new_jwks = testkeys::ed().jwks("b");

    for answer in [
        // A valid JWKS with the wrong status is still refused.
        Answer::Status(500, new_jwks.clone()),
        Answer::Status(200, "garbage".into()),
        Answer::Status(200, new_jwks[..new_jwks.len() - 2].into()),
        Answer::Jwks(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#.into()),
        Answer::Oversized {
            len: MAX_JWKS_BYTES + 1,
            declared: true,
        },
        Answer::Oversized {
            len: MAX_JWKS_BYTES + 1,
            declared: false,
        },
        Answer::Redirect(format!("{}?moved", server.url)),
        Answer::Hang,
    ] {
        server.set(answer.clone());
        let before = server.count();
        // Two more requests: the first of them has certainly been answered and refused.
        wait_for(&format!("two fetches answered {answer:?}"), || {
            server.count() >= before + 2
        })
        .await;
        assert_eq!(verify(&verifier, &old), Ok("a".into()), "{answer:?}");
        assert_eq!(
            verify(&verifier, &new),
            Err(TokenError::UnknownKeyId),
            "{answer:?}"
        );
        let kids: Vec<_> = handle
            .current()
            .keys()
            .map(|k| k.key_id().map(str::to_owned))
            .collect();
        assert_eq!(kids, [Some("a".to_owned())], "{answer:?}");
    }

    // Once the server is healthy again the refresh loop picks the new set up by itself.
    server.set(jwks(testkeys::ed(), "b"));
    wait_for("recovery", || verify(&verifier, &new).is_ok()).await;
    assert_eq!(verify(&verifier, &old), Err(TokenError::UnknownKeyId));
    refresher.abort();
}

#[tokio::test]
async fn scheduled_refresh_needs_no_unknown_kid() {
    let server = Server::start(jwks(testkeys::ec(), "a"), None).await;
    let remote = RemoteJwks::fetch_initial(RemoteJwksConfig {
        refresh_interval: Duration::from_millis(50),
        ..RemoteJwksConfig::new(server.url())
    })
    .await
    .unwrap();
    let handle = remote.handle();
    let refresher = tokio::spawn(remote.run());
    server.set(jwks(testkeys::ed(), "b"));
    wait_for("the scheduled refresh", || {
        handle.current().keys().any(|k| k.key_id() == Some("b"))
    })
    .await;
    refresher.abort();
}

#[test]
fn refresh_requests_collapse_until_cleared() {
    let requests = Arc::new(RefreshRequests::default());
    let set = crate::KeySet::from_jwks_json(&testkeys::ec().jwks("a")).unwrap();
    let handle = KeySetHandle::with_refresh_requests(set, requests.clone());
    let verifier = verifier(handle);
    assert_eq!(
        verify(&verifier, &token(testkeys::ec(), "a")),
        Ok("a".into())
    );
    assert!(!requests.is_pending(), "a known kid asks for nothing");
    assert_eq!(
        verify(&verifier, &token(testkeys::ec(), "other")),
        Err(TokenError::UnknownKeyId)
    );
    assert!(requests.is_pending());
    requests.clear();
    assert!(!requests.is_pending());

    // A handle of a file-based key set has no refresher: an unknown kid is just refused.
    let plain = verifier_for_file_keys();
    assert_eq!(
        verify(&plain, &token(testkeys::ec(), "other")),
        Err(TokenError::UnknownKeyId)
    );
    assert!(format!("{:?}", plain.keys()).contains("refreshable: false"));
}

fn verifier_for_file_keys() -> Verifier {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idp.jwks");
    std::fs::write(&path, testkeys::ec().jwks("a")).unwrap();
    verifier(KeySetHandle::new(
        crate::KeySet::from_jwks_file(&path).unwrap(),
    ))
}

#[tokio::test]
async fn pending_returns_at_once_for_an_earlier_request() {
    let requests = RefreshRequests::default();
    requests.request();
    requests.request();
    tokio::time::timeout(Duration::from_secs(1), requests.pending())
        .await
        .unwrap();
    requests.clear();
    // With nothing pending it waits (here: until the timeout).
    assert!(
        tokio::time::timeout(Duration::from_millis(20), requests.pending())
            .await
            .is_err()
    );
}

#[test]
fn retry_delays_double_up_to_the_refresh_interval_with_jitter() {
    let cap = Duration::from_secs(300);
    for (failures, full) in [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (1000, 300)] {
        let full = Duration::from_secs(full);
        let delay = retry_delay(failures, cap);
        assert!(delay <= full && delay >= full / 2, "{failures}: {delay:?}");
    }
    assert!(retry_delay(1, Duration::from_millis(60)) <= Duration::from_millis(60));
    let values: std::collections::HashSet<_> = (0..20).map(|_| retry_delay(3, cap)).collect();
    assert!(values.len() > 1, "jittered");
}
