//! The limits on the public invite routes: a request rate per client
//! address on validation and redemption (`TESSERA_RATE_LIMIT_INVITES`), a
//! failure limit on guess-like failures (`TESSERA_INVITE_FAILURE_LIMIT`),
//! both on the shared engine; and the refusal of the issuer's daily quota,
//! which the database counts.

use std::sync::Arc;

use tessera_core::{invite::InviteFailure, rate_limit::LimitKey, DomainError};

use super::{Attempt, InviteService};
use crate::service::{
    error::Refusal,
    rate_limit::{Admission, RateLimits},
    ServiceError,
};

/// The limiters' names (metric labels, key namespaces).
const REQUESTS: &str = "invite_ip";
const FAILURES: &str = "invite_failures_ip";
const QUOTA: &str = "invite_quota";

impl InviteService {
    /// Uses the shared rate-limit engine (`Services::rate_limits`) instead
    /// of a process-local one of its own.
    pub fn with_rate_limits(mut self, limits: Arc<RateLimits>) -> Self {
        self.limits = limits;
        self
    }

    /// Counts a failed attempt in the metrics (its count against the
    /// client's limit is [`InviteService::settle`]'s).
    pub(super) fn record_failure(&self, reason: &'static str) {
        self.metrics
            .validation_fail
            .with_label_values(&["invite", reason])
            .inc();
    }

    /// Counts the request, then 429 while the client is over its request
    /// rate or its failure limit; else the admission to settle. The engine
    /// never fails: with Redis down it decides in process (the 80-bit code
    /// space is the protection; the limits slow guessing).
    pub(super) async fn check_limit(
        &self,
        attempt: &Attempt<'_>,
    ) -> Result<Admission, ServiceError> {
        let Some(key) = failure_key(attempt) else {
            return Ok(Admission::default());
        };
        let requests = self.limits.classes().invite_ip;
        self.limits.admit(REQUESTS, &key, requests.as_ref()).await?;
        let rule = self.failure_rule.as_ref();
        self.limits
            .failures_allowed(FAILURES, &key, rule)
            .await
            .map_err(ServiceError::RateLimited)
    }

    /// Counts the attempt toward the client's failure limit when it
    /// `guessed` (see [`is_guess`]); gives its reservation back otherwise.
    pub(super) async fn settle(&self, attempt: &Attempt<'_>, admission: Admission, guessed: bool) {
        let Some(key) = failure_key(attempt) else {
            return;
        };
        let rule = self.failure_rule.as_ref();
        (self.limits)
            .settle(FAILURES, &key, rule, admission, guessed)
            .await;
    }

    /// The issuer's daily quota refused a new invite (counted in the
    /// database): a 429 with the quota's fields.
    pub(super) fn quota_refused(&self, error: &DomainError) -> ServiceError {
        self.limits.count_refusal(QUOTA);
        let quota = match error {
            DomainError::InviteQuotaExceeded { limit, .. } => *limit,
            _ => 0,
        };
        Refusal::quota(error, QUOTA, quota.max(0) as u64, 86_400).into()
    }
}

/// Whether a failure suggests guessing: an unknown code or a wrong e-mail;
/// not a correct code that is merely used up, expired or revoked.
pub(super) fn is_guess(f: InviteFailure) -> bool {
    matches!(f, InviteFailure::NotFound | InviteFailure::EmailMismatch)
}

/// Whether an attempt's error suggests guessing: a malformed code, or a
/// guess-like failure; not a dependency's failure.
pub(super) fn guessed_error(e: &ServiceError) -> bool {
    match e {
        ServiceError::Domain(DomainError::Invalid { field: "code", .. }) => true,
        ServiceError::Domain(DomainError::InviteUnusable(f)) => is_guess(*f),
        _ => false,
    }
}

/// What requests and guess-like failures are counted per: the client
/// address (IPv6 by its /64), when known (a console attempt has none and
/// is not limited).
fn failure_key(attempt: &Attempt<'_>) -> Option<String> {
    attempt.client_ip.map(|ip| LimitKey::client(ip).to_string())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use tessera_core::audit::RequestContext;

    use super::*;

    #[test]
    fn failures_count_per_client_address_and_not_without_one() {
        let context = RequestContext::default;
        let ip: IpAddr = "203.0.113.1".parse().unwrap();
        let from = |client_ip| Attempt {
            client_ip,
            context: &context,
        };
        assert_eq!(
            failure_key(&from(Some(ip))),
            Some(LimitKey::client(ip).to_string())
        );
        assert_eq!(
            failure_key(&from(None)),
            None,
            "no client address, no limit"
        );
    }
}
