//! Limits on the request itself, as one middleware: the URI length and the
//! size of the headers (`414` and `431` problem+json; hyper's own, larger
//! limits stay as a backstop but answer without a body), and the deadline
//! for the request body (`408` problem+json, then the connection closes), so
//! a client announcing `Content-Length: 1000` and sending five bytes does not
//! hold a connection and a handler.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering::Relaxed},
        Arc,
    },
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::Request,
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::error::ApiError;

/// Largest request body we read: bigger bodies get 413 before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest URI we serve (path and query; a full URI when one is sent).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest total of header names and values (counting `: ` and CRLF).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 100;

/// When the current request's body must be complete; put in the request's
/// extensions by the server, which knows when its headers arrived. Without
/// it (a router used directly, in tests) bodies have no deadline.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Instant);

/// The middleware; see the module documentation.
pub async fn layer(req: Request, next: Next) -> Response {
    if let Some(problem) = head_problem(&req) {
        return problem.into_response();
    }
    let deadline = req.extensions().get::<BodyDeadline>().copied();
    let Some(BodyDeadline(at)) = deadline.filter(|_| !req.body().is_end_stream()) else {
        return next.run(req).await;
    };
    let expired = Arc::new(AtomicBool::new(false));
    let flag = expired.clone();
    let req = req.map(|body| Body::new(DeadlineBody::new(body, at, flag)));
    let res = next.run(req).await;
    if expired.load(Relaxed) {
        // Whatever the handler made of the failed read, the answer is 408;
        // the rest of the body may still be coming, so the connection
        // cannot be reused.
        let mut res = ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body did not arrive in time",
        )
        .into_response();
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return res;
    }
    res
}

fn head_problem(req: &Request) -> Option<ApiError> {
    let uri = req.uri();
    let uri_len = uri.path_and_query().map_or(0, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, str::len);
    if uri_len > MAX_URI_BYTES {
        return Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request URI is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let headers = req.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request headers are larger than {MAX_HEADER_BYTES} bytes \
                 or more than {MAX_HEADERS} fields"
            ),
        ));
    }
    None
}

/// The error a body read gets once its deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

/// A request body that fails once `deadline` passes. The timer is made on
/// the first read that has to wait, so a body read at once costs none.
struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn new(inner: Body, deadline: Instant, expired: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            deadline,
            sleep: None,
            expired,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
