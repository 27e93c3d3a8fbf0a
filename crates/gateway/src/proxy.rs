//! Per request: parse, authenticate, classify, decide, audit, forward.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use flinkguard_policy::{AuthMethod, Decision, Method, Principal, RequestTarget, RouteCatalogue};

use crate::GatewaySettings;
use crate::audit::{AuditLine, AuditSink};
use crate::error::{Body, BoxError, Refusal};

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

/// What every request shares: the catalogue, the policy, the connection pool to Flink.
pub(crate) struct State {
    settings: GatewaySettings,
    catalogue: RouteCatalogue,
    client: Client<HttpConnector, Body>,
    next_request_id: AtomicU64,
    audit: AuditSink,
}

impl State {
    pub(crate) fn new(settings: GatewaySettings, audit: AuditSink) -> State {
        State {
            audit,
            settings,
            catalogue: RouteCatalogue::new(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            next_request_id: AtomicU64::new(1),
        }
    }
}

/// What the TLS handshake established about a connection.
pub(crate) struct Connection {
    pub(crate) peer: SocketAddr,
    /// `None`: no client certificate; `Some(Err)`: a verified certificate without a usable identity.
    pub(crate) identity: Option<Result<Principal, String>>,
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
    let request_id = state.next_request_id.fetch_add(1, Ordering::Relaxed);
    let method_text = request.method().as_str().to_owned();
    let target_text = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut facts = Facts::default();
    let response = match decide_and_forward(&state, &connection, request, &mut facts).await {
        Ok(response) => response,
        Err(refusal) => {
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
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        job_id: facts.job_id.as_deref(),
    });
    Ok(response)
}

async fn decide_and_forward(
    state: &State,
    connection: &Connection,
    request: Request<Incoming>,
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

    let principal = authenticate(state, connection, request.headers())?;
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
        Some(Some(length)) if length > state.settings.max_body_bytes as u64 => {
            return Err(Refusal::TooLarge(format!(
                "{length} bytes is over the gateway's limit of {} (gateway.max_body_bytes)",
                state.settings.max_body_bytes
            )));
        }
        _ => {}
    }
    let body: Body = if classification.depends_on_body() {
        let collected = Limited::new(body, MAX_DECISION_BODY)
            .collect()
            .await
            .map_err(|_| {
                Refusal::TooLarge(format!(
                    "more than {MAX_DECISION_BODY} bytes for a request decided by its body"
                ))
            })?
            .to_bytes();
        classification.refine_with_body(&collected);
        Full::new(collected)
            .map_err(|never| match never {})
            .boxed_unsync()
    } else {
        // Streamed as it arrives; a body longer than the limit (chunked, or an HTTP/2 stream
        // without content-length) is cut off with an error instead of reaching Flink whole.
        Limited::new(body, state.settings.max_body_bytes).boxed_unsync()
    };
    facts.operation = Some(classification.operation.name());

    match state
        .settings
        .policy
        .decide(principal, classification.operation)
    {
        Decision::Allow { role, via } => {
            facts.allowed = true;
            facts.reason = Some(format!("role {role} ({via})"));
        }
        Decision::Deny { reason } => return Err(Refusal::Forbidden(reason)),
    }
    forward(state, connection, parts, target, body).await
}

async fn forward(
    state: &State,
    connection: &Connection,
    parts: http::request::Parts,
    target: RequestTarget,
    body: Body,
) -> Result<Response<Body>, Refusal> {
    let upstream = state.settings.upstream;
    let uri: http::Uri = format!("http://{upstream}{}", target.as_str())
        .parse()
        .map_err(|_| Refusal::BadRequest("unforwardable target".into()))?;
    let mut headers = parts.headers;
    strip(&mut headers, STRIPPED_REQUEST_HEADERS);
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
    let response = state
        .client
        .request(upstream_request)
        .await
        .map_err(|e| Refusal::Upstream(e.to_string()))?;
    let (mut parts, body) = response.into_parts();
    strip(&mut parts.headers, STRIPPED_RESPONSE_HEADERS);
    Ok(Response::from_parts(
        parts,
        body.map_err(BoxError::from).boxed_unsync(),
    ))
}

/// Authentication, in documented order: a verified client certificate; else a bearer token
/// (service token or IdP JWT). A certificate wins over a token sent alongside it.
fn authenticate(
    state: &State,
    connection: &Connection,
    headers: &HeaderMap,
) -> Result<Principal, Refusal> {
    match &connection.identity {
        Some(Ok(principal)) => return Ok(principal.clone()),
        Some(Err(problem)) => return Err(Refusal::Unauthenticated(problem.clone())),
        None => {}
    }
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (authorizations.next(), authorizations.next()) else {
        return Err(Refusal::Unauthenticated(
            "present a client certificate or one bearer token".into(),
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            Refusal::Unauthenticated("the Authorization header is not `Bearer <token>`".into())
        })?;
    let tokens =
        state.settings.tokens.as_ref().ok_or_else(|| {
            Refusal::Unauthenticated("bearer tokens are not accepted here".into())
        })?;
    let verified = tokens
        .verify(token.trim(), time::OffsetDateTime::now_utc())
        .map_err(|e| Refusal::Unauthenticated(format!("invalid token ({}): {e}", e.code())))?;
    let method = if verified.issuer == state.settings.service_issuer {
        AuthMethod::ServiceToken
    } else {
        AuthMethod::Jwt
    };
    Ok(Principal {
        user: verified.user,
        groups: verified.groups,
        method,
        peer: Some(connection.peer),
    })
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
