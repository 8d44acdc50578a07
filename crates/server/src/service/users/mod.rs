//! Users of the built-in identity store: create, read, change, disable,
//! delete, and set passwords. A change that ends a person's access
//! (disable, delete, a new password) revokes their sessions and refresh
//! tokens in the same transaction.

mod changes;
mod erasure;
mod import;

use std::sync::Arc;

use serde_json::json;
use tessera_core::{
    audit::{Actor, AuditEntry, RequestContext},
    crypto::Keyring,
    error::Entity,
    event::OutboxEvent,
    ids::{is_valid_id, new_id},
    user::{
        mask_user_id, normalize_user_email, validate_display_name, validate_locale, validate_roles,
        User, UserStatus,
    },
    DomainError, SecretString,
};
use tessera_store::{AttemptKey, Page, Store, StoreError, UserQuery, WriteTx};

use super::{links::LinkService, passwords::Passwords, sessions::SessionService, ServiceError};

pub use changes::UpdateUser;
pub use erasure::{ErasureReport, ExportedAuditRow, ExportedSession, UserExport};
pub use import::{ImportOutcome, ImportRecord};

/// A new account. The password is optional (an account may be created for
/// a person who sets one later through a reset link).
#[derive(Debug, Default)]
pub struct CreateUser {
    pub email: String,
    pub password: Option<SecretString>,
    pub display_name: Option<String>,
    pub locale: Option<String>,
    pub roles: Vec<String>,
    pub email_verified: bool,
}

pub struct UserService {
    store: Arc<dyn Store>,
    passwords: Arc<Passwords>,
    sessions: Arc<SessionService>,
    /// Opens the client details sealed in sessions and audit rows (export).
    audit_keyring: Keyring,
    /// Mails the verification link after sign-up, when configured.
    links: LinkService,
}

/// One audit row and one event about a user.
pub(crate) fn user_record(
    action: &'static str,
    event: &'static str,
    user: &User,
    actor: &Actor,
    ctx: &RequestContext,
    extra: serde_json::Value,
) -> (AuditEntry, OutboxEvent) {
    let mut details = json!({ "user": mask_user_id(&user.id), "user_id": user.id });
    if let (Some(map), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra) {
        map.extend(extra);
    }
    let audit = AuditEntry::success(actor, action, "user", &user.id, details.clone(), ctx);
    (audit, OutboxEvent::session(event, details))
}

/// Inserts a prepared user inside the caller's transaction (an invite
/// redemption creates its account this way), with its audit row and event.
/// A live account with the same e-mail is `email_taken`.
pub(crate) async fn insert_user_in(
    tx: &mut WriteTx,
    user: &User,
    actor: &Actor,
    ctx: &RequestContext,
) -> Result<(), ServiceError> {
    if tx.find_user_by_email(&user.email).await?.is_some() {
        return Err(DomainError::EmailTaken.into());
    }
    match tx.insert_user(user).await {
        Err(StoreError::Conflict(_)) => return Err(DomainError::EmailTaken.into()),
        other => other?,
    }
    let extra = json!({ "roles": user.roles });
    let (audit, event) = user_record("user.create", "user.created", user, actor, ctx, extra);
    tx.append_audit(&[audit]).await?;
    tx.append_events(&[event]).await?;
    Ok(())
}

fn not_found() -> ServiceError {
    DomainError::NotFound(Entity::User).into()
}

impl UserService {
    pub fn new(
        store: Arc<dyn Store>,
        passwords: Arc<Passwords>,
        sessions: Arc<SessionService>,
        audit_keyring: Keyring,
        links: LinkService,
    ) -> Self {
        Self {
            store,
            passwords,
            sessions,
            audit_keyring,
            links,
        }
    }

    /// Validates a new account and hashes its password: everything that
    /// can be done before a transaction opens.
    pub async fn prepare(&self, input: CreateUser) -> Result<User, ServiceError> {
        let now = tessera_core::ids::now();
        let email = normalize_user_email(&input.email)?;
        let display_name = validate_display_name(input.display_name)?;
        let locale = validate_locale(input.locale)?;
        let roles = validate_roles(&input.roles)?;
        let hash = match &input.password {
            Some(p) => {
                let normalised = self.passwords.check_policy(
                    "password",
                    p.expose(),
                    Some(&email),
                    display_name.as_deref(),
                )?;
                Some(self.passwords.hash(normalised).await?)
            }
            None => None,
        };
        let mut user = User::new(new_id(), email, roles, now);
        user.password_hash = hash;
        user.display_name = display_name;
        user.locale = locale;
        user.email_verified_at = input.email_verified.then_some(now);
        Ok(user)
    }

    /// Inserts a prepared user inside the caller's transaction; see
    /// `insert_user_in`.
    pub async fn insert_in(
        &self,
        tx: &mut WriteTx,
        user: &User,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        insert_user_in(tx, user, actor, ctx).await
    }

    pub async fn create(
        &self,
        input: CreateUser,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<User, ServiceError> {
        let user = self.prepare(input).await?;
        let mut tx = self.store.begin_write().await?;
        self.insert_in(&mut tx, &user, actor, ctx).await?;
        match tx.commit().await {
            Err(StoreError::Conflict(_)) => Err(ServiceError::from(DomainError::EmailTaken)),
            other => Ok(other?),
        }?;
        tracing::info!(user = %mask_user_id(&user.id), "user created");
        self.links.after_signup(&user, actor, ctx);
        Ok(user)
    }

    /// A live (not deleted) user.
    pub async fn get(&self, id: &str) -> Result<User, ServiceError> {
        if !is_valid_id(id) {
            return Err(not_found());
        }
        self.store
            .get_user(id)
            .await?
            .filter(|u| u.deleted_at.is_none())
            .ok_or_else(not_found)
    }

    pub async fn list(&self, mut q: UserQuery) -> Result<Page<User>, ServiceError> {
        if q.cursor.as_deref().is_some_and(|c| !is_valid_id(c)) {
            return Err(DomainError::invalid("cursor", "is not a cursor this API returned").into());
        }
        if let Some(email) = &q.email {
            q.email = Some(normalize_user_email(email)?);
        }
        Ok(self.store.list_users(&q).await?)
    }

    /// Lifts the login throttle of the user's account.
    pub async fn unlock(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<User, ServiceError> {
        let user = self.get(id).await?;
        let mut tx = self.store.begin_write().await?;
        tx.reset_login_attempts(&AttemptKey::Account(user.email.clone()))
            .await?;
        let audit = AuditEntry::success(
            actor,
            "user.unlock",
            "user",
            &user.id,
            json!({ "user": mask_user_id(&user.id) }),
            ctx,
        );
        tx.append_audit(&[audit]).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// The user's status as a value the API shows.
    pub fn status_name(user: &User) -> &'static str {
        if user.deleted_at.is_some() {
            "deleted"
        } else {
            UserStatus::as_str(user.status)
        }
    }
}
