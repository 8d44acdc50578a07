//! Password reset and e-mail verification, at the paths the front ends of
//! the service Tessera replaces already call: `POST /recover`,
//! `/recover/confirm`, `/verify-email`, `/verify-email/confirm`. Bodies are
//! JSON or plain HTML forms.

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    Json,
};
use serde::{Deserialize, Serialize};
use tessera_core::{user_link::LinkKind, SecretString};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    http::{
        client::RequestAudit,
        error::{ApiError, Problem},
        form::JsonOrForm,
        problems::{JsonOrFormBody, LinkTokenBody, RateLimited, Unavailable},
        state::AppState,
    },
    service::links::{ConfirmReset, LinkRequest},
};

type ApiResult<T> = Result<T, ApiError>;

/// `{email}`: where to send a link, if an account has this address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequestBody {
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]+@[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*\.[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub email: String,
    /// For HTML forms posted by a browser: the token from `GET /csrf` (the
    /// `X-CSRF-Token` header works too). Read by the CSRF check only.
    #[schema(value_type = Option<String>)]
    pub csrf_token: Option<SecretString>,
}

/// `{token, password}`: the token from the link, and the new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmResetBody {
    /// `<id>.<secret>`, the `token` parameter of the link.
    #[schema(value_type = String, max_length = 200)]
    pub token: SecretString,
    /// The new password; it must meet the password policy.
    #[schema(value_type = String, max_length = 1024)]
    pub password: SecretString,
    #[schema(value_type = Option<String>)]
    pub csrf_token: Option<SecretString>,
}

/// `{token}`: the token from the verification link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmVerificationBody {
    #[schema(value_type = String, max_length = 200)]
    pub token: SecretString,
    #[schema(value_type = Option<String>)]
    pub csrf_token: Option<SecretString>,
}

/// `{"status": "accepted"}` or `{"status": "ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkStatus {
    pub status: &'static str,
}

fn accept_language(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        // A language list is short; a longer header is ignored, not parsed.
        .filter(|v| v.len() <= 256)
        .map(str::to_string)
}

async fn request_link(
    state: &AppState,
    kind: LinkKind,
    audit: &RequestAudit,
    headers: &HeaderMap,
    body: LinkRequestBody,
) -> ApiResult<(StatusCode, Json<LinkStatus>)> {
    let request = LinkRequest {
        email: body.email,
        client_ip: audit.client.ip,
        accept_language: accept_language(headers),
    };
    state
        .links()
        .request(kind, request, audit.context())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(LinkStatus { status: "accepted" }),
    ))
}

/// Ask for a password-reset link. Always `202` for a well-formed address,
/// whether or not it has an account: the link is mailed only to an
/// account that may sign in, and at most 3 times an hour per address.
#[utoipa::path(post, path = "/recover", tag = "recovery",
    request_body(content(
        (LinkRequestBody = "application/json"),
        (LinkRequestBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 202, body = LinkStatus, description = "`{\"status\": \"accepted\"}`, for every address"),
        JsonOrFormBody, RateLimited, Unavailable
    ))]
pub async fn recover(
    State(state): State<AppState>,
    audit: RequestAudit,
    headers: HeaderMap,
    JsonOrForm(body): JsonOrForm<LinkRequestBody>,
) -> ApiResult<(StatusCode, Json<LinkStatus>)> {
    request_link(&state, LinkKind::PasswordReset, &audit, &headers, body).await
}

/// Set a new password with the token of a reset link. Every session and
/// refresh token of the user is revoked, second factors stay, and the user
/// is told by mail that the password changed.
#[utoipa::path(post, path = "/recover/confirm", tag = "recovery",
    request_body(content(
        (ConfirmResetBody = "application/json"),
        (ConfirmResetBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, body = LinkStatus, description = "`{\"status\": \"ok\"}`: the password is changed"),
        LinkTokenBody, RateLimited, Unavailable,
        (status = 410, body = Problem, content_type = "application/problem+json",
            description = "`token_expired`: the link is right but expired; ask for a new one")
    ))]
pub async fn recover_confirm(
    State(state): State<AppState>,
    audit: RequestAudit,
    headers: HeaderMap,
    JsonOrForm(body): JsonOrForm<ConfirmResetBody>,
) -> ApiResult<Json<LinkStatus>> {
    let request = ConfirmReset {
        token: body.token,
        password: body.password,
        client_ip: audit.client.ip,
        accept_language: accept_language(&headers),
    };
    state
        .links()
        .confirm_reset(request, audit.context())
        .await?;
    Ok(Json(LinkStatus { status: "ok" }))
}

/// Ask for an e-mail verification link. Always `202` for a well-formed
/// address: the link is mailed only to an account whose address is not
/// verified yet.
#[utoipa::path(post, path = "/verify-email", tag = "recovery",
    request_body(content(
        (LinkRequestBody = "application/json"),
        (LinkRequestBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 202, body = LinkStatus, description = "`{\"status\": \"accepted\"}`, for every address"),
        JsonOrFormBody, RateLimited, Unavailable
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    audit: RequestAudit,
    headers: HeaderMap,
    JsonOrForm(body): JsonOrForm<LinkRequestBody>,
) -> ApiResult<(StatusCode, Json<LinkStatus>)> {
    request_link(&state, LinkKind::EmailVerification, &audit, &headers, body).await
}

/// Mark the address verified with the token of a verification link.
#[utoipa::path(post, path = "/verify-email/confirm", tag = "recovery",
    request_body(content(
        (ConfirmVerificationBody = "application/json"),
        (ConfirmVerificationBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, body = LinkStatus, description = "`{\"status\": \"ok\"}`: the address is verified"),
        LinkTokenBody, RateLimited, Unavailable,
        (status = 410, body = Problem, content_type = "application/problem+json",
            description = "`token_expired`: the link is right but expired; ask for a new one")
    ))]
pub async fn verify_email_confirm(
    State(state): State<AppState>,
    audit: RequestAudit,
    JsonOrForm(body): JsonOrForm<ConfirmVerificationBody>,
) -> ApiResult<Json<LinkStatus>> {
    state
        .links()
        .confirm_verification(&body.token, audit.client.ip, audit.context())
        .await?;
    Ok(Json(LinkStatus { status: "ok" }))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(recover))
        .routes(routes!(recover_confirm))
        .routes(routes!(verify_email))
        .routes(routes!(verify_email_confirm))
}
