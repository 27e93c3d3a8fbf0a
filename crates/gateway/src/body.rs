//! The client's request body on its way to Flink: capped at `gateway.max_body_bytes`, and
//! watched, so that a failure of the upstream request caused by the client (a broken chunked
//! encoding, a reset stream, a body over the limit) is answered as the client's fault (400 or
//! 413) rather than as Flink's (502). hyper drops an upstream connection whose request body
//! failed instead of returning it to the pool, so a half-sent request is never followed by
//! another on the same connection.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};

use crate::error::{BoxError, Refusal};

/// How a client's body went wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum BodyFault {
    /// More bytes than the limit.
    #[error("request body over the gateway's limit of {0} bytes (gateway.max_body_bytes)")]
    TooLarge(u64),
    /// The client's framing broke or the client went away mid-body.
    #[error("the request body is malformed or was cut off: {0}")]
    Broken(String),
}

impl BodyFault {
    pub(crate) fn into_refusal(self) -> Refusal {
        match self {
            BodyFault::TooLarge(limit) => Refusal::TooLarge(format!(
                "over the gateway's limit of {limit} bytes (gateway.max_body_bytes)"
            )),
            BodyFault::Broken(why) => Refusal::BadRequest(format!(
                "the request body is malformed or was cut off: {why}"
            )),
        }
    }
}

/// What the handler can ask about a body after handing it on.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    finished: AtomicBool,
    fault: Mutex<Option<BodyFault>>,
}

impl Progress {
    /// The whole body has been read from the client.
    pub(crate) fn finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// The first thing that went wrong with the body, if anything did.
    pub(crate) fn fault(&self) -> Option<BodyFault> {
        self.fault.lock().map(|f| f.clone()).unwrap_or(None)
    }

    fn record(&self, fault: BodyFault) {
        if let Ok(mut slot) = self.fault.lock() {
            slot.get_or_insert(fault);
        }
    }
}

/// The request body, capped and watched.
pub(crate) struct ClientBody {
    inner: Incoming,
    remaining: u64,
    limit: u64,
    progress: Arc<Progress>,
}

impl ClientBody {
    pub(crate) fn new(inner: Incoming, limit: u64) -> (ClientBody, Arc<Progress>) {
        let progress = Arc::new(Progress::default());
        if inner.is_end_stream() {
            progress.finished.store(true, Ordering::Release);
        }
        let body = ClientBody {
            inner,
            remaining: limit,
            limit,
            progress: progress.clone(),
        };
        (body, progress)
    }
}

impl hyper::body::Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.progress.finished.store(true, Ordering::Release);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                let fault = BodyFault::Broken(e.to_string());
                this.progress.record(fault.clone());
                Poll::Ready(Some(Err(Box::new(fault))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                match this.remaining.checked_sub(len) {
                    Some(rest) => {
                        this.remaining = rest;
                        Poll::Ready(Some(Ok(frame)))
                    }
                    None => {
                        let fault = BodyFault::TooLarge(this.limit);
                        this.progress.record(fault.clone());
                        Poll::Ready(Some(Err(Box::new(fault))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
