//! The guard in front of the routes browser front ends call: a browser
//! request must come from an allowed origin and carry a CSRF token made for
//! that origin (header `X-CSRF-Token`, or the `csrf_token` field of a
//! form-encoded body); anything else is `403 csrf_failed`. Requests that are
//! not from a browser, and requests whose bearer token authenticates (a
//! browser never sends one on its own), pass untouched.

use axum::{
    body::{Body, Bytes},
    extract::{FromRequestParts, Request},
    http::{header, request::Parts, HeaderMap, HeaderName, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::token;
use crate::{
    config::normalize_origin,
    http::{
        client::RequestAudit,
        error::ApiError,
        extract::payload_too_large,
        limits::MAX_BODY_BYTES,
        principal::{bearer, Principal},
        state::AppState,
    },
};

/// The header a browser front end sends the token in.
pub static X_CSRF_TOKEN: HeaderName = HeaderName::from_static("x-csrf-token");
/// The form field it may send it in instead.
pub const FORM_FIELD: &str = "csrf_token";

/// Why the guard refused a request: the metric's `reason` and the detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// No `Origin`, `null`, or one not in `TESSERA_ALLOWED_ORIGINS`.
    Origin,
    /// No token in the header or the form.
    Missing,
    /// A token that is not for this origin, has expired or was never made.
    Invalid,
}

impl Refusal {
    pub(super) fn reason(self) -> &'static str {
        match self {
            Self::Origin => "origin",
            Self::Missing => "missing",
            Self::Invalid => "invalid",
        }
    }

    fn detail(self) -> &'static str {
        match self {
            Self::Origin => "a browser request must come from an origin in TESSERA_ALLOWED_ORIGINS",
            Self::Missing => {
                "a browser request needs a CSRF token from GET /csrf in X-CSRF-Token \
                 (or the csrf_token form field)"
            }
            Self::Invalid => {
                "the CSRF token is not valid for this origin or has expired; \
                 get a new one from GET /csrf"
            }
        }
    }
}

/// `403 csrf_failed`, counted by reason.
pub(super) fn refusal(state: &AppState, why: Refusal) -> ApiError {
    state
        .metrics()
        .csrf_failures
        .with_label_values(&[why.reason()])
        .inc();
    ApiError::new(StatusCode::FORBIDDEN, "csrf_failed", why.detail())
}

fn refuse(state: &AppState, why: Refusal) -> Response {
    refusal(state, why).into_response()
}

/// A browser request: one with an `Origin` (`null` included), a
/// `Sec-Fetch-Site` other than `same-origin` or `none`, or a cookie.
pub fn is_browser(headers: &HeaderMap) -> bool {
    let cross_site = headers.get("sec-fetch-site").is_some_and(|v| {
        let v = v.as_bytes();
        !v.eq_ignore_ascii_case(b"same-origin") && !v.eq_ignore_ascii_case(b"none")
    });
    headers.contains_key(header::ORIGIN) || cross_site || headers.contains_key(header::COOKIE)
}

/// The request's `Origin`, normalised, when it is an allowed one.
pub(super) fn allowed_origin(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::ORIGIN)?.to_str().ok()?;
    let origin = normalize_origin(raw).ok()?;
    state.browser().allows(&origin).then_some(origin)
}

/// The middleware; see the module documentation. The application's state
/// comes from the request's extensions (the router puts it there), so the
/// guard can be layered on a resource's routes before the state exists:
/// see [`super::protect`].
pub async fn require_csrf(req: Request, next: Next) -> Response {
    let Some(state) = req.extensions().get::<AppState>().cloned() else {
        tracing::error!("the CSRF guard runs without the application state");
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred; it has been logged",
        )
        .into_response();
    };
    if !is_browser(req.headers()) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    match bearer_authenticates(&state, &mut parts).await {
        Ok(true) => return next.run(Request::from_parts(parts, body)).await,
        Ok(false) => {}
        Err(e) => return e.into_response(),
    }
    let Some(origin) = allowed_origin(&state, &parts.headers) else {
        return refuse(&state, Refusal::Origin);
    };
    let (body, presented) = match presented_token(&parts.headers, body).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    match presented {
        None => refuse(&state, Refusal::Missing),
        Some(t) if !token::verify(state.csrf_key(), &origin, &t, token::now()) => {
            refuse(&state, Refusal::Invalid)
        }
        Some(_) => next.run(Request::from_parts(parts, body)).await,
    }
}

/// Whether the request's bearer token authenticates (an admin API token,
/// a person's access token): such a request is exempt. No bearer, or one
/// that does not authenticate, is not; a database that cannot answer is a
/// 503 rather than a guess.
async fn bearer_authenticates(state: &AppState, parts: &mut Parts) -> Result<bool, ApiError> {
    if bearer(&parts.headers).is_none() {
        return Ok(false);
    }
    let Ok(audit) = RequestAudit::from_request_parts(parts, state).await;
    // Observe: being exempt from CSRF must not use up a token's credits,
    // rate or first device.
    let observe = crate::service::tokens::Controls::Observe;
    match Principal::authenticate_with(state, &parts.headers, &audit, observe).await {
        Ok(_) => Ok(true),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => Ok(false),
        Err(e) => Err(e),
    }
}

/// The token the request presents: `X-CSRF-Token`, else the `csrf_token`
/// field of a form-encoded body. The body is then read (up to the API's
/// body limit) and handed back as the same bytes, for the handler.
async fn presented_token(
    headers: &HeaderMap,
    body: Body,
) -> Result<(Body, Option<String>), ApiError> {
    if let Some(v) = headers.get(&X_CSRF_TOKEN) {
        // A header that is not text is a token that does not verify.
        let token = v.to_str().unwrap_or_default().to_string();
        return Ok((body, Some(token)));
    }
    if !is_form(headers) {
        return Ok((body, None));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| payload_too_large())?;
    let token = form_field(&bytes);
    Ok((Body::from(bytes), token))
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The first `csrf_token` field of a form-encoded body.
fn form_field(body: &Bytes) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(name, _)| name == FORM_FIELD)
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn browser_requests_are_told_by_origin_fetch_metadata_or_cookies() {
        for browser in [
            &[("origin", "https://app.example.com")][..],
            &[("origin", "null")],
            &[("sec-fetch-site", "cross-site")],
            &[("sec-fetch-site", "same-site")],
            &[("sec-fetch-site", "Cross-Site")],
            &[("cookie", "a=b")],
            &[("sec-fetch-site", "same-origin"), ("cookie", "a=b")],
        ] {
            assert!(is_browser(&headers(browser)), "{browser:?}");
        }
        for other in [
            &[][..],
            &[("sec-fetch-site", "same-origin")],
            &[("sec-fetch-site", "none")],
            &[("authorization", "Bearer x"), ("user-agent", "curl/8")],
            &[("referer", "https://app.example.com/")],
        ] {
            assert!(!is_browser(&headers(other)), "{other:?}");
        }
    }

    #[tokio::test]
    async fn the_form_field_is_read_and_the_same_bytes_handed_on() {
        let body = "email=a%40example.com&csrf_token=123.abc%2B&csrf_token=second";
        let form = headers(&[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )]);
        let (rest, token) = presented_token(&form, Body::from(body)).await.unwrap();
        assert_eq!(token.as_deref(), Some("123.abc+"));
        let handed_on = axum::body::to_bytes(rest, usize::MAX).await.unwrap();
        assert_eq!(handed_on, body.as_bytes());
        // The header wins, and the body is not read.
        let both = headers(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-csrf-token", "from-header"),
        ]);
        let (_, token) = presented_token(&both, Body::from(body)).await.unwrap();
        assert_eq!(token.as_deref(), Some("from-header"));
        // JSON bodies are not searched.
        let json = headers(&[("content-type", "application/json")]);
        let body = r#"{"csrf_token": "x"}"#;
        let (rest, token) = presented_token(&json, Body::from(body)).await.unwrap();
        assert_eq!(token, None);
        let handed_on = axum::body::to_bytes(rest, usize::MAX).await.unwrap();
        assert_eq!(handed_on, body.as_bytes());
    }

    #[tokio::test]
    async fn a_form_over_the_body_limit_is_413() {
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        let big = format!("csrf_token=x&pad={}", "a".repeat(MAX_BODY_BYTES));
        let e = presented_token(&form, Body::from(big)).await.unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(e.code, "payload_too_large");
    }
}
