//! Password reset and e-mail verification by single-use mailed links.
//!
//! A request (`/recover`, `/verify-email`) is answered before anything about
//! the address is looked up: the per-IP limit is checked, then the lookup,
//! the link, the audit row and the mail happen in a background task, for
//! known and unknown addresses alike, so neither the answer nor its timing
//! tells whether an account exists. A confirmation hashes the presented
//! secret (or, for an unknown id, a dummy) on the bounded password pool, and
//! uses the link with one conditional update inside the transaction that
//! makes the change, so a link works exactly once. The request and
//! confirmation limits are request rates on the shared engine, counted
//! apart per kind of link (`recovery_*`, `verification_*`).

mod confirm;
mod mail;
mod request;

use std::{net::IpAddr, sync::Arc};

use tessera_core::{
    crypto::KeyedHasher, gcra::RateRule, rate_limit::LimitKey, user_link::LinkKind,
};
use tessera_store::Store;
use tokio::sync::Semaphore;

pub use confirm::ConfirmReset;
pub use request::LinkRequest;

use super::{passwords::Passwords, rate_limit::RateLimits, sessions::SessionService, ServiceError};
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
    /// The shared rate-limit engine.
    pub rate_limits: Arc<RateLimits>,
    /// Named in the mails (`TESSERA_TOTP_ISSUER`'s display name).
    pub issuer: String,
}

/// Which of a kind's limits.
#[derive(Debug, Clone, Copy)]
pub(super) enum LimitOf {
    /// Requests per client IP.
    Requests,
    /// Requests per e-mail address.
    Address,
    /// Confirmations per client IP.
    Confirms,
}

/// The limiter's name (metric label, key namespace). Each kind counts
/// apart, so asking for a reset does not use up the verification requests.
fn limiter(kind: LinkKind, which: LimitOf) -> &'static str {
    match (kind, which) {
        (LinkKind::PasswordReset, LimitOf::Requests) => "recovery_ip",
        (LinkKind::PasswordReset, LimitOf::Address) => "recovery_address",
        // Confirmations of both kinds count together: each costs a slow hash.
        (_, LimitOf::Confirms) => "link_confirm_ip",
        (LinkKind::EmailVerification, LimitOf::Requests) => "verification_ip",
        (LinkKind::EmailVerification, LimitOf::Address) => "verification_address",
    }
}

struct Inner {
    deps: LinkDeps,
    settings: LinkSettings,
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
        Self(Arc::new(Inner {
            deps,
            settings,
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

    /// Counts one outcome of a link of `kind` (see `metrics::LINK_OUTCOMES`).
    fn count(&self, kind: LinkKind, outcome: &str) {
        let metrics = &self.0.deps.metrics;
        let counter = match kind {
            LinkKind::PasswordReset => &metrics.recovery_requests,
            LinkKind::EmailVerification => &metrics.email_verifications,
        };
        counter.with_label_values(&[outcome]).inc();
    }

    fn rule(&self, which: LimitOf) -> Option<&RateRule> {
        let s = self.settings();
        match which {
            LimitOf::Requests => s.requests_per_ip.as_ref(),
            LimitOf::Address => s.requests_per_address.as_ref(),
            LimitOf::Confirms => s.confirms_per_ip.as_ref(),
        }
    }

    /// Counts one event of `kind` under `key`, or refuses it (`429
    /// rate_limited` with the `RateLimit` fields). The engine never fails:
    /// with Redis down it decides in process.
    async fn admit(&self, kind: LinkKind, which: LimitOf, key: &str) -> Result<(), ServiceError> {
        let limits = &self.0.deps.rate_limits;
        limits
            .admit(limiter(kind, which), key, self.rule(which))
            .await
    }

    /// The per-IP limit of a route (none without a client address).
    async fn admit_client(
        &self,
        kind: LinkKind,
        which: LimitOf,
        ip: Option<IpAddr>,
    ) -> Result<(), ServiceError> {
        let Some(ip) = ip else { return Ok(()) };
        self.admit(kind, which, &LimitKey::client(ip).to_string())
            .await
    }
}
