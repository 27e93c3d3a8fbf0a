//! The one place gateway errors become HTTP responses, in Flink's own error shape
//! (`{"errors": ["..."]}`) so Flink's CLI and Web UI show the message.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

/// Errors of streamed bodies (I/O, or a request body over the size limit).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of the gateway, both directions: a streamed body or a small complete one.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// An error and its causes, `: `-separated (hyper's own message alone says little).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Why a request was not forwarded, by whose fault.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// The request target or method is not something the gateway decides on (client's fault).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No acceptable credentials; `reason` is a short code for metrics.
    #[error("authentication required: {message}")]
    Unauthenticated {
        reason: &'static str,
        message: String,
    },
    /// Authenticated, but the policy does not allow the operation.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No Flink REST route matches: denied, never handed to Flink's static-file handler.
    #[error("not found: {0}")]
    UnknownRoute(String),
    /// The body is larger than the gateway reads for a decision.
    #[error("request body too large: {0}")]
    TooLarge(String),
    /// Flink did not answer (upstream's fault).
    #[error("Flink is not reachable: {0}")]
    Upstream(String),
    /// The client did not send the whole request in time.
    #[error(
        "request timeout: the request body did not arrive within {0} s (gateway.timeouts.request_seconds)"
    )]
    ClientTimeout(u64),
    /// Flink did not answer in time.
    #[error("Flink did not answer within {0} s (gateway.timeouts.request_seconds)")]
    UpstreamTimeout(u64),
    /// The gateway itself failed (its ownership store).
    #[error("internal error: {0}")]
    Internal(String),
    /// Not ready to serve (the admin listener's `/readyz`).
    #[error("not ready: {0}")]
    Unavailable(String),
}

impl Refusal {
    pub(crate) fn unauthenticated(reason: &'static str, message: impl Into<String>) -> Refusal {
        Refusal::Unauthenticated {
            reason,
            message: message.into(),
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
            Refusal::UnknownRoute(_) => StatusCode::NOT_FOUND,
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Upstream(_) => StatusCode::BAD_GATEWAY,
            Refusal::ClientTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Refusal::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn into_response(self) -> Response<Body> {
        let status = self.status();
        let body = serde_json::json!({ "errors": [format!("flinkguard: {self}")] }).to_string();
        let mut response = Response::new(full(Bytes::from(body)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"flinkguard\""),
            );
        }
        response
    }
}

/// A complete small body.
fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}
