//! `/v1/upstreams` and `/cache/health`: the upstream token cache over HTTP,
//! for internal callers that cannot embed the library. Reading needs a token
//! with the `admin` or `upstream:read` scope; forgetting cached tokens needs
//! `admin` or `upstream:admin`. A user outside the upstream's `users` list
//! answers the same 404 as an unknown upstream, so names cannot be probed.

use axum::{extract::State, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_upstream::UpstreamError;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::http::{
    error::{ApiError, Problem},
    extract::{ApiPath, ApiQuery},
    principal::{Require, UpstreamClearer, UpstreamReader},
    problems::{NotFound, Path, Query, Scoped, Unavailable},
    state::AppState,
};

type ApiResult<T> = Result<T, ApiError>;

impl From<UpstreamError> for ApiError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::UnknownUpstream(_) | UpstreamError::UserNotAllowed(_) => {
                ApiError::not_found(
                    "upstream_not_found",
                    "no upstream with this name is configured",
                )
            }
            UpstreamError::InvalidUser(why) => {
                let mut e = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    format!("user: {why}"),
                );
                e.field = Some("user");
                e
            }
            // The login error names the failure (status, timeout), never a
            // credential or the upstream's response body.
            e @ UpstreamError::Login { .. } => {
                tracing::warn!(error = %e, "upstream login failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream_login_failed",
                    e.to_string(),
                )
            }
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// The upstream login; default: the upstream's `default_user`.
    pub user: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamToken {
    /// The upstream's token, to send to that upstream only.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// `memory`, `redis` or `login`.
    #[schema(value_type = String)]
    pub tier: Value,
}

/// The cache's reports as JSON (they always serialize; `null` otherwise).
fn as_json<T: Serialize>(value: T) -> Json<Value> {
    Json(serde_json::to_value(value).unwrap_or(Value::Null))
}

fn user_for(state: &AppState, api: &str, q: UserQuery) -> Result<String, ApiError> {
    match q.user {
        // A user name is an identifier: no bidirectional or zero-width
        // characters (control characters never get past `ApiQuery`).
        Some(u) => {
            tessera_core::text::check("user", &u, tessera_core::text::TextRule::Name)?;
            Ok(u)
        }
        None => state
            .upstream()
            .default_user(api)
            .map(str::to_string)
            .ok_or_else(|| UpstreamError::UnknownUpstream(api.to_string()).into()),
    }
}

/// Configured upstreams with what is cached for their default user (never a token).
#[utoipa::path(get, path = "/v1/upstreams", tag = "upstreams", security(("bearer" = [])),
    responses((status = 200, body = Object), Scoped, Unavailable))]
pub async fn list_upstreams(
    State(state): State<AppState>,
    _caller: Require<UpstreamReader>,
) -> ApiResult<Json<Value>> {
    let mut items = Vec::new();
    for u in state.upstream().upstreams() {
        let cached = state
            .upstream()
            .get_token_info(&u.name, &u.default_user)
            .await?;
        items.push(serde_json::json!({ "upstream": u, "cached": cached }));
    }
    Ok(Json(serde_json::json!({ "items": items })))
}

/// The upstream token for `user`: from memory, Redis, or a fresh login.
#[utoipa::path(get, path = "/v1/upstreams/{api}/token", tag = "upstreams", security(("bearer" = [])),
    params(("api" = String, Path, description = "Upstream name"), UserQuery),
    responses((status = 200, body = UpstreamToken), Scoped, Path, Query, NotFound, Unavailable, (status = 502, body = Problem, content_type = "application/problem+json", description = "`upstream_login_failed`: the upstream refused the login or did not answer")))]
pub async fn get_upstream_token(
    State(state): State<AppState>,
    _caller: Require<UpstreamReader>,
    ApiPath(api): ApiPath<String>,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<UpstreamToken>> {
    let user = user_for(&state, &api, q)?;
    let token = state.upstream().get_token(&api, &user).await?;
    Ok(Json(UpstreamToken {
        token: token.expose().to_string(),
        expires_at: token.expires_at,
        tier: serde_json::to_value(token.tier).unwrap_or(Value::Null),
    }))
}

/// What is cached for `user` (tier, expiry, remaining TTL), never the token.
#[utoipa::path(get, path = "/v1/upstreams/{api}/info", tag = "upstreams", security(("bearer" = [])),
    params(("api" = String, Path, description = "Upstream name"), UserQuery),
    responses((status = 200, body = Object), Scoped, Path, Query, NotFound, Unavailable))]
pub async fn get_upstream_info(
    State(state): State<AppState>,
    _caller: Require<UpstreamReader>,
    ApiPath(api): ApiPath<String>,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<Value>> {
    let user = user_for(&state, &api, q)?;
    let info = state.upstream().get_token_info(&api, &user).await?;
    Ok(Json(
        serde_json::json!({ "api": api, "user": user, "cached": info }),
    ))
}

/// Forget cached tokens of one upstream (one user with `?user=`), e.g.
/// after the upstream rejected one.
#[utoipa::path(delete, path = "/v1/upstreams/{api}/tokens", tag = "upstreams", security(("bearer" = [])),
    params(("api" = String, Path, description = "Upstream name"), UserQuery),
    responses((status = 200, body = Object), Scoped, Path, Query, NotFound, Unavailable))]
pub async fn delete_upstream_tokens(
    State(state): State<AppState>,
    _caller: Require<UpstreamClearer>,
    ApiPath(api): ApiPath<String>,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<Value>> {
    let cache = state.upstream();
    Ok(match q.user {
        Some(user) => as_json(cache.delete_token(&api, &user).await?),
        None => as_json(cache.clear_all_tokens(Some(&api)).await?),
    })
}

/// Forget every cached upstream token.
#[utoipa::path(delete, path = "/v1/upstreams/tokens", tag = "upstreams", security(("bearer" = [])),
    responses((status = 200, body = Object), Scoped, Unavailable))]
pub async fn clear_upstream_tokens(
    State(state): State<AppState>,
    _caller: Require<UpstreamClearer>,
) -> ApiResult<Json<Value>> {
    Ok(as_json(state.upstream().clear_all_tokens(None).await?))
}

/// Memory, Redis, and each upstream's last login outcome.
#[utoipa::path(get, path = "/cache/health", tag = "upstreams", security(("bearer" = [])),
    responses((status = 200, body = Object), Scoped, Unavailable))]
pub async fn cache_health(
    State(state): State<AppState>,
    _caller: Require<UpstreamReader>,
) -> ApiResult<Json<Value>> {
    Ok(as_json(state.upstream().health_check().await))
}

/// The upstream-cache routes, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_upstreams))
        .routes(routes!(get_upstream_token))
        .routes(routes!(get_upstream_info))
        .routes(routes!(delete_upstream_tokens))
        .routes(routes!(clear_upstream_tokens))
        .routes(routes!(cache_health))
}
