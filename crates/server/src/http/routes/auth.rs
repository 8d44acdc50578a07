//! Login, its second-factor step, refresh (ours and OAuth2's
//! `grant_type=refresh_token`), logout, and the JWKS resource servers use to
//! check access tokens.

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth_dto::{
    DeviceIdHeader, LoginMfaRequest, LoginRequestBody, LoginResponse, LogoutRequest, OAuthError,
    OAuthTokenResponse, PresentedDeviceHeader, RefreshRequest, TokenForm,
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

/// The header a client names its device with. A request that opens a
/// session (login, its second-factor step) binds the session to it (as
/// `TESSERA_SESSION_DEVICE_BINDING` says); a refresh of a bound session
/// must send the same one.
const DEVICE_HEADER: &str = "x-device-id";

/// The device id of a request that opens a session: absent, or a
/// well-formed id (1-200 characters, one line); anything else is a `422`
/// naming the header, so a client never gets an unbound session by mistake.
fn opening_device(headers: &HeaderMap) -> Result<Option<String>, DomainError> {
    let Some(value) = headers.get(DEVICE_HEADER) else {
        return Ok(None);
    };
    let invalid = || DomainError::invalid("X-Device-Id", "must be 1-200 characters on one line");
    let id = value.to_str().map_err(|_| invalid())?;
    tessera_core::token_controls::validate_device_id(id).map_err(|_| invalid())?;
    Ok(Some(id.to_string()))
}

/// The device id of a refresh: a malformed one is as if absent (it can
/// match no binding, and an unbound session refreshes without one).
fn refresh_device(headers: &HeaderMap) -> Option<String> {
    opening_device(headers).ok().flatten()
}

/// Log in with e-mail and password. Unknown e-mail, wrong password and a
/// disabled account all answer the same `401 invalid_credentials`.
#[utoipa::path(post, path = "/v1/auth/login", tag = "sessions",
    request_body = LoginRequestBody,
    params(DeviceIdHeader),
    responses(
        (status = 200, body = LoginResponse,
            description = "A session, or `mfa_required` with a challenge for `/v1/auth/login/mfa`"),
        JsonBody, RateLimited, Unavailable,
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "`invalid_credentials`"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "`email_unverified`: the password is right, the e-mail is not verified yet; \
                `device_required`: sessions are device-bound here and no `X-Device-Id` was sent")
    ))]
pub async fn login(
    State(state): State<AppState>,
    audit: RequestAudit,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequestBody>,
) -> ApiResult<Json<LoginResponse>> {
    let request = LoginRequest {
        device_id: opening_device(&headers)?,
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
    params(DeviceIdHeader),
    responses(
        (status = 200, body = IssuedSession), JsonBody, RateLimited, Unavailable,
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "`invalid_code`; `invalid_challenge`: unknown, expired or completed (log in again)"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "`device_required`: sessions are device-bound here and no `X-Device-Id` was sent")
    ))]
pub async fn login_mfa(
    State(state): State<AppState>,
    audit: RequestAudit,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginMfaRequest>,
) -> ApiResult<Json<IssuedSession>> {
    let device_id = opening_device(&headers)?;
    let (challenge_id, factor) = match body {
        LoginMfaRequest::Totp(s) => (s.challenge_id, SecondFactor::Totp(s.code)),
        LoginMfaRequest::Recovery(s) => {
            (s.challenge_id, SecondFactor::RecoveryCode(s.recovery_code))
        }
    };
    let issued = state
        .sessions()
        .login_mfa(
            &challenge_id,
            factor,
            audit.client.ip,
            device_id,
            audit.context(),
        )
        .await?;
    Ok(Json(issued))
}

/// Trade a refresh token for a new access token and a new refresh token.
/// A used refresh token revokes its whole family and session. A
/// device-bound session refreshes only with the `X-Device-Id` it was
/// opened with; from another device (or without one) the answer is `403
/// device_mismatch` and nothing is used or revoked.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "sessions",
    request_body = RefreshRequest,
    params(PresentedDeviceHeader),
    responses(
        (status = 200, body = IssuedSession), JsonBody, RateLimited, Unavailable,
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "`invalid_grant`: unknown, expired, revoked or already used"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "`device_mismatch`: the session is bound to another device; \
                nothing was used or revoked")
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    audit: RequestAudit,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Json<IssuedSession>> {
    let device_id = refresh_device(&headers);
    let issued = state
        .sessions()
        .refresh(
            body.refresh_token.expose(),
            body.client_id.as_deref(),
            device_id.as_deref(),
            audit.client.ip,
            audit.context(),
        )
        .await?;
    Ok(Json(issued))
}

/// End the session of the bearer access token, or of `refresh_token`.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "sessions",
    params(PresentedDeviceHeader),
    request_body(content = Option<LogoutRequest>),
    responses(
        (status = 204, description = "The session is ended"), JsonBody, Unavailable,
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "`invalid_grant`: no token, or one that names no session"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "`device_mismatch`: the refresh token's session is bound to another device (send its X-Device-Id); nothing is ended")
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
        .logout(
            &token,
            refresh_device(&headers).as_deref(),
            &Actor::Anonymous,
            audit.context(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn oauth_error(
    status: StatusCode,
    error: &'static str,
    error_description: Option<&'static str>,
) -> Response {
    (
        status,
        Json(OAuthError {
            error,
            error_description,
        }),
    )
        .into_response()
}

/// The OAuth2 token endpoint (RFC 6749 §6), `grant_type=refresh_token`
/// only, form-encoded, with OAuth2 error bodies. A device-bound session's
/// refresh from another device is `invalid_grant` with the description
/// `device_mismatch`; nothing is used or revoked.
#[utoipa::path(post, path = "/oauth2/token", tag = "sessions",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    params(PresentedDeviceHeader),
    responses(
        (status = 200, body = OAuthTokenResponse),
        (status = 400, body = OAuthError, description = "`invalid_request`, `invalid_grant` or \
            `unsupported_grant_type`; `invalid_grant` with `error_description` `device_mismatch`: \
            the session is bound to another device, and nothing was used or revoked"),
        RateLimited, Unavailable
    ))]
pub async fn oauth_token(
    State(state): State<AppState>,
    audit: RequestAudit,
    req: Request,
) -> Response {
    let device_id = refresh_device(req.headers());
    let Ok((_, body)) = read_body(req, &state).await else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", None);
    };
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(&body) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", None);
    };
    match form.grant_type.as_deref() {
        Some("refresh_token") => {}
        Some(_) => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", None),
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", None),
    }
    let Some(token) = form.refresh_token else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", None);
    };
    let result = state
        .sessions()
        .refresh(
            token.expose(),
            form.client_id.as_deref(),
            device_id.as_deref(),
            audit.client.ip,
            audit.context(),
        )
        .await;
    match result {
        Ok(issued) => Json(OAuthTokenResponse::from(issued)).into_response(),
        Err(e) if matches!(e.as_domain(), Some(DomainError::InvalidGrant)) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", None)
        }
        Err(e) if matches!(e.as_domain(), Some(DomainError::DeviceMismatch)) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            Some("device_mismatch"),
        ),
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
