//! The admin listener: `/healthz` (the process serves), `/readyz` (Flink answers behind it),
//! `/metrics` (Prometheus). Plain HTTP on loopback by default; it reveals no secrets but
//! should not be exposed beyond the pod or host.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::error::{Body, Refusal};
use crate::proxy::State;

/// How long `/readyz` waits for Flink.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| answer(state.clone(), request));
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

async fn answer(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    if request.method() != http::Method::GET {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n"));
    }
    Ok(match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match flink_answers(&state).await {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(refusal) => refusal.into_response(),
        },
        "/metrics" => {
            let mut response = text(
                StatusCode::OK,
                &format!("{}{}", state.metrics.render(), state.audit.render_metrics()),
            );
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        _ => text(StatusCode::NOT_FOUND, "/healthz, /readyz or /metrics\n"),
    })
}

/// Ready when Flink's REST endpoint answers a harmless read.
async fn flink_answers(state: &State) -> Result<(), Refusal> {
    let upstream = &state.snapshot.load().upstream;
    let uri = upstream
        .uri_for("/v1/config".to_owned())
        .map_err(|_| Refusal::Unavailable("bad upstream address".into()))?;
    let mut request = Request::new(
        Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *request.uri_mut() = uri;
    match tokio::time::timeout(READY_TIMEOUT, upstream.pool.request(request)).await {
        Ok(Ok(response)) if response.status().is_success() => Ok(()),
        Ok(Ok(response)) => Err(Refusal::Unavailable(format!(
            "Flink answered {} at {}",
            response.status(),
            upstream.base
        ))),
        Ok(Err(e)) => Err(Refusal::Unavailable(format!(
            "Flink at {} is not reachable: {e}",
            upstream.base
        ))),
        Err(_) => Err(Refusal::Unavailable(format!(
            "Flink at {} did not answer within {} s",
            upstream.base,
            READY_TIMEOUT.as_secs()
        ))),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_owned()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
