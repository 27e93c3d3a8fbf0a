//! Per request: parse, authenticate, classify, decide, audit, forward.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use bytes::Bytes;
use flinkguard_ownership::{OwnershipStore, ResourceKind};
use flinkguard_policy::{
    AuthMethod, Decision, Method, Operation, Principal, RequestTarget, RouteCatalogue, Subject,
    Visibility,
};

use crate::audit::{AuditLine, AuditSink};
use crate::authn::{Connection, authenticate};
use crate::body::{BodyFault, ClientBody};
use crate::error::{Body, BoxError, Refusal, error_chain};
use crate::metrics::Metrics;
use crate::redaction::Redaction;
use crate::settings::Snapshot;
use crate::teams;
use crate::webhook;

/// Largest body read to decide a request whose body changes its operation (a savepoint
/// request is a few hundred bytes).
const MAX_DECISION_BODY: usize = 64 * 1024;

/// Headers that describe one connection, not the request (RFC 9110 7.6.1), and headers that
/// could smuggle an identity or a different method past Flink or a later hop.
fn stripped_from_requests(name: &HeaderName) -> bool {
    // A `match` on the name, not a scan of a list: this runs for every header of every
    // request and answer.
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "forwarded"
            | "x-forwarded-for"
            | "x-forwarded-host"
            | "x-forwarded-proto"
            | "x-forwarded-user"
            | "x-forwarded-groups"
            | "x-forwarded-email"
            | "x-remote-user"
            | "x-remote-group"
            | "remote-user"
            | "x-http-method-override"
            | "x-http-method"
            | "x-method-override"
            | "impersonate-user"
            | "impersonate-group"
            | "authorization"
    )
}

/// Headers that describe one connection, not the answer.
fn stripped_from_answers(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// What every request shares: the current snapshot, the audit sink, the metrics.
pub(crate) struct State {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// Who owns which job, jar and application (durable).
    pub(crate) owners: Arc<OwnershipStore>,
    /// What is filtered out of answers for principals without `secrets.read`.
    pub(crate) redaction: Redaction,
    pub(crate) catalogue: RouteCatalogue,
    pub(crate) audit: AuditSink,
    pub(crate) metrics: Metrics,
    next_request_id: AtomicU64,
}

impl State {
    pub(crate) fn new(
        snapshot: Snapshot,
        audit: AuditSink,
        owners: Arc<OwnershipStore>,
        redaction: Redaction,
    ) -> State {
        State {
            snapshot: ArcSwap::from_pointee(snapshot),
            owners,
            redaction,
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
    /// The real caller, when it acts as `principal` through impersonation headers.
    impersonator: Option<String>,
    /// The job, jar or application a submission created.
    created: Option<String>,
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
    // Dropped when the response is returned: the request then no longer counts as in flight.
    _in_flight: crate::conn::InFlight,
) -> Result<Response<Body>, std::convert::Infallible> {
    let started = Instant::now();
    // One snapshot for the whole request, even if a reload happens meanwhile.
    let snapshot = state.snapshot.load_full();
    let request_id = state.next_request_id.fetch_add(1, Ordering::Relaxed);
    // For the audit line. Cheap clones: a standard method is a tag, and the target shares the
    // request's bytes.
    let method = request.method().clone();
    let target = request.uri().path_and_query().cloned();
    let (parts, body) = request.into_parts();
    let (body, progress) = ClientBody::new(body, snapshot.max_body_bytes);
    let request = Request::from_parts(parts, body);
    let mut facts = Facts::default();
    let limit = snapshot.timeouts.request;
    // The work stays where it is, pinned in this future, and the deadline wraps a reference
    // to it: wrapped by value, the work (kilobytes) would be copied into the wrapper first.
    let outcome = {
        let work = std::pin::pin!(async {
            // Decided, then forwarded: one after the other, the two steps share their room in
            // this future instead of the decision keeping room for the forwarding.
            let (response, post) =
                match decide(state.clone(), &snapshot, &connection, request, &mut facts).await? {
                    Decided::Answered(response) => (response, None),
                    Decided::Forward(outbound) => {
                        let Outbound {
                            parts,
                            target,
                            body,
                            post,
                        } = *outbound;
                        let response = forward(&snapshot, &connection, parts, target, body).await?;
                        (response, post)
                    }
                };
            match post {
                None => Ok(response),
                // Boxed, like every rare step below: a request's future keeps room for its
                // largest step and is copied whole when moved; most answers need no work.
                Some(post) => {
                    let (response, created) =
                        Box::pin(finish(state.clone(), snapshot.clone(), response, post)).await?;
                    facts.created = created;
                    Ok(response)
                }
            }
        });
        tokio::time::timeout(limit, work).await
    }
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
    state
        .audit
        .emit(&AuditLine {
            time: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            request_id,
            peer: &connection.peer_text,
            user: facts.principal.as_ref().map(|p| p.user.as_str()),
            groups: facts.principal.as_ref().map(|p| p.groups.as_slice()),
            auth: facts.principal.as_ref().map(|p| p.method.name()),
            method: method.as_str(),
            path: &state
                .redaction
                .target_for_audit(target.as_ref().map_or("", |t| t.as_str())),
            operation: facts.operation,
            decision,
            reason: facts.reason,
            status: response.status().as_u16(),
            bytes,
            duration_ms: duration.as_secs_f64() * 1000.0,
            job_id: facts.job_id.as_deref(),
            impersonated_by: facts.impersonator.as_deref(),
            created: facts.created.as_deref(),
        })
        .await;
    Ok(response)
}

/// Authenticates and authorizes a request; records what it learns in `facts`.
async fn decide(
    state: Arc<State>,
    snapshot: &Snapshot,
    connection: &Connection,
    request: Request<ClientBody>,
    facts: &mut Facts,
) -> Result<Decided, Refusal> {
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
    let method: Method = request
        .method()
        .as_str()
        .parse()
        .map_err(Refusal::BadRequest)?;
    let parsed =
        RequestTarget::parse(raw_target).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    // A signed link authorizes exactly the request it was signed for, and nothing else: its
    // signature parameters are checked and removed before anything looks at the target.
    let link = if flinkguard_signedlink::is_signed(&parsed) {
        let verified = snapshot
            .links
            .verify(
                request.method().as_str(),
                raw_target,
                time::OffsetDateTime::now_utc(),
            )
            .map_err(|e| {
                if e.is_refusal() {
                    Refusal::unauthenticated(e.code(), format!("signed link refused: {e}"))
                } else {
                    Refusal::Internal(format!("signed links: {e}"))
                }
            })?;
        Some(verified)
    } else {
        None
    };
    let target = match &link {
        Some(link) => RequestTarget::parse(&link.target_without_signature)
            .map_err(|e| Refusal::BadRequest(e.to_string()))?,
        None => parsed,
    };

    let principal = match &link {
        Some(link) => Principal {
            user: format!("signed-link:{}", link.kid),
            groups: Vec::new(),
            method: AuthMethod::SignedLink,
            peer: Some(connection.peer),
        },
        None => {
            let principal = authenticate(snapshot, connection, request.headers())?;
            impersonate(snapshot, principal, request.headers(), facts)?
        }
    };
    if target.path() == SIGN_ENDPOINT {
        facts.principal = Some(principal.clone());
        let response = Box::pin(sign_link(
            state.clone(),
            snapshot,
            &principal,
            request,
            facts,
        ))
        .await?;
        return Ok(Decided::Answered(response));
    }
    let principal = facts.principal.insert(principal);

    let mut classification = state
        .catalogue
        .classify(method, &target)
        .map_err(|e| Refusal::UnknownRoute(e.to_string()))?;
    facts.job_id = classification.job_id().map(str::to_owned);
    let (mut parts, body) = request.into_parts();
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
    let mut caller_paths = Vec::new();
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
        caller_paths = classification.caller_chosen_paths(&collected, &target);
        Full::new(collected)
            .map_err(|never| match never {})
            .boxed_unsync()
    } else {
        // Streamed as it arrives; a body longer than the limit (chunked, or an HTTP/2 stream
        // without content-length) is cut off with an error instead of reaching Flink whole.
        body.boxed_unsync()
    };
    let operation = classification.operation;
    facts.operation = Some(operation.name());

    // Which resource, whose, and how much of a listing this principal sees.
    let resource = teams::resource_of(&classification);
    let owner = match resource {
        Some((kind, id)) => owner_of(&state.owners, kind, id)?,
        None => None,
    };
    let listing = (parts.method == http::Method::GET)
        .then(|| teams::Listing::of(classification.route))
        .flatten();
    let mut filter = None;
    let decision = match (listing, resource) {
        // Whoever signed it was allowed to make exactly this request.
        _ if principal.method == AuthMethod::SignedLink => Decision::Allow {
            role: "signed link".into(),
            via: format!(
                "expires {}",
                link.as_ref()
                    .map(|l| l.expires.unix_timestamp())
                    .unwrap_or_default()
            ),
        },
        (Some(listing), _) => {
            let listed_operation = listing_operation(listing, operation);
            match snapshot.policy.visibility(principal, listed_operation) {
                Visibility::Owned => {
                    filter = Some((listing, listed_operation));
                    // /overview itself is a cluster read, decided as such below.
                    if listing == teams::Listing::ClusterOverview {
                        snapshot.policy.decide(principal, operation)
                    } else {
                        Decision::Allow {
                            role: "own/group grants".into(),
                            via: format!("{listed_operation}, listing filtered"),
                        }
                    }
                }
                _ => snapshot.policy.decide(principal, operation),
            }
        }
        (None, Some(_)) => {
            let owner = owner.as_ref().map(policy_owner);
            snapshot
                .policy
                .decide_on(principal, operation, Subject::Resource(owner.as_ref()))
        }
        (None, None) => snapshot.policy.decide(principal, operation),
    };
    match decision {
        Decision::Allow { role, via } => {
            facts.reason = Some(allowed_reason(&role, &via));
        }
        Decision::Deny { reason } => return Err(Refusal::Forbidden(reason)),
    }
    if let (Some(hook), None) = (&snapshot.webhook, &link) {
        let question = webhook::Question::new(
            principal,
            operation,
            resource.map(|(kind, id)| (kind.to_string(), id.to_owned())),
            owner.as_ref().map(policy_owner).as_ref(),
        );
        Box::pin(hook.decide(question))
            .await
            .map_err(Refusal::Forbidden)?;
    }
    for path in caller_paths.iter().filter(|_| link.is_none()) {
        snapshot
            .policy
            .path_allowed(principal, operation, path)
            .map_err(Refusal::Forbidden)?;
    }
    facts.allowed = true;

    // The Web UI's static files (no route) carry no secrets, and rewriting its JavaScript as
    // text would break it.
    let redact = classification
        .route
        .is_some_and(|route| state.redaction.filters(route))
        && !snapshot
            .policy
            .decide(principal, Operation::SecretsRead)
            .is_allowed();
    let creates = teams::creates(classification.route, &parts.method);
    if filter.is_some() || redact || creates {
        // The answer is read whole and rewritten: it must arrive plain and complete.
        for name in flinkguard_redact::REQUEST_HEADERS_TO_STRIP {
            parts.headers.remove(*name);
        }
    }
    let deleted_jar = (parts.method == http::Method::DELETE)
        .then(|| resource.filter(|(kind, _)| *kind == ResourceKind::Jar))
        .flatten()
        .map(|(_, id)| id.to_owned());
    let post = (filter.is_some() || redact || creates || deleted_jar.is_some()).then(|| Post {
        route: classification.route,
        filter,
        redact,
        creates,
        deleted_jar,
        principal: principal.clone(),
    });
    Ok(Decided::Forward(Box::new(Outbound {
        parts,
        target,
        body,
        post,
    })))
}

/// What an allowed request leaves to do.
enum Decided {
    /// The gateway answered it itself (its own endpoints).
    Answered(Response<Body>),
    /// To be sent to Flink. Boxed: several hundred bytes, which unboxed would take room in
    /// every request's future (648 bytes more, measured) and be copied on the way out.
    Forward(Box<Outbound>),
}

/// The request as it goes to Flink, and what is to be done with Flink's answer.
struct Outbound {
    parts: http::request::Parts,
    target: RequestTarget,
    body: Body,
    post: Option<Post>,
}

/// Work on Flink's answer: record what a submission created, filter a listing, redact.
struct Post {
    route: Option<&'static str>,
    filter: Option<(teams::Listing, Operation)>,
    redact: bool,
    creates: bool,
    deleted_jar: Option<String>,
    principal: Principal,
}

/// Applies [`Post`] to Flink's answer; returns the answer and what a submission created.
async fn finish(
    state: Arc<State>,
    snapshot: Arc<Snapshot>,
    response: Response<Body>,
    post: Post,
) -> Result<(Response<Body>, Option<String>), Refusal> {
    let (mut head, body) = response.into_parts();
    let success = head.status.is_success();
    if let (Some(jar), true) = (post.deleted_jar, success) {
        forget(Arc::clone(&state.owners), ResourceKind::Jar, jar).await?;
    }
    // Error answers are filtered too (exception texts carry arguments); nothing else is
    // done with them.
    if !(post.redact || (success && (post.creates || post.filter.is_some()))) {
        return Ok((Response::from_parts(head, body), None));
    }
    let mut bytes = read_whole(body).await?;
    let mut created = None;
    if post.creates
        && success
        && let Some((kind, id)) = teams::created(post.route, &bytes)
    {
        created = Some(id.clone());
        record(Arc::clone(&state.owners), kind, id, &post.principal).await?;
    }
    if let (Some((listing, operation)), true) = (post.filter, success) {
        bytes = match listing {
            teams::Listing::ClusterOverview => {
                let states = visible_job_states(
                    Arc::clone(&state),
                    Arc::clone(&snapshot),
                    post.principal.clone(),
                    operation,
                )
                .await?;
                teams::recount_overview(&bytes, &states).map_err(Refusal::Upstream)?
            }
            _ => filter_items(
                &state,
                &snapshot,
                &post.principal,
                listing,
                operation,
                &bytes,
            )?,
        };
    }
    if post.redact {
        bytes = state
            .redaction
            .redact(head.status.as_u16(), &head.headers, &bytes)
            .map_err(Refusal::Upstream)?;
    }
    head.headers.remove(header::CONTENT_ENCODING);
    head.headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let response = Response::from_parts(
        head,
        Full::new(Bytes::from(bytes))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    Ok((response, created))
}

/// The gateway's own endpoint for signed links.
const SIGN_ENDPOINT: &str = "/flinkguard/v1/sign";

/// `POST /flinkguard/v1/sign` with `{"method": "GET", "path": "/jobs/ID", "ttl": "10m"}`:
/// for principals granted `links.sign`, and only for a request they could make themselves
/// right now, so a link never carries more than its signer's rights.
async fn sign_link(
    state: Arc<State>,
    snapshot: &Snapshot,
    principal: &Principal,
    request: Request<ClientBody>,
    facts: &mut Facts,
) -> Result<Response<Body>, Refusal> {
    facts.operation = Some(Operation::LinksSign.name());
    if request.method() != http::Method::POST {
        return Err(Refusal::BadRequest(format!("{SIGN_ENDPOINT} takes POST")));
    }
    if let Decision::Deny { reason } = snapshot.policy.decide(principal, Operation::LinksSign) {
        return Err(Refusal::Forbidden(reason));
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SignRequest {
        method: String,
        path: String,
        ttl: String,
    }
    let body = Limited::new(request.into_body(), MAX_DECISION_BODY)
        .collect()
        .await
        .map_err(|_| Refusal::BadRequest("unreadable body".into()))?
        .to_bytes();
    let asked: SignRequest = serde_json::from_slice(&body).map_err(|e| {
        Refusal::BadRequest(format!(
            "expected {{\"method\": \"GET\", \"path\": \"/jobs/ID\", \"ttl\": \"10m\"}}: {e}"
        ))
    })?;
    let target =
        RequestTarget::parse(&asked.path).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let method: Method = asked.method.parse().map_err(Refusal::BadRequest)?;
    let classification = state
        .catalogue
        .classify(method, &target)
        .map_err(|e| Refusal::UnknownRoute(e.to_string()))?;
    let owner = match teams::resource_of(&classification) {
        Some((kind, id)) => Some(
            owner_of(&state.owners, kind, id)?
                .as_ref()
                .map(policy_owner),
        ),
        None => None,
    };
    // `Some(None)`: a resource nobody owns; `None`: not about one resource.
    let subject = match &owner {
        Some(owner) => Subject::Resource(owner.as_ref()),
        None => Subject::Cluster,
    };
    if let Decision::Deny { reason } =
        snapshot
            .policy
            .decide_on(principal, classification.operation, subject)
    {
        return Err(Refusal::Forbidden(format!(
            "a link cannot carry more than its signer may do: {reason}"
        )));
    }
    let ttl: flinkguard_signedlink::Ttl = asked
        .ttl
        .parse()
        .map_err(|e: flinkguard_signedlink::LinkError| Refusal::BadRequest(e.to_string()))?;
    let now = time::OffsetDateTime::now_utc();
    let expires = ttl
        .expires_at(now)
        .map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let link = snapshot
        .links
        .sign(&asked.method, target.as_str(), expires)
        .map_err(|e| Refusal::BadRequest(e.to_string()))?;
    facts.allowed = true;
    facts.reason = Some(format!(
        "signed {} {} until {}",
        asked.method,
        target.as_str(),
        expires.unix_timestamp()
    ));
    let answer = serde_json::json!({
        "link": link.as_str(),
        "expires": expires.unix_timestamp(),
        "kid": link.kid,
    })
    .to_string();
    let mut response = Response::new(
        Full::new(Bytes::from(answer))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    Ok(response)
}

/// `role admin (user alice)`, for the audit line; concatenated, as `format!` costs several
/// times more and this runs on every allowed request.
fn allowed_reason(role: &str, via: &str) -> String {
    ["role ", role, " (", via, ")"].concat()
}

/// The operation whose grants decide what a listing shows: job listings show jobs a
/// principal may read, and so on. `/overview` counts jobs.
fn listing_operation(listing: teams::Listing, operation: Operation) -> Operation {
    match listing {
        teams::Listing::ClusterOverview => Operation::JobsRead,
        _ => operation,
    }
}

fn policy_owner(owner: &flinkguard_ownership::Owner) -> flinkguard_policy::Owner {
    flinkguard_policy::Owner {
        user: owner.user.clone(),
        groups: owner.groups.clone(),
    }
}

/// The recorded owner; `None` also for an id that cannot be one of Flink's (nobody owns it,
/// and Flink will not find it either).
fn owner_of(
    owners: &OwnershipStore,
    kind: ResourceKind,
    id: &str,
) -> Result<Option<flinkguard_ownership::Owner>, Refusal> {
    match owners.owner(kind, id) {
        Ok(owner) => Ok(owner),
        Err(flinkguard_ownership::OwnershipError::InvalidId { .. }) => Ok(None),
        Err(e) => Err(store_error(e)),
    }
}

fn store_error(e: flinkguard_ownership::OwnershipError) -> Refusal {
    Refusal::Internal(format!("the ownership store failed: {e}"))
}

/// Reads a whole answer of Flink's that the gateway must inspect (at most
/// [`teams::MAX_INSPECTED_BODY`]: a larger one is refused rather than passed unread).
async fn read_whole(mut body: Body) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| Refusal::Upstream(format!("cannot read Flink's answer whole: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > teams::MAX_INSPECTED_BODY {
                return Err(Refusal::Upstream(format!(
                    "Flink's answer is over {} bytes, too large to inspect",
                    teams::MAX_INSPECTED_BODY
                )));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// Records an owner durably before the submission's answer goes out: a client that saw
/// its job accepted will find it owned, even if the gateway dies right after.
async fn record(
    owners: Arc<OwnershipStore>,
    kind: ResourceKind,
    id: String,
    principal: &Principal,
) -> Result<(), Refusal> {
    let owner = flinkguard_ownership::Owner {
        user: principal.user.clone(),
        groups: principal.groups.clone(),
    };
    tokio::task::spawn_blocking(move || owners.record(kind, &id, &owner).map_err(store_error))
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))?
}

async fn forget(
    owners: Arc<OwnershipStore>,
    kind: ResourceKind,
    id: String,
) -> Result<(), Refusal> {
    tokio::task::spawn_blocking(move || owners.forget(kind, &id).map_err(store_error))
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))?
}

/// Keeps the listing's items the principal may see under `operation`.
fn filter_items(
    state: &State,
    snapshot: &Snapshot,
    principal: &Principal,
    listing: teams::Listing,
    operation: Operation,
    body: &[u8],
) -> Result<Vec<u8>, Refusal> {
    let Some((kind, _, _)) = listing.items() else {
        return Ok(body.to_vec());
    };
    let mut failure = None;
    let filtered = teams::filter_listing(listing, body, |id| {
        match owner_of(&state.owners, kind, id) {
            Ok(owner) => {
                let owner = owner.as_ref().map(policy_owner);
                snapshot
                    .policy
                    .decide_on(principal, operation, Subject::Resource(owner.as_ref()))
                    .is_allowed()
            }
            Err(refusal) => {
                failure = Some(refusal);
                false
            }
        }
    })
    .map_err(Refusal::Upstream)?;
    match failure {
        Some(refusal) => Err(refusal),
        None => Ok(filtered),
    }
}

/// The states of the jobs the principal may see, for recounting `/overview`.
async fn visible_job_states(
    state: Arc<State>,
    snapshot: Arc<Snapshot>,
    principal: Principal,
    operation: Operation,
) -> Result<Vec<String>, Refusal> {
    let upstream = &snapshot.upstream;
    let uri = upstream
        .uri_for("/v1/jobs/overview".to_owned())
        .map_err(|_| Refusal::Upstream("bad upstream address".into()))?;
    let mut request = Request::new(
        http_body_util::Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *request.uri_mut() = uri;
    let response = upstream
        .pool
        .request(request)
        .await
        .map_err(|e| Refusal::Upstream(error_chain(&e)))?;
    let body = read_whole(
        response
            .into_body()
            .map_err(|e| -> BoxError { Box::new(e) })
            .boxed_unsync(),
    )
    .await?;
    let visible = filter_items(
        &state,
        &snapshot,
        &principal,
        teams::Listing::JobsOverview,
        operation,
        &body,
    )?;
    let value: serde_json::Value =
        serde_json::from_slice(&visible).map_err(|e| Refusal::Upstream(e.to_string()))?;
    Ok(value["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["state"].as_str().map(str::to_owned))
        .collect())
}

static IMPERSONATE_USER: HeaderName = HeaderName::from_static("impersonate-user");
static IMPERSONATE_GROUP: HeaderName = HeaderName::from_static("impersonate-group");

/// `Impersonate-User` / `Impersonate-Group` (Kubernetes semantics): a principal granted
/// `impersonate` acts as that user and those groups; anyone else sending them gets 403.
fn impersonate(
    snapshot: &Snapshot,
    principal: Principal,
    headers: &HeaderMap,
    facts: &mut Facts,
) -> Result<Principal, Refusal> {
    let mut users = headers.get_all(&IMPERSONATE_USER).iter();
    let user = match (users.next(), users.next()) {
        (None, None) => None,
        (Some(value), None) => Some(
            value
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|u| !u.is_empty() && u.len() <= 256)
                .ok_or_else(|| {
                    Refusal::BadRequest("Impersonate-User is not a usable name".into())
                })?,
        ),
        _ => return Err(Refusal::BadRequest("send Impersonate-User once".into())),
    };
    let groups: Vec<String> = headers
        .get_all(&IMPERSONATE_GROUP)
        .iter()
        .map(|v| {
            v.to_str()
                .ok()
                .map(str::trim)
                .filter(|g| !g.is_empty() && g.len() <= 256)
                .map(str::to_owned)
                .ok_or_else(|| Refusal::BadRequest("Impersonate-Group is not a usable name".into()))
        })
        .collect::<Result<_, _>>()?;
    let Some(user) = user else {
        if groups.is_empty() {
            return Ok(principal);
        }
        return Err(Refusal::BadRequest(
            "Impersonate-Group needs Impersonate-User".into(),
        ));
    };
    if let Decision::Deny { reason } = snapshot.policy.decide(&principal, Operation::Impersonate) {
        let refusal = Refusal::Forbidden(format!(
            "{} may not impersonate {user}: {reason}",
            principal.user
        ));
        // Audited as the real caller, with the name it asked for in the reason.
        facts.principal = Some(principal);
        return Err(refusal);
    }
    facts.impersonator = Some(principal.user.clone());
    Ok(Principal {
        user: user.to_owned(),
        groups,
        method: principal.method,
        peer: principal.peer,
    })
}

async fn forward(
    snapshot: &Snapshot,
    connection: &Connection,
    parts: http::request::Parts,
    target: RequestTarget,
    body: Body,
) -> Result<Response<Body>, Refusal> {
    let upstream = &snapshot.upstream;
    let uri = upstream
        .uri_for(target.into_string())
        .map_err(|_| Refusal::BadRequest("unforwardable target".into()))?;
    let mut headers = parts.headers;
    strip(&mut headers, stripped_from_requests);
    // Whatever the trusted-proxy headers are named, they never reach Flink.
    headers.remove(&snapshot.trusted_proxies.user_header);
    headers.remove(&snapshot.trusted_proxies.groups_header);
    headers.insert(
        HeaderName::from_static("x-forwarded-for"),
        connection.forwarded_for.clone(),
    );
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
        .pool
        .request(upstream_request)
        .await
        .map_err(|e| Refusal::Upstream(error_chain(&e)))?;
    let (mut parts, body) = response.into_parts();
    strip(&mut parts.headers, stripped_from_answers);
    Ok(Response::from_parts(
        parts,
        body.map_err(BoxError::from).boxed_unsync(),
    ))
}

/// Removes the listed headers and every header the `Connection` header names.
///
/// Walks the message's own few headers once instead of looking up every listed name: this
/// runs on every request and every answer.
fn strip(headers: &mut HeaderMap, stripped: fn(&HeaderName) -> bool) {
    let mut doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| stripped(name))
        .cloned()
        .collect();
    // Each name the `Connection` header lists, looked up: usually one (`keep-alive`, `close`)
    // against a dozen headers. Looked up by text, which allocates nothing; a name is made
    // only for a header that is there.
    for value in headers.get_all(header::CONNECTION) {
        let tokens = value.to_str().unwrap_or_default().split(',').map(str::trim);
        let present = tokens.filter(|t| headers.contains_key(*t));
        doomed.extend(present.filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok()));
    }
    for name in doomed {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<A, B, C, D, F: Future>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A request's future is copied whole when it is moved into its box: this runs on every
    /// request. Connecting upstream, finishing a filtered answer, signing links and asking a
    /// webhook are boxed where they happen, and deciding and forwarding are two steps, not
    /// one nested in the other; a future that grew back past this bound has lost one of
    /// those (it was 6,840 bytes before them, 3,792 after).
    #[test]
    fn a_request_s_future_stays_small() {
        let size = future_size(handle);
        assert!(size <= 4 * 1024, "a request's future takes {size} bytes");
    }

    #[test]
    fn strip_removes_listed_headers_and_those_the_connection_header_names() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("close, X-Secret-Hop"),
        );
        headers.append("connection", HeaderValue::from_static(" Keep-Alive"));
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-forwarded-user", HeaderValue::from_static("admin"));
        headers.append("x-forwarded-user", HeaderValue::from_static("root"));
        // Named `close`, and the `Connection` header lists it.
        headers.insert("close", HeaderValue::from_static("1"));
        headers.insert("accept", HeaderValue::from_static("*/*"));
        headers.insert("x-kept", HeaderValue::from_static("yes"));
        strip(&mut headers, stripped_from_requests);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x-kept"]);
    }

    #[test]
    fn strip_keeps_a_message_without_hop_headers_whole() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("content-length", HeaderValue::from_static("12"));
        strip(&mut headers, stripped_from_answers);
        assert_eq!(headers.len(), 2);
    }
}
