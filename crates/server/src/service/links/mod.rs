//! Password reset and e-mail verification by single-use mailed links.
//!
//! A request (`/recover`, `/verify-email`) is answered before anything about
//! the address is looked up: the per-IP limit is checked, then the lookup,
//! the link, the audit row and the mail happen in a background task, for
//! known and unknown addresses alike, so neither the answer nor its timing
//! tells whether an account exists. A confirmation hashes the presented
//! secret (or, for an unknown id, a dummy) on the bounded password pool, and
//! uses the link with one conditional update inside the transaction that
//! makes the change, so a link works exactly once.

mod confirm;
mod mail;
mod request;

use std::{net::IpAddr, sync::Arc};

use tessera_core::{
    crypto::KeyedHasher,
    rate_limit::{Decision, Limit, LimitKey},
    user_link::LinkKind,
    DomainError,
};
use tessera_store::Store;
use tokio::sync::Semaphore;

pub use confirm::ConfirmReset;
pub use request::LinkRequest;

use super::{
    passwords::Passwords,
    rate_limit::{MemoryLimiter, RateLimiter},
    sessions::SessionService,
    ServiceError,
};
use crate::{config::LinkSettings, messaging::Messenger, metrics::Metrics};

/// The purpose of the keyed hash that turns an e-mail address into its
/// rate-limit key (the address itself is never a key).
pub const ADDRESS_HASH_PURPOSE: &str = "link-request-address";

/// Requests whose background work may run at once; past it a request is
/// still answered `202` and its work dropped (and counted), so a flood from
/// many addresses cannot pile up tasks.
const MAX_IN_FLIGHT: usize = 64;

/// What the link service needs from the rest of the server.
pub struct LinkDeps {
    pub store: Arc<dyn Store>,
    pub passwords: Arc<Passwords>,
    pub sessions: Arc<SessionService>,
    pub messenger: Messenger,
    pub address_hasher: KeyedHasher,
    pub metrics: Arc<Metrics>,
    /// Named in the mails (`TESSERA_TOTP_ISSUER`'s display name).
    pub issuer: String,
}

/// The request limiters of one kind of link. Each kind counts apart, so
/// asking for a reset does not use up the verification requests.
struct KindLimiters {
    requests_per_ip: MemoryLimiter,
    requests_per_address: MemoryLimiter,
}

impl KindLimiters {
    fn new() -> Self {
        Self {
            requests_per_ip: MemoryLimiter::new(),
            requests_per_address: MemoryLimiter::new(),
        }
    }
}

struct Inner {
    deps: LinkDeps,
    settings: LinkSettings,
    reset_limits: KindLimiters,
    verification_limits: KindLimiters,
    /// Confirmations of both kinds count together: each costs a slow hash.
    confirms_per_ip: MemoryLimiter,
    /// Background work of requests (a flood may fill it; then requests are
    /// dropped, and counted).
    in_flight: Arc<Semaphore>,
    /// Mails that must go out whatever the requests do: the
    /// password-changed notice and the sign-up verification. Apart from
    /// `in_flight`, so a request flood cannot crowd them out.
    notices: Arc<Semaphore>,
}

/// Cheap to clone (one `Arc`): a request's background task holds a clone.
#[derive(Clone)]
pub struct LinkService(Arc<Inner>);

impl LinkService {
    pub fn new(settings: LinkSettings, deps: LinkDeps) -> Self {
        for line in settings.defaults_in_use() {
            tracing::warn!("{line}");
        }
        Self(Arc::new(Inner {
            deps,
            settings,
            reset_limits: KindLimiters::new(),
            verification_limits: KindLimiters::new(),
            confirms_per_ip: MemoryLimiter::new(),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            notices: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }))
    }

    pub fn settings(&self) -> &LinkSettings {
        &self.0.settings
    }

    /// Waits until no background work (requests, notices) is running: the
    /// CLI waits for a sign-up mail before it exits.
    pub async fn wait_idle(&self) {
        for pool in [&self.0.in_flight, &self.0.notices] {
            if let Ok(all) = pool.acquire_many(MAX_IN_FLIGHT as u32).await {
                drop(all);
            }
        }
    }

    fn limits(&self, kind: LinkKind) -> &KindLimiters {
        match kind {
            LinkKind::PasswordReset => &self.0.reset_limits,
            LinkKind::EmailVerification => &self.0.verification_limits,
        }
    }

    /// Counts one outcome of a link of `kind` (see `metrics::LINK_OUTCOMES`).
    fn count(&self, kind: LinkKind, outcome: &str) {
        let metrics = &self.0.deps.metrics;
        let counter = match kind {
            LinkKind::PasswordReset => &metrics.recovery_requests,
            LinkKind::EmailVerification => &metrics.email_verifications,
        };
        counter.with_label_values(&[outcome]).inc();
    }

    /// Counts one event under `key` and says whether it was within `limit`;
    /// `Err(retry after)` when not. A limiter that cannot be asked lets the
    /// event through: these limits slow guessing, they are not the lock.
    async fn admit(
        &self,
        limiter: &dyn RateLimiter,
        key: &LimitKey,
        limit: Limit,
    ) -> Result<(), i64> {
        match limiter.check(key, limit).await {
            Ok(Decision::Deny { retry_after_secs }) => {
                self.0.deps.metrics.rate_limited.inc();
                Err(retry_after_secs)
            }
            Ok(Decision::Allow) | Err(_) => {
                let _ = limiter.record(key, limit).await;
                Ok(())
            }
        }
    }

    /// The per-IP limit of a route: `429 rate_limited` past it.
    async fn admit_client(
        &self,
        limiter: &dyn RateLimiter,
        ip: Option<IpAddr>,
        limit: Limit,
    ) -> Result<(), ServiceError> {
        let Some(ip) = ip else { return Ok(()) };
        self.admit(limiter, &LimitKey::client(ip), limit)
            .await
            .map_err(|retry_after_secs| DomainError::RateLimited { retry_after_secs }.into())
    }
}
