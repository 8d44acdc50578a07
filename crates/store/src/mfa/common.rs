//! Helpers shared by the second-factor repositories, so that they do not
//! import each other.

use sqlx::{Any, Transaction};
use tessera_core::{audit::AuditEntry, event::OutboxEvent};

use crate::{
    audit::sql::{insert_audit, insert_events},
    error::StoreError,
    sql::lock_key,
};

pub(crate) async fn write_log(
    tx: &mut Transaction<'static, Any>,
    audit: &[AuditEntry],
    events: &[OutboxEvent],
) -> Result<(), StoreError> {
    insert_audit(tx, audit).await?;
    insert_events(tx, events).await
}

/// Serialises per-subject changes that read before they write (recovery
/// code regeneration, auth code rate limits).
pub(crate) async fn lock_subject(
    tx: &mut Transaction<'static, Any>,
    subject: &str,
) -> Result<(), StoreError> {
    lock_key(tx, "mfa_subjects", "subject", subject).await
}
