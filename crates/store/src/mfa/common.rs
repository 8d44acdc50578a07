//! Helpers shared by the second-factor repositories, so that they do not
//! import each other.

use tessera_core::{audit::AuditEntry, event::OutboxEvent};

use crate::sql::write_tx::WriteTx;
use crate::{
    audit::sql::{insert_audit, insert_events},
    error::StoreError,
    sql::lock_key,
};

pub(crate) async fn write_log(
    tx: &mut WriteTx,
    audit: &[AuditEntry],
    events: &[OutboxEvent],
) -> Result<(), StoreError> {
    insert_audit(tx, audit).await?;
    insert_events(tx, events).await
}

/// Serialises per-subject changes that read before they write (recovery
/// code regeneration, auth code rate limits).
pub(crate) async fn lock_subject(tx: &mut WriteTx, subject: &str) -> Result<(), StoreError> {
    lock_key(tx, "mfa_subjects", "subject", subject).await
}
