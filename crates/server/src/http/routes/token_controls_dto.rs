//! The usage-control parts of the token API's bodies: the controls that
//! create and update set, and the caller's facts a verify request passes.
//! Parsing only; the rules are in `tessera_core::token_controls` and the
//! token service.

use std::{fmt, marker::PhantomData, net::IpAddr};

use serde::{
    de::{value::MapAccessDeserializer, MapAccess, Visitor},
    Deserialize, Deserializer,
};
use tessera_core::{
    token_controls::{is_valid_limit_name, validate_cost, validate_device_id},
    DomainError,
};
use utoipa::ToSchema;

use crate::service::tokens::{
    CallerFacts, ControlsInput, CreditsInput, RateLimitInput, RateLimitRequest,
};

/// A nested JSON object read as `T`. serde reads a struct from an array as
/// well (`[1, "1m"]` as `{"limit": 1, "period": "1m"}`); the body's top
/// level is checked by the extractor, a nested object by this.
#[derive(Debug, Clone)]
pub struct Obj<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Only<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Only<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        de.deserialize_map(Only(PhantomData)).map(Obj)
    }
}

/// A required whole number that may be written as a JSON float with no
/// fractional part (see [`crate::http::extract::integral`]).
fn whole<'de, D: Deserializer<'de>>(de: D) -> Result<i64, D::Error> {
    crate::http::extract::integral(de)?
        .ok_or_else(|| serde::de::Error::invalid_type(serde::de::Unexpected::Unit, &"an integer"))
}

/// Credits: uses left, and optionally a refill.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditsBody {
    /// Uses left now.
    #[schema(minimum = 0, maximum = 1e12)]
    #[serde(deserialize_with = "whole")]
    pub remaining: i64,
    #[schema(value_type = Option<RefillBody>)]
    pub refill: Option<Obj<RefillBody>>,
}

/// Every `interval`, the balance is set back to `amount`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefillBody {
    #[schema(minimum = 1, maximum = 1e12)]
    #[serde(deserialize_with = "whole")]
    pub amount: i64,
    /// `30s`, `1m`, `1h`, `1d` …: at most 8 digits of seconds, 6 of
    /// minutes, 4 of hours or 3 of days.
    #[schema(pattern = "^([1-9][0-9]{0,7}s|[1-9][0-9]{0,5}m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d)$")]
    pub interval: String,
}

/// A named rate limit: `limit` requests per `period`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitBody {
    /// `[a-z0-9_-]{1,32}`, unique per token.
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    pub name: String,
    #[schema(minimum = 1, maximum = 1e9)]
    #[serde(deserialize_with = "whole")]
    pub limit: i64,
    /// `30s`, `1m`, `1h`, `1d` …, at most `366d` in any unit (the pattern
    /// spells that bound out digit by digit).
    #[schema(
        pattern = "^(([1-9][0-9]{0,6}|[12][0-9]{7}|30[0-9]{6}|31[0-5][0-9]{5}|316[01][0-9]{4}|3162[01][0-9]{3}|31622[0-3][0-9]{2}|31622400)s|([1-9][0-9]{0,4}|[1-4][0-9]{5}|5[01][0-9]{4}|52[0-6][0-9]{3}|5270[0-3][0-9]|527040)m|([1-9][0-9]{0,2}|[1-7][0-9]{3}|8[0-6][0-9]{2}|87[0-7][0-9]|878[0-4])h|([1-9][0-9]?|[12][0-9]{2}|3[0-5][0-9]|36[0-6])d)$"
    )]
    pub period: String,
    /// Requests admitted at once (default: `limit`; capped at about 35
    /// years of the rate).
    #[schema(minimum = 1, maximum = 1e9)]
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
            refill: c.refill.map(|Obj(r)| (r.amount, r.interval)),
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
    pub credits: Option<Option<Obj<CreditsBody>>>,
    pub ratelimits: Option<Vec<Obj<RateLimitBody>>>,
}

impl From<ControlFields> for ControlsInput {
    fn from(f: ControlFields) -> Self {
        Self {
            ip_allow: f.ip_allow,
            ip_deny: f.ip_deny,
            device_binding: f.device_binding,
            device_id: f.device_id,
            credits: f.credits.map(|c| c.map(|Obj(c)| c.into())),
            ratelimits: f
                .ratelimits
                .map(|l| l.into_iter().map(|Obj(r)| r.into()).collect()),
        }
    }
}

/// The facts of a verify request, checked (422 on a bad one, whoever
/// sends them; whether they are honoured depends on the caller).
pub fn caller_facts(
    client_ip: Option<String>,
    device_id: Option<String>,
    cost: Option<i64>,
    ratelimit: Option<Obj<VerifyRateLimitBody>>,
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
        .map(|Obj(r)| {
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
