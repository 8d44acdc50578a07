//! Data-protection requests about one person: an export of everything
//! stored about them (client addresses and user agents decrypted), and an
//! erasure that removes what can go and replaces the account's personal
//! fields by a tombstone, keeping the id so the audit log still adds up.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tessera_core::{
    audit::{Actor, RequestContext, IP_CONTEXT, USER_AGENT_CONTEXT},
    ids::is_valid_id,
    mfa::TotpDevice,
    session::SessionView,
    user::{mask_user_id, User, UserStatus, UserView},
};
use tessera_store::{AttemptKey, AuditRecord};
use utoipa::ToSchema;

use super::{not_found, user_record, UserService};
use crate::service::ServiceError;

/// Everything Tessera stores about one user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserExport {
    pub user: UserView,
    /// Set when the account was erased (the rest is then its tombstone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<DateTime<Utc>>,
    pub sessions: Vec<ExportedSession>,
    /// Second-factor devices (never their secrets).
    pub totp_devices: Vec<TotpDevice>,
    pub recovery_codes_left: i64,
    /// Audit rows by the user, about the account, and about its sessions.
    pub audit: Vec<ExportedAuditRow>,
    /// Sealed values no configured key could open (an older key removed).
    pub undecryptable: usize,
    pub exported_at: DateTime<Utc>,
}

/// A session with the client it was opened from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportedSession {
    #[serde(flatten)]
    pub session: SessionView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// An audit row with its client details decrypted.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportedAuditRow {
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub outcome: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub occurrences: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// What an erasure removed. Erasing an erased account changes nothing
/// and reports zeros with the first erasure's time.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErasureReport {
    pub user_id: String,
    pub erased_at: DateTime<Utc>,
    /// `false` when the account had already been erased.
    pub erased_now: bool,
    pub sessions_deleted: u64,
    pub totp_devices_deleted: u64,
    pub recovery_codes_deleted: u64,
    /// Attempt counters, replay records and one-time codes.
    pub mfa_state_deleted: u64,
    /// Audit rows whose IP address and user agent were cleared.
    pub audit_rows_scrubbed: u64,
}

/// Opens sealed client details, counting what cannot be opened.
struct Opener<'a> {
    ring: &'a tessera_core::crypto::Keyring,
    failed: usize,
}

impl Opener<'_> {
    fn open(&mut self, sealed: Option<&str>, context: &str) -> Option<String> {
        let sealed = sealed?;
        match self.ring.open(sealed, context) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(_) => {
                self.failed += 1;
                None
            }
        }
    }

    fn audit_row(&mut self, r: AuditRecord) -> ExportedAuditRow {
        ExportedAuditRow {
            ip: self.open(r.ip_sealed.as_deref(), IP_CONTEXT),
            user_agent: self.open(r.user_agent_sealed.as_deref(), USER_AGENT_CONTEXT),
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            request_id: r.request_id,
            outcome: r.outcome,
            details: r.details,
            occurrences: r.occurrences,
        }
    }
}

/// The account with its personal fields replaced: the id stays, so rows
/// that name it still resolve to "an erased user".
fn tombstone(user: &mut User, now: DateTime<Utc>) {
    user.email = format!("erased+{}@invalid", user.id);
    user.email_verified_at = None;
    user.display_name = None;
    user.locale = None;
    user.password_hash = None;
    user.status = UserStatus::Disabled;
    user.deleted_at = user.deleted_at.or(Some(now));
    user.erased_at = Some(now);
    user.updated_at = now;
}

impl UserService {
    /// Any stored user, deleted or erased too (a deleted account's data is
    /// still there to export or erase).
    async fn any_user(&self, id: &str) -> Result<User, ServiceError> {
        if !is_valid_id(id) {
            return Err(not_found());
        }
        self.store.get_user(id).await?.ok_or_else(not_found)
    }

    /// Everything stored about the user, read in one transaction.
    pub async fn export(&self, id: &str) -> Result<UserExport, ServiceError> {
        let user = self.any_user(id).await?;
        let now = Utc::now();
        let mut tx = self.store.begin_write().await?;
        let sessions = tx.user_sessions(&user.id).await?;
        let audit = tx.audit_about_user(&user.id).await?;
        drop(tx);
        let totp_devices = self.store.list_totp_devices(&user.id).await?;
        let recovery_codes_left = self.store.recovery_codes_left(&user.id).await?;
        let mut opener = Opener {
            ring: &self.audit_keyring,
            failed: 0,
        };
        let sessions = sessions
            .into_iter()
            .map(|s| ExportedSession {
                ip: opener.open(s.ip_sealed.as_deref(), IP_CONTEXT),
                user_agent: opener.open(s.user_agent_sealed.as_deref(), USER_AGENT_CONTEXT),
                session: s.view(now),
            })
            .collect();
        let audit = audit.into_iter().map(|r| opener.audit_row(r)).collect();
        Ok(UserExport {
            user: user.view(),
            erased_at: user.erased_at,
            sessions,
            totp_devices,
            recovery_codes_left,
            audit,
            undecryptable: opener.failed,
            exported_at: now,
        })
    }

    /// Erases the user in one transaction: the audit rows about them lose
    /// their IP and user agent, sessions and refresh tokens, second factors
    /// and login counters are deleted, and the account becomes a disabled,
    /// deleted tombstone. The erasure itself is audited (`user.erase`).
    pub async fn erase(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<ErasureReport, ServiceError> {
        self.any_user(id).await?;
        let now = tessera_core::ids::now();
        let mut tx = self.store.begin_write().await?;
        let mut user = tx.lock_user(id).await?.ok_or_else(not_found)?;
        if let Some(erased_at) = user.erased_at {
            return Ok(ErasureReport {
                user_id: user.id,
                erased_at,
                erased_now: false,
                sessions_deleted: 0,
                totp_devices_deleted: 0,
                recovery_codes_deleted: 0,
                mfa_state_deleted: 0,
                audit_rows_scrubbed: 0,
            });
        }
        // Scrub first: it finds the session rows' audit through the sessions.
        let audit_rows_scrubbed = tx.scrub_user_audit(&user.id).await?;
        let sessions_deleted = tx.delete_user_sessions(&user.id).await?;
        let factors = tx.erase_user_second_factors(&user.id).await?;
        tx.reset_login_attempts(&AttemptKey::Account(user.email.clone()))
            .await?;
        tombstone(&mut user, now);
        tx.update_user(&user).await?;
        let report = ErasureReport {
            user_id: user.id.clone(),
            erased_at: now,
            erased_now: true,
            sessions_deleted,
            totp_devices_deleted: factors.totp_devices,
            recovery_codes_deleted: factors.recovery_codes,
            mfa_state_deleted: factors.mfa_state,
            audit_rows_scrubbed,
        };
        let extra = json!({
            "sessions_deleted": sessions_deleted,
            "totp_devices_deleted": factors.totp_devices,
            "audit_rows_scrubbed": audit_rows_scrubbed,
        });
        let (audit, event) = user_record("user.erase", "user.erased", &user, actor, ctx, extra);
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        tx.commit().await?;
        self.sessions.sessions_changed();
        tracing::info!(user = %mask_user_id(&user.id), "user erased");
        Ok(report)
    }
}
