//! What the cache hands out: a token that never shows its secret in `Debug`,
//! and the tier it came from. A leaf that every lookup path shares.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tessera_core::SecretString;

/// Which tier served a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Memory,
    Redis,
    Login,
}

/// A valid upstream token. Cheap to clone (the secret is shared); `Debug`
/// never prints the secret.
#[derive(Clone)]
pub struct Token {
    pub(crate) secret: Arc<SecretString>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub tier: Tier,
}

impl Token {
    /// The raw token, to put in the upstream request and nowhere else.
    pub fn expose(&self) -> &str {
        self.secret.expose()
    }

    /// Whether both hold the same token (cheaply when they share it).
    pub(crate) fn same_secret(&self, other: &Token) -> bool {
        Arc::ptr_eq(&self.secret, &other.secret) || self.expose() == other.expose()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("secret", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("created_at", &self.created_at)
            .field("tier", &self.tier)
            .finish()
    }
}
