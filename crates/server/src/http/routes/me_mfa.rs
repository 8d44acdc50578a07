//! `/v1/users/me/totp…` and `/v1/users/me/recovery-codes`: a signed-in
//! person enrols their own second factors, under the same rules as the
//! `/v1/subjects/{subject}/…` routes, with their user id as the subject.

use axum::{extract::State, http::StatusCode, Json};
use tessera_core::audit::Actor;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    mfa::{enrolled, recovery_codes_created},
    mfa_dto::{
        CheckResult, CodeRequest, DeviceList, EnrollTotpRequest, EnrolledTotp, RecoveryCodes,
        RecoveryStatus,
    },
};
use crate::{
    http::{
        error::ApiError,
        extract::{ApiJson, ApiPath, OptionalJson},
        principal::{Require, SignedIn},
        problems::{Conflict, JsonBody, NotFound, Path, Scoped, TotpUnavailable, Unavailable},
        state::AppState,
    },
    service::mfa::EnrollRequest,
};

type ApiResult<T> = Result<T, ApiError>;

/// The signed-in person's id (the subject of their second factors).
fn me(caller: &Require<SignedIn>) -> ApiResult<(String, Actor)> {
    let grant = caller
        .grant()
        .ok_or_else(|| ApiError::forbidden("signed-in users only"))?;
    let id = grant.claims.sub.clone();
    Ok((id.clone(), Actor::User(id)))
}

/// Enrol one's own TOTP device (pending until confirmed). The secret, URI
/// and QR code are in this response only.
#[utoipa::path(post, path = "/v1/users/me/totp", tag = "users", security(("bearer" = [])),
    request_body(content = Option<EnrollTotpRequest>),
    responses((status = 201, body = EnrolledTotp), Scoped, JsonBody, Conflict, TotpUnavailable))]
pub async fn enroll_my_totp(
    State(state): State<AppState>,
    caller: Require<SignedIn>,
    OptionalJson(body): OptionalJson<EnrollTotpRequest>,
) -> ApiResult<(StatusCode, Json<EnrolledTotp>)> {
    let (subject, actor) = me(&caller)?;
    let request = EnrollRequest {
        name: body.name,
        issuer: body.issuer,
        account_name: body.account_name,
    };
    let e = state
        .mfa()
        .enroll(&subject, request, &actor, caller.context())
        .await?;
    Ok((StatusCode::CREATED, Json(enrolled(e, body.qr))))
}

/// One's own devices.
#[utoipa::path(get, path = "/v1/users/me/totp", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = DeviceList), Scoped, Unavailable))]
pub async fn my_totp(
    State(state): State<AppState>,
    caller: Require<SignedIn>,
) -> ApiResult<Json<DeviceList>> {
    let (subject, _) = me(&caller)?;
    Ok(Json(DeviceList {
        items: state.mfa().devices(&subject).await?,
    }))
}

/// Confirm one's own pending device with a code from the app.
#[utoipa::path(post, path = "/v1/users/me/totp/{device_id}/confirm", tag = "users",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "Device id")),
    request_body = CodeRequest,
    responses((status = 200, body = CheckResult), Scoped, Path, JsonBody, NotFound, Conflict, TotpUnavailable))]
pub async fn confirm_my_totp(
    State(state): State<AppState>,
    caller: Require<SignedIn>,
    ApiPath(device_id): ApiPath<String>,
    ApiJson(body): ApiJson<CodeRequest>,
) -> ApiResult<Json<CheckResult>> {
    let (subject, actor) = me(&caller)?;
    let result = state
        .mfa()
        .confirm(&subject, &device_id, &body.code, &actor, caller.context())
        .await?;
    Ok(Json(result.into()))
}

/// Remove one of one's own devices.
#[utoipa::path(delete, path = "/v1/users/me/totp/{device_id}", tag = "users",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "Device id")),
    responses((status = 204, description = "Removed"), Scoped, Path, NotFound, Unavailable))]
pub async fn delete_my_totp(
    State(state): State<AppState>,
    caller: Require<SignedIn>,
    ApiPath(device_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let (subject, actor) = me(&caller)?;
    state
        .mfa()
        .remove(&subject, &device_id, &actor, caller.context())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Generate one's own ten recovery codes (shown once); the previous set
/// stops working.
#[utoipa::path(post, path = "/v1/users/me/recovery-codes", tag = "users",
    security(("bearer" = [])),
    responses((status = 201, body = RecoveryCodes), Scoped, Unavailable))]
pub async fn generate_my_recovery_codes(
    State(state): State<AppState>,
    caller: Require<SignedIn>,
) -> ApiResult<(StatusCode, Json<RecoveryCodes>)> {
    let (subject, actor) = me(&caller)?;
    let codes = state
        .mfa()
        .generate_recovery_codes(&subject, &actor, caller.context())
        .await?;
    Ok(recovery_codes_created(codes))
}

/// How many unused recovery codes one has.
#[utoipa::path(get, path = "/v1/users/me/recovery-codes", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = RecoveryStatus), Scoped, Unavailable))]
pub async fn my_recovery_status(
    State(state): State<AppState>,
    caller: Require<SignedIn>,
) -> ApiResult<Json<RecoveryStatus>> {
    let (subject, _) = me(&caller)?;
    Ok(Json(RecoveryStatus {
        remaining: state.mfa().recovery_codes_left(&subject).await?,
    }))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enroll_my_totp, my_totp))
        .routes(routes!(confirm_my_totp))
        .routes(routes!(delete_my_totp))
        .routes(routes!(generate_my_recovery_codes, my_recovery_status))
}
