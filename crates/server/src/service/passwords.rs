//! Passwords: the policy every new password meets, and hashing and checking
//! on the bounded hashing pool, never on the async workers. A full pool is
//! a 503 (the caller retries), not a stalled server.

use std::sync::Arc;

use tessera_core::{
    password::{self, HashParams, PasswordPolicy, PolicyContext, Verified},
    DomainError,
};

use super::{error::Dependency, hash_pool::HashPool, ServiceError};
use crate::metrics::Metrics;

/// A password check's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCheck {
    pub matches: bool,
    /// Right, but stored with an older algorithm or weaker parameters: the
    /// caller stores a fresh Argon2id hash.
    pub needs_rehash: bool,
}

/// Longest password input ever hashed, in bytes: 128 code points of up to
/// four bytes. Anything longer cannot meet the policy, so it is refused
/// without spending a hash on it.
const MAX_PASSWORD_BYTES: usize = 128 * 4;

pub struct Passwords {
    policy: PasswordPolicy,
    params: HashParams,
    pool: Arc<HashPool>,
    issuer: String,
    metrics: Arc<Metrics>,
}

impl Passwords {
    pub fn new(
        policy: PasswordPolicy,
        pool: Arc<HashPool>,
        issuer: String,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            policy,
            params: HashParams::DEFAULT,
            pool,
            issuer,
            metrics,
        }
    }

    /// The normalised password when it meets the policy; `field` names it in
    /// the 422 (`password`, `new_password`).
    pub fn check_policy(
        &self,
        field: &'static str,
        password: &str,
        email: Option<&str>,
        display_name: Option<&str>,
    ) -> Result<String, DomainError> {
        let ctx = PolicyContext {
            email,
            display_name,
            issuer: &self.issuer,
        };
        self.policy
            .check(password, &ctx)
            .map_err(|weak| DomainError::WeakPassword {
                field,
                reason: weak.to_string(),
            })
    }

    /// An Argon2id PHC string of an already normalised password.
    pub async fn hash(&self, normalised: String) -> Result<String, ServiceError> {
        let params = self.params;
        let started = std::time::Instant::now();
        let hashed = self
            .pool
            .run(move || password::hash_password(&normalised, &params))
            .await
            .map_err(|_| ServiceError::Unavailable(Dependency::PasswordHashing))?;
        self.observe(started);
        Ok(hashed)
    }

    /// Checks `password` against a stored hash; with no hash (an unknown
    /// e-mail, an account without a password) a fixed dummy hash is checked
    /// instead, so the answer takes as long as a wrong password.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<String>,
    ) -> Result<PasswordCheck, ServiceError> {
        let too_long = password.len() > MAX_PASSWORD_BYTES;
        let normalised = password::normalise(if too_long { "" } else { password });
        let params = self.params;
        let real = stored.is_some() && !too_long;
        let phc = stored.unwrap_or_else(|| password::dummy_hash(&params).to_string());
        let started = std::time::Instant::now();
        let verdict = self
            .pool
            .run(move || password::verify_password(&normalised, &phc, &params))
            .await
            .map_err(|_| ServiceError::Unavailable(Dependency::PasswordHashing))?;
        self.observe(started);
        Ok(match verdict {
            Ok(Verified::Match { needs_rehash }) if real => PasswordCheck {
                matches: true,
                needs_rehash,
            },
            Ok(_) => PasswordCheck {
                matches: false,
                needs_rehash: false,
            },
            Err(e) => {
                // A stored hash this build cannot read: refuse the login and
                // say why in the log (never the hash).
                tracing::error!(error = %e, "a stored password hash cannot be checked");
                PasswordCheck {
                    matches: false,
                    needs_rehash: false,
                }
            }
        })
    }

    fn observe(&self, started: std::time::Instant) {
        self.metrics
            .password_hash_seconds
            .observe(started.elapsed().as_secs_f64());
    }
}
