//! Login, its second-factor step, refresh (ours and OAuth2's
//! `grant_type=refresh_token`), logout, and the JWKS resource servers use to
//! check access tokens.

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth_dto::{
    LoginMfaRequest, LoginRequestBody, LoginResponse, LogoutRequest, OAuthError,
    OAuthTokenResponse, RefreshRequest, TokenForm,
};
use crate::{
    http::{
        client::RequestAudit,
        csrf,
        error::{ApiError, Problem},
        extract::{read_body, ApiJson, OptionalJson},
        principal::bearer,
        problems::{JsonBody, RateLimited, Unavailable},
        state::AppState,
    },
    service::sessions::{IssuedSession, LoginRequest, SecondFactor},
};
use tessera_core::{audit::Actor, DomainError};

type ApiResult<T> = Result<T, ApiError>;

fn scopes(scope: Option<String>) -> Option<Vec<String>> {
    scope.map(|s| s.split_whitespace().map(str::to_string).collect())
}

/// Log in with e-mail and password. Unknown e-mail, wrong password and a
/// disabled account all answer the same `401 invalid_credentials`.
#[utoipa::path(post, path = "/v1/auth/login", tag = "sessions",
    request_body = LoginRequestBody,
    responses(
        (status = 200, body = LoginResponse,
            description = "A session, or `mfa_required` with a challenge for `/v1/auth/login/mfa`"),
        JsonBody, RateLimited, Unavailable,
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "`invalid_credentials`"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "`email_unverified`: the password is right, the e-mail is not verified yet")
    ))]
pub async fn login(
    State(state): State<AppState>,
    audit: RequestAudit,
    ApiJson(body): ApiJson<LoginRequestBody>,
) -> ApiResult<Json<LoginResponse>> {
    let request = LoginRequest {
        email: body.email,
        password: body.password,
        client_id: tessera_core::session::validate_client_id(body.client_id)?,
        scope: scopes(body.scope),
        client_ip: audit.client.ip,
    };
    let outcome = state.sessions().login(request, audit.context()).await?;
    Ok(Json(outcome.into()))
}

/// Complete a login with the second factor (TOTP code or recovery code).
#[utoipa::path(post, path = "/v1/auth/login/mfa", tag = "sessions",
    request_body = LoginMfaRequest,
    responses(
        (status = 200, body = IssuedSession), JsonBody, RateLimited, Unavailable,
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "`invalid_code`; `invalid_challenge`: unknown, expired or completed (log in again)")
    ))]
pub async fn login_mfa(
    State(state): State<AppState>,
    audit: RequestAudit,
    ApiJson(body): ApiJson<LoginMfaRequest>,
) -> ApiResult<Json<IssuedSession>> {
    let (challenge_id, factor) = match body {
        LoginMfaRequest::Totp(s) => (s.challenge_id, SecondFactor::Totp(s.code)),
        LoginMfaRequest::Recovery(s) => {
            (s.challenge_id, SecondFactor::RecoveryCode(s.recovery_code))
        }
    };
    let issued = state
        .sessions()
        .login_mfa(&challenge_id, factor, audit.client.ip, audit.context())
        .await?;
    Ok(Json(issued))
}

/// Trade a refresh token for a new access token and a new refresh token.
/// A used refresh token revokes its whole family and session.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "sessions",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = IssuedSession), JsonBody, RateLimited, Unavailable,
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "`invalid_grant`: unknown, expired, revoked or already used")
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    audit: RequestAudit,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Json<IssuedSession>> {
    let issued = state
        .sessions()
        .refresh(
            body.refresh_token.expose(),
            body.client_id.as_deref(),
            audit.client.ip,
            audit.context(),
        )
        .await?;
    Ok(Json(issued))
}

/// End the session of the bearer access token, or of `refresh_token`.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "sessions",
    request_body(content = Option<LogoutRequest>),
    responses(
        (status = 204, description = "The session is ended"), JsonBody, Unavailable,
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "`invalid_grant`: no token, or one that names no session")
    ))]
pub async fn logout(
    State(state): State<AppState>,
    audit: RequestAudit,
    headers: axum::http::HeaderMap,
    OptionalJson(body): OptionalJson<LogoutRequest>,
) -> ApiResult<StatusCode> {
    let token = match (&body.refresh_token, bearer(&headers)) {
        (Some(t), _) => t.expose().to_string(),
        (None, Some(b)) => b.to_string(),
        (None, None) => return Err(DomainError::InvalidGrant.into()),
    };
    state
        .sessions()
        .logout(&token, &Actor::Anonymous, audit.context())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn oauth_error(status: StatusCode, error: &'static str) -> Response {
    (
        status,
        Json(OAuthError {
            error,
            error_description: None,
        }),
    )
        .into_response()
}

/// The OAuth2 token endpoint (RFC 6749 §6), `grant_type=refresh_token`
/// only, form-encoded, with OAuth2 error bodies.
#[utoipa::path(post, path = "/oauth2/token", tag = "sessions",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = OAuthTokenResponse),
        (status = 400, body = OAuthError, description = "`invalid_request`, `invalid_grant` or `unsupported_grant_type`"),
        RateLimited, Unavailable
    ))]
pub async fn oauth_token(
    State(state): State<AppState>,
    audit: RequestAudit,
    req: Request,
) -> Response {
    let Ok((_, body)) = read_body(req, &state).await else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(&body) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    match form.grant_type.as_deref() {
        Some("refresh_token") => {}
        Some(_) => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
    }
    let Some(token) = form.refresh_token else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let result = state
        .sessions()
        .refresh(
            token.expose(),
            form.client_id.as_deref(),
            audit.client.ip,
            audit.context(),
        )
        .await;
    match result {
        Ok(issued) => Json(OAuthTokenResponse::from(issued)).into_response(),
        Err(e) if matches!(e.as_domain(), Some(DomainError::InvalidGrant)) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant")
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The public keys that sign access tokens (RFC 7517). Cacheable for the
/// configured max-age; a new key is published here before it signs.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "sessions",
    responses((status = 200, description = "The JWKS", content_type = "application/json", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let keys = state.keys();
    let cache = format!("public, max-age={}", keys.jwks_max_age().as_secs());
    let mut res = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        keys.jwks_json(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&cache) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}

pub fn routes() -> OpenApiRouter<AppState> {
    // Browser front ends sign in from their own site: both steps of a
    // login need an allowed origin and a CSRF token from a browser. The
    // second step too, so a page cannot use visitors' browsers to try
    // codes against a challenge, and a front end follows one rule.
    let sign_in = OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(login_mfa));
    OpenApiRouter::new()
        .merge(csrf::protect(sign_in))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(oauth_token))
        .routes(routes!(jwks))
}
