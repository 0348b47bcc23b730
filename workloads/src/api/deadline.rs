//! The request deadline (`api.request_timeout_ms`), answered by whose fault it was missed.
//!
//! A request whose body had arrived but whose answer had not is the server's failure: 503
//! ([`ApiError::Timeout`]). A client that had not finished sending its body by then (a stalled
//! or trickling upload, a `Content-Length` promising more than comes) gets 408
//! ([`ApiError::BodyTimeout`]): its own doing, which must not count against the server (5xx rate
//! alerts) any more than other malformed input does.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::Stream;

use super::state::AppState;
use crate::http::error::ApiError;

pub async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.limits().request_timeout;
    let (parts, body) = request.into_parts();
    let received = Arc::new(AtomicBool::new(body.is_end_stream()));
    let body = Body::from_stream(Tracked { inner: body.into_data_stream(), received: Arc::clone(&received) });
    match tokio::time::timeout(limit, next.run(Request::from_parts(parts, body))).await {
        Ok(response) => response,
        Err(_elapsed) => {
            let after_ms = limit.as_millis() as u64;
            if received.load(Ordering::Acquire) {
                ApiError::Timeout { after_ms }.into_response()
            } else {
                ApiError::BodyTimeout { after_ms }.into_response()
            }
        }
    }
}

/// The request body, noting when its end has been read.
struct Tracked {
    inner: BodyDataStream,
    received: Arc<AtomicBool>,
}

impl Stream for Tracked {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(None) = next {
            self.received.store(true, Ordering::Release);
        }
        next
    }
}
