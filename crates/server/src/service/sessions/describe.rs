//! What an OAuth2 client may learn about a session's tokens (RFC 7662) and
//! how it ends them (RFC 7009). An access token is judged on its signature
//! (cached), its times and its session's state (cached, see `states`); a
//! refresh token by the rotation rules of [`RefreshToken::verdict`], read
//! without a transaction since nothing is written.

use chrono::{DateTime, Utc};
use tessera_core::{
    audit::{Actor, RequestContext},
    jwt::AccessClaims,
    session::{RefreshToken, RefreshVerdict, RevokeReason},
    DomainError,
};

use super::SessionService;
use crate::service::ServiceError;

/// The facts of an active session token, as introspection tells them.
#[derive(Debug, Clone, Default)]
pub struct TokenFacts {
    pub scope: String,
    pub client_id: Option<String>,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: Option<i64>,
    pub sid: String,
    pub jti: String,
    pub iss: String,
    pub aud: Option<String>,
}

impl From<AccessClaims> for TokenFacts {
    fn from(c: AccessClaims) -> Self {
        Self {
            scope: c.scope,
            client_id: c.client_id,
            sub: c.sub,
            exp: c.exp,
            iat: c.iat,
            nbf: Some(c.nbf),
            sid: c.sid,
            jti: c.jti,
            iss: c.iss,
            aud: c.aud,
        }
    }
}

impl SessionService {
    /// An access token that verifies and whose session is live.
    pub async fn describe_access(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenFacts>, ServiceError> {
        Ok(self
            .authenticate_at(token, now)
            .await?
            .map(|g| TokenFacts::from(g.claims)))
    }

    /// A refresh token that would still refresh (unused and unexpired, or
    /// used inside the reuse grace window with its successor unused) and
    /// whose session is live.
    pub async fn describe_refresh(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenFacts>, ServiceError> {
        let Ok(hash) = self.refresh_format.parse(token) else {
            return Ok(None);
        };
        let Some((token, successor)) = self.store.refresh_token_with_successor(&hash).await? else {
            return Ok(None);
        };
        let successor_unused =
            successor.is_some_and(|s| s.used_at.is_none() && s.revoked_at.is_none());
        if !matches!(
            token.verdict(now, successor_unused),
            RefreshVerdict::Rotate | RefreshVerdict::GraceReplay
        ) {
            return Ok(None);
        }
        let Some(session) = self.store.get_session(&token.session_id).await? else {
            return Ok(None);
        };
        if !session.is_active_at(now) {
            return Ok(None);
        }
        Ok(Some(self.refresh_facts(&token, &session)))
    }

    fn refresh_facts(
        &self,
        token: &RefreshToken,
        session: &tessera_core::session::Session,
    ) -> TokenFacts {
        TokenFacts {
            scope: session.scope.join(" "),
            client_id: session.client_id.clone(),
            sub: session.subject.clone(),
            exp: token.expires_at.timestamp(),
            iat: token.created_at.timestamp(),
            nbf: None,
            sid: session.id.clone(),
            jti: token.id.clone(),
            iss: self.settings.issuer.clone(),
            aud: None,
        }
    }

    /// The claims of an access token whose signature and times are valid
    /// (its session may be over).
    pub async fn verified_claims(&self, token: &str) -> Option<AccessClaims> {
        self.keys.verify(token, Utc::now()).await
    }

    /// The session a refresh token belongs to, if it names one.
    pub async fn refresh_token_sid(&self, token: &str) -> Result<Option<String>, ServiceError> {
        match self.refresh_format.parse(token) {
            Ok(hash) => Ok(self.store.refresh_token_session(&hash).await?),
            Err(_) => Ok(None),
        }
    }

    /// Revokes a session at an OAuth2 client's request: one transaction
    /// with its audit row and event, the client as the actor. A session
    /// that no longer exists, or is revoked already, is no error.
    pub async fn revoke_for_client(
        &self,
        sid: &str,
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let actor = Actor::Client(client_id.to_string());
        match self
            .revoke(sid, RevokeReason::ClientRevocation, &actor, ctx)
            .await
        {
            Err(e) if matches!(e.as_domain(), Some(DomainError::NotFound(_))) => Ok(()),
            other => other.map(|_| ()),
        }
    }
}
