//! Resource servers asking about tokens: RFC 7662 introspection and RFC
//! 7009 revocation, for an already authenticated [`ClientIdentity`]. The
//! kind of token is told by its form (a JWT, `tsr_rt_…`, an API token), so
//! `token_type_hint` is accepted and not needed. An inactive answer says
//! nothing more than `{"active": false}`: not why, not which kind.
//!
//! Machine API tokens go through [`TokenService::verify`] as an
//! authenticated, unlimited caller (as an admin verifier does): the same
//! rules and usage recording, no per-IP failure limit (a resource server
//! asks for many users from one address, and it proved who it is), and
//! failures only in the aggregated per-minute audit rows verify already
//! writes, never one row per call.

use chrono::Utc;
use serde::Serialize;
use tessera_core::{audit::RequestContext, client::ClientIdentity, token_format::REFRESH_PREFIX};
use utoipa::ToSchema;

use super::{
    sessions::{SessionService, TokenFacts},
    tokens::VerifyCaller,
    ServiceError, TokenService,
};
use crate::metrics::Metrics;

/// The RFC 7662 answer. Inactive is exactly `{"active": false}`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    /// `access_token`, `refresh_token` or `api_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Space-separated scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The session (access and refresh tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

impl Introspection {
    pub fn inactive() -> Self {
        Self::default()
    }

    fn session(token_type: &'static str, f: TokenFacts) -> Self {
        Self {
            active: true,
            token_type: Some(token_type),
            scope: Some(f.scope),
            client_id: f.client_id,
            sub: Some(f.sub),
            exp: Some(f.exp),
            iat: Some(f.iat),
            nbf: f.nbf,
            sid: Some(f.sid),
            jti: Some(f.jti),
            iss: Some(f.iss),
            aud: f.aud,
        }
    }
}

/// What a revocation request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Done, or nothing to do (unknown, malformed, already revoked): 200.
    Done,
    /// A machine API token: revoked through the admin API only (400
    /// `unsupported_token_type`).
    UnsupportedTokenType,
}

/// The kind a presented token has, by its form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Access,
    Refresh,
    Api,
    Unknown,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Self::Access => "access_token",
            Self::Refresh => "refresh_token",
            Self::Api => "api_token",
            Self::Unknown => "unknown",
        }
    }
}

/// Introspection and revocation over the services that own the tokens.
pub struct OAuthTokens<'a> {
    pub sessions: &'a SessionService,
    pub tokens: &'a TokenService,
    pub metrics: &'a Metrics,
}

impl OAuthTokens<'_> {
    fn kind(&self, token: &str) -> Kind {
        if token.starts_with(REFRESH_PREFIX) {
            Kind::Refresh
        } else if token.bytes().filter(|b| *b == b'.').count() == 2 {
            Kind::Access
        } else if self.tokens.settings().format.parse(token).is_ok() {
            Kind::Api
        } else {
            Kind::Unknown
        }
    }

    /// RFC 7662 for `client`. `caller` is the client's verify identity
    /// (address, audit context) for machine API tokens.
    pub async fn introspect(
        &self,
        client: &ClientIdentity,
        token: &str,
        caller: &VerifyCaller<'_>,
    ) -> Result<Introspection, ServiceError> {
        let kind = self.kind(token);
        let now = Utc::now();
        let answer = match kind {
            Kind::Access => self
                .sessions
                .describe_access(token, now)
                .await?
                .map(|f| Introspection::session("access_token", f)),
            Kind::Refresh => self
                .sessions
                .describe_refresh(token, now)
                .await?
                .map(|f| Introspection::session("refresh_token", f)),
            Kind::Api => self.api_token(token, caller).await?,
            Kind::Unknown => None,
        };
        // A client limited to some audiences learns nothing of other tokens
        // (nor of tokens that name no audience).
        let answer = answer
            .filter(|a| {
                client.audiences.is_none()
                    || a.aud
                        .as_deref()
                        .is_some_and(|aud| client.may_see_audience(aud))
            })
            .unwrap_or_default();
        let active = if answer.active { "true" } else { "false" };
        self.metrics
            .clients
            .introspections
            .with_label_values(&[kind.label(), active])
            .inc();
        Ok(answer)
    }

    async fn api_token(
        &self,
        token: &str,
        caller: &VerifyCaller<'_>,
    ) -> Result<Option<Introspection>, ServiceError> {
        let Ok(found) = self.tokens.verify(token, &[], caller).await? else {
            return Ok(None);
        };
        Ok(Some(Introspection {
            active: true,
            token_type: Some("api_token"),
            scope: Some(found.scopes.join(" ")),
            sub: found.owner.clone(),
            exp: found.expires_at.map(|t| t.timestamp()),
            iat: Some(found.created_at.timestamp()),
            jti: Some(found.id.clone()),
            iss: Some(self.sessions.settings().issuer.clone()),
            ..Introspection::default()
        }))
    }

    /// RFC 7009 for `client`: a refresh token ends its family and session,
    /// an access token its session. Anything unknown, malformed, expired
    /// or already revoked is done already.
    pub async fn revoke(
        &self,
        client: &ClientIdentity,
        token: &str,
        ctx: &RequestContext,
    ) -> Result<Revocation, ServiceError> {
        let kind = self.kind(token);
        let sid = match kind {
            Kind::Api => return Ok(Revocation::UnsupportedTokenType),
            Kind::Unknown => None,
            // Refresh tokens carry no audience: a client limited to some
            // audiences revokes none.
            Kind::Refresh if client.audiences.is_some() => None,
            Kind::Refresh => self.sessions.refresh_token_sid(token).await?,
            Kind::Access => self
                .sessions
                .verified_claims(token)
                .await
                .filter(|c| {
                    client.audiences.is_none()
                        || c.aud
                            .as_deref()
                            .is_some_and(|aud| client.may_see_audience(aud))
                })
                .map(|c| c.sid),
        };
        if let Some(sid) = sid {
            self.sessions
                .revoke_for_client(&sid, &client.id, ctx)
                .await?;
        }
        self.metrics
            .clients
            .revocations
            .with_label_values(&[kind.label()])
            .inc();
        Ok(Revocation::Done)
    }
}
