//! Asking for a link: the answer comes before the lookup, and the work
//! (per-address limit, lookup, link, audit, mail) runs in a task that does
//! the same for every address, so nothing tells an account from none.

use std::net::IpAddr;

use serde_json::json;
use tessera_core::{
    audit::{Actor, AuditEntry, RequestContext},
    event::OutboxEvent,
    user::{mask_user_id, normalize_user_email, User},
    user_link::{LinkKind, NewLinkToken, UserLink},
};

use super::{LimitOf, LinkService};
use crate::service::ServiceError;

/// `POST /recover` or `POST /verify-email`.
#[derive(Debug)]
pub struct LinkRequest {
    pub email: String,
    pub client_ip: Option<IpAddr>,
    /// The request's `Accept-Language`, for a user without a `locale`.
    pub accept_language: Option<String>,
}

/// The stages of a link as events and audit actions name them.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stage {
    Requested,
    Completed,
    Failed,
}

/// `auth.recovery.*` or `auth.email_verification.*`.
pub(super) fn event_type(kind: LinkKind, stage: Stage) -> &'static str {
    match (kind, stage) {
        (LinkKind::PasswordReset, Stage::Requested) => "auth.recovery.requested",
        (LinkKind::PasswordReset, Stage::Completed) => "auth.recovery.completed",
        (LinkKind::PasswordReset, Stage::Failed) => "auth.recovery.failed",
        (LinkKind::EmailVerification, Stage::Requested) => "auth.email_verification.requested",
        (LinkKind::EmailVerification, Stage::Completed) => "auth.email_verification.completed",
        (LinkKind::EmailVerification, Stage::Failed) => "auth.email_verification.failed",
    }
}

/// One audit row and one event about a link of `user_id`: the masked user,
/// the link's id and the request id; never a token, never an address.
pub(super) fn link_record(
    action: &'static str,
    event: &'static str,
    user_id: &str,
    extra: serde_json::Value,
    actor: &Actor,
    ctx: &RequestContext,
) -> (AuditEntry, OutboxEvent) {
    let mut details = json!({ "user": mask_user_id(user_id), "request_id": ctx.request_id });
    if let (Some(map), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra) {
        map.extend(extra);
    }
    let audit = AuditEntry::success(actor, action, "user", user_id, details.clone(), ctx);
    (audit, OutboxEvent::session(event, details))
}

/// Who gets a link: a reset goes to an account that may sign in; a
/// verification to one whose address is not verified yet.
fn eligible(kind: LinkKind, user: &User) -> bool {
    user.can_sign_in()
        && match kind {
            LinkKind::PasswordReset => true,
            LinkKind::EmailVerification => user.email_verified_at.is_none(),
        }
}

impl LinkService {
    /// Checks the per-IP limit (`429` past it) and the address's shape
    /// (`422`), then hands the rest to a background task and returns: the
    /// caller answers `202` whatever the address.
    pub async fn request(
        &self,
        kind: LinkKind,
        req: LinkRequest,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let email = normalize_user_email(&req.email)?;
        self.admit_client(kind, LimitOf::Requests, req.client_ip)
            .await?;
        let Ok(permit) = self.0.in_flight.clone().try_acquire_owned() else {
            self.count(kind, "dropped");
            tracing::warn!(
                kind = kind.as_str(),
                "too many link requests in flight; one dropped"
            );
            return Ok(());
        };
        let (this, ctx) = (self.clone(), ctx.clone());
        tokio::spawn(async move {
            this.process(kind, email, req.accept_language, &ctx).await;
            drop(permit);
        });
        Ok(())
    }

    /// The work behind a request, the same steps for every address.
    async fn process(
        &self,
        kind: LinkKind,
        email: String,
        accept_language: Option<String>,
        ctx: &RequestContext,
    ) {
        let key = self.0.deps.address_hasher.hash_hex(email.as_bytes());
        if self.admit(kind, LimitOf::Address, &key).await.is_err() {
            self.count(kind, "throttled");
            return;
        }
        let user = match self.0.deps.store.find_user_by_email(&email).await {
            Ok(user) => user.filter(|u| eligible(kind, u)),
            Err(e) => {
                tracing::warn!(kind = kind.as_str(), error = %e, "link request: user lookup failed");
                self.count(kind, "failed");
                return;
            }
        };
        let Some(user) = user else {
            // The same slow hash a link costs, on the same pool: a busy pool
            // (a confirm or a login just after) must not tell an account
            // from none.
            let dummy = NewLinkToken::generate();
            let _ = self
                .0
                .deps
                .passwords
                .hash(dummy.secret.expose().to_string())
                .await;
            self.count(kind, "unknown_address");
            return;
        };
        let sent = self
            .issue(
                kind,
                &user,
                accept_language.as_deref(),
                &Actor::Anonymous,
                ctx,
            )
            .await;
        self.finish_send(kind, &user, sent);
    }

    /// Counts and logs the end of one send.
    fn finish_send(&self, kind: LinkKind, user: &User, sent: Result<(), ServiceError>) {
        let user = mask_user_id(&user.id);
        match sent {
            Ok(()) => {
                self.count(kind, "sent");
                tracing::info!(kind = kind.as_str(), %user, "link sent");
            }
            Err(e) => {
                self.count(kind, "failed");
                tracing::warn!(kind = kind.as_str(), %user, error = %e, "link not sent");
            }
        }
    }

    /// Makes a link for `user` and mails it. The secret is hashed first (on
    /// the password pool); then one transaction supersedes the user's older
    /// links of this kind, stores the new one and writes its audit row and
    /// event; then the mail goes out. The secret lives only in the mail.
    pub(super) async fn issue(
        &self,
        kind: LinkKind,
        user: &User,
        accept_language: Option<&str>,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let token = NewLinkToken::generate();
        let deps = &self.0.deps;
        let secret_hash = deps
            .passwords
            .hash(token.secret.expose().to_string())
            .await?;
        let now = tessera_core::ids::now();
        let ttl = match kind {
            LinkKind::PasswordReset => self.settings().reset_ttl,
            LinkKind::EmailVerification => self.settings().verification_ttl,
        };
        let link = UserLink {
            id: token.id.clone(),
            kind,
            user_id: user.id.clone(),
            secret_hash,
            created_at: now,
            expires_at: now + ttl,
            used_at: None,
            superseded_at: None,
            requester_ip_sealed: ctx.ip_sealed.clone(),
        };
        let mut tx = deps.store.begin_write().await?;
        // The user's row lock orders concurrent requests for one user (so
        // each supersedes the one before) and any change of address.
        let current = tx.lock_user(&user.id).await?;
        let still = current.filter(|u| eligible(kind, u) && u.email == user.email);
        if still.is_none() {
            return Err(ServiceError::Domain(tessera_core::DomainError::NotFound(
                tessera_core::error::Entity::User,
            )));
        }
        let superseded = tx.supersede_user_links(kind, &user.id, now).await?;
        tx.insert_user_link(&link).await?;
        let stage = event_type(kind, Stage::Requested);
        let extra =
            json!({ "link_id": link.id, "expires_at": link.expires_at, "superseded": superseded });
        let (audit, event) = link_record(stage, stage, &user.id, extra, actor, ctx);
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        tx.commit().await?;
        self.send_link(kind, user, &token, ttl, accept_language)
            .await
    }

    /// After an account is created (admin API, CLI, invite): mails the
    /// verification link when `TESSERA_SEND_VERIFICATION_ON_SIGNUP` is on
    /// and the address is not verified yet. The work runs in the
    /// background; [`LinkService::wait_idle`] waits for it.
    pub fn after_signup(&self, user: &User, actor: &Actor, ctx: &RequestContext) {
        let kind = LinkKind::EmailVerification;
        if !self.settings().send_verification_on_signup || !eligible(kind, user) {
            return;
        }
        let Ok(permit) = self.0.notices.clone().try_acquire_owned() else {
            self.count(kind, "dropped");
            tracing::warn!("too many link requests in flight; a sign-up mail was dropped");
            return;
        };
        let (this, user, actor, ctx) = (self.clone(), user.clone(), actor.clone(), ctx.clone());
        tokio::spawn(async move {
            let sent = this.issue(kind, &user, None, &actor, &ctx).await;
            this.finish_send(kind, &user, sent);
            drop(permit);
        });
    }
}
