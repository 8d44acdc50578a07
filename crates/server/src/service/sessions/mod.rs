//! Sessions for people: login (with the second factor when the user has
//! one), sessions opened for applications that authenticate their users
//! themselves, access tokens (JWTs), refresh-token rotation with reuse
//! detection, logout and revocation. Every state change is one write
//! transaction with its audit rows and outbox events.

mod describe;
mod events;
mod login;
mod refresh;
mod states;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tessera_core::{
    audit::{Actor, RequestContext},
    crypto::{constant_time_eq, Keyring},
    error::Entity,
    ids::{is_valid_id, new_id},
    jwt::AccessClaims,
    session::{RefreshToken, RevokeReason, Session, SessionView},
    token_format::{GeneratedToken, TokenFormat},
    user::UserView,
    DomainError, SecretString,
};
use tessera_store::{Page, SessionQuery, Store, WriteTx};
use utoipa::ToSchema;

use super::{
    keys::KeyService, mfa::MfaService, passwords::Passwords, rate_limit::RateLimits,
    tokens::DeviceKeys, ServiceError,
};
use crate::{config::AuthSettings, metrics::Metrics};

pub use describe::TokenFacts;
pub use login::{LoginOutcome, LoginRequest, MfaChallenge, SecondFactor};

/// What a login, a refresh or an opened session hands out. The raw tokens
/// are shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedSession {
    #[schema(value_type = String)]
    #[serde(serialize_with = "tessera_core::secret::serialize_exposed")]
    pub access_token: SecretString,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    #[schema(value_type = String, example = "tsr_rt_…")]
    #[serde(serialize_with = "tessera_core::secret::serialize_exposed")]
    pub refresh_token: SecretString,
    /// Seconds until the refresh token expires (at most the session's end).
    pub refresh_expires_in: i64,
    pub session_id: String,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// The signed-in user (absent for sessions opened for a subject).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserView>,
    /// Whether the session is bound to the device it was opened from: a
    /// refresh must then send the same `X-Device-Id`.
    pub device_bound: bool,
}

/// What a new session is for.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub subject: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub scope: Vec<String>,
    pub amr: Vec<String>,
    /// The device id the opening request named (validated): the session
    /// binds to it as `TESSERA_SESSION_DEVICE_BINDING` says.
    pub device_id: Option<String>,
}

/// A verified access token whose session is live.
#[derive(Debug, Clone)]
pub struct AccessGrant {
    pub claims: AccessClaims,
}

pub struct SessionService {
    store: Arc<dyn Store>,
    settings: AuthSettings,
    keys: Arc<KeyService>,
    passwords: Arc<Passwords>,
    mfa: Arc<MfaService>,
    /// Seals a rotated refresh token's successor for the reuse grace window.
    successor_keyring: Keyring,
    refresh_format: TokenFormat,
    metrics: Arc<Metrics>,
    /// Session states for access-token checks without a query.
    states: states::SessionStates,
    /// The login and refresh request rates (`[rate_limits]`).
    rate_limits: Arc<RateLimits>,
    /// The keys device ids of bound sessions are hashed under.
    device_keys: DeviceKeys,
}

/// The encryption context of a successor kept for the grace window.
const SUCCESSOR_CONTEXT: &str = "refresh_tokens.successor";

impl SessionService {
    /// `state_ttl`: how long a session's state may be served from memory
    /// (the verify cache's TTL: the staleness bound across replicas while
    /// the invalidation log cannot be read).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        settings: AuthSettings,
        keys: Arc<KeyService>,
        passwords: Arc<Passwords>,
        mfa: Arc<MfaService>,
        successor_keyring: Keyring,
        metrics: Arc<Metrics>,
        state_ttl: std::time::Duration,
        rate_limits: Arc<RateLimits>,
        device_keys: DeviceKeys,
    ) -> Self {
        Self {
            device_keys,
            states: states::SessionStates::new(state_ttl),
            rate_limits,
            store,
            settings,
            keys,
            passwords,
            mfa,
            successor_keyring,
            refresh_format: TokenFormat::refresh(),
            metrics,
        }
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Inserts a new session and its first refresh token into `tx`, with
    /// the `session.created` audit row and event.
    pub(crate) async fn open_in(
        &self,
        tx: &mut WriteTx,
        spec: SessionSpec,
        actor: &Actor,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<(Session, GeneratedToken, RefreshToken), ServiceError> {
        let life = &self.settings.lifetimes;
        let expires_at = now + life.absolute;
        let device_hash = self.device_hash_to_bind(spec.device_id.as_deref())?;
        let session = Session {
            id: new_id(),
            subject: spec.subject,
            user_id: spec.user_id,
            client_id: spec.client_id,
            scope: spec.scope,
            amr: spec.amr,
            created_at: now,
            updated_at: now,
            last_refreshed_at: None,
            idle_expires_at: life.idle_deadline(now, expires_at),
            expires_at,
            revoked_at: None,
            revoke_reason: None,
            ip_sealed: ctx.ip_sealed.clone(),
            user_agent_sealed: ctx.user_agent_sealed.clone(),
            device_hash,
        };
        tx.insert_session(&session).await?;
        let (raw, token) = self.new_refresh_token(&session, None, now);
        tx.insert_refresh_token(&token, &raw.hash).await?;
        let (audit, event) = events::session_created(&session, actor, ctx);
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        Ok((session, raw, token))
    }

    fn new_refresh_token(
        &self,
        session: &Session,
        parent: Option<&str>,
        now: DateTime<Utc>,
    ) -> (GeneratedToken, RefreshToken) {
        let raw = self.refresh_format.generate();
        let token = RefreshToken {
            id: new_id(),
            session_id: session.id.clone(),
            parent_id: parent.map(str::to_string),
            created_at: now,
            expires_at: self
                .settings
                .lifetimes
                .refresh_expiry(now, session.expires_at),
            used_at: None,
            revoked_at: None,
            successor_id: None,
            successor_sealed: None,
            successor_until: None,
        };
        (raw, token)
    }

    /// A fresh access token for `session`, and the answer a client gets.
    fn issue(
        &self,
        session: &Session,
        refresh_raw: SecretString,
        refresh_expires_at: DateTime<Utc>,
        user: Option<UserView>,
        now: DateTime<Utc>,
    ) -> Result<IssuedSession, ServiceError> {
        let exp = (now + self.settings.lifetimes.access).min(session.expires_at);
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: session.subject.clone(),
            aud: self.settings.audience.clone(),
            exp: exp.timestamp(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            jti: new_id(),
            sid: session.id.clone(),
            scope: session.scope.join(" "),
            client_id: session.client_id.clone(),
            amr: session.amr.clone(),
        };
        let access = self.keys.sign(&claims, now)?;
        Ok(IssuedSession {
            access_token: SecretString::new(access),
            token_type: "Bearer",
            expires_in: (exp - now).num_seconds().max(0),
            refresh_token: refresh_raw,
            refresh_expires_in: (refresh_expires_at - now).num_seconds().max(0),
            session_id: session.id.clone(),
            scope: session.scope.join(" "),
            user,
            device_bound: session.device_hash.is_some(),
        })
    }

    /// What a new session stores for the device its opening request named:
    /// the keyed hash under the current key when the setting binds it,
    /// `None` when it does not, `device_required` when it must and none
    /// was named.
    fn device_hash_to_bind(&self, device_id: Option<&str>) -> Result<Option<String>, DomainError> {
        let bind = self.settings.device_binding.device_to_bind(device_id)?;
        Ok(bind.map(|id| self.device_keys.current().hash_hex(id.as_bytes())))
    }

    /// The hashes a refresh's device id may be stored under (none without
    /// one), for the check in the refresh's conditional update.
    fn presented_device(&self, device_id: Option<&str>) -> Vec<String> {
        device_id
            .map(|id| self.device_keys.hashes(id))
            .unwrap_or_default()
    }

    /// Whether a refresh presenting these hashes may refresh `session`:
    /// any device for an unbound session, else only the one it was opened
    /// from (compared in constant time).
    fn device_may_refresh(session: &Session, presented: &[String]) -> bool {
        match &session.device_hash {
            None => true,
            Some(bound) => presented
                .iter()
                .fold(false, |found, h| found | constant_time_eq(bound, h)),
        }
    }

    /// Opens a session for an application's own subject
    /// (`POST /v1/sessions`): no password here, the caller vouches.
    pub async fn open(
        &self,
        spec: SessionSpec,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<IssuedSession, ServiceError> {
        let now = tessera_core::ids::now();
        let mut tx = self.store.begin_write().await?;
        let (session, raw, token) = self.open_in(&mut tx, spec, actor, ctx, now).await?;
        tx.commit().await?;
        self.issue(&session, raw.raw, token.expires_at, None, now)
    }

    /// Verifies an access token and checks that its session is still live:
    /// `None` for anything else (the caller answers 401).
    pub async fn authenticate(&self, token: &str) -> Result<Option<AccessGrant>, ServiceError> {
        self.authenticate_at(token, Utc::now()).await
    }

    async fn authenticate_at(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AccessGrant>, ServiceError> {
        let Some(claims) = self.keys.verify(token, now).await else {
            return Ok(None);
        };
        let live = self.session_live(&claims.sid, now).await?;
        Ok(live.then_some(AccessGrant { claims }))
    }

    /// Whether session `sid` is live at `now`: from memory when a fresh
    /// entry knows, else one read (whose answer is kept).
    pub async fn session_live(&self, sid: &str, now: DateTime<Utc>) -> Result<bool, ServiceError> {
        if let Some(live) = self.states.live(sid, now) {
            return Ok(live);
        }
        let stamp = self.states.stamp();
        let session = self.store.get_session(sid).await?;
        self.states.store(sid, session.as_ref(), stamp);
        Ok(session.is_some_and(|s| s.is_active_at(now)))
    }

    /// To be called after a transaction that revoked or deleted sessions
    /// has committed: the next access-token check on this replica reads
    /// the database again.
    pub fn sessions_changed(&self) {
        self.states.invalidate();
    }

    /// Session `sid` changed in a transaction committed elsewhere (another
    /// replica, the CLI): the next check of it reads the database.
    pub fn session_changed_elsewhere(&self, sid: &str) {
        self.states.forget(sid);
    }

    pub async fn get(&self, id: &str) -> Result<Session, ServiceError> {
        if !is_valid_id(id) {
            return Err(DomainError::NotFound(Entity::Session).into());
        }
        self.store
            .get_session(id)
            .await?
            .ok_or_else(|| DomainError::NotFound(Entity::Session).into())
    }

    pub async fn list(&self, q: SessionQuery) -> Result<Page<SessionView>, ServiceError> {
        if q.cursor.as_deref().is_some_and(|c| !is_valid_id(c)) {
            return Err(DomainError::invalid("cursor", "is not a cursor this API returned").into());
        }
        let now = Utc::now();
        let page = self.store.list_sessions(&q).await?;
        Ok(Page {
            items: page.items.iter().map(|s| s.view(now)).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Revokes one session (and its refresh tokens). Revoking a revoked
    /// session changes nothing and is not an error.
    pub async fn revoke(
        &self,
        id: &str,
        reason: RevokeReason,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<Session, ServiceError> {
        let now = tessera_core::ids::now();
        self.get(id).await?;
        let mut tx = self.store.begin_write().await?;
        let session = tx
            .lock_session(id)
            .await?
            .ok_or(DomainError::NotFound(Entity::Session))?;
        let changed = tx.revoke_session(id, now, reason).await?;
        if changed {
            let (audit, event) = events::session_revoked(&session, reason, actor, ctx);
            tx.append_audit(&[audit]).await?;
            tx.append_events(&[event]).await?;
            self.metrics
                .sessions
                .revoked
                .with_label_values(&[reason.as_str()])
                .inc();
        }
        tx.commit().await?;
        // Revoking a revoked session changed nothing: the cached states
        // stay (so repeated revocations cannot keep the cache empty).
        if changed {
            self.sessions_changed();
        }
        self.get(id).await
    }

    /// Revokes every live session of a user, and closes their open login
    /// challenges, inside the caller's transaction (password change,
    /// disable, delete): the audit rows and events of each go with it. The
    /// caller calls [`Self::sessions_changed`] once it has committed.
    pub(crate) async fn revoke_all_in(
        &self,
        tx: &mut WriteTx,
        user_id: &str,
        keep: Option<&str>,
        reason: RevokeReason,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<Vec<String>, ServiceError> {
        let now = tessera_core::ids::now();
        let revoked = tx.revoke_user_sessions(user_id, keep, now, reason).await?;
        // A login waiting for its second factor ends too: it was started
        // with the old password (or by an account that may no longer sign in).
        tx.close_login_challenges(user_id, now).await?;
        for sid in &revoked {
            let (audit, event) = events::session_id_revoked(sid, user_id, reason, actor, ctx);
            tx.append_audit(&[audit]).await?;
            tx.append_events(&[event]).await?;
        }
        self.metrics
            .sessions
            .revoked
            .with_label_values(&[reason.as_str()])
            .inc_by(revoked.len() as u64);
        Ok(revoked)
    }

    /// Revokes every live session of a user in its own transaction.
    pub async fn revoke_all(
        &self,
        user_id: &str,
        keep: Option<&str>,
        reason: RevokeReason,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<usize, ServiceError> {
        let mut tx = self.store.begin_write().await?;
        let revoked = self
            .revoke_all_in(&mut tx, user_id, keep, reason, actor, ctx)
            .await?;
        tx.commit().await?;
        if !revoked.is_empty() {
            self.sessions_changed();
        }
        Ok(revoked.len())
    }

    /// Ends the session a refresh token or an access token belongs to. A
    /// device-bound session's refresh token ends it only from its device
    /// (`device_id`, the request's `X-Device-Id`): else `device_mismatch`,
    /// and the session goes on.
    pub async fn logout(
        &self,
        token: &str,
        device_id: Option<&str>,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let sid = match self.refresh_format.parse(token) {
            Ok(hash) => match self.store.refresh_token_session(&hash).await? {
                Some(sid) => {
                    let presented = self.presented_device(device_id);
                    let session = self.store.get_session(&sid).await?;
                    if session.is_some_and(|s| !Self::device_may_refresh(&s, &presented)) {
                        return Err(DomainError::DeviceMismatch.into());
                    }
                    Some(sid)
                }
                None => None,
            },
            Err(_) => self
                .authenticate(token)
                .await?
                .map(|grant| grant.claims.sid),
        };
        let sid = sid.ok_or(DomainError::InvalidGrant)?;
        self.revoke(&sid, RevokeReason::Logout, actor, ctx).await?;
        Ok(())
    }
}
