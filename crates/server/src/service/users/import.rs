//! Migration from the identity service Tessera replaces: accounts arrive
//! with the password hash the old system stored (Argon2, bcrypt, scrypt),
//! kept as it is until the person's next successful login re-hashes it to
//! Argon2id. Importing is idempotent by e-mail: an existing account is
//! never duplicated or overwritten.

use super::UserService;
use crate::service::ServiceError;
use tessera_core::{
    audit::{Actor, RequestContext},
    ids::new_id,
    password::{classify_hash, HashError, HashKind},
    user::{
        mask_user_id, normalize_user_email, validate_display_name, validate_locale, validate_roles,
        User,
    },
    DomainError,
};

/// One account from the old system.
#[derive(Debug, Clone, Default)]
pub struct ImportRecord {
    pub email: String,
    pub email_verified: bool,
    pub roles: Vec<String>,
    /// A PHC string (Argon2id, Argon2i, scrypt) or bcrypt `$2a$/$2b$/$2y$`.
    pub password_hash: String,
    pub display_name: Option<String>,
    pub locale: Option<String>,
}

/// What importing one record did.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportOutcome {
    Created(User),
    /// A live account already has this e-mail; it was left as it is.
    Skipped {
        existing_id: String,
    },
}

/// Why a stored hash cannot be imported, in words that never quote it.
fn hash_problem(e: HashError) -> DomainError {
    let message = match e {
        HashError::Unsupported => "not a supported password hash (Argon2id, Argon2i, scrypt PHC \
             string, or bcrypt $2a$/$2b$/$2y$)"
            .to_string(),
        HashError::Malformed(kind) => format!("malformed {} hash", kind.as_str()),
        HashError::TooCostly(kind) => format!(
            "the {} hash's cost parameters are beyond what this server verifies",
            kind.as_str()
        ),
    };
    DomainError::invalid("password_hash", message)
}

impl UserService {
    /// Validates a record as an import would, without touching the
    /// database: the account it would create. `--dry-run` stops here.
    pub fn prepare_import(&self, record: ImportRecord) -> Result<User, ServiceError> {
        let now = tessera_core::ids::now();
        let email = normalize_user_email(&record.email)?;
        let display_name = validate_display_name(record.display_name)?;
        let locale = validate_locale(record.locale)?;
        let roles = validate_roles(&record.roles)?;
        let hash = record.password_hash.trim();
        match classify_hash(hash) {
            // Argon2d is verified at login but is no password hash to import.
            Ok(HashKind::Argon2d) => {
                return Err(DomainError::invalid(
                    "password_hash",
                    "argon2d hashes are not accepted for import",
                )
                .into())
            }
            Ok(_) => {}
            Err(e) => return Err(hash_problem(e).into()),
        }
        let mut user = User::new(new_id(), email, roles, now);
        user.password_hash = Some(hash.to_string());
        user.display_name = display_name;
        user.locale = locale;
        user.email_verified_at = record.email_verified.then_some(now);
        Ok(user)
    }

    /// Imports one account with its hash as stored, in one transaction with
    /// its audit row and `user.created` event. A live account with the same
    /// e-mail is [`ImportOutcome::Skipped`], also when a concurrent import
    /// wins the race for it.
    pub async fn import(
        &self,
        record: ImportRecord,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<ImportOutcome, ServiceError> {
        let user = self.prepare_import(record)?;
        let mut tx = self.store.begin_write().await?;
        if let Some(existing) = tx.find_user_by_email(&user.email).await? {
            return Ok(ImportOutcome::Skipped {
                existing_id: existing.id,
            });
        }
        let inserted = match self.insert_in(&mut tx, &user, actor, ctx).await {
            Ok(()) => tx.commit().await.map_err(ServiceError::from),
            Err(e) => Err(e),
        };
        match inserted {
            Ok(()) => {
                tracing::info!(user = %mask_user_id(&user.id), "user imported");
                Ok(ImportOutcome::Created(user))
            }
            Err(e) if is_email_taken(&e) => self.skipped_after_race(&user.email).await,
            Err(e) => Err(e),
        }
    }

    /// The account a concurrent writer created with this e-mail.
    async fn skipped_after_race(&self, email: &str) -> Result<ImportOutcome, ServiceError> {
        let existing = self
            .store
            .find_user_by_email(email)
            .await?
            .ok_or(DomainError::EmailTaken)?;
        Ok(ImportOutcome::Skipped {
            existing_id: existing.id,
        })
    }
}

fn is_email_taken(e: &ServiceError) -> bool {
    matches!(
        e,
        ServiceError::Domain(DomainError::EmailTaken) | ServiceError::Conflict(_)
    )
}
