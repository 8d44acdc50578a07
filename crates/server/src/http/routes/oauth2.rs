//! What resource servers call: token introspection (RFC 7662), token
//! revocation (RFC 7009), and the authorization server metadata (RFC 8414)
//! that tells OAuth2 libraries where those are. Bodies are forms and errors
//! are OAuth2's own (`{"error": …}`), as client libraries expect.
//!
//! The client authenticates first, always: by a certificate the TLS
//! listener verified, HTTP Basic, or `client_id` / `client_secret` in the
//! form (never by a bearer token: a token cannot vouch for its own
//! introspection). Every failure is the same `401 invalid_client`; only an
//! authenticated client learns that its request was malformed.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use tessera_core::{
    client::{Capability, ClientIdentity, PeerCertificate},
    SecretString,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    http::{
        client::RequestAudit,
        error::{ApiError, Problem},
        oauth_client::{
            client_auth_refused, client_credentials, no_store, oauth_error, OAuthErrorBody,
        },
        problems::Unavailable,
        state::AppState,
    },
    service::{
        oauth::{Introspection, Revocation},
        tokens::{Controls, VerifyCaller},
    },
};

/// The form of `POST /oauth2/introspect` and `POST /oauth2/revoke`.
/// `token` is required by the document; it is optional here so that a
/// missing one is answered in OAuth2's terms (`invalid_request`), after
/// the client has authenticated.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequestForm {
    /// The token asked about: an access token, a refresh token or a machine
    /// API token.
    #[schema(required = true, value_type = String, min_length = 1)]
    pub token: Option<SecretString>,
    /// `access_token` or `refresh_token` (accepted and not needed: the
    /// token's form tells its kind).
    pub token_type_hint: Option<String>,
    /// `client_secret_post`: the client id (with `client_secret`).
    pub client_id: Option<String>,
    /// `client_secret_post`: the client secret (with `client_id`).
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<SecretString>,
}

/// The form, if the body is one (`None` for a body too large or not a
/// form: the client still authenticates by Basic or certificate, then
/// hears `invalid_request`).
async fn read_form(state: &AppState, req: Request) -> Option<TokenRequestForm> {
    let body = Bytes::from_request(req, state).await.ok()?;
    serde_urlencoded::from_bytes(&body).ok()
}

/// Reads the form and authenticates the client for `needed`.
async fn authenticated(
    state: &AppState,
    audit: &RequestAudit,
    req: Request,
    needed: Capability,
) -> Result<(ClientIdentity, Option<SecretString>), Response> {
    let certificate = req.extensions().get::<PeerCertificate>().cloned();
    let headers: HeaderMap = req.headers().clone();
    let form = read_form(state, req).await;
    let (id, secret, token) = match form {
        Some(f) => (f.client_id, f.client_secret, f.token),
        None => (None, None, None),
    };
    let credentials =
        client_credentials(&headers, certificate.as_ref(), id, secret, audit.client.ip);
    match state
        .clients()
        .authenticate(&credentials, needed, audit.context())
        .await
    {
        Ok(client) => Ok((client, token.filter(|t| !t.expose().is_empty()))),
        Err(reason) => Err(client_auth_refused(reason)),
    }
}

/// Token introspection (RFC 7662).
///
/// For an authenticated client with the `introspect` capability. An active
/// token is described; anything else, malformed tokens included, is exactly
/// `{"active": false}`. Never cached (`Cache-Control: no-store`). The client
/// authenticates with HTTP Basic (`client_secret_basic`), with `client_id`
/// and `client_secret` in the form (`client_secret_post`), or with a client
/// certificate (`tls_client_auth`, when Tessera terminates TLS); never with
/// a bearer token.
#[utoipa::path(post, path = "/oauth2/introspect", tag = "oauth2",
    security(("client_basic" = []), ()),
    request_body(content = TokenRequestForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = Introspection,
            description = "The token's description, or exactly `{\"active\": false}`"),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request`: no `token`, or a body that is not a form (only once the client authenticated)"),
        (status = 401, body = OAuthErrorBody,
            description = "`invalid_client`: whatever the reason (no, unknown, wrong or refused credentials)",
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"tessera\"`"))),
        Unavailable
    ))]
pub async fn introspect(
    State(state): State<AppState>,
    audit: RequestAudit,
    req: Request,
) -> Response {
    let (client, token) = match authenticated(&state, &audit, req, Capability::Introspect).await {
        Ok(found) => found,
        Err(res) => return res,
    };
    let Some(token) = token else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let context = || audit.context().clone();
    let caller = VerifyCaller {
        client_ip: audit.client.ip,
        limited: false,
        context: &context,
        // Introspection describes a token; it never consumes its uses.
        controls: Controls::Observe,
    };
    match state
        .oauth()
        .introspect(&client, token.expose(), &caller)
        .await
    {
        Ok(answer) => no_store(Json(answer).into_response()),
        Err(e) => no_store(ApiError::from(e).into_response()),
    }
}

/// Token revocation (RFC 7009).
///
/// For an authenticated client with the `revoke` capability: a refresh
/// token ends its family and its session, an access token its session. An
/// unknown, malformed, expired or already revoked token is answered `200`
/// all the same; a machine API token is `400 unsupported_token_type` (those
/// are revoked through `/v1/tokens`). The client authenticates with HTTP
/// Basic (`client_secret_basic`) or with `client_id` and `client_secret` in
/// the form (`client_secret_post`); never with a bearer token.
#[utoipa::path(post, path = "/oauth2/revoke", tag = "oauth2",
    security(("client_basic" = []), ()),
    request_body(content = TokenRequestForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (empty body)"),
        (status = 400, body = OAuthErrorBody, description = "`unsupported_token_type`: a machine API token; `invalid_request`: no `token`, or a body that is not a form (only once the client authenticated)"),
        (status = 401, body = OAuthErrorBody,
            description = "`invalid_client`: whatever the reason (no, unknown, wrong or refused credentials)",
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"tessera\"`"))),
        Unavailable
    ))]
pub async fn revoke(State(state): State<AppState>, audit: RequestAudit, req: Request) -> Response {
    let (client, token) = match authenticated(&state, &audit, req, Capability::Revoke).await {
        Ok(found) => found,
        Err(res) => return res,
    };
    let Some(token) = token else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    match state
        .oauth()
        .revoke(&client, token.expose(), audit.context())
        .await
    {
        Ok(Revocation::Done) => no_store(StatusCode::OK.into_response()),
        Ok(Revocation::UnsupportedTokenType) => {
            oauth_error(StatusCode::BAD_REQUEST, "unsupported_token_type")
        }
        Err(e) => no_store(ApiError::from(e).into_response()),
    }
}

/// RFC 8414 authorization server metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerMetadata {
    /// `TESSERA_ISSUER`, the `iss` of every access token.
    pub issuer: String,
    pub token_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub jwks_uri: String,
    /// Tessera has no authorization endpoint: empty.
    pub response_types_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    /// The token endpoint (`grant_type=refresh_token`) does not
    /// authenticate clients: `none`.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
}

/// Authorization server metadata (RFC 8414).
///
/// Where OAuth2 libraries find the token, introspection and revocation
/// endpoints and the JWKS. The URLs are built on `TESSERA_ISSUER`,
/// which must then be this server's public `https://` (or `http://`) URL;
/// with any other issuer there is no such document (404
/// `metadata_not_configured`).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "oauth2",
    responses(
        (status = 200, body = ServerMetadata),
        (status = 404, body = Problem, content_type = "application/problem+json",
            description = "`metadata_not_configured`: `TESSERA_ISSUER` is not a URL")
    ))]
pub async fn metadata(State(state): State<AppState>) -> Result<Response, ApiError> {
    let issuer = &state.sessions().settings().issuer;
    let Some(base) = issuer_base(issuer) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "metadata_not_configured",
            "set TESSERA_ISSUER to this server's public URL (https://…) to publish OAuth2 metadata",
        ));
    };
    let mut introspection = vec!["client_secret_basic", "client_secret_post"];
    let settings = state.clients().settings();
    if settings.client_certificates && !settings.mtls_allowed_cns.is_empty() {
        introspection.push("tls_client_auth");
    }
    let doc = ServerMetadata {
        issuer: issuer.clone(),
        token_endpoint: format!("{base}/oauth2/token"),
        introspection_endpoint: format!("{base}/oauth2/introspect"),
        revocation_endpoint: format!("{base}/oauth2/revoke"),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        response_types_supported: vec![],
        grant_types_supported: vec!["refresh_token"],
        token_endpoint_auth_methods_supported: vec!["none"],
        introspection_endpoint_auth_methods_supported: introspection,
        revocation_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
        ],
    };
    let mut res = Json(doc).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(res)
}

/// The issuer as a base URL: `http(s)://host[:port][/path]`, no query or
/// fragment, without a trailing slash.
fn issuer_base(issuer: &str) -> Option<&str> {
    let url = reqwest::Url::parse(issuer).ok()?;
    let ok = matches!(url.scheme(), "https" | "http")
        && url.host().is_some()
        && url.query().is_none()
        && url.fragment().is_none();
    ok.then(|| issuer.trim_end_matches('/'))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(introspect))
        .routes(routes!(revoke))
        .routes(routes!(metadata))
}

#[cfg(test)]
mod tests {
    use super::issuer_base;

    #[test]
    fn only_urls_are_bases() {
        assert_eq!(
            issuer_base("https://auth.example.com/"),
            Some("https://auth.example.com")
        );
        assert_eq!(
            issuer_base("http://127.0.0.1:8080"),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            issuer_base("https://example.com/tenant"),
            Some("https://example.com/tenant")
        );
        assert_eq!(issuer_base("tessera"), None);
        assert_eq!(issuer_base("https://example.com/?x=1"), None);
        assert_eq!(issuer_base("urn:example:issuer"), None);
    }
}
