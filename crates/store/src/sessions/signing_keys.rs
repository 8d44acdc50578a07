//! JWT signing keys, shared by every replica: the private half sealed under
//! the encryption key (its key id kept for re-keying), the public JWK in
//! clear, and the times that decide when a key signs and is published.

use chrono::{DateTime, Utc};
use sqlx::AnyPool;

use crate::{
    error::StoreError,
    sql::{opt_millis, to_millis, write_tx::WriteTx},
};

/// One stored signing key. `kid` is the JWT header's key id.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredSigningKey {
    #[sqlx(rename = "id")]
    pub kid: String,
    pub algorithm: String,
    /// `Keyring::seal` output of the private key.
    pub private_sealed: String,
    /// The id of the encryption key that sealed it (`tessera keys rekey`).
    pub key_id: String,
    #[sqlx(try_from = "crate::sql::columns::JsonText")]
    pub public_jwk: serde_json::Value,
    #[sqlx(try_from = "crate::sql::columns::Millis")]
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "crate::sql::columns::Millis")]
    pub signs_from: DateTime<Utc>,
    #[sqlx(try_from = "crate::sql::columns::OptMillis")]
    pub retired_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "crate::sql::columns::OptMillis")]
    pub publish_until: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, algorithm, private_sealed, key_id, public_jwk, created_at, \
     signs_from, retired_at, publish_until";

pub(super) async fn all(pool: &AnyPool) -> Result<Vec<StoredSigningKey>, StoreError> {
    let keys = sqlx::query_as::<_, StoredSigningKey>(&format!(
        "SELECT {COLUMNS} FROM signing_keys ORDER BY created_at, id"
    ))
    .fetch_all(pool)
    .await?;
    Ok(keys)
}

/// Signing-key changes inside a [`WriteTx`].
impl WriteTx {
    pub async fn insert_signing_key(&mut self, k: &StoredSigningKey) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO signing_keys ({COLUMNS}, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $6)"
        ))
        .bind(&k.kid)
        .bind(&k.algorithm)
        .bind(&k.private_sealed)
        .bind(&k.key_id)
        .bind(k.public_jwk.to_string())
        .bind(to_millis(k.created_at))
        .bind(to_millis(k.signs_from))
        .bind(opt_millis(k.retired_at))
        .bind(opt_millis(k.publish_until))
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    /// Every signing key, locked against a concurrent rotation: the table
    /// is tiny, so the whole of it is the unit of change.
    pub async fn lock_signing_keys(&mut self) -> Result<Vec<StoredSigningKey>, StoreError> {
        sqlx::query("UPDATE signing_keys SET updated_at = updated_at")
            .execute(&mut **self)
            .await?;
        let keys = sqlx::query_as::<_, StoredSigningKey>(&format!(
            "SELECT {COLUMNS} FROM signing_keys ORDER BY created_at, id"
        ))
        .fetch_all(&mut **self)
        .await?;
        Ok(keys)
    }

    /// Writes a key's lifecycle times and sealed half (retire, re-key).
    pub async fn update_signing_key(&mut self, k: &StoredSigningKey) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE signing_keys SET private_sealed = $2, key_id = $3, signs_from = $4, \
             retired_at = $5, publish_until = $6, updated_at = $7 WHERE id = $1",
        )
        .bind(&k.kid)
        .bind(&k.private_sealed)
        .bind(&k.key_id)
        .bind(to_millis(k.signs_from))
        .bind(opt_millis(k.retired_at))
        .bind(opt_millis(k.publish_until))
        .bind(to_millis(Utc::now()))
        .execute(&mut **self)
        .await?;
        Ok(())
    }
}
