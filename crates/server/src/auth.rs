//! Authentication of API callers: a bearer token, verified through the same
//! cached path as `POST /v1/tokens/verify`.

use std::sync::Arc;

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts, HeaderMap},
};
use tessera_core::{
    api_token::ApiToken,
    audit::Actor,
    scopes::{ADMIN_SCOPE, MFA_SCOPE},
};

use crate::{app::AppState, client::ClientInfo, error::ApiError};

/// The bearer token from `Authorization`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Verifies the caller's bearer token: 401 when absent or invalid.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    client: &ClientInfo,
) -> Result<Arc<ApiToken>, ApiError> {
    let raw = bearer(headers)
        .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <token>"))?;
    match state
        .tokens()
        .verify(raw, &[], || state.seal_context(client))
        .await?
    {
        Ok(token) => Ok(token),
        Err(_) => Err(ApiError::unauthorized(
            "the bearer token is not valid (unknown, expired, revoked or malformed)",
        )),
    }
}

/// A caller holding a token with the `admin` scope (401 without a valid
/// token, 403 without the scope).
pub struct AdminCaller {
    pub token: Arc<ApiToken>,
    pub client: ClientInfo,
}

impl AdminCaller {
    pub fn actor(&self) -> Actor {
        Actor::Token(self.token.id.clone())
    }
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Ok(client) = ClientInfo::from_request_parts(parts, state).await;
        let token = authenticate(state, &parts.headers, &client).await?;
        if !token.scopes.iter().any(|s| s == ADMIN_SCOPE) {
            return Err(ApiError::forbidden(
                "this endpoint needs a token with the admin scope",
            ));
        }
        Ok(Self { token, client })
    }
}

/// A caller allowed to manage and check second factors: a token with the
/// `mfa` or `admin` scope (the application's back end, never an end user).
pub struct MfaCaller {
    pub token: Arc<ApiToken>,
    pub client: ClientInfo,
}

impl MfaCaller {
    pub fn actor(&self) -> Actor {
        Actor::Token(self.token.id.clone())
    }
}

impl FromRequestParts<AppState> for MfaCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Ok(client) = ClientInfo::from_request_parts(parts, state).await;
        let token = authenticate(state, &parts.headers, &client).await?;
        if !token
            .scopes
            .iter()
            .any(|s| s == ADMIN_SCOPE || s == MFA_SCOPE)
        {
            return Err(ApiError::forbidden(
                "this endpoint needs a token with the mfa or admin scope",
            ));
        }
        Ok(Self { token, client })
    }
}
