//! `/v1/users…`: the built-in identity store (admin), and `/v1/users/me…`
//! for a signed-in person with their own access token.

use axum::{extract::State, http::StatusCode, Json};
use tessera_core::user::{UserStatus, UserView};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::user_dto::{
    ChangePasswordRequest, CreateUserRequest, ListUsersQuery, SetPasswordRequest,
    UpdateUserRequest, UserPage,
};
use crate::{
    http::{
        error::{ApiError, Problem},
        extract::{ApiJson, ApiPath, ApiQuery},
        principal::{AdminScope, Require, SignedIn},
        problems::{Conflict, JsonBody, NotFound, Path, Query, Scoped, Unavailable},
        state::AppState,
    },
    service::users::{ErasureReport, UserExport},
};

type ApiResult<T> = Result<T, ApiError>;

/// Create a user. The password (optional) must meet the password policy.
#[utoipa::path(post, path = "/v1/users", tag = "users", security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses((status = 201, body = UserView), Scoped, JsonBody, Conflict, Unavailable))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let user = state
        .users()
        .create(body.into(), &caller.actor(), caller.context())
        .await?;
    Ok((StatusCode::CREATED, Json(user.view())))
}

/// List users, newest first.
#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = [])),
    params(ListUsersQuery),
    responses((status = 200, body = UserPage), Scoped, Query, Unavailable))]
pub async fn list_users(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiQuery(query): ApiQuery<ListUsersQuery>,
) -> ApiResult<Json<UserPage>> {
    let page = state.users().list(query.try_into()?).await?;
    Ok(Json(UserPage {
        items: page.items.iter().map(|u| u.view()).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One user.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserView), Scoped, Path, NotFound, Unavailable))]
pub async fn get_user(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(state.users().get(&id).await?.view()))
}

/// Change a user's e-mail, name, locale, roles or verified flag.
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = UpdateUserRequest,
    responses((status = 200, body = UserView), Scoped, Path, JsonBody, NotFound, Conflict, Unavailable))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<UserView>> {
    let user = state
        .users()
        .update(&id, body.into(), &caller.actor(), caller.context())
        .await?;
    Ok(Json(user.view()))
}

/// Delete a user (soft): sign-in ends and every session is revoked.
#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Deleted"), Scoped, Path, NotFound, Unavailable))]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state
        .users()
        .delete(&id, &caller.actor(), caller.context())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(
    state: &AppState,
    caller: &Require<AdminScope>,
    id: &str,
    status: UserStatus,
) -> ApiResult<Json<UserView>> {
    let user = state
        .users()
        .set_status(id, status, &caller.actor(), caller.context())
        .await?;
    Ok(Json(user.view()))
}

/// Disable sign-in (idempotent); every session is revoked.
#[utoipa::path(post, path = "/v1/users/{id}/disable", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserView), Scoped, Path, NotFound, Unavailable))]
pub async fn disable_user(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<UserView>> {
    set_status(&state, &caller, &id, UserStatus::Disabled).await
}

/// Enable sign-in again (idempotent).
#[utoipa::path(post, path = "/v1/users/{id}/enable", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserView), Scoped, Path, NotFound, Unavailable))]
pub async fn enable_user(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<UserView>> {
    set_status(&state, &caller, &id, UserStatus::Active).await
}

/// Set a user's password (admin reset); every session is revoked.
#[utoipa::path(post, path = "/v1/users/{id}/password", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = SetPasswordRequest,
    responses((status = 200, body = UserView), Scoped, Path, JsonBody, NotFound, Unavailable))]
pub async fn set_user_password(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SetPasswordRequest>,
) -> ApiResult<Json<UserView>> {
    let user = state
        .users()
        .set_password(&id, &body.password, None, &caller.actor(), caller.context())
        .await?;
    Ok(Json(user.view()))
}

/// Lift the login throttle of the user's account.
#[utoipa::path(post, path = "/v1/users/{id}/unlock", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserView), Scoped, Path, NotFound, Unavailable))]
pub async fn unlock_user(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<UserView>> {
    let user = state
        .users()
        .unlock(&id, &caller.actor(), caller.context())
        .await?;
    Ok(Json(user.view()))
}

/// Everything stored about a user, for a data-protection request: the
/// account, its sessions with IP address and user agent, second-factor
/// devices (not their secrets), recovery codes left, and the audit rows by
/// or about the user with their client details decrypted.
#[utoipa::path(get, path = "/v1/users/{id}/export", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserExport), Scoped, Path, NotFound, Unavailable))]
pub async fn export_user(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<UserExport>> {
    Ok(Json(state.users().export(&id).await?))
}

/// Erase a user (cannot be undone): sessions, refresh tokens and second
/// factors are deleted, the personal fields replaced by a tombstone, and
/// the audit rows about the user lose their IP address and user agent.
/// Erasing an erased user changes nothing.
#[utoipa::path(post, path = "/v1/users/{id}/erase", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = ErasureReport), Scoped, Path, NotFound, Unavailable))]
pub async fn erase_user(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ErasureReport>> {
    let report = state
        .users()
        .erase(&id, &caller.actor(), caller.context())
        .await?;
    Ok(Json(report))
}

/// The signed-in person's own account.
#[utoipa::path(get, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserView), Scoped, NotFound, Unavailable))]
pub async fn get_me(
    State(state): State<AppState>,
    caller: Require<SignedIn>,
) -> ApiResult<Json<UserView>> {
    let grant = caller
        .grant()
        .ok_or_else(|| ApiError::forbidden("signed-in users only"))?;
    Ok(Json(state.users().get(&grant.claims.sub).await?.view()))
}

/// Change one's own password; every other session of the account ends.
#[utoipa::path(post, path = "/v1/users/me/password", tag = "users", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, body = UserView), Scoped, JsonBody, NotFound, Unavailable,
        (status = 401, body = Problem, content_type = "application/problem+json",
            description = "`invalid_credentials`: the current password is wrong")
    ))]
pub async fn change_my_password(
    State(state): State<AppState>,
    caller: Require<SignedIn>,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> ApiResult<Json<UserView>> {
    let grant = caller
        .grant()
        .ok_or_else(|| ApiError::forbidden("signed-in users only"))?;
    let user = state
        .users()
        .change_own_password(
            &grant.claims.sub,
            &body.current_password,
            &body.new_password,
            &grant.claims.sid,
            caller.context(),
        )
        .await?;
    Ok(Json(user.view()))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(get_me))
        .routes(routes!(change_my_password))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
        .routes(routes!(set_user_password))
        .routes(routes!(unlock_user))
        .routes(routes!(export_user))
        .routes(routes!(erase_user))
}
