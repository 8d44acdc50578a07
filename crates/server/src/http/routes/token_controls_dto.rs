//! The usage-control parts of the token API's bodies: the controls that
//! create and update set, and the caller's facts a verify request passes.
//! Parsing only; the rules are in `tessera_core::token_controls` and the
//! token service.

use std::net::IpAddr;

use serde::Deserialize;
use tessera_core::{
    token_controls::{is_valid_limit_name, validate_cost, validate_device_id},
    DomainError,
};
use utoipa::ToSchema;

use crate::service::tokens::{
    CallerFacts, ControlsInput, CreditsInput, RateLimitInput, RateLimitRequest,
};

/// Credits: uses left, and optionally a refill.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditsBody {
    /// Uses left now (0 or more).
    #[schema(minimum = 0)]
    pub remaining: i64,
    pub refill: Option<RefillBody>,
}

/// Every `interval`, the balance is set back to `amount`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefillBody {
    #[schema(minimum = 1)]
    pub amount: i64,
    /// `30s`, `1m`, `1h`, `1d` … (at most `365d`).
    #[schema(pattern = "^[1-9][0-9]{0,7}[smhd]$")]
    pub interval: String,
}

/// A named rate limit: `limit` requests per `period`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitBody {
    /// `[a-z0-9_-]{1,32}`, unique per token.
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    pub name: String,
    #[schema(minimum = 1)]
    pub limit: i64,
    /// `30s`, `1m`, `1h`, `1d` … (at most `365d`).
    #[schema(pattern = "^[1-9][0-9]{0,7}[smhd]$")]
    pub period: String,
    /// Requests admitted at once (default: `limit`).
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "crate::http::extract::integral")]
    pub burst: Option<i64>,
}

/// The `ratelimit` of a verify request.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRateLimitBody {
    /// Which of the token's limits to count against.
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    pub name: Option<String>,
    /// How many requests this one counts as (1-1000, default 1).
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "crate::http::extract::integral")]
    pub cost: Option<i64>,
}

impl From<CreditsBody> for CreditsInput {
    fn from(c: CreditsBody) -> Self {
        Self {
            remaining: c.remaining,
            refill: c.refill.map(|r| (r.amount, r.interval)),
        }
    }
}

impl From<RateLimitBody> for RateLimitInput {
    fn from(r: RateLimitBody) -> Self {
        Self {
            name: r.name,
            limit: r.limit,
            period: r.period,
            burst: r.burst,
        }
    }
}

/// The controls of a create or update body, field by field.
pub struct ControlFields {
    pub ip_allow: Option<Vec<String>>,
    pub ip_deny: Option<Vec<String>>,
    pub device_binding: Option<String>,
    pub device_id: Option<String>,
    pub credits: Option<Option<CreditsBody>>,
    pub ratelimits: Option<Vec<RateLimitBody>>,
}

impl From<ControlFields> for ControlsInput {
    fn from(f: ControlFields) -> Self {
        Self {
            ip_allow: f.ip_allow,
            ip_deny: f.ip_deny,
            device_binding: f.device_binding,
            device_id: f.device_id,
            credits: f.credits.map(|c| c.map(CreditsInput::from)),
            ratelimits: f
                .ratelimits
                .map(|l| l.into_iter().map(RateLimitInput::from).collect()),
        }
    }
}

/// The facts of a verify request, checked (422 on a bad one, whoever
/// sends them; whether they are honoured depends on the caller).
pub fn caller_facts(
    client_ip: Option<String>,
    device_id: Option<String>,
    cost: Option<i64>,
    ratelimit: Option<VerifyRateLimitBody>,
) -> Result<CallerFacts, DomainError> {
    let client_ip = client_ip
        .map(|ip| {
            ip.parse::<IpAddr>()
                .map(|ip| ip.to_canonical())
                .map_err(|_| DomainError::invalid("client_ip", "must be an IPv4 or IPv6 address"))
        })
        .transpose()?;
    if let Some(id) = &device_id {
        validate_device_id(id)?;
    }
    let cost = cost.map(|c| validate_cost("cost", c)).transpose()?;
    let ratelimit = ratelimit
        .map(|r| {
            if r.name.as_deref().is_some_and(|n| !is_valid_limit_name(n)) {
                return Err(DomainError::invalid(
                    "ratelimit",
                    "name must be 1-32 characters of a-z, 0-9, _ and -",
                ));
            }
            Ok(RateLimitRequest {
                name: r.name,
                cost: r.cost.map(|c| validate_cost("ratelimit", c)).transpose()?,
            })
        })
        .transpose()?;
    Ok(CallerFacts {
        client_ip,
        device_id,
        cost,
        ratelimit,
    })
}
