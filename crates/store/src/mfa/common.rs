//! Helpers shared by the second-factor repositories, so that they do not
//! import each other.

use crate::sql::write_tx::WriteTx;
use crate::{error::StoreError, sql::lock_key};

/// Serialises per-subject changes that read before they write (recovery
/// code regeneration, auth code rate limits).
pub(crate) async fn lock_subject(tx: &mut WriteTx, subject: &str) -> Result<(), StoreError> {
    lock_key(tx, "mfa_subjects", "subject", subject).await
}
