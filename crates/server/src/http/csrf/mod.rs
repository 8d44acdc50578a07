//! CSRF protection and CORS for browser front ends, which call Tessera from
//! another site. Browsers there neither set nor send `SameSite=Strict`
//! cookies and often block third-party cookies, so nothing here depends on
//! a cookie: a page of an allowed origin fetches a token from `GET /csrf`
//! (through CORS), and sends it back on the routes [`protect`] guards. The
//! token (`token`) is an HMAC over the origin and an expiry, so nothing is
//! stored; the guard (`guard`) tells browser requests from others and checks
//! them; `cors` answers the browsers of the same allowed origins.

mod cors;
mod guard;
mod token;

use axum::http::HeaderMap;
use utoipa::{
    openapi::{path::Operation, RefOr},
    IntoResponses,
};
use utoipa_axum::router::OpenApiRouter;

pub use self::{
    cors::{cors_layer, PREFLIGHT_MAX_AGE},
    guard::{is_browser, require_csrf, FORM_FIELD, X_CSRF_TOKEN},
    token::Minted,
};
use super::{
    error::ApiError,
    problems::{CsrfFailed, CSRF_FAILED},
    state::AppState,
};

/// Puts every route of `router` behind [`require_csrf`], and documents its
/// `403 csrf_failed` on each of their operations (beside a 403 they
/// already document). Call it on a resource's routes where the router
/// merges them: `.merge(csrf::protect(recovery::routes()))`.
pub fn protect(mut router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    for item in router.get_openapi_mut().paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            document_refusal(operation);
        }
    }
    router.route_layer(axum::middleware::from_fn(require_csrf))
}

fn document_refusal(operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    match responses.get_mut("403") {
        Some(RefOr::T(existing)) => {
            existing.description = format!("{}; {CSRF_FAILED}", existing.description);
        }
        _ => responses.extend(CsrfFailed::responses()),
    }
}

/// A token for the request's origin (`GET /csrf`), which must be allowed;
/// otherwise the `403 csrf_failed` to answer.
pub fn issue(state: &AppState, headers: &HeaderMap) -> Result<Minted, ApiError> {
    let Some(origin) = guard::allowed_origin(state, headers) else {
        return Err(guard::refusal(state, guard::Refusal::Origin));
    };
    let ttl = state.browser().csrf_token_ttl;
    Ok(token::mint(state.csrf_key(), &origin, ttl, token::now()))
}
