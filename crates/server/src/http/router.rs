//! The one place that assembles the HTTP API: every resource's routes and
//! the OpenAPI document, generated together from the handler annotations so
//! they cannot drift apart, and the middleware around them.

use std::sync::Arc;

use axum::{
    extract::DefaultBodyLimit,
    http::{header, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Extension, Router,
};
use tower::util::option_layer;
use tower_http::{catch_panic::CatchPanicLayer, set_header::SetResponseHeaderLayer};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    doc_rules,
    error::{ApiError, Problem},
    limits, request_id,
    routes::{
        audit, auth, clients, events, invites, me_mfa, mfa, oauth2, recovery, sessions, system,
        tokens, upstreams, users, webhooks, ws_tickets,
    },
    state::AppState,
};
use crate::{config::ProxySettings, runtime::Services};

pub use super::limits::MAX_BODY_BYTES;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "Issue, verify, rotate and revoke credentials. Errors are RFC 9457 problem+json with a stable `code`."
    ),
    modifiers(&BearerAuth),
    // Referenced by every error response (see `problems`).
    components(schemas(Problem)),
    tags(
        (name = "tokens", description = "Machine API tokens"),
        (name = "invites", description = "Invite codes"),
        (name = "webhooks", description = "Signed webhooks for lifecycle events"),
        (name = "events", description = "Lifecycle events as a Server-Sent Events stream, for gateways (admin token, or a client with the events capability)"),
        (name = "mfa", description = "Second factors: TOTP devices, recovery codes, one-time auth codes"),
        (name = "upstreams", description = "Cached tokens for upstream APIs"),
        (name = "users", description = "The built-in identity store: users, passwords"),
        (name = "sessions", description = "Sessions for people: login, JWT access tokens, rotating refresh tokens, JWKS"),
        (name = "recovery", description = "Password reset and e-mail verification by single-use mailed links"),
        (name = "clients", description = "OAuth2 clients that ask about tokens: the managed registry (admin)"),
        (name = "websocket", description = "WebSocket tickets: a signed-in person's single-use ticket for a WebSocket URL, redeemed by the gateway"),
        (name = "oauth2", description = "For resource servers: token introspection (RFC 7662), revocation (RFC 7009), server metadata (RFC 8414)"),
        (name = "audit", description = "Reading the audit log (admin; each read is audited)"),
        (name = "browser", description = "Browser front ends on another site: CSRF tokens (see TESSERA_ALLOWED_ORIGINS)"),
        (name = "system", description = "Health, readiness, metrics")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // OAuth2 clients (resource servers, gateways): `client_secret_basic`,
        // or a client certificate where Tessera terminates TLS.
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        // Each resource lists its own routes beside its handlers.
        .merge(tokens::routes())
        .merge(invites::routes())
        .merge(webhooks::routes())
        .merge(events::routes())
        .merge(mfa::routes())
        .merge(upstreams::routes())
        .merge(users::routes())
        .merge(me_mfa::routes())
        .merge(auth::routes())
        .merge(sessions::routes())
        .merge(audit::routes())
        .merge(clients::routes())
        .merge(ws_tickets::routes())
        .merge(oauth2::routes())
        .merge(super::csrf::protect(recovery::routes()))
        .merge(super::routes::csrf::routes())
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .routes(routes!(system::metrics))
        .routes(routes!(system::openapi))
}

/// The OpenAPI document, for tests and `tessera openapi`.
pub fn openapi() -> serde_json::Value {
    doc_rules::apply(api_router().split_for_parts().1, None)
}

/// The whole application over `services`: state (with the served OpenAPI
/// document and the trusted proxies), routes and middleware.
pub fn app(services: Arc<Services>, proxies: ProxySettings) -> Router {
    proxies.warn_if_legacy();
    let (api, doc) = api_router().split_for_parts();
    let tokens = services.tokens.settings();
    let invites = services.invites.limits();
    let deployment = doc_rules::Deployment {
        scopes: tokens.scopes.names().map(str::to_string).collect(),
        token_max_ttl: tokens.expiry.max_lifetime.num_seconds(),
        invite_max_ttl: invites.max_lifetime.num_seconds(),
        invite_max_uses: invites.max_uses,
    };
    let openapi_json = serde_json::to_string_pretty(&doc_rules::apply(doc, Some(deployment)))
        .expect("the OpenAPI document serializes");
    with_middleware(api, AppState::new(services, proxies.trusted, openapi_json))
}

/// Builds the router over `state`.
pub fn router(state: AppState) -> Router {
    with_middleware(api_router().split_for_parts().0, state)
}

fn with_middleware(api: Router<AppState>, state: AppState) -> Router {
    api.fallback(|| async {
        ApiError::not_found("not_found", "no such endpoint; see /openapi.json")
    })
    .method_not_allowed_fallback(|| async {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not accept that method; see /openapi.json",
        )
    })
    // For middleware on a resource's routes, built before the state exists.
    .layer(Extension(state.clone()))
    // Inside the request-id layer, so its 414, 431 and 408 carry the id.
    .layer(axum::middleware::from_fn(limits::layer))
    // CORS for TESSERA_ALLOWED_ORIGINS (none without), before anything
    // could refuse a preflight; its answers carry the request id.
    .layer(option_layer(super::csrf::cors_layer(state.browser())))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        request_id::layer,
    ))
    .layer(CatchPanicLayer::custom(|_| panic_response()))
    .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
    // On every response, errors and panics included. `no-store`: a response
    // may carry a secret shown once (a new token, a TOTP secret, recovery
    // codes) or an authenticated caller's data, and nothing here is worth
    // caching. `nosniff` and `no-referrer`: no content-type guessing, no URLs
    // passed on.
    .layer(header_if_absent(header::CACHE_CONTROL, "no-store"))
    .layer(header_if_absent(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
    .layer(header_if_absent(header::REFERRER_POLICY, "no-referrer"))
    .with_state(state)
}

/// Sets `name: value` on responses that do not set it themselves.
fn header_if_absent(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// A panic is a bug: log it (the panic hook prints the message) and answer
/// with a plain 500 problem, keeping the process alive.
fn panic_response() -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "an internal error occurred; it has been logged",
    )
    .into_response()
}
