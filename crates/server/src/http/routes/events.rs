//! `GET /v1/events/stream`: lifecycle events as Server-Sent Events, for
//! gateways that must drop a revoked credential at once. The caller is an
//! admin token (bearer) or an OAuth2 client with the `events` capability
//! (HTTP Basic, like the other gateway routes). The handler parses, opens a
//! subscription, and turns it into the response body; the reading and its
//! ordering are `service::events`'.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{FromRequestParts, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use serde::Deserialize;
use tessera_core::{
    audit::{Actor, RequestContext},
    client::Capability,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    http::{
        client::RequestAudit,
        error::{ApiError, Problem},
        extract::ApiQuery,
        oauth_client::{client_auth_refused, client_credentials, peer_certificate, OAuthErrorBody},
        principal::{bearer, invalid_credential, AdminScope, Principal, Require},
        problems::Query,
        state::AppState,
    },
    service::events::{OpenError, Opener, StreamItem, StreamRequest},
};

/// The stream's query. Without `timeout` or `max_events` it stays open.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Comma-separated event types of the webhook catalogue (e.g.
    /// `session.revoked,revoked,rotated,updated`); every event without it.
    pub types: Option<String>,
    /// End the stream this many seconds after it opened; `0` sends the
    /// events already committed after `Last-Event-ID`, then ends.
    #[param(minimum = 0, maximum = 86400)]
    pub timeout: Option<u64>,
    /// End the stream after this many events.
    #[param(minimum = 1, maximum = 100000)]
    pub max_events: Option<u64>,
}

/// One message of the stream as an SSE client parses it (the 200 response
/// is a sequence of these, in `text/event-stream` form).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the wire format; messages are built by axum
pub struct StreamMessage {
    /// The stream position: send the last one processed as `Last-Event-ID`.
    pub id: String,
    /// The event type (a webhook catalogue name); absent on the first
    /// message, which only gives the starting position.
    pub event: Option<String>,
    /// The event's payload, as JSON text: what a webhook receiver gets
    /// (without the code of `invite.created`).
    pub data: Option<String>,
    /// The reconnection delay in milliseconds (first message only).
    pub retry: Option<u64>,
}

/// Who may read the stream: an admin token, or a client with `events`;
/// with the opener the stream judges again while it lasts.
pub enum EventsCaller {
    Admin {
        caller: Require<AdminScope>,
        opener: Opener,
    },
    Client {
        id: String,
        opener: Opener,
        audit: RequestAudit,
    },
}

impl EventsCaller {
    fn actor(&self) -> Actor {
        match self {
            Self::Admin { caller, .. } => caller.actor(),
            Self::Client { id, .. } => Actor::Client(id.clone()),
        }
    }

    fn context(&self) -> &RequestContext {
        match self {
            Self::Admin { caller, .. } => caller.context(),
            Self::Client { audit, .. } => audit.context(),
        }
    }

    fn opener(&self) -> Opener {
        match self {
            Self::Admin { opener, .. } | Self::Client { opener, .. } => opener.clone(),
        }
    }
}

/// The opener behind an admin bearer credential that authenticated: the
/// token by id and secret hash, or the person's session until the access
/// token expires.
fn admin_opener(state: &AppState, raw: &str, caller: &Require<AdminScope>) -> Option<Opener> {
    match &caller.principal {
        Principal::Token(token) => Some(Opener::Token {
            id: token.id.clone(),
            secret_hash: state.tokens().settings().format.parse(raw).ok()?,
            client_ip: caller.audit.client.ip,
        }),
        Principal::User(grant) => Some(Opener::Session {
            session_id: grant.claims.sid.clone(),
            user_id: grant.claims.sub.clone(),
            expires_at: chrono::DateTime::from_timestamp(grant.claims.exp, 0)?,
        }),
    }
}

impl FromRequestParts<AppState> for EventsCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(raw) = bearer(&parts.headers).map(str::to_owned) {
            let caller = Require::<AdminScope>::from_request_parts(parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
            // A credential that authenticated parses: this cannot fail.
            let opener = admin_opener(state, &raw, &caller)
                .ok_or_else(|| invalid_credential().into_response())?;
            return Ok(Self::Admin { caller, opener });
        }
        let Ok(audit) = RequestAudit::from_request_parts(parts, state).await;
        let certificate = peer_certificate(parts);
        if !has_basic(&parts.headers) && certificate.is_none() {
            return Err(no_credentials());
        }
        let credentials =
            client_credentials(&parts.headers, certificate, None, None, audit.client.ip);
        let client = state
            .clients()
            .authenticate(&credentials, Capability::Events, audit.context())
            .await
            .map_err(client_auth_refused)?;
        let opener = Opener::Client {
            id: client.id.clone(),
            secret_digests: state.clients().presented_digests(&credentials),
            client_ip: audit.client.ip,
        };
        Ok(Self::Client {
            id: client.id,
            opener,
            audit,
        })
    }
}

fn has_basic(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
}

/// 401 without any credential: either kind is accepted, and both are named.
fn no_credentials() -> Response {
    let mut res = ApiError::unauthorized(
        "send an admin token (Authorization: Bearer) or the credentials of a client with \
         the events capability (HTTP Basic)",
    )
    .into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer, Basic realm="tessera""#),
    );
    res
}

/// Lifecycle events as Server-Sent Events (admin token, or a client with
/// the `events` capability). Each event is `id: <position>`, `event: <type>`
/// and `data: <the webhook payload>`; the first message is the starting
/// position alone. Resume with `Last-Event-ID`: every event committed after
/// that position follows, whatever order transactions committed in.
/// Keep-alive comments keep the connection open while nothing happens.
/// The stream ends when the credential that opened it is revoked, rotated,
/// deleted or loses the admin scope or `events` capability (or its session
/// ends): within a second, on every replica.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events",
    security(("bearer" = []), ("client_basic" = [])),
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<String>, Header,
            description = "Resume after this position (the `id` of a message this stream sent)"),
    ),
    responses(
        (status = 200, content_type = "text/event-stream", body = StreamMessage,
            description = "The stream: `id:`, `event:` and `data:` lines per event, `:` comments to keep it alive"),
        (status = 401, description = "`unauthorized` (problem): no credentials, or a bearer token \
            that is not valid; `{\"error\": \"invalid_client\"}`: client authentication failed \
            (unknown client, wrong secret, or no `events` capability)",
            content(
                (Problem = "application/problem+json"),
                (OAuthErrorBody = "application/json"),
            ),
            headers(("WWW-Authenticate" = String,
                description = "`Bearer`, `Basic realm=\"tessera\"`, or both"))),
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "`forbidden`: the token lacks the admin scope"),
        (status = 409, body = Problem, content_type = "application/problem+json",
            description = "`stream_position_unknown`: `Last-Event-ID` is beyond every position \
            given (another deployment's?); reconnect without it"),
        Query,
        (status = 503, body = Problem, content_type = "application/problem+json",
            description = "`too_many_streams`: this server has `TESSERA_EVENTS_MAX_STREAMS` \
            streams open; `service_unavailable`: the database is unreachable",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    caller: EventsCaller,
    ApiQuery(query): ApiQuery<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let request = StreamRequest {
        types: query.types,
        last_event_id,
        timeout: query.timeout,
        max_events: query.max_events,
    };
    let subscription = state
        .events()
        .open(request, caller.opener(), &caller.actor(), caller.context())
        .await
        .map_err(refusal)?;
    let body = futures_util::stream::unfold(subscription, |mut s| async move {
        let item = s.next().await?;
        Some((Ok::<_, Infallible>(message(item)), s))
    });
    let keep_alive = KeepAlive::new().interval(state.events().keep_alive());
    let mut res = Sse::new(body).keep_alive(keep_alive).into_response();
    // A buffering reverse proxy (nginx) would hold events back.
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

/// One SSE message.
fn message(item: StreamItem) -> Event {
    match item {
        // Sets the client's last event id (and its reconnection delay)
        // without dispatching anything.
        StreamItem::Start { position } => Event::default()
            .id(position.to_string())
            .retry(Duration::from_secs(1)),
        StreamItem::Event {
            position,
            event_type,
            data,
        } => Event::default()
            .id(position.to_string())
            .event(event_type)
            .data(data),
    }
}

fn refusal(e: OpenError) -> ApiError {
    match e {
        OpenError::Invalid(d) => d.into(),
        OpenError::Full => {
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                "this server has as many event streams open as it serves; retry shortly",
            );
            e.retry_after = Some(5);
            e
        }
        OpenError::Ahead => ApiError::new(
            StatusCode::CONFLICT,
            "stream_position_unknown",
            "Last-Event-ID is beyond every position this stream has given; reconnect without it",
        ),
        OpenError::Unavailable(e) => e.into(),
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}
