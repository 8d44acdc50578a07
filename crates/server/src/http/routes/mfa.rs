//! `/v1/subjects/{subject}/totp…`, `/v1/subjects/{subject}/recovery-codes…`
//! and `/v1/auth-codes…`: second factors for the application's users. Needs
//! a token with the `mfa` or `admin` scope.

use axum::{extract::State, http::StatusCode, Json};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::mfa_dto::{
    CheckResult, CodeRequest, DeviceList, EnrollTotpRequest, EnrolledTotp, Passed, QrFormat,
    RecoveryCodes, RecoveryStatus, SendAuthCodeRequest, SentAuthCode, Unlocked,
    VerifyAuthCodeRequest,
};
use crate::{
    http::{
        error::ApiError,
        extract::{ApiJson, ApiPath, OptionalJson},
        principal::{AdminScope, AnyOf, MfaScope, Require},
        problems::{
            Conflict, DeliveryUnavailable, Invalid, JsonBody, NotFound, Path, RateLimited, Scoped,
            TotpUnavailable, Unavailable,
        },
        state::AppState,
    },
    service::{
        auth_codes::{CheckCode, SendCode},
        mfa::EnrollRequest,
    },
};

type ApiResult<T> = Result<T, ApiError>;

/// Enrol a TOTP device (pending until confirmed). The secret, URI and QR
/// code are in this response only.
#[utoipa::path(post, path = "/v1/subjects/{subject}/totp", tag = "mfa", security(("bearer" = [])),
    params(("subject" = String, Path, description = "The application's user id: 1-200 characters")),
    request_body(content = Option<EnrollTotpRequest>),
    responses((status = 201, body = EnrolledTotp), Scoped, Path, JsonBody, Conflict, TotpUnavailable))]
pub async fn enroll_totp(
    State(state): State<AppState>,
    caller: Require<AnyOf<(MfaScope, AdminScope)>>,
    ApiPath(subject): ApiPath<String>,
    OptionalJson(body): OptionalJson<EnrollTotpRequest>,
) -> ApiResult<(StatusCode, Json<EnrolledTotp>)> {
    let request = EnrollRequest {
        name: body.name,
        issuer: body.issuer,
        account_name: body.account_name,
    };
    let e = state
        .mfa()
        .enroll(&subject, request, &caller.actor(), caller.context())
        .await?;
    Ok((StatusCode::CREATED, Json(enrolled(e, body.qr))))
}

/// The enrolment answer: the device, its secret and URI, and the QR code
/// in the form asked for. Shared with `/v1/users/me/totp`.
pub(super) fn enrolled(e: crate::service::mfa::Enrollment, qr: QrFormat) -> EnrolledTotp {
    let uri = e.otpauth_uri.expose();
    EnrolledTotp {
        device_id: e.device.id.clone(),
        secret: e.secret_base32.expose().to_string(),
        otpauth_uri: uri.to_string(),
        qr_svg: (qr == QrFormat::Svg).then(|| crate::qr::svg(uri)).flatten(),
        qr_png: (qr == QrFormat::Png)
            .then(|| crate::qr::png_base64(uri))
            .flatten(),
        device: e.device,
    }
}

/// The subject's devices, oldest first.
#[utoipa::path(get, path = "/v1/subjects/{subject}/totp", tag = "mfa", security(("bearer" = [])),
    params(("subject" = String, Path, description = "The application's user id: 1-200 characters")),
    responses((status = 200, body = DeviceList), Scoped, Path, Invalid, Unavailable))]
pub async fn list_totp(
    State(state): State<AppState>,
    _caller: Require<AnyOf<(MfaScope, AdminScope)>>,
    ApiPath(subject): ApiPath<String>,
) -> ApiResult<Json<DeviceList>> {
    Ok(Json(DeviceList {
        items: state.mfa().devices(&subject).await?,
    }))
}

/// Confirm a pending device with a code from the app; it becomes active.
#[utoipa::path(post, path = "/v1/subjects/{subject}/totp/{device_id}/confirm", tag = "mfa",
    security(("bearer" = [])),
    params(("subject" = String, Path, description = "The application's user id: 1-200 characters"),
           ("device_id" = String, Path, description = "Device id")),
    request_body = CodeRequest,
    responses((status = 200, body = CheckResult), Scoped, Path, JsonBody, NotFound, Conflict, TotpUnavailable))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    caller: Require<AnyOf<(MfaScope, AdminScope)>>,
    ApiPath((subject, device_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<CodeRequest>,
) -> ApiResult<Json<CheckResult>> {
    let result = state
        .mfa()
        .confirm(
            &subject,
            &device_id,
            &body.code,
            &caller.actor(),
            caller.context(),
        )
        .await?;
    Ok(Json(result.into()))
}

/// Check a code against the subject's active devices. Each time step is
/// accepted once per subject; five failures lock checks for a while.
#[utoipa::path(post, path = "/v1/subjects/{subject}/totp/verify", tag = "mfa",
    security(("bearer" = [])),
    params(("subject" = String, Path, description = "The application's user id: 1-200 characters")),
    request_body = CodeRequest,
    responses((status = 200, body = CheckResult), Scoped, Path, JsonBody, TotpUnavailable))]
pub async fn verify_totp(
    State(state): State<AppState>,
    caller: Require<AnyOf<(MfaScope, AdminScope)>>,
    ApiPath(subject): ApiPath<String>,
    ApiJson(body): ApiJson<CodeRequest>,
) -> ApiResult<Json<CheckResult>> {
    let result = state
        .mfa()
        .verify(&subject, &body.code, &caller.actor(), caller.context())
        .await?;
    Ok(Json(result.into()))
}

/// Lift a TOTP lockout and forget earlier failures (for support staff).
#[utoipa::path(post, path = "/v1/subjects/{subject}/totp/unlock", tag = "mfa",
    security(("bearer" = [])),
    params(("subject" = String, Path, description = "The application's user id: 1-200 characters")),
    responses((status = 200, body = Unlocked), Scoped, Path, Invalid, Unavailable))]
pub async fn unlock_totp(
    State(state): State<AppState>,
    caller: Require<AnyOf<(MfaScope, AdminScope)>>,
    ApiPath(subject): ApiPath<String>,
) -> ApiResult<Json<Unlocked>> {
    let cleared = state
        .mfa()
        .unlock(&subject, &caller.actor(), caller.context())
        .await?;
    Ok(Json(Unlocked { cleared }))
}

/// Remove a device; its codes stop working at once.
#[utoipa::path(delete, path = "/v1/subjects/{subject}/totp/{device_id}", tag = "mfa",
    security(("bearer" = [])),
    params(("subject" = String, Path, description = "The application's user id: 1-200 characters"),
           ("device_id" = String, Path, description = "Device id")),
    responses((status = 204, description = "Removed"), Scoped, Path, Invalid, NotFound, Unavailable))]
pub async fn delete_totp(
    State(state): State<AppState>,
    caller: Require<AnyOf<(MfaScope, AdminScope)>>,
    ApiPath((subject, device_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .mfa()
        .remove(&subject, &device_id, &caller.actor(), caller.context())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Generate ten recovery codes (shown once); the previous set stops working.
#[utoipa::path(post, path = "/v1/subjects/{subject}/recovery-codes", tag = "mfa",
    security(("bearer" = [])),
    params(("subject" = String, Path, description = "The application's user id: 1-200 characters")),
    responses((status = 201, body = RecoveryCodes), Scoped, Path, Invalid, Unavailable))]
pub async fn generate_recovery_codes(
    State(state): State<AppState>,
    caller: Require<AnyOf<(MfaScope, AdminScope)>>,
    ApiPath(subject): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<RecoveryCodes>)> {
    let codes = state
        .mfa()
        .generate_recovery_codes(&subject, &caller.actor(), caller.context())
        .await?;
    Ok(recovery_codes_created(codes))
}

/// The answer to a new set of recovery codes, shown this once. Shared with
/// `/v1/users/me/recovery-codes`.
pub(super) fn recovery_codes_created(codes: Vec<String>) -> (StatusCode, Json<RecoveryCodes>) {
    let remaining = codes.len() as i64;
    (
        StatusCode::CREATED,
        Json(RecoveryCodes { remaining, codes }),
    )
}

/// How many unused recovery codes the subject has.
#[utoipa::path(get, path = "/v1/subjects/{subject}/recovery-codes", tag = "mfa",
    security(("bearer" = [])),
    params(("subject" = String, Path, description = "The application's user id: 1-200 characters")),
    responses((status = 200, body = RecoveryStatus), Scoped, Path, Invalid, Unavailable))]
pub async fn recovery_status(
    State(state): State<AppState>,
    _caller: Require<AnyOf<(MfaScope, AdminScope)>>,
    ApiPath(subject): ApiPath<String>,
) -> ApiResult<Json<RecoveryStatus>> {
    Ok(Json(RecoveryStatus {
        remaining: state.mfa().recovery_codes_left(&subject).await?,
    }))
}

/// Use a recovery code (each works once).
#[utoipa::path(post, path = "/v1/subjects/{subject}/recovery-codes/verify", tag = "mfa",
    security(("bearer" = [])),
    params(("subject" = String, Path, description = "The application's user id: 1-200 characters")),
    request_body = CodeRequest,
    responses((status = 200, body = CheckResult), Scoped, Path, JsonBody, Unavailable))]
pub async fn verify_recovery_code(
    State(state): State<AppState>,
    caller: Require<AnyOf<(MfaScope, AdminScope)>>,
    ApiPath(subject): ApiPath<String>,
    ApiJson(body): ApiJson<CodeRequest>,
) -> ApiResult<Json<CheckResult>> {
    let result = state
        .mfa()
        .use_recovery_code(&subject, &body.code, &caller.actor(), caller.context())
        .await?;
    Ok(Json(result.map(Passed::RecoveryCode).into()))
}

/// Send a one-time code by e-mail or SMS. A new code for the same subject
/// and purpose replaces the previous one.
#[utoipa::path(post, path = "/v1/auth-codes", tag = "mfa", security(("bearer" = [])),
    request_body = SendAuthCodeRequest,
    responses(
        (status = 201, body = SentAuthCode), Scoped, JsonBody, RateLimited, DeliveryUnavailable
    ))]
pub async fn send_auth_code(
    State(state): State<AppState>,
    caller: Require<AnyOf<(MfaScope, AdminScope)>>,
    ApiJson(body): ApiJson<SendAuthCodeRequest>,
) -> ApiResult<(StatusCode, Json<SentAuthCode>)> {
    let request = SendCode {
        subject: body.subject,
        purpose: body.purpose,
        channel: body.channel,
        destination: body.destination,
    };
    let code = state
        .auth_codes()
        .send(request, &caller.actor(), caller.context())
        .await?;
    Ok((StatusCode::CREATED, Json(code.into())))
}

/// Check a one-time code: single use, a few attempts, ten minutes.
#[utoipa::path(post, path = "/v1/auth-codes/verify", tag = "mfa", security(("bearer" = [])),
    request_body = VerifyAuthCodeRequest,
    responses((status = 200, body = CheckResult), Scoped, JsonBody, RateLimited, Unavailable))]
pub async fn verify_auth_code(
    State(state): State<AppState>,
    caller: Require<AnyOf<(MfaScope, AdminScope)>>,
    ApiJson(body): ApiJson<VerifyAuthCodeRequest>,
) -> ApiResult<Json<CheckResult>> {
    let request = CheckCode {
        subject: &body.subject,
        purpose: &body.purpose,
        id: body.id.as_deref(),
        code: &body.code,
    };
    let result = state
        .auth_codes()
        .verify(request, &caller.actor(), caller.context())
        .await?;
    Ok(Json(result.into()))
}

/// The second-factor routes, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enroll_totp, list_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(verify_totp))
        .routes(routes!(unlock_totp))
        .routes(routes!(delete_totp))
        .routes(routes!(generate_recovery_codes, recovery_status))
        .routes(routes!(verify_recovery_code))
        .routes(routes!(send_auth_code))
        .routes(routes!(verify_auth_code))
}
