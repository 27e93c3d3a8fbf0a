//! External authorization: a company's own decision service, asked over HTTP after the local
//! policy allowed a request (both must allow). Fail closed: no answer in time, an error, or
//! anything but a clear allow is a deny. Answers are cached briefly per decision input.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use flinkguard_config::AuthorizationWebhook;
use flinkguard_policy::{Operation, Owner, Principal};

use crate::GatewayError;
use crate::error::Body;

/// Answers larger than this are not a decision.
const MAX_ANSWER: usize = 64 * 1024;
/// Cached decisions kept at most; the cache starts over when full.
const MAX_CACHED: usize = 10_000;

/// What the webhook is asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub(crate) struct Question {
    pub(crate) user: String,
    pub(crate) groups: Vec<String>,
    pub(crate) auth: String,
    pub(crate) operation: &'static str,
    pub(crate) resource: Option<(String, String)>,
    pub(crate) owner: Option<(String, Vec<String>)>,
}

impl Question {
    pub(crate) fn new(
        principal: &Principal,
        operation: Operation,
        resource: Option<(String, String)>,
        owner: Option<&Owner>,
    ) -> Question {
        Question {
            user: principal.user.clone(),
            groups: principal.groups.clone(),
            auth: principal.method.to_string(),
            operation: operation.name(),
            resource,
            owner: owner.map(|o| (o.user.clone(), o.groups.clone())),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "principal": {"user": self.user, "groups": self.groups, "auth": self.auth},
            "operation": self.operation,
            "resource": self.resource.as_ref().map(|(kind, id)| serde_json::json!({"kind": kind, "id": id})),
            "owner": self.owner.as_ref().map(|(user, groups)| serde_json::json!({"user": user, "groups": groups})),
        })
    }
}

/// An answer and when it was given.
type Cached = (Result<(), String>, Instant);

pub(crate) struct Webhook {
    url: http::Uri,
    timeout: Duration,
    cache_for: Duration,
    client: Client<HttpsConnector<HttpConnector>, Body>,
    cache: Mutex<HashMap<Question, Cached>>,
}

impl Webhook {
    pub(crate) fn new(
        config: &AuthorizationWebhook,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Webhook, GatewayError> {
        let invalid =
            |m: String| GatewayError::Config(format!("gateway.authorization_webhook: {m}"));
        let url: http::Uri = config
            .url
            .parse()
            .map_err(|_| invalid(format!("`{}` is not a URL", config.url)))?;
        Ok(Webhook {
            url,
            timeout: Duration::from_millis(config.timeout_ms),
            cache_for: Duration::from_secs(config.cache_seconds),
            client: crate::upstream::client_trusting(ca_file)?,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// `Ok(())` to allow; `Err(reason)` to deny.
    pub(crate) async fn decide(&self, question: Question) -> Result<(), String> {
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(&question).cloned());
        if let Some((answer, at)) = cached
            && at.elapsed() < self.cache_for
        {
            return answer;
        }
        let answer = match tokio::time::timeout(self.timeout, self.ask(&question)).await {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "the authorization webhook did not answer within {} ms",
                self.timeout.as_millis()
            )),
        };
        // Failures are not cached: the next request asks again.
        let failed = matches!(&answer, Err(r) if r.starts_with("the authorization webhook"));
        if !failed
            && !self.cache_for.is_zero()
            && let Ok(mut cache) = self.cache.lock()
        {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(question, (answer.clone(), Instant::now()));
        }
        answer
    }

    async fn ask(&self, question: &Question) -> Result<(), String> {
        let unavailable = |why: String| format!("the authorization webhook failed: {why}");
        let mut request = http::Request::new(
            Full::new(Bytes::from(question.to_json().to_string()))
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.url.clone();
        request.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status())));
        }
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .to_bytes();
        let answer: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| unavailable(format!("not JSON: {e}")))?;
        let reason = answer["reason"].as_str().unwrap_or("no reason given");
        match answer["allow"] {
            serde_json::Value::Bool(true) => Ok(()),
            serde_json::Value::Bool(false) => Err(format!("external authorization: {reason}")),
            _ => Err(unavailable("no boolean `allow` in the answer".into())),
        }
    }
}
