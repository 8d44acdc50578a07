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

/// The failure limit's name (metric label, key namespace).
const LIMITER: &str = "verify_failures_ip";

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
        let rule = self.failure_rule.as_ref();
        // A refusal is counted by the engine itself.
        let admission = match &limit_key {
            Some(key) => Some(self.limits.failures_allowed(LIMITER, key, rule).await),
            None => None,
        };
        let result: Result<Result<_, Refused>, ServiceError> = match &admission {
            Some(Err(_)) => Ok(Err((VerifyFailure::RateLimited.into(), None))),
            _ => match self.lookup_and_evaluate(presented, required_scopes).await {
                Ok(Ok(token)) => self.apply_controls(token, caller).await,
                Ok(Err((failure, token_id))) => Ok(Err((failure.into(), token_id))),
                Err(e) => Err(e),
            },
        };
        if let (Some(key), Some(Ok(admitted))) = (&limit_key, admission) {
            let failed = matches!(result, Ok(Err(_)));
            (self.limits)
                .settle(LIMITER, key, rule, admitted, failed)
                .await;
        }
        let result = result?;
        let now = tessera_core::ids::now();
        match &result {
            Ok(verified) => self.background.record_use(&verified.token.id, now),
            Err((refusal, token_id)) => {
                let failure = &refusal.code;
                self.metrics
                    .validation_fail
                    .with_label_values(&["api_token", failure.as_str()])
                    .inc();
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
    fn failure_limit_key(&self, caller: &VerifyCaller<'_>) -> Option<String> {
        if !caller.limited || self.failure_rule.is_none() {
            return None;
        }
        caller.client_ip.map(|ip| LimitKey::client(ip).to_string())
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
