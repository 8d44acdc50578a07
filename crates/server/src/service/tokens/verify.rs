//! Verification, the hot path of [`TokenService`]: the failure limit for
//! unauthenticated callers, the lookup (checksum, SHA-256, cache, one
//! indexed read on a miss), the usage controls of tokens that have some
//! (`controls`), and the hand-off of usage and failures to the background
//! writer. A token without controls is never written synchronously; no lock
//! is held across an `.await`.

use std::{sync::Arc, time::Instant};

use chrono::Utc;
use tessera_core::{
    api_token::{evaluate, ApiToken, VerifyFailure},
    rate_limit::LimitKey,
};

use super::{controls::VerifyCaller, Refusal, TokenService, Verification};
use crate::service::{failure_audit::VerifyFailureEvent, verify_cache::CachedLookup, ServiceError};

/// A refusal and the token it concerns, if the secret matched one.
type Refused = (Refusal, Option<String>);

impl TokenService {
    /// The hot path. Never writes synchronously: usage and failures go to
    /// the background writer. A limited caller over its failure limit is
    /// answered `RATE_LIMITED` without a lookup, valid token or not: the
    /// limit caps guesses, and answering a right guess would make it no limit.
    pub async fn verify(
        &self,
        presented: &str,
        required_scopes: &[String],
        caller: &VerifyCaller<'_>,
    ) -> Result<Verification, ServiceError> {
        let started = Instant::now();
        let limit_key = self.failure_limit_key(caller);
        let result: Result<_, Refused> = match &limit_key {
            Some(key) if self.over_failure_limit(key).await => {
                Err((VerifyFailure::RateLimited.into(), None))
            }
            _ => match self.lookup_and_evaluate(presented, required_scopes).await? {
                Ok(token) => self.apply_controls(token, caller).await?,
                Err((failure, token_id)) => Err((failure.into(), token_id)),
            },
        };
        let now = tessera_core::ids::now();
        match &result {
            Ok(verified) => self.background.record_use(&verified.token.id, now),
            Err((refusal, token_id)) => {
                let failure = &refusal.code;
                self.metrics
                    .validation_fail
                    .with_label_values(&["api_token", failure.as_str()])
                    .inc();
                match (failure, &limit_key) {
                    (VerifyFailure::RateLimited, _) => self.metrics.rate_limited.inc(),
                    (_, Some(key)) => self.count_failure(key).await,
                    (_, None) => {}
                }
                let event = VerifyFailureEvent {
                    client_ip: caller.client_ip,
                    code: failure.as_str(),
                    token_id: token_id.as_deref(),
                    at: now,
                };
                self.background.record_verify_failure(event, caller.context);
            }
        }
        self.metrics
            .validation_latency
            .observe(started.elapsed().as_secs_f64());
        Ok(result.map_err(|(f, _)| f))
    }

    /// The failure-limit key of a limited caller with a known address, when
    /// the limit is on.
    fn failure_limit_key(&self, caller: &VerifyCaller<'_>) -> Option<LimitKey> {
        if !caller.limited || self.failure_limit.is_off() {
            return None;
        }
        caller.client_ip.map(LimitKey::client)
    }

    /// Whether the client is over its failure limit. A limiter that cannot
    /// answer lets the verification through: the limit is defence in depth
    /// (tokens carry ~178 bits), and an outage must not fail every caller.
    async fn over_failure_limit(&self, key: &LimitKey) -> bool {
        match self.limiter.check(key, self.failure_limit).await {
            Ok(decision) => !decision.is_allowed(),
            Err(e) => {
                tracing::warn!(error = %e, "verify failure limiter unavailable; allowing the verification");
                false
            }
        }
    }

    async fn count_failure(&self, key: &LimitKey) {
        if self.limiter.record(key, self.failure_limit).await.is_err() {
            tracing::warn!("the verify failure limiter is unavailable; a failure was not counted");
        }
    }

    async fn lookup_and_evaluate(
        &self,
        presented: &str,
        required_scopes: &[String],
    ) -> Result<Result<Arc<ApiToken>, (VerifyFailure, Option<String>)>, ServiceError> {
        let Ok(hash) = self.settings.format.parse(presented) else {
            return Ok(Err((VerifyFailure::Malformed, None)));
        };
        let lookup = match self.cache.get(&hash) {
            Some(hit) => {
                self.metrics.verify_cache_hits.inc();
                hit
            }
            None => {
                self.metrics.verify_cache_misses.inc();
                let generation = self.cache.generation();
                let found = match self.store.find_token_by_secret(&hash).await? {
                    Some(m) => CachedLookup::Found {
                        token: Arc::new(m.token),
                        valid_until: m.valid_until,
                    },
                    None => CachedLookup::Missing,
                };
                self.cache.insert(&hash, found.clone(), generation);
                found
            }
        };
        Ok(match lookup {
            CachedLookup::Missing => Err((VerifyFailure::NotFound, None)),
            CachedLookup::Found { token, valid_until } => {
                match evaluate(&token, valid_until, required_scopes, Utc::now()) {
                    Ok(()) => Ok(token),
                    Err(f) => Err((f, Some(token.id.clone()))),
                }
            }
        })
    }
}
