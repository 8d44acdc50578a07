//! Confirming a link: the presented secret is checked against the stored
//! Argon2id hash (an unknown id checks a dummy hash, so it takes as long as
//! a wrong secret), then the link is used by one conditional update inside
//! the transaction that changes the password or marks the address verified.

use std::net::IpAddr;

use serde_json::json;
use tessera_core::{
    audit::{Actor, RequestContext},
    session::RevokeReason,
    user::User,
    user_link::{self, LinkFailure, LinkKind, UserLink},
    DomainError, SecretString,
};
use tessera_store::WriteTx;

use super::{
    request::{event_type, link_record, Stage},
    LimitOf, LinkService,
};
use crate::service::ServiceError;

/// `POST /recover/confirm`.
#[derive(Debug)]
pub struct ConfirmReset {
    pub token: SecretString,
    /// Redacted in `Debug`.
    pub password: SecretString,
    pub client_ip: Option<IpAddr>,
    /// For the password-changed notice, when the user has no `locale`.
    pub accept_language: Option<String>,
}

/// What a completed confirmation records besides its audit row.
struct Completion {
    kind: LinkKind,
    /// `user.password_reset` or `user.email_verified`.
    user_event: &'static str,
    extra: serde_json::Value,
}

fn unusable(f: LinkFailure) -> ServiceError {
    DomainError::LinkUnusable(f).into()
}

impl LinkService {
    /// Sets a new password from a reset link. In one transaction: the link
    /// is used, the Argon2id hash set, the address marked verified (the
    /// link reached it), every session and refresh token of the user
    /// revoked, and the audit row and events written. Second factors are
    /// untouched: the next login still asks for one. Then the user is told
    /// by mail that the password changed.
    pub async fn confirm_reset(
        &self,
        req: ConfirmReset,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let kind = LinkKind::PasswordReset;
        self.admit_client(kind, LimitOf::Confirms, req.client_ip)
            .await?;
        let link = self.usable_link(kind, req.token.expose(), ctx).await?;
        let deps = &self.0.deps;
        let user = self.link_owner(kind, &link).await?;
        // A weak password leaves the link unused, so the person can retry.
        let normalised = deps.passwords.check_policy(
            "password",
            req.password.expose(),
            Some(&user.email),
            user.display_name.as_deref(),
        )?;
        let hash = deps.passwords.hash(normalised).await?;
        let now = tessera_core::ids::now();
        let mut tx = deps.store.begin_write().await?;
        // The user first, then the link: the order every writer of both
        // takes (an address change locks the user, then supersedes links).
        let mut user = tx
            .lock_user(&user.id)
            .await?
            .filter(User::can_sign_in)
            .ok_or_else(|| unusable(LinkFailure::Invalid))?;
        if !tx.use_user_link(kind, &link.id, now).await? {
            // Another confirmation of the same link won the update.
            self.count(kind, "invalid");
            return Err(unusable(LinkFailure::Invalid));
        }
        user.password_hash = Some(hash);
        user.email_verified_at = user.email_verified_at.or(Some(now));
        user.updated_at = now;
        tx.update_user(&user).await?;
        let actor = Actor::User(user.id.clone());
        let reason = RevokeReason::PasswordReset;
        let revoked = deps
            .sessions
            .revoke_all_in(&mut tx, &user.id, None, reason, &actor, ctx)
            .await?;
        let extra = json!({ "link_id": link.id, "sessions_revoked": revoked.len() });
        let completion = Completion {
            kind,
            user_event: "user.password_reset",
            extra,
        };
        self.complete(tx, completion, &user.id, &actor, ctx).await?;
        deps.sessions.sessions_changed();
        self.notify_password_changed(user, req.accept_language);
        Ok(())
    }

    /// Marks the address verified from a verification link, in one
    /// transaction with the link's use, the audit row and the events.
    pub async fn confirm_verification(
        &self,
        token: &SecretString,
        client_ip: Option<IpAddr>,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let kind = LinkKind::EmailVerification;
        self.admit_client(kind, LimitOf::Confirms, client_ip)
            .await?;
        let link = self.usable_link(kind, token.expose(), ctx).await?;
        let now = tessera_core::ids::now();
        let mut tx = self.0.deps.store.begin_write().await?;
        let mut user = tx
            .lock_user(&link.user_id)
            .await?
            .filter(User::can_sign_in)
            .ok_or_else(|| unusable(LinkFailure::Invalid))?;
        if !tx.use_user_link(kind, &link.id, now).await? {
            self.count(kind, "invalid");
            return Err(unusable(LinkFailure::Invalid));
        }
        if user.email_verified_at.is_none() {
            user.email_verified_at = Some(now);
            user.updated_at = now;
            tx.update_user(&user).await?;
        }
        let actor = Actor::User(user.id.clone());
        let extra = json!({ "link_id": link.id });
        let completion = Completion {
            kind,
            user_event: "user.email_verified",
            extra,
        };
        self.complete(tx, completion, &user.id, &actor, ctx).await
    }

    /// Ends a confirmation's transaction: its audit row, the flow's
    /// `completed` event and the user's event, then the commit.
    async fn complete(
        &self,
        mut tx: WriteTx,
        completion: Completion,
        user_id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let Completion {
            kind,
            user_event,
            extra,
        } = completion;
        let completed = event_type(kind, Stage::Completed);
        let (audit, event) = link_record(completed, completed, user_id, extra.clone(), actor, ctx);
        let (_, about_user) = link_record(completed, user_event, user_id, extra, actor, ctx);
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event, about_user]).await?;
        tx.commit().await?;
        self.count(kind, "completed");
        Ok(())
    }

    /// The live owner of a usable link; a link of a disabled or deleted
    /// account is as good as unknown.
    async fn link_owner(&self, kind: LinkKind, link: &UserLink) -> Result<User, ServiceError> {
        let user = self.0.deps.store.get_user(&link.user_id).await?;
        user.filter(User::can_sign_in).ok_or_else(|| {
            self.count(kind, "invalid");
            unusable(LinkFailure::Invalid)
        })
    }

    /// Finds the link a token names and checks its secret, with one slow
    /// hash whether or not the id is known. `invalid_token` for anything
    /// but the right secret of a live link; `token_expired` only for the
    /// right secret of an expired one.
    async fn usable_link(
        &self,
        kind: LinkKind,
        token: &str,
        ctx: &RequestContext,
    ) -> Result<UserLink, ServiceError> {
        let Some(presented) = user_link::parse(token) else {
            self.count(kind, "invalid");
            return Err(unusable(LinkFailure::Invalid));
        };
        let deps = &self.0.deps;
        let link = deps.store.get_user_link(kind, &presented.id).await?;
        let stored = link.as_ref().map(|l| l.secret_hash.clone());
        let check = deps
            .passwords
            .verify(presented.secret.expose(), stored)
            .await?;
        let now = tessera_core::ids::now();
        let verdict = match &link {
            Some(l) => l.judge(check.matches, now),
            None => Err(LinkFailure::Invalid),
        };
        match (verdict, link) {
            (Ok(()), Some(link)) => Ok(link),
            (Err(failure), link) => {
                self.count(kind, failure.as_str());
                if let Some(link) = link {
                    self.record_failure(link, failure, ctx);
                }
                Err(unusable(failure))
            }
            (Ok(()), None) => Err(unusable(LinkFailure::Invalid)),
        }
    }

    /// Audits a failed use of a known link, after the answer: the write
    /// would otherwise make a known id slower to refuse than an unknown one.
    fn record_failure(&self, link: UserLink, failure: LinkFailure, ctx: &RequestContext) {
        let (store, ctx) = (self.0.deps.store.clone(), ctx.clone());
        let failed = event_type(link.kind, Stage::Failed);
        let extra = json!({ "link_id": link.id, "reason": failure.as_str() });
        let (mut audit, event) = link_record(
            failed,
            failed,
            &link.user_id,
            extra,
            &Actor::Anonymous,
            &ctx,
        );
        audit.outcome = "failure";
        tokio::spawn(async move {
            let written = async {
                let mut tx = store.begin_write().await?;
                tx.append_audit(&[audit]).await?;
                tx.append_events(&[event]).await?;
                tx.commit().await
            };
            if let Err(e) = written.await {
                tracing::warn!(error = %e, "could not audit a failed link confirmation");
            }
        });
    }
}
