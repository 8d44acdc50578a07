//! Changes to an existing user, each one locked read-modify-write with its
//! audit row and event; those that end access revoke the user's sessions
//! in the same transaction.

use serde_json::json;
use tessera_core::{
    audit::{Actor, RequestContext},
    session::RevokeReason,
    user::{
        normalize_user_email, validate_display_name, validate_locale, validate_roles, User,
        UserStatus,
    },
    user_link::LinkKind,
    DomainError, SecretString,
};
use tessera_store::{StoreError, WriteTx};

use super::{not_found, user_record, UserService};
use crate::service::ServiceError;

/// A partial update; `None` leaves a field as it is. For nullable fields the
/// inner `None` clears the value.
#[derive(Debug, Default)]
pub struct UpdateUser {
    pub email: Option<String>,
    pub display_name: Option<Option<String>>,
    pub locale: Option<Option<String>>,
    pub roles: Option<Vec<String>>,
    pub email_verified: Option<bool>,
}

impl UserService {
    /// Locks a live user, lets `rule` change it, writes it. `rule` returns
    /// the names of the fields it changed; none changed writes nothing.
    async fn change<F>(
        &self,
        id: &str,
        rule: F,
    ) -> Result<(WriteTx, User, Vec<&'static str>), ServiceError>
    where
        F: FnOnce(&mut User) -> Result<Vec<&'static str>, ServiceError>,
    {
        self.get(id).await?;
        let mut tx = self.store.begin_write().await?;
        let mut user = tx
            .lock_user(id)
            .await?
            .filter(|u| u.deleted_at.is_none())
            .ok_or_else(not_found)?;
        let changed = rule(&mut user)?;
        if !changed.is_empty() {
            user.updated_at = tessera_core::ids::now();
            match tx.update_user(&user).await {
                // Another live user has the new e-mail (the unique index).
                Err(StoreError::Conflict(_)) => return Err(DomainError::EmailTaken.into()),
                other => other?,
            }
        }
        Ok((tx, user, changed))
    }

    pub async fn update(
        &self,
        id: &str,
        input: UpdateUser,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<User, ServiceError> {
        let email = input
            .email
            .as_deref()
            .map(normalize_user_email)
            .transpose()?;
        let display_name = input.display_name.map(validate_display_name).transpose()?;
        let locale = input.locale.map(validate_locale).transpose()?;
        let roles = input.roles.as_deref().map(validate_roles).transpose()?;
        let now = tessera_core::ids::now();
        let (mut tx, user, changed) = self
            .change(id, |u| {
                let mut changed = Vec::new();
                if let Some(e) = email.filter(|e| *e != u.email) {
                    u.email = e;
                    // A new address is not verified until it is.
                    u.email_verified_at = None;
                    changed.push("email");
                }
                if let Some(d) = display_name {
                    u.display_name = d;
                    changed.push("display_name");
                }
                if let Some(l) = locale {
                    u.locale = l;
                    changed.push("locale");
                }
                if let Some(r) = roles {
                    u.roles = r;
                    changed.push("roles");
                }
                if let Some(v) = input.email_verified {
                    u.email_verified_at = if v {
                        u.email_verified_at.or(Some(now))
                    } else {
                        None
                    };
                    changed.push("email_verified");
                }
                Ok(changed)
            })
            .await?;
        if changed.contains(&"email") {
            // Links mailed to the old address must not work for the new one.
            let now = tessera_core::ids::now();
            for kind in [LinkKind::PasswordReset, LinkKind::EmailVerification] {
                tx.supersede_user_links(kind, &user.id, now).await?;
            }
        }
        if !changed.is_empty() {
            let extra = json!({ "changed": changed });
            let (audit, event) =
                user_record("user.update", "user.updated", &user, actor, ctx, extra);
            tx.append_audit(&[audit]).await?;
            tx.append_events(&[event]).await?;
        }
        match tx.commit().await {
            Err(StoreError::Conflict(_)) => Err(ServiceError::from(DomainError::EmailTaken)),
            other => Ok(other?),
        }?;
        Ok(user)
    }

    /// Disables or enables sign-in; disabling revokes every session.
    pub async fn set_status(
        &self,
        id: &str,
        status: UserStatus,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<User, ServiceError> {
        let (mut tx, user, changed) = self
            .change(id, |u| {
                Ok(if u.status == status {
                    vec![]
                } else {
                    u.status = status;
                    vec!["status"]
                })
            })
            .await?;
        if !changed.is_empty() {
            let (action, event) = match status {
                UserStatus::Disabled => ("user.disable", "user.disabled"),
                UserStatus::Active => ("user.enable", "user.enabled"),
            };
            if status == UserStatus::Disabled {
                self.sessions
                    .revoke_all_in(
                        &mut tx,
                        &user.id,
                        None,
                        RevokeReason::UserDisabled,
                        actor,
                        ctx,
                    )
                    .await?;
            }
            let (audit, event) = user_record(action, event, &user, actor, ctx, json!({}));
            tx.append_audit(&[audit]).await?;
            tx.append_events(&[event]).await?;
        }
        tx.commit().await?;
        if status == UserStatus::Disabled && !changed.is_empty() {
            self.sessions.sessions_changed();
        }
        Ok(user)
    }

    /// Soft-deletes the user (the e-mail becomes free) and revokes every
    /// session.
    pub async fn delete(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let now = tessera_core::ids::now();
        let (mut tx, user, _) = self
            .change(id, |u| {
                u.deleted_at = Some(now);
                Ok(vec!["deleted_at"])
            })
            .await?;
        self.sessions
            .revoke_all_in(
                &mut tx,
                &user.id,
                None,
                RevokeReason::UserDeleted,
                actor,
                ctx,
            )
            .await?;
        let (audit, event) =
            user_record("user.delete", "user.deleted", &user, actor, ctx, json!({}));
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        tx.commit().await?;
        self.sessions.sessions_changed();
        Ok(())
    }

    /// Sets a new password (policy checked, Argon2id) and revokes every
    /// session but `keep` (the caller's own, for self-service).
    pub async fn set_password(
        &self,
        id: &str,
        password: &SecretString,
        keep: Option<&str>,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<User, ServiceError> {
        let current = self.get(id).await?;
        let normalised = self.passwords.check_policy(
            if keep.is_some() {
                "new_password"
            } else {
                "password"
            },
            password.expose(),
            Some(&current.email),
            current.display_name.as_deref(),
        )?;
        let hash = self.passwords.hash(normalised).await?;
        let (mut tx, user, _) = self
            .change(id, |u| {
                u.password_hash = Some(hash);
                Ok(vec!["password"])
            })
            .await?;
        let revoked = self
            .sessions
            .revoke_all_in(
                &mut tx,
                &user.id,
                keep,
                RevokeReason::PasswordChanged,
                actor,
                ctx,
            )
            .await?;
        // A reset link sent before the change must not undo it.
        let now = tessera_core::ids::now();
        tx.supersede_user_links(LinkKind::PasswordReset, &user.id, now)
            .await?;
        let extra = json!({ "sessions_revoked": revoked.len() });
        let (audit, event) = user_record(
            "user.password_change",
            "user.password_changed",
            &user,
            actor,
            ctx,
            extra,
        );
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        tx.commit().await?;
        self.sessions.sessions_changed();
        Ok(user)
    }

    /// Self-service: the current password first (a wrong one is
    /// `invalid_credentials`), then as [`Self::set_password`], keeping the
    /// caller's session.
    pub async fn change_own_password(
        &self,
        id: &str,
        current_password: &SecretString,
        new_password: &SecretString,
        session_id: &str,
        ctx: &RequestContext,
    ) -> Result<User, ServiceError> {
        let user = self.get(id).await?;
        let check = self
            .passwords
            .verify(current_password.expose(), user.password_hash.clone())
            .await?;
        if !check.matches {
            return Err(DomainError::InvalidCredentials.into());
        }
        let actor = Actor::User(user.id.clone());
        self.set_password(id, new_password, Some(session_id), &actor, ctx)
            .await
    }
}
