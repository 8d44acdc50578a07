//! `GET /csrf`: the token a browser front end of an allowed origin sends
//! back on the routes the CSRF guard protects (`http::csrf`).

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::http::{csrf, error::ApiError, problems::CsrfFailed, state::AppState};

/// A CSRF token for the requesting origin.
#[derive(Debug, Serialize, ToSchema)]
pub struct CsrfToken {
    /// Send it back in `X-CSRF-Token` (or the `csrf_token` form field) from
    /// the same origin; it is good for any number of requests until it expires.
    pub token: String,
    /// Seconds until it expires; fetch a new one before then, or after a
    /// `403 csrf_failed`.
    pub expires_in: u64,
}

/// A CSRF token for the page's origin (its `Origin` header, which must be
/// in `TESSERA_ALLOWED_ORIGINS`; browsers send it on a cross-origin
/// `fetch`). The token is bound to that origin and expires; nothing is
/// stored and no cookie is set.
#[utoipa::path(get, path = "/csrf", tag = "browser",
    responses(
        (status = 200, body = CsrfToken, description = "A token for the requesting origin",
            headers(("Cache-Control" = String, description = "`no-store`"))),
        CsrfFailed
    ))]
pub async fn csrf_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let minted = csrf::issue(&state, &headers)?;
    let body = CsrfToken {
        token: minted.token,
        expires_in: minted.expires_in,
    };
    let no_store = [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    Ok((no_store, Json(body)).into_response())
}

/// The same token by `POST`, for a page served from an allowed origin that
/// is Tessera's own (or shares its origin through a proxy): browsers send
/// `Origin` on every `POST`, but not on a same-origin `GET`.
#[utoipa::path(post, path = "/csrf", tag = "browser",
    responses(
        (status = 200, body = CsrfToken, description = "A token for the requesting origin",
            headers(("Cache-Control" = String, description = "`no-store`"))),
        CsrfFailed
    ))]
pub async fn csrf_token_by_post(
    state: State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    csrf_token(state, headers).await
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(csrf_token, csrf_token_by_post))
}
