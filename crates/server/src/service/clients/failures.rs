//! Failed client authentications: counted per client IP (IPv6 by /64) so
//! that a caller guessing secrets is stopped after
//! `auth_failure_limit_per_minute` failures, logged with the reason, and
//! aggregated into the audit log by the background writer (anyone can send
//! failures, so one synchronous audit row each would let a caller grow the
//! table and slow every request).
//!
//! A throttled caller gets the answer of every other failure (`401
//! invalid_client`, no `Retry-After`): a distinct status or header would
//! tell a guesser that it was throttled, and so that its earlier guesses
//! were counted as failures. A legitimate client stuck behind a throttled
//! address finds the reason (`throttled`) in the log and the audit log.

use std::time::Duration;

use tessera_core::{
    audit::RequestContext, client::ClientAuthFailure, gcra::RateRule, rate_limit::LimitKey,
};

use super::{ClientCredentials, ClientService};
use crate::service::{
    failure_audit::{FailureKind, VerifyFailureEvent},
    rate_limit::Admission,
};

/// The failure limit's name (metric label, key namespace).
const LIMITER: &str = "client_auth_failures_ip";

impl ClientService {
    /// `None` when the limit is off (0).
    fn failure_rule(&self) -> Option<RateRule> {
        let per_minute = self.settings.auth_failure_limit_per_minute;
        RateRule::new(per_minute, Duration::from_secs(60)).ok()
    }

    /// `None` when the caller's address is over the failure limit (counted
    /// as a refusal); else the admission to settle. The engine never fails:
    /// with Redis down it decides in process.
    pub(super) async fn admit(&self, credentials: &ClientCredentials) -> Option<Admission> {
        let Some(ip) = credentials.client_ip else {
            return Some(Admission::default());
        };
        let key = LimitKey::client(ip).to_string();
        let rule = self.failure_rule();
        (self
            .limits
            .failures_allowed(LIMITER, &key, rule.as_ref())
            .await)
            .ok()
    }

    /// Counts the attempt against the caller's address when it was a guess
    /// (see [`is_a_guess`]); gives its reservation back otherwise.
    pub(super) async fn settle<T>(
        &self,
        credentials: &ClientCredentials,
        admission: Admission,
        result: &Result<T, ClientAuthFailure>,
    ) {
        let Some(ip) = credentials.client_ip else {
            return;
        };
        let failed = matches!(result, Err(reason) if is_a_guess(*reason));
        let key = LimitKey::client(ip).to_string();
        let rule = self.failure_rule();
        (self.limits)
            .settle(LIMITER, &key, rule.as_ref(), admission, failed)
            .await;
    }

    /// Logs, counts and aggregates one failure (its count against the
    /// caller's limit is [`ClientService::settle`]'s).
    pub(super) async fn record_failure(
        &self,
        credentials: &ClientCredentials,
        reason: ClientAuthFailure,
        ctx: &RequestContext,
    ) {
        let method = credentials.method();
        // The claimed id only when it names a client: an unknown "id" may
        // be a secret pasted into the wrong field, which must not reach the
        // log or the audit table.
        let known_id = credentials.claimed_id().filter(|_| {
            matches!(
                reason,
                ClientAuthFailure::WrongSecret
                    | ClientAuthFailure::NotPermitted
                    | ClientAuthFailure::IpNotAllowed
            )
        });
        self.metrics
            .clients
            .auth_failures
            .with_label_values(&[method.as_str()])
            .inc();
        if reason == ClientAuthFailure::Throttled {
            // One line per refused attempt would let a flood fill the log;
            // the aggregated audit row counts them.
            tracing::debug!(method = method.as_str(), "client authentication throttled");
        } else {
            tracing::warn!(
                reason = reason.as_str(),
                method = method.as_str(),
                client_id = known_id,
                request_id = ctx.request_id.as_deref(),
                "client authentication failed"
            );
        }
        let event = VerifyFailureEvent {
            client_ip: credentials.client_ip,
            code: reason.as_str(),
            token_id: known_id,
            at: chrono::Utc::now(),
        };
        self.background
            .record_failure(FailureKind::ClientAuth, event, &|| ctx.clone());
    }
}

/// Whether a failure could be someone guessing a secret, and so counts
/// against the per-IP limit. Not a throttled attempt (the caller keeps
/// exactly `limit` guesses a minute, however fast it sends), not a right
/// secret without the capability (a gateway calling an endpoint it may not
/// use must not lock its own introspection out), not a request without
/// credentials or with a verified certificate whose CN is not allowed
/// (nothing was guessed).
fn is_a_guess(reason: ClientAuthFailure) -> bool {
    matches!(
        reason,
        ClientAuthFailure::WrongSecret
            | ClientAuthFailure::UnknownClient
            | ClientAuthFailure::Malformed
    )
}
