//! `/v1/ws-tickets…` and `/v1/ws-connections…`: a signed-in person gets a
//! single-use WebSocket ticket; the gateway (an OAuth2 client with the
//! `ws_tickets` capability, by HTTP Basic; a certificate is read too, for
//! the day certificate clients hold more than `introspect`) redeems it and
//! reports the connection's close. Every answer is `no-store`.

use axum::{
    extract::{FromRequestParts, State},
    http::{request::Parts, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use tessera_core::{
    client::{Capability, ClientIdentity},
    SecretString,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    http::{
        client::RequestAudit,
        error::ApiError,
        extract::{ApiJson, ApiPath, OptionalJson},
        oauth_client::{client_auth_refused, client_credentials, no_store, peer_certificate},
        principal::{Require, SignedIn},
        problems::{JsonBody, NotFound, Path, Scoped, Unavailable},
        state::AppState,
    },
    service::ws_tickets::{IssuedTicket, RedeemRequest, Redemption, WsConnectionView},
};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueTicketRequest {
    /// The gateway the ticket is for; a ticket with an audience is redeemed
    /// only by a gateway that states the same one.
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub audience: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemTicketRequest {
    /// The ticket from the WebSocket URL.
    #[schema(value_type = String)]
    pub ticket: SecretString,
    /// This gateway's audience.
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub audience: Option<String>,
    /// The address the WebSocket client connected from; when given, it
    /// must be the one the ticket was issued to.
    #[schema(max_length = 64, pattern = r"^[0-9A-Fa-f:.]+$")]
    pub client_ip: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionClosedRequest {
    /// The WebSocket close code (RFC 6455 §7.4).
    #[schema(minimum = 1000, maximum = 4999)]
    pub code: Option<i64>,
    /// The close reason, at most 123 characters, one line.
    #[schema(max_length = 123, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub reason: Option<String>,
}

/// A gateway: an OAuth2 client with `ws_tickets`, authenticated by HTTP
/// Basic or by its client certificate (the bodies here are JSON, so no
/// form credentials). Any failure is `401 invalid_client`.
pub struct Gateway {
    pub client: ClientIdentity,
    pub audit: RequestAudit,
}

impl FromRequestParts<AppState> for Gateway {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(audit) = RequestAudit::from_request_parts(parts, state).await;
        let credentials = client_credentials(
            &parts.headers,
            peer_certificate(parts),
            None,
            None,
            audit.client.ip,
        );
        let client = state
            .clients()
            .authenticate(&credentials, Capability::WsTickets, audit.context())
            .await
            .map_err(client_auth_refused)?;
        Ok(Self { client, audit })
    }
}

/// Exchange the signed-in person's access token for a single-use WebSocket
/// ticket, bound to their session, the audience and their IP.
#[utoipa::path(post, path = "/v1/ws-tickets", tag = "websocket", security(("bearer" = [])),
    request_body(content = Option<IssueTicketRequest>),
    responses((status = 201, body = IssuedTicket), Scoped, JsonBody, Unavailable))]
pub async fn issue_ticket(
    State(state): State<AppState>,
    caller: Require<SignedIn>,
    OptionalJson(body): OptionalJson<IssueTicketRequest>,
) -> Result<Response, ApiError> {
    let grant = caller
        .grant()
        .ok_or_else(|| ApiError::forbidden("signed-in users only"))?;
    let issued = state
        .ws_tickets()
        .issue(grant, body.audience.as_deref(), caller.audit.client.ip)
        .await?;
    Ok(no_store(
        (StatusCode::CREATED, Json(issued)).into_response(),
    ))
}

/// Redeem a ticket (gateways): the session behind it, once, or exactly
/// `{"active": false}`.
#[utoipa::path(post, path = "/v1/ws-tickets/redeem", tag = "websocket",
    security(("client_basic" = [])),
    request_body = RedeemTicketRequest,
    responses((status = 200, body = Redemption),
        (status = 401, description = "Client authentication failed: `{\"error\": \"invalid_client\"}`",
            body = crate::http::oauth_client::OAuthErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"tessera\"`"))),
        JsonBody, Unavailable))]
pub async fn redeem_ticket(
    State(state): State<AppState>,
    gateway: Gateway,
    ApiJson(body): ApiJson<RedeemTicketRequest>,
) -> Result<Response, ApiError> {
    let req = RedeemRequest {
        ticket: body.ticket.expose(),
        audience: body.audience.as_deref(),
        client_ip: body.client_ip.as_deref(),
    };
    let answer = state
        .ws_tickets()
        .redeem(req, &gateway.client, gateway.audit.context())
        .await?;
    Ok(no_store(Json(answer).into_response()))
}

/// Report that a connection opened by a ticket has closed (gateways).
/// Idempotent; another gateway's connection is not found.
#[utoipa::path(post, path = "/v1/ws-connections/{connection_id}/closed", tag = "websocket",
    security(("client_basic" = [])),
    params(("connection_id" = String, Path, description = "From the redemption")),
    request_body(content = Option<ConnectionClosedRequest>),
    responses((status = 200, body = WsConnectionView),
        (status = 401, description = "Client authentication failed: `{\"error\": \"invalid_client\"}`",
            body = crate::http::oauth_client::OAuthErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"tessera\"`"))),
        Path, NotFound, JsonBody, Unavailable))]
pub async fn connection_closed(
    State(state): State<AppState>,
    gateway: Gateway,
    ApiPath(connection_id): ApiPath<String>,
    OptionalJson(body): OptionalJson<ConnectionClosedRequest>,
) -> Result<Response, ApiError> {
    let view = state
        .ws_tickets()
        .closed(
            &connection_id,
            body.code,
            body.reason,
            &gateway.client,
            gateway.audit.context(),
        )
        .await?;
    Ok(no_store(Json(view).into_response()))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue_ticket))
        .routes(routes!(redeem_ticket))
        .routes(routes!(connection_closed))
}
