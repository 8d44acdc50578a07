//! The usage controls step of verification, after the token is known to be
//! valid: who may pass the caller's facts, then the IP lists, the device
//! binding, the rate limits and the credits, in that order. A refusal at
//! one step consumes nothing at the later ones. A token without controls
//! never reaches a write or a hash here: it is answered as before.
//!
//! Static controls come from the (cached) token; the first-use binding and
//! the credits are decided by a conditional database write (see
//! `tessera_store::TokenUsage`), so no replica's cache can make them stale.

use std::{net::IpAddr, sync::Arc};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tessera_core::{
    api_token::{ApiToken, ApiTokenView, VerifyFailure},
    audit::RequestContext,
    crypto::{constant_time_eq, CryptoError, KeyedHasher},
    gcra::RateRule,
    token_controls::DeviceBinding,
};
use tessera_store::{CreditSpend, DeviceBind};
use utoipa::ToSchema;

use super::TokenService;
use crate::service::ServiceError;

/// Who asks for a verification: the key of its failure limit and of its
/// aggregated audit row, and whether the failure limit applies.
pub struct VerifyCaller<'a> {
    pub client_ip: Option<IpAddr>,
    /// The failed-verification limit applies: an unauthenticated caller of
    /// `POST /v1/tokens/verify`. Not an authorised verifier (a resource
    /// server verifying for many users is one IP), not bearer
    /// authentication of other endpoints (a failure there is a 401), not the
    /// console.
    pub limited: bool,
    /// Builds the sealed audit context; called only for the first failure
    /// of an aggregated audit row.
    pub context: &'a (dyn Fn() -> RequestContext + Send + Sync),
    /// How the token's usage controls apply, with the caller's facts.
    pub controls: Controls,
}

impl VerifyCaller<'static> {
    /// A verification from the console (CLI, benchmarks): no address, no
    /// limit, usage controls observed but not consumed.
    pub fn console() -> Self {
        Self {
            client_ip: None,
            limited: false,
            context: &RequestContext::default,
            controls: Controls::Observe,
        }
    }
}

/// What an authorised verifier asserts about its own caller. Honoured only
/// from an admin token or a client with the `verify` capability.
#[derive(Debug, Clone, Default)]
pub struct CallerFacts {
    /// The address the resource server's caller came from; without it, the
    /// verifier's own (connection) address is checked.
    pub client_ip: Option<IpAddr>,
    /// An opaque device identifier (1-200 characters). A device id that a
    /// client asserts is not proof of possession.
    pub device_id: Option<String>,
    /// Credits this use costs (1-1000, default 1).
    pub cost: Option<i64>,
    /// Which rate limit to count against, and how much.
    pub ratelimit: Option<RateLimitRequest>,
}

/// The `ratelimit` of a verify request, for the rate-limit engine.
#[derive(Debug, Clone, Default)]
pub struct RateLimitRequest {
    /// The token's limit to apply (by default, all of them / the engine's choice).
    pub name: Option<String>,
    /// How many requests this one counts as (1-1000, default 1).
    pub cost: Option<i64>,
}

/// A rate limit's state after a check, as answers carry it (the fields of
/// the IETF `RateLimit` header: limit, remaining, seconds until reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct RateLimitState {
    pub limit: i64,
    pub remaining: i64,
    /// Seconds until the limit is fully available again.
    pub reset: i64,
}

/// The per-token limits' name on the engine (metric label, key namespace).
const TOKEN_LIMITER: &str = "token";
/// The metric label of a refusal for want of credits (a quota, not a rate).
const CREDITS_LIMITER: &str = "token_credits";

/// How a verification treats the token's usage controls.
#[derive(Debug, Clone)]
pub enum Controls {
    /// An unauthenticated caller of `POST /v1/tokens/verify`: a token with
    /// any control is refused (`CALLER_NOT_AUTHORIZED`).
    Anonymous,
    /// An authorised verifier, or a token authenticating Tessera's own API:
    /// every control applies, with these facts, and uses are consumed.
    Enforce(CallerFacts),
    /// Introspection and the console: the token's lifecycle only; nothing
    /// is checked against the controls and nothing is consumed.
    Observe,
}

/// A valid token, with what its controls said.
#[derive(Debug, Clone)]
pub struct Verified {
    pub token: Arc<ApiToken>,
    /// Credits left after this use (tokens with credits, when enforced).
    pub remaining: Option<i64>,
    /// The rate limit's state after this use, when one applied.
    pub ratelimit: Option<RateLimitState>,
    /// The device step admitted the caller's device: the token is bound to it.
    pub device_bound: bool,
}

impl Verified {
    fn plain(token: Arc<ApiToken>) -> Self {
        Self {
            token,
            remaining: None,
            ratelimit: None,
            device_bound: false,
        }
    }

    /// The token's view, with what this verification learnt from the
    /// database (credits left, the binding) rather than the cached record.
    pub fn view(&self, now: DateTime<Utc>) -> ApiTokenView {
        let mut view = self.token.view(now);
        if let (Some(credits), Some(left)) = (view.credits.as_mut(), self.remaining) {
            credits.remaining = left;
        }
        view.device_bound |= self.device_bound;
        view
    }
}

impl std::ops::Deref for Verified {
    type Target = ApiToken;

    fn deref(&self) -> &ApiToken {
        &self.token
    }
}

/// A refused verification: the code, and what the answer shows with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: VerifyFailure,
    /// With `USAGE_EXCEEDED`: the credits left.
    pub remaining: Option<i64>,
    /// With `RATE_LIMITED` from a token's limit: the limit's state.
    pub ratelimit: Option<RateLimitState>,
}

impl From<VerifyFailure> for Refusal {
    fn from(code: VerifyFailure) -> Self {
        Self {
            code,
            remaining: None,
            ratelimit: None,
        }
    }
}

/// The keys device ids are hashed under (never stored in clear): the
/// current key's, then the previous keys' (`TESSERA_ENC_KEY_PREVIOUS`), so
/// a binding made before a key rotation still matches after it.
pub struct DeviceKeys {
    current: KeyedHasher,
    previous: Vec<KeyedHasher>,
}

/// The keyed-hash purpose of device ids.
pub const DEVICE_HASH_PURPOSE: &str = "token-device";
/// The keyed-hash purpose of the device ids sessions are bound to (another
/// purpose: a token's and a session's hashes of one device do not match).
pub const SESSION_DEVICE_PURPOSE: &str = "session-device";

impl DeviceKeys {
    pub fn new(current: KeyedHasher, previous: Vec<KeyedHasher>) -> Self {
        Self { current, previous }
    }

    /// The keys for `purpose` derived from the server key `current` and
    /// the previous keys (so bindings survive a key rotation).
    pub fn derive(current: &str, previous: &[String], purpose: &str) -> Result<Self, CryptoError> {
        let key = |k: &str| KeyedHasher::new(k, purpose);
        let previous = previous.iter().map(|k| key(k)).collect::<Result<_, _>>()?;
        Ok(Self::new(key(current)?, previous))
    }

    /// What is stored for `device_id`: its hash under the current key.
    pub(crate) fn current(&self) -> &KeyedHasher {
        &self.current
    }

    /// The hashes `device_id` may be stored as, the current key's first.
    pub(crate) fn hashes(&self, device_id: &str) -> Vec<String> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|k| k.hash_hex(device_id.as_bytes()))
            .collect()
    }
}

/// A step's answer: go on, or refuse (nothing after it runs).
type Step<T> = Result<Result<T, Refusal>, ServiceError>;

impl TokenService {
    /// Applies the usage controls of a valid token for `caller`; a refusal
    /// names the token.
    pub(super) async fn apply_controls(
        &self,
        token: Arc<ApiToken>,
        caller: &VerifyCaller<'_>,
    ) -> Result<Result<Verified, (Refusal, Option<String>)>, ServiceError> {
        if !token.has_controls() {
            return Ok(Ok(Verified::plain(token)));
        }
        let id = token.id.clone();
        Ok(self
            .enforce(token, caller)
            .await?
            .map_err(|refusal| (refusal, Some(id))))
    }

    async fn enforce(&self, token: Arc<ApiToken>, caller: &VerifyCaller<'_>) -> Step<Verified> {
        let facts = match &caller.controls {
            Controls::Observe => return Ok(Ok(Verified::plain(token))),
            Controls::Anonymous => return Ok(Err(VerifyFailure::CallerNotAuthorized.into())),
            Controls::Enforce(facts) => facts,
        };
        // 1. The IP lists: the caller's asserted address, else the connection's.
        if !token
            .controls
            .ip_allowed(facts.client_ip.or(caller.client_ip))
        {
            return Ok(Err(VerifyFailure::IpNotAllowed.into()));
        }
        // 2. The device.
        if let Err(refusal) = self
            .check_device(&token, facts.device_id.as_deref())
            .await?
        {
            return Ok(Err(refusal));
        }
        // 3. The rate limits.
        let ratelimit = match self.check_rate_limits(&token, facts).await {
            Ok(state) => state,
            Err(refusal) => return Ok(Err(refusal)),
        };
        // 4. The credits.
        let remaining = match self.spend(&token, facts.cost.unwrap_or(1)).await? {
            Ok(remaining) => remaining,
            Err(refusal) => return Ok(Err(refusal)),
        };
        Ok(Ok(Verified {
            device_bound: token.controls.device_binding != DeviceBinding::None,
            token,
            remaining,
            ratelimit,
        }))
    }

    /// The device step. `required` compares with the device set by an
    /// admin (a static control, cached with the token); `first_use` asks
    /// the database, which binds the first device atomically.
    async fn check_device(&self, token: &ApiToken, device_id: Option<&str>) -> Step<()> {
        let binding = token.controls.device_binding;
        if binding == DeviceBinding::None {
            return Ok(Ok(()));
        }
        let Some(device_id) = device_id else {
            return Ok(Err(VerifyFailure::DeviceRequired.into()));
        };
        let presented = self.device_keys.hashes(device_id);
        let same = match binding {
            DeviceBinding::Required => token.bound_device.as_deref().is_some_and(|bound| {
                presented
                    .iter()
                    .fold(false, |found, h| found | constant_time_eq(bound, h))
            }),
            _ => match self.store.bind_device(&token.id, &presented).await? {
                DeviceBind::Bound => {
                    tracing::info!(token_id = %token.id, "token bound to its first device");
                    true
                }
                DeviceBind::Same => true,
                DeviceBind::Other => false,
            },
        };
        Ok(if same {
            Ok(())
        } else {
            Err(VerifyFailure::DeviceMismatch.into())
        })
    }

    /// The rate-limit step, between the device and the credits, on the
    /// shared GCRA engine (Redis when configured, else in process). The
    /// request's `ratelimit.name` picks one of the token's limits; without
    /// a name every limit of the token applies, and a refusal by one gives
    /// back what the others took. The answer carries the tightest state.
    /// A name the token does not have applies them all (a misspelt name
    /// must not switch the limits off).
    pub(super) async fn check_rate_limits(
        &self,
        token: &ApiToken,
        facts: &CallerFacts,
    ) -> Result<Option<RateLimitState>, Refusal> {
        let wanted = facts.ratelimit.as_ref();
        let name = wanted
            .and_then(|r| r.name.as_deref())
            .filter(|n| token.controls.ratelimits.iter().any(|l| l.name == *n));
        // 1-1000, checked where the request is parsed.
        let cost = wanted.and_then(|r| r.cost).unwrap_or(1).clamp(1, 1000) as u32;
        let mut taken: Vec<(String, RateRule)> = Vec::new();
        let mut tightest: Option<RateLimitState> = None;
        for spec in &token.controls.ratelimits {
            if name.is_some_and(|n| n != spec.name) {
                continue;
            }
            // Validated at create: only a corrupt row has none.
            let Some(rule) = spec.rule() else { continue };
            let key = format!("{}:{}", token.id, spec.name);
            let d = self.limits.check(TOKEN_LIMITER, &key, &rule, cost).await;
            let state = RateLimitState {
                limit: i64::from(d.limit),
                remaining: i64::from(d.remaining),
                reset: d.reset as i64,
            };
            if !d.allowed {
                for (key, rule) in &taken {
                    self.limits.refund(TOKEN_LIMITER, key, rule, cost).await;
                }
                return Err(Refusal {
                    code: VerifyFailure::RateLimited,
                    remaining: None,
                    ratelimit: Some(state),
                });
            }
            taken.push((key, rule));
            if tightest.is_none_or(|t| state.remaining < t.remaining) {
                tightest = Some(state);
            }
        }
        Ok(tightest)
    }

    /// The credits step: one conditional update in the database. A token
    /// without credits spends nothing and writes nothing.
    async fn spend(&self, token: &ApiToken, cost: i64) -> Step<Option<i64>> {
        if token.credits.is_none() {
            return Ok(Ok(None));
        }
        let now = tessera_core::ids::now();
        Ok(
            match self.store.spend_credits(&token.id, cost, now).await? {
                CreditSpend::Spent { remaining } => Ok(Some(remaining)),
                CreditSpend::Insufficient { remaining } => {
                    self.limits.count_refusal(CREDITS_LIMITER);
                    Err(Refusal {
                        code: VerifyFailure::UsageExceeded,
                        remaining: Some(remaining),
                        ratelimit: None,
                    })
                }
                // Credits removed since the token was cached: unlimited now.
                CreditSpend::Unlimited => Ok(None),
            },
        )
    }
}
