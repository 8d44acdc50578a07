//! `/v1/clients…`: the managed registry of OAuth2 clients (admin). A new
//! client's secret, and a rotated one, is in the answer once and nowhere
//! else. Clients of `INTROSPECTION_CLIENTS` are listed and readable
//! (`source: environment`) but changed only through the variable: a change
//! through the API is `409 client_from_environment`.

use axum::{extract::State, http::StatusCode, Json};
use tessera_core::client_registry::ClientView;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    client_dto::{
        ClientPageBody, CreateClientRequest, IssuedClient, ListClientsQuery,
        RotateClientSecretRequest, RotatedClientSecret, UpdateClientRequest,
    },
    user_dto::limit,
};
use crate::{
    http::{
        error::ApiError,
        extract::{ApiJson, ApiPath, ApiQuery},
        principal::{AdminScope, Require},
        problems::{Conflict, JsonBody, NotFound, Path, Query, Scoped, Unavailable},
        state::AppState,
    },
    service::clients::IssuedSecret,
};

type ApiResult<T> = Result<T, ApiError>;

/// Create a client: the answer holds its secret, shown this once.
#[utoipa::path(post, path = "/v1/clients", tag = "clients", security(("bearer" = [])),
    request_body = CreateClientRequest,
    responses((status = 201, body = IssuedClient), Scoped, JsonBody, Conflict, Unavailable))]
pub async fn create_client(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiJson(body): ApiJson<CreateClientRequest>,
) -> ApiResult<(StatusCode, Json<IssuedClient>)> {
    let IssuedSecret { client, secret } = state
        .clients()
        .create(body.into(), &caller.actor(), caller.context())
        .await?;
    let body = IssuedClient {
        client: client.view(),
        client_secret: secret,
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// List clients: those of `INTROSPECTION_CLIENTS` first (first page
/// only), then the registry's, newest first.
#[utoipa::path(get, path = "/v1/clients", tag = "clients", security(("bearer" = [])),
    params(ListClientsQuery),
    responses((status = 200, body = ClientPageBody), Scoped, Query, Unavailable))]
pub async fn list_clients(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiQuery(query): ApiQuery<ListClientsQuery>,
) -> ApiResult<Json<ClientPageBody>> {
    let page = state
        .clients()
        .list(query.cursor, limit(query.limit)?)
        .await?;
    Ok(Json(ClientPageBody {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One client.
#[utoipa::path(get, path = "/v1/clients/{id}", tag = "clients", security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, body = ClientView), Scoped, Path, NotFound, Unavailable))]
pub async fn get_client(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ClientView>> {
    Ok(Json(state.clients().get(&id).await?))
}

/// Change a client's name, capabilities or audiences (at once on this
/// replica, on others within a second).
#[utoipa::path(patch, path = "/v1/clients/{id}", tag = "clients", security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    request_body = UpdateClientRequest,
    responses((status = 200, body = ClientView), Scoped, Path, JsonBody, NotFound, Conflict, Unavailable))]
pub async fn update_client(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateClientRequest>,
) -> ApiResult<Json<ClientView>> {
    let view = state
        .clients()
        .update(&id, body.into(), &caller.actor(), caller.context())
        .await?;
    Ok(Json(view))
}

/// Delete a client: it stops authenticating (at once on this replica).
#[utoipa::path(delete, path = "/v1/clients/{id}", tag = "clients", security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    responses((status = 204, description = "Deleted"), Scoped, Path, NotFound, Conflict, Unavailable))]
pub async fn delete_client(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state
        .clients()
        .delete(&id, &caller.actor(), caller.context())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give a client a new secret, shown this once. With `grace_seconds` the
/// current secret keeps working that long; without, it stops at once.
#[utoipa::path(post, path = "/v1/clients/{id}/rotate-secret", tag = "clients", security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    request_body = RotateClientSecretRequest,
    responses((status = 200, body = RotatedClientSecret), Scoped, Path, JsonBody, NotFound, Conflict, Unavailable))]
pub async fn rotate_client_secret(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RotateClientSecretRequest>,
) -> ApiResult<Json<RotatedClientSecret>> {
    let IssuedSecret { client, secret } = state
        .clients()
        .rotate_secret(&id, body.grace_seconds, &caller.actor(), caller.context())
        .await?;
    Ok(Json(RotatedClientSecret {
        previous_secret_expires_at: client.previous_secret_expires_at,
        client: client.view(),
        client_secret: secret,
    }))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_client, list_clients))
        .routes(routes!(get_client, update_client, delete_client))
        .routes(routes!(rotate_client_secret))
}
