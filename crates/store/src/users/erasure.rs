//! What a data-protection request needs beyond the user row: reading every
//! audit row about a person (export), and removing or scrubbing what the
//! other tables keep about them (erasure). Methods on [`WriteTx`], so an
//! erasure is one transaction with its own audit row.

use crate::{
    audit::{sql::AuditRow, AuditRecord},
    error::StoreError,
    sql::{write_tx::WriteTx, TableRow},
};

/// The audit rows about a user: those the user did (`actor = 'user:<id>'`),
/// those about the account (`target_id = <id>`), and those about the
/// user's sessions (their IP was the user's). `$1` is the actor, `$2` the id.
const ABOUT_USER: &str = "(actor = $1 OR target_id = $2 \
     OR target_id IN (SELECT id FROM sessions WHERE user_id = $2))";

/// What [`WriteTx::erase_user_second_factors`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecondFactorsErased {
    pub totp_devices: u64,
    pub recovery_codes: u64,
    /// Attempt counters, replay records and one-time codes.
    pub mfa_state: u64,
}

/// Erasure and export inside a [`WriteTx`].
impl WriteTx {
    /// Every audit row about the user (see `ABOUT_USER`), oldest first,
    /// client details still sealed.
    pub async fn audit_about_user(
        &mut self,
        user_id: &str,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // The audit log's own column list, so a column added to it is read
        // here too.
        sqlx::query_as(&format!(
            "SELECT {} FROM audit_log t WHERE {ABOUT_USER} ORDER BY t.id",
            AuditRow::COLUMNS
        ))
        .bind(format!("user:{user_id}"))
        .bind(user_id)
        .fetch_all(&mut **self)
        .await
        .map_err(StoreError::from)
    }

    /// Clears the sealed IP and user agent of every audit row about the
    /// user; the rows, and the ids in them, stay. Run it before the user's
    /// sessions are deleted (it finds their rows through them).
    pub async fn scrub_user_audit(&mut self, user_id: &str) -> Result<u64, StoreError> {
        let n = sqlx::query(&format!(
            "UPDATE audit_log SET ip_enc = NULL, user_agent_enc = NULL WHERE {ABOUT_USER} \
             AND (ip_enc IS NOT NULL OR user_agent_enc IS NOT NULL)"
        ))
        .bind(format!("user:{user_id}"))
        .bind(user_id)
        .execute(&mut **self)
        .await?
        .rows_affected();
        Ok(n)
    }

    /// Deletes the user's TOTP devices, recovery codes, attempt counters,
    /// replay record and one-time codes (their subject is the user id),
    /// pending login challenges, WebSocket tickets and connection records
    /// (their subject is the user id too), and reset and verification links.
    pub async fn erase_user_second_factors(
        &mut self,
        user_id: &str,
    ) -> Result<SecondFactorsErased, StoreError> {
        let mut erased = SecondFactorsErased::default();
        for (table, column) in [
            ("totp_devices", "subject"),
            ("recovery_codes", "subject"),
            ("mfa_attempts", "subject"),
            ("totp_replay", "subject"),
            ("auth_codes", "subject"),
            ("mfa_subjects", "subject"),
            ("login_challenges", "user_id"),
            ("ws_tickets", "subject"),
            ("ws_connections", "subject"),
            ("password_resets", "user_id"),
            ("email_verifications", "user_id"),
        ] {
            let n = sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1"))
                .bind(user_id)
                .execute(&mut **self)
                .await?
                .rows_affected();
            match table {
                "totp_devices" => erased.totp_devices = n,
                "recovery_codes" => erased.recovery_codes = n,
                "login_challenges"
                | "ws_tickets"
                | "ws_connections"
                | "password_resets"
                | "email_verifications" => {}
                _ => erased.mfa_state += n,
            }
        }
        Ok(erased)
    }
}
