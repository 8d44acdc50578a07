//! `/v1/sessions…` and the session listings of a user or subject (admin),
//! `/v1/users/me/sessions…` for a signed-in person.

use axum::{extract::State, http::StatusCode, Json};
use tessera_core::{
    audit::Actor,
    ids::validate_subject,
    session::{validate_amr, validate_client_id, validate_scopes, RevokeReason, SessionView},
    token_controls::validate_device_id,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::user_dto::{ListSessionsQuery, OpenSessionRequest, RevokedSessions, SessionPage};
use crate::{
    http::{
        error::ApiError,
        extract::{ApiJson, ApiPath, ApiQuery},
        principal::{AdminScope, AnyOf, Require, SessionsScope, SignedIn},
        problems::{JsonBody, NotFound, Path, Query, Scoped, Unavailable},
        state::AppState,
    },
    service::sessions::{IssuedSession, SessionSpec},
};

type ApiResult<T> = Result<T, ApiError>;

/// Open a session for a person the application authenticated itself; it
/// answers like a login. With `device_id` the session is bound to that
/// device (`403 device_required` without one when every session must be).
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", security(("bearer" = [])),
    request_body = OpenSessionRequest,
    responses((status = 201, body = IssuedSession), Scoped, JsonBody, Unavailable))]
pub async fn open_session(
    State(state): State<AppState>,
    caller: Require<AnyOf<(SessionsScope, AdminScope)>>,
    ApiJson(body): ApiJson<OpenSessionRequest>,
) -> ApiResult<(StatusCode, Json<IssuedSession>)> {
    let spec = SessionSpec {
        subject: validate_subject(&body.subject)?,
        user_id: None,
        client_id: validate_client_id(body.client_id)?,
        scope: validate_scopes(&body.scopes.unwrap_or_default())?,
        amr: validate_amr(&body.amr.unwrap_or_default())?,
        device_id: body
            .device_id
            .map(|id| validate_device_id(&id).map(|()| id))
            .transpose()?,
    };
    let issued = state
        .sessions()
        .open(spec, &caller.actor(), caller.context())
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// One session.
#[utoipa::path(get, path = "/v1/sessions/{sid}", tag = "sessions", security(("bearer" = [])),
    params(("sid" = String, Path, description = "Session id")),
    responses((status = 200, body = SessionView), Scoped, Path, NotFound, Unavailable))]
pub async fn get_session(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiPath(sid): ApiPath<String>,
) -> ApiResult<Json<SessionView>> {
    Ok(Json(
        state.sessions().get(&sid).await?.view(chrono::Utc::now()),
    ))
}

/// Revoke a session and its refresh tokens (idempotent).
#[utoipa::path(delete, path = "/v1/sessions/{sid}", tag = "sessions", security(("bearer" = [])),
    params(("sid" = String, Path, description = "Session id")),
    responses((status = 200, body = SessionView), Scoped, Path, NotFound, Unavailable))]
pub async fn revoke_session(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(sid): ApiPath<String>,
) -> ApiResult<Json<SessionView>> {
    let s = state
        .sessions()
        .revoke(&sid, RevokeReason::Admin, &caller.actor(), caller.context())
        .await?;
    Ok(Json(s.view(chrono::Utc::now())))
}

/// A user's sessions, newest first.
#[utoipa::path(get, path = "/v1/users/{id}/sessions", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id"), ListSessionsQuery),
    responses((status = 200, body = SessionPage), Scoped, Path, Query, NotFound, Unavailable))]
pub async fn user_sessions(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListSessionsQuery>,
) -> ApiResult<Json<SessionPage>> {
    let user = state.users().get(&id).await?;
    let page = state
        .sessions()
        .list(q.into_query(Some(user.id), None)?)
        .await?;
    Ok(Json(SessionPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// The sessions opened for an application's subject, newest first.
#[utoipa::path(get, path = "/v1/subjects/{subject}/sessions", tag = "sessions", security(("bearer" = [])),
    params(("subject" = String, Path, description = "The application's user id"), ListSessionsQuery),
    responses((status = 200, body = SessionPage), Scoped, Path, Query, Unavailable))]
pub async fn subject_sessions(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiPath(subject): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListSessionsQuery>,
) -> ApiResult<Json<SessionPage>> {
    let subject = validate_subject(&subject)?;
    let page = state
        .sessions()
        .list(q.into_query(None, Some(subject))?)
        .await?;
    Ok(Json(SessionPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Revoke every session of a user.
#[utoipa::path(post, path = "/v1/users/{id}/sessions/revoke-all", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = RevokedSessions), Scoped, Path, NotFound, Unavailable))]
pub async fn revoke_all_sessions(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RevokedSessions>> {
    let user = state.users().get(&id).await?;
    let revoked = state
        .sessions()
        .revoke_all(
            &user.id,
            None,
            RevokeReason::Admin,
            &caller.actor(),
            caller.context(),
        )
        .await?;
    Ok(Json(RevokedSessions { revoked }))
}

/// The signed-in person's own sessions.
#[utoipa::path(get, path = "/v1/users/me/sessions", tag = "sessions", security(("bearer" = [])),
    params(ListSessionsQuery),
    responses((status = 200, body = SessionPage), Scoped, Query, Unavailable))]
pub async fn my_sessions(
    State(state): State<AppState>,
    caller: Require<SignedIn>,
    ApiQuery(q): ApiQuery<ListSessionsQuery>,
) -> ApiResult<Json<SessionPage>> {
    let grant = caller
        .grant()
        .ok_or_else(|| ApiError::forbidden("signed-in users only"))?;
    let q = q.into_query(None, Some(grant.claims.sub.clone()))?;
    let page = state.sessions().list(q).await?;
    Ok(Json(SessionPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// End one of one's own sessions.
#[utoipa::path(delete, path = "/v1/users/me/sessions/{sid}", tag = "sessions", security(("bearer" = [])),
    params(("sid" = String, Path, description = "Session id")),
    responses((status = 200, body = SessionView), Scoped, Path, NotFound, Unavailable))]
pub async fn end_my_session(
    State(state): State<AppState>,
    caller: Require<SignedIn>,
    ApiPath(sid): ApiPath<String>,
) -> ApiResult<Json<SessionView>> {
    let grant = caller
        .grant()
        .ok_or_else(|| ApiError::forbidden("signed-in users only"))?;
    let session = state.sessions().get(&sid).await?;
    // Another person's session is "not found" to this caller.
    if session.subject != grant.claims.sub {
        return Err(
            tessera_core::DomainError::NotFound(tessera_core::error::Entity::Session).into(),
        );
    }
    let actor = Actor::User(grant.claims.sub.clone());
    let s = state
        .sessions()
        .revoke(&sid, RevokeReason::Logout, &actor, caller.context())
        .await?;
    Ok(Json(s.view(chrono::Utc::now())))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_session))
        .routes(routes!(get_session, revoke_session))
        .routes(routes!(user_sessions))
        .routes(routes!(subject_sessions))
        .routes(routes!(revoke_all_sessions))
        .routes(routes!(my_sessions))
        .routes(routes!(end_my_session))
}
