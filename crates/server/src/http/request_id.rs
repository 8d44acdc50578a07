//! Per-request plumbing in one middleware: the request id (taken from
//! `X-Request-Id` when it is sane, generated otherwise, echoed in the response
//! and in problem bodies), the tracing span, and the latency histogram.

use std::time::Instant;

use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{header, HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

use super::{error::Problem, state::AppState};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Accept a caller's id only if it is short and plain, so it is safe to log
/// and echo; otherwise replace it.
fn usable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| usable(v))
        .map_or_else(tessera_core::ids::new_id, str::to_string);
    req.extensions_mut().insert(RequestId(id.clone()));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().clone();
    // Clients choose the method; only standard ones become metric labels, so
    // made-up methods cannot blow up the series count.
    let method_label = match method.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => method.as_str(),
        _ => "OTHER",
    };
    // The span is at ERROR level only so that no level filter drops it: a
    // warning logged with `TESSERA_LOG=warn` still carries its request id.
    let span = tracing::error_span!("request", request_id = %id, method = %method, route = %route);
    let mut res = next.run(req).instrument(span.clone()).await;

    if let Some(mut problem) = res.extensions_mut().remove::<Problem>() {
        problem.request_id = Some(id.clone());
        let body = serde_json::to_vec(&problem).expect("a problem always serializes");
        res.headers_mut().remove(header::CONTENT_LENGTH);
        *res.body_mut() = Body::from(body);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    let status = res.status();
    let elapsed = started.elapsed();
    state
        .metrics()
        .api_latency
        .with_label_values(&[method_label, &route, status.as_str()])
        .observe(elapsed.as_secs_f64());
    let _entered = span.enter();
    if status.is_server_error() {
        tracing::warn!(
            status = status.as_u16(),
            elapsed_ms = elapsed.as_millis() as u64,
            "request failed"
        );
    } else if status.is_client_error() {
        tracing::info!(
            status = status.as_u16(),
            elapsed_ms = elapsed.as_millis() as u64,
            "request rejected"
        );
    } else {
        tracing::debug!(
            status = status.as_u16(),
            elapsed_ms = elapsed.as_millis() as u64,
            "request served"
        );
    }
    res
}
