//! `/v1/webhooks`: endpoints (admin) and delivery inspection and retry.

use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use tessera_core::webhook::{Delivery, DeliveryAttempt, WebhookEndpoint};
use tessera_store::DeliveryQuery;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    http::{
        error::ApiError,
        extract::{double_option, ApiJson, ApiPath, ApiQuery},
        principal::{AdminScope, Require},
        problems::{Conflict, JsonBody, NotFound, Path, Query, Scoped, Unavailable},
        state::AppState,
    },
    service::webhooks::{parse_status, EndpointInput},
};

type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    /// http(s) URL that receives signed POSTs: a host, no user:password, at most 2048 bytes.
    #[schema(
        max_length = 2048,
        pattern = r"^https?://[^/?#@\s\x00-\x1f\x7f-\x9f]+([/?#][^\s\x00-\x1f\x7f-\x9f]*)?$"
    )]
    pub url: String,
    pub description: Option<String>,
    /// Event types to deliver; empty or absent means all.
    pub event_types: Option<Vec<String>>,
    /// Default true.
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpointRequest {
    #[schema(
        max_length = 2048,
        pattern = r"^https?://[^/?#@\s\x00-\x1f\x7f-\x9f]+([/?#][^\s\x00-\x1f\x7f-\x9f]*)?$"
    )]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    /// `true` re-enables an endpoint disabled by a 410 or by hand.
    pub enabled: Option<bool>,
}

/// The endpoint and its signing secret; the secret is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointWithSecret {
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`: verify deliveries with it (Standard Webhooks).
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub items: Vec<WebhookEndpoint>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewSecret {
    /// The new `whsec_…` secret. The previous one keeps signing for 24 hours.
    pub secret: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListQuery {
    /// `pending`, `succeeded` or `failed`.
    #[param(pattern = "^(pending|succeeded|failed)$")]
    pub status: Option<String>,
    /// Event type, e.g. `revoked`.
    pub event: Option<String>,
    pub endpoint: Option<String>,
    /// 1–1000, default 50.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<Delivery>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    pub delivery: Delivery,
    pub attempts: Vec<DeliveryAttempt>,
}

/// Register a webhook endpoint.
#[utoipa::path(post, path = "/v1/webhooks/endpoints", tag = "webhooks", security(("bearer" = [])),
    request_body = CreateEndpointRequest,
    responses((status = 201, body = EndpointWithSecret), Scoped, JsonBody, Conflict, Unavailable))]
pub async fn create_endpoint(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiJson(body): ApiJson<CreateEndpointRequest>,
) -> ApiResult<(StatusCode, Json<EndpointWithSecret>)> {
    let input = EndpointInput {
        url: Some(body.url),
        description: Some(body.description),
        event_types: body.event_types,
        enabled: body.enabled,
    };
    let (endpoint, secret) = state
        .webhooks()
        .create_endpoint(input, &caller.actor(), caller.context())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(EndpointWithSecret {
            endpoint,
            secret: secret.expose().to_string(),
        }),
    ))
}

/// List webhook endpoints.
#[utoipa::path(get, path = "/v1/webhooks/endpoints", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = EndpointList), Scoped, Unavailable))]
pub async fn list_endpoints(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
) -> ApiResult<Json<EndpointList>> {
    Ok(Json(EndpointList {
        items: state.webhooks().list_endpoints().await?,
    }))
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/webhooks/endpoints/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, body = WebhookEndpoint), Scoped, Path, NotFound, Unavailable))]
pub async fn get_endpoint(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<WebhookEndpoint>> {
    Ok(Json(state.webhooks().get_endpoint(&id).await?))
}

/// Change an endpoint's URL, description, event types, or enable/disable it.
#[utoipa::path(patch, path = "/v1/webhooks/endpoints/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    request_body = UpdateEndpointRequest,
    responses((status = 200, body = WebhookEndpoint), Scoped, Path, JsonBody, NotFound, Conflict, Unavailable))]
pub async fn update_endpoint(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateEndpointRequest>,
) -> ApiResult<Json<WebhookEndpoint>> {
    let input = EndpointInput {
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        enabled: body.enabled,
    };
    Ok(Json(
        state
            .webhooks()
            .update_endpoint(&id, input, &caller.actor(), caller.context())
            .await?,
    ))
}

/// Delete an endpoint (no further deliveries).
#[utoipa::path(delete, path = "/v1/webhooks/endpoints/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, body = WebhookEndpoint), Scoped, Path, NotFound, Unavailable))]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<WebhookEndpoint>> {
    Ok(Json(
        state
            .webhooks()
            .delete_endpoint(&id, &caller.actor(), caller.context())
            .await?,
    ))
}

/// Issue a new signing secret; both sign for 24 hours.
#[utoipa::path(post, path = "/v1/webhooks/endpoints/{id}/rotate-secret", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, body = NewSecret), Scoped, Path, NotFound, Conflict, Unavailable))]
pub async fn rotate_endpoint_secret(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<NewSecret>> {
    let secret = state
        .webhooks()
        .rotate_secret(&id, &caller.actor(), caller.context())
        .await?;
    Ok(Json(NewSecret {
        secret: secret.expose().to_string(),
    }))
}

/// Deliveries, newest first, with their last status code and latency.
#[utoipa::path(get, path = "/v1/webhooks/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(DeliveryListQuery),
    responses((status = 200, body = DeliveryPage), Scoped, Query, Unavailable))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiQuery(q): ApiQuery<DeliveryListQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    let query = DeliveryQuery {
        status: q.status.as_deref().map(parse_status).transpose()?,
        event_type: q.event,
        endpoint_id: q.endpoint,
        cursor: q.cursor,
        limit: tessera_core::pagination::page_size(q.limit)?,
    };
    let page = state.webhooks().list_deliveries(query).await?;
    Ok(Json(DeliveryPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One delivery with every attempt (status code, latency, error).
#[utoipa::path(get, path = "/v1/webhooks/deliveries/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, body = DeliveryDetail), Scoped, Path, NotFound, Unavailable))]
pub async fn get_delivery(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeliveryDetail>> {
    let delivery = state.webhooks().get_delivery(&id).await?;
    let attempts = state.webhooks().attempts(&id).await?;
    Ok(Json(DeliveryDetail { delivery, attempts }))
}

/// Send a delivery again now (resets its retry schedule).
#[utoipa::path(post, path = "/v1/webhooks/deliveries/{id}/retry", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, body = Delivery), Scoped, Path, NotFound, Conflict, Unavailable))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Delivery>> {
    Ok(Json(
        state
            .webhooks()
            .retry(&id, &caller.actor(), caller.context())
            .await?,
    ))
}

/// The webhook routes, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_endpoint, list_endpoints))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(rotate_endpoint_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(retry_delivery))
}
