//! Per request: parse, authenticate, classify, decide, audit, forward.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use flinkguard_policy::{Decision, Method, Principal, RequestTarget, RouteCatalogue};

use crate::audit::{AuditLine, AuditSink};
use crate::authn::{Connection, authenticate};
use crate::body::{BodyFault, ClientBody};
use crate::error::{Body, BoxError, Refusal};
use crate::metrics::Metrics;
use crate::settings::Snapshot;

/// Largest body read to decide a request whose body changes its operation (a savepoint
/// request is a few hundred bytes).
const MAX_DECISION_BODY: usize = 64 * 1024;

/// Headers that describe one connection, not the request (RFC 9110 7.6.1), and headers that
/// could smuggle an identity or a different method past Flink or a later hop.
const STRIPPED_REQUEST_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-user",
    "x-forwarded-groups",
    "x-forwarded-email",
    "x-remote-user",
    "x-remote-group",
    "remote-user",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "impersonate-user",
    "impersonate-group",
    "authorization",
];

const STRIPPED_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// What every request shares: the current snapshot, the audit sink, the metrics.
pub(crate) struct State {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    pub(crate) catalogue: RouteCatalogue,
    pub(crate) audit: AuditSink,
    pub(crate) metrics: Metrics,
    next_request_id: AtomicU64,
}

impl State {
    pub(crate) fn new(snapshot: Snapshot, audit: AuditSink) -> State {
        State {
            snapshot: ArcSwap::from_pointee(snapshot),
            catalogue: RouteCatalogue::new(),
            audit,
            metrics: Metrics::default(),
            next_request_id: AtomicU64::new(1),
        }
    }
}

/// What the decision step knows, for the audit line.
#[derive(Default)]
struct Facts {
    principal: Option<Principal>,
    /// The policy allowed the request (it may still fail upstream).
    allowed: bool,
    operation: Option<&'static str>,
    job_id: Option<String>,
    reason: Option<String>,
}

pub(crate) async fn handle(
    state: Arc<State>,
    connection: Arc<Connection>,
    request: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let started = Instant::now();
    // One snapshot for the whole request, even if a reload happens meanwhile.
    let snapshot = state.snapshot.load_full();
    let request_id = state.next_request_id.fetch_add(1, Ordering::Relaxed);
    let method_text = request.method().as_str().to_owned();
    let target_text = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let (parts, body) = request.into_parts();
    let (body, progress) = ClientBody::new(body, snapshot.max_body_bytes);
    let request = Request::from_parts(parts, body);
    let mut facts = Facts::default();
    let limit = snapshot.timeouts.request;
    let outcome = tokio::time::timeout(
        limit,
        decide_and_forward(&state, &snapshot, &connection, request, &mut facts),
    )
    .await
    .unwrap_or_else(|_| {
        Err(if progress.finished() {
            Refusal::UpstreamTimeout(limit.as_secs())
        } else {
            Refusal::ClientTimeout(limit.as_secs())
        })
    });
    let response = match outcome {
        Ok(response) => response,
        Err(refusal) => {
            // A body the client broke or overran is the client's fault, whatever error the
            // upstream connection reported because of it.
            let refusal = match (refusal, progress.fault()) {
                (Refusal::Upstream(_), Some(fault)) => fault.into_refusal(),
                (refusal, _) => refusal,
            };
            match &refusal {
                Refusal::Unauthenticated { reason, .. } => state.metrics.auth_failure(reason),
                Refusal::Upstream(_) => state.metrics.upstream_error("unreachable"),
                Refusal::UpstreamTimeout(_) => state.metrics.upstream_error("timeout"),
                _ => {}
            }
            facts.reason = Some(refusal.to_string());
            refusal.into_response()
        }
    };
    // The policy's decision; the status tells whether Flink then answered.
    let decision = if facts.allowed { "allow" } else { "deny" };
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let duration = started.elapsed();
    state.metrics.request(
        facts.operation,
        decision,
        response.status().as_u16(),
        duration,
    );
    state.audit.emit(&AuditLine {
        time: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        request_id,
        peer: connection.peer,
        user: facts.principal.as_ref().map(|p| p.user.as_str()),
        groups: facts.principal.as_ref().map(|p| p.groups.as_slice()),
        auth: facts.principal.as_ref().map(|p| p.method.to_string()),
        method: &method_text,
        path: &target_text,
        operation: facts.operation,
        decision,
        reason: facts.reason,
        status: response.status().as_u16(),
        bytes,
        duration_ms: duration.as_secs_f64() * 1000.0,
        job_id: facts.job_id.as_deref(),
    });
    Ok(response)
}

async fn decide_and_forward(
    state: &State,
    snapshot: &Snapshot,
    connection: &Connection,
    request: Request<ClientBody>,
    facts: &mut Facts,
) -> Result<Response<Body>, Refusal> {
    // An HTTP/1 absolute-form target (`GET http://elsewhere/jobs`) would let the path we
    // decide on differ from where Flink routes; HTTP/2 always carries :authority, which is fine.
    if request.version() < http::Version::HTTP_2 && request.uri().scheme().is_some() {
        return Err(Refusal::BadRequest(
            "absolute-form request targets are not accepted".into(),
        ));
    }
    let raw_target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let target =
        RequestTarget::parse(raw_target).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let method: Method = request
        .method()
        .as_str()
        .parse()
        .map_err(Refusal::BadRequest)?;

    let principal = authenticate(snapshot, connection, request.headers())?;
    let principal = facts.principal.insert(principal);

    let mut classification = state
        .catalogue
        .classify(method, &target)
        .map_err(|e| Refusal::UnknownRoute(e.to_string()))?;
    facts.job_id = classification.job_id().map(str::to_owned);
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()));
    match declared {
        Some(None) => return Err(Refusal::BadRequest("malformed Content-Length".into())),
        // Answered before a byte of the body is read.
        Some(Some(length)) if length > snapshot.max_body_bytes => {
            return Err(BodyFault::TooLarge(snapshot.max_body_bytes).into_refusal());
        }
        _ => {}
    }
    let body: Body = if classification.depends_on_body() {
        let collected = Limited::new(body, MAX_DECISION_BODY)
            .collect()
            .await
            .map_err(|e| match e.downcast::<BodyFault>() {
                Ok(fault) => fault.into_refusal(),
                Err(_) => Refusal::TooLarge(format!(
                    "more than {MAX_DECISION_BODY} bytes for a request decided by its body"
                )),
            })?
            .to_bytes();
        classification.refine_with_body(&collected);
        Full::new(collected)
            .map_err(|never| match never {})
            .boxed_unsync()
    } else {
        // Streamed as it arrives; a body longer than the limit (chunked, or an HTTP/2 stream
        // without content-length) is cut off with an error instead of reaching Flink whole.
        body.boxed_unsync()
    };
    facts.operation = Some(classification.operation.name());

    match snapshot.policy.decide(principal, classification.operation) {
        Decision::Allow { role, via } => {
            facts.allowed = true;
            facts.reason = Some(format!("role {role} ({via})"));
        }
        Decision::Deny { reason } => return Err(Refusal::Forbidden(reason)),
    }
    forward(snapshot, connection, parts, target, body).await
}

async fn forward(
    snapshot: &Snapshot,
    connection: &Connection,
    parts: http::request::Parts,
    target: RequestTarget,
    body: Body,
) -> Result<Response<Body>, Refusal> {
    let upstream = &snapshot.upstream;
    let uri: http::Uri = format!("{}{}", upstream.base, target.as_str())
        .parse()
        .map_err(|_| Refusal::BadRequest("unforwardable target".into()))?;
    let mut headers = parts.headers;
    strip(&mut headers, STRIPPED_REQUEST_HEADERS);
    // Whatever the trusted-proxy headers are named, they never reach Flink.
    headers.remove(&snapshot.trusted_proxies.user_header);
    headers.remove(&snapshot.trusted_proxies.groups_header);
    if let Ok(value) = HeaderValue::from_str(&connection.peer.ip().to_string()) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), value);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("https"),
    );
    if let Some(host) = parts.uri.host().and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host);
    }
    let mut upstream_request = Request::new(body);
    *upstream_request.method_mut() = parts.method;
    *upstream_request.uri_mut() = uri;
    *upstream_request.headers_mut() = headers;
    let response = upstream
        .client
        .request(upstream_request)
        .await
        .map_err(|e| Refusal::Upstream(error_chain(&e)))?;
    let (mut parts, body) = response.into_parts();
    strip(&mut parts.headers, STRIPPED_RESPONSE_HEADERS);
    Ok(Response::from_parts(
        parts,
        body.map_err(BoxError::from).boxed_unsync(),
    ))
}

/// An error and its causes, `: `-separated (hyper's own message alone says little).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Removes the listed headers and every header the `Connection` header names.
fn strip(headers: &mut HeaderMap, names: &[&str]) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|n| n.trim().to_ascii_lowercase()))
        .collect();
    for name in names.iter().copied().map(str::to_owned).chain(named) {
        headers.remove(name.as_str());
    }
}
