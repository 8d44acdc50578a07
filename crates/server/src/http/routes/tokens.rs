//! `/v1/tokens`: thin handlers that parse, call one service function, and
//! shape the response.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    Json,
};
use chrono::Utc;
use tessera_core::{
    api_token::ApiTokenView,
    client::{Capability, ClientAuthFailure},
    DomainError,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::token_dto::{
    CreateTokenRequest, ListQuery, RevokeRequest, RotateRequest, TokenPage, UpdateTokenRequest,
    VerifyRequest, VerifyResponse, MAX_PRESENTED_TOKEN,
};
use crate::{
    http::{
        client::RequestAudit,
        error::{ApiError, Problem},
        extract::{ApiJson, ApiPath, ApiQuery, OptionalJson},
        oauth_client::client_credentials,
        principal::{
            bearer, invalid_credential, AdminScope, AdminVerifier, Authenticated, Principal,
            Require,
        },
        problems::{AnyToken, Conflict, JsonBody, NotFound, Path, Query, Scoped, Unavailable},
        state::AppState,
    },
    service::tokens::{Controls, IssuedToken, VerifyCaller},
};

type ApiResult<T> = Result<T, ApiError>;

fn view(t: &tessera_core::api_token::ApiToken) -> Json<ApiTokenView> {
    Json(t.view(Utc::now()))
}

/// The caller's own token, for the `/v1/tokens/self` endpoints. Only API
/// tokens have one; other principals get the same 401 as a bad token.
fn caller_token<R>(caller: &Require<R>) -> ApiResult<&tessera_core::api_token::ApiToken> {
    caller
        .principal
        .token()
        .map(|t| t.as_ref())
        .ok_or_else(invalid_credential)
}

/// Issue a token. The secret is in this response only.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", security(("bearer" = [])),
    request_body = CreateTokenRequest,
    responses((status = 201, body = IssuedToken), Scoped, JsonBody, Conflict, Unavailable))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    let issued = state
        .tokens()
        .create(body.try_into()?, &caller.actor(), caller.context())
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// List tokens, newest first.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = TokenPage), Scoped, Query, Unavailable))]
pub async fn list_tokens(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<TokenPage>> {
    let page = state.tokens().list(query.try_into()?).await?;
    let now = Utc::now();
    Ok(Json(TokenPage {
        items: page.items.iter().map(|t| t.view(now)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One token.
#[utoipa::path(get, path = "/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = ApiTokenView), Scoped, Path, NotFound, Unavailable))]
pub async fn get_token(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiTokenView>> {
    Ok(view(&state.tokens().get(&id).await?))
}

/// Change name, description, scopes, metadata or expiry.
#[utoipa::path(patch, path = "/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    request_body = UpdateTokenRequest,
    responses((status = 200, body = ApiTokenView), Scoped, Path, JsonBody, NotFound, Conflict, Unavailable))]
pub async fn update_token(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateTokenRequest>,
) -> ApiResult<Json<ApiTokenView>> {
    let token = state
        .tokens()
        .update(&id, body.try_into()?, &caller.actor(), caller.context())
        .await?;
    Ok(view(&token))
}

/// Soft-delete: the token stops authenticating and leaves default listings.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = ApiTokenView), Scoped, Path, NotFound, Conflict, Unavailable))]
pub async fn delete_token(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiTokenView>> {
    let token = state
        .tokens()
        .delete(&id, &caller.actor(), caller.context())
        .await?;
    Ok(view(&token))
}

/// Undo a soft delete.
#[utoipa::path(post, path = "/v1/tokens/{id}/restore", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = ApiTokenView), Scoped, Path, NotFound, Conflict, Unavailable))]
pub async fn restore_token(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiTokenView>> {
    let token = state
        .tokens()
        .restore(&id, &caller.actor(), caller.context())
        .await?;
    Ok(view(&token))
}

/// Issue a new secret for the same token; optionally keep the old one
/// working for a grace period.
#[utoipa::path(post, path = "/v1/tokens/{id}/rotate", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    request_body(content = Option<RotateRequest>),
    responses((status = 200, body = IssuedToken), Scoped, Path, JsonBody, NotFound, Conflict, Unavailable))]
pub async fn rotate_token(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<RotateRequest>,
) -> ApiResult<Json<IssuedToken>> {
    let issued = state
        .tokens()
        .rotate(&id, body.grace_seconds, &caller.actor(), caller.context())
        .await?;
    Ok(Json(issued))
}

/// Revoke (idempotent), optionally purging.
#[utoipa::path(post, path = "/v1/tokens/{id}/revoke", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    request_body(content = Option<RevokeRequest>),
    responses((status = 200, body = ApiTokenView), Scoped, Path, JsonBody, NotFound, Conflict, Unavailable))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<RevokeRequest>,
) -> ApiResult<Json<ApiTokenView>> {
    let token = state
        .tokens()
        .revoke(
            &id,
            body.purge.unwrap_or(false),
            body.reason,
            &caller.actor(),
            caller.context(),
        )
        .await?;
    Ok(view(&token))
}

/// Does this token authenticate (with these scopes)? Always 200 for a
/// well-formed request; the answer is in `valid` and `code`.
///
/// Open to anyone for tokens without usage controls. A token with controls
/// (IP lists, device binding, credits, rate limits) verifies only for an
/// authorised verifier: an admin token (bearer), or an OAuth2 client with
/// the `verify` capability (HTTP Basic); anyone else is answered
/// `CALLER_NOT_AUTHORIZED`. Only an authorised verifier's `client_ip`,
/// `device_id`, `cost` and `ratelimit` are honoured. The controls apply in
/// order (IP lists, device, rate limit, credits), and a refusal at one
/// consumes nothing at the later ones.
#[utoipa::path(post, path = "/v1/tokens/verify", tag = "tokens",
    request_body = VerifyRequest,
    responses(
        (status = 200, body = VerifyResponse),
        JsonBody, Unavailable,
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "`unauthorized`: only with `TESSERA_VERIFY_REQUIRES_ADMIN`, without a valid bearer token (or a client with the `verify` capability by HTTP Basic)"),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "`forbidden`: only with `TESSERA_VERIFY_REQUIRES_ADMIN`, for a token without the admin scope")
    ))]
pub async fn verify_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    audit: RequestAudit,
    ApiJson(mut body): ApiJson<VerifyRequest>,
) -> ApiResult<Json<VerifyResponse>> {
    let authorized = verifier_is_authorized(&state, &headers, &audit).await?;
    if body.token.len() > MAX_PRESENTED_TOKEN {
        return Err(
            DomainError::invalid("token", "is longer than any token this server issues").into(),
        );
    }
    let facts = body.facts()?;
    let scopes = body.scopes.take().unwrap_or_default();
    let context = || audit.context().clone();
    let caller = VerifyCaller {
        client_ip: audit.client.ip,
        // An authorised verifier (a resource server checking its users'
        // tokens) is one IP for many users: not limited.
        limited: !authorized,
        context: &context,
        // Only an authorised verifier may pass its caller's facts; for an
        // unauthenticated one a token with usage controls does not verify.
        controls: if authorized {
            Controls::Enforce(facts)
        } else {
            Controls::Anonymous
        },
    };
    let result = state.tokens().verify(&body.token, &scopes, &caller).await?;
    Ok(Json(match result {
        Ok(verified) => VerifyResponse {
            valid: true,
            token: Some(verified.view(Utc::now())),
            code: None,
            remaining: verified.remaining,
            ratelimit: verified.ratelimit,
        },
        Err(refusal) => VerifyResponse {
            valid: false,
            token: None,
            code: Some(refusal.code),
            remaining: refusal.remaining,
            ratelimit: refusal.ratelimit,
        },
    }))
}

/// Whether the caller of verify is an authorised verifier: an admin token,
/// or an OAuth2 client with the `verify` capability (HTTP Basic). Only
/// such a caller may pass its caller's facts, and the failure limit does
/// not apply to it. With `verify_requires_admin` it must be one (401/403
/// otherwise); without, missing or failing credentials just make an
/// unauthenticated caller, as before.
async fn verifier_is_authorized(
    state: &AppState,
    headers: &HeaderMap,
    audit: &RequestAudit,
) -> Result<bool, ApiError> {
    if verify_client(state, headers, audit).await? {
        return Ok(true);
    }
    if state.tokens().settings().verify_requires_admin {
        Principal::authenticate(state, headers, audit)
            .await?
            .require::<AdminVerifier>()?;
        return Ok(true);
    }
    if bearer(headers).is_none() {
        return Ok(false);
    }
    // A bearer that does not authenticate makes an anonymous verifier; one
    // its own controls refuse (429, 403) is answered as such, not demoted.
    match Principal::authenticate(state, headers, audit).await {
        Ok(p) => Ok(p.require::<AdminVerifier>().is_ok()),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether the request authenticates, by HTTP Basic, a client with the
/// `verify` capability. A failed attempt is counted and audited like any
/// client authentication (and makes an unauthenticated caller); a registry
/// that cannot be read is a 503.
async fn verify_client(
    state: &AppState,
    headers: &HeaderMap,
    audit: &RequestAudit,
) -> Result<bool, ApiError> {
    let is_basic = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
    if !is_basic {
        return Ok(false);
    }
    let credentials = client_credentials(headers, None, None, None, audit.client.ip);
    match state
        .clients()
        .authenticate(&credentials, Capability::Verify, audit.context())
        .await
    {
        Ok(_) => Ok(true),
        Err(ClientAuthFailure::Unavailable) => Err(ApiError::unavailable()),
        Err(_) => Ok(false),
    }
}

/// Forget the device a token is bound to: with `first_use` the next device
/// binds it; with `required` none is accepted until an update sets one.
#[utoipa::path(post, path = "/v1/tokens/{id}/unbind-device", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = ApiTokenView), Scoped, Path, NotFound, Unavailable))]
pub async fn unbind_device(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiTokenView>> {
    let token = state
        .tokens()
        .unbind_device(&id, &caller.actor(), caller.context())
        .await?;
    Ok(view(&token))
}

/// The caller's own token record.
#[utoipa::path(get, path = "/v1/tokens/self", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = ApiTokenView), AnyToken, Unavailable))]
pub async fn own_token(caller: Require<Authenticated>) -> ApiResult<Json<ApiTokenView>> {
    Ok(view(caller_token(&caller)?))
}

/// The successor issued for the caller's token by automatic rotation, with
/// its secret. Available once; afterwards 404 `successor_not_available`.
#[utoipa::path(post, path = "/v1/tokens/self/successor", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = IssuedToken), AnyToken, NotFound, Unavailable))]
pub async fn claim_successor(
    State(state): State<AppState>,
    caller: Require<Authenticated>,
) -> ApiResult<Json<IssuedToken>> {
    let token = caller_token(&caller)?;
    Ok(Json(state.tokens().claim_successor(token).await?))
}

/// The token routes, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(verify_token))
        .routes(routes!(own_token))
        .routes(routes!(get_token, update_token, delete_token))
        .routes(routes!(rotate_token))
        .routes(routes!(revoke_token))
        .routes(routes!(unbind_device))
        .routes(routes!(restore_token))
        .routes(routes!(claim_successor))
}
