//! Request and response bodies of the token API, and their conversion into
//! service inputs (parsing only; the rules live in the service and domain).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tessera_core::{
    api_token::{ApiTokenView, ExpiryRequest, TokenState, VerifyFailure},
    text::{self, TextRule},
    DomainError,
};
use tessera_store::TokenQuery;
use utoipa::{IntoParams, ToSchema};

use super::{
    body_parts::{self, state_filter, Expiry},
    token_controls_dto::{
        caller_facts, ControlFields, CreditsBody, Obj, RateLimitBody, VerifyRateLimitBody,
    },
};
use crate::{
    http::extract::double_option,
    service::tokens::{CallerFacts, CreateToken, RateLimitState, UpdateToken},
};

/// Longest string accepted as a token in a verify request; anything longer
/// is a bad request rather than a token that merely fails to verify.
pub const MAX_PRESENTED_TOKEN: usize = 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// 1-200 characters, not all blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    #[schema(max_length = 1000, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
    /// The user or service the token belongs to.
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub owner: Option<String>,
    /// Defaults to `["read"]`; each must be a configured scope.
    pub scopes: Option<Vec<String>>,
    /// RFC 3339 time, or `"never"` where the operator allows it.
    pub expires_at: Option<String>,
    /// Lifetime in seconds (instead of `expires_at`), at most `TESSERA_TOKEN_MAX_TTL`.
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "crate::http::extract::integral")]
    pub expires_in: Option<i64>,
    /// A JSON object of at most 8 KiB.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// Issue a successor automatically before expiry (see `POST /v1/tokens/self/successor`).
    pub auto_rotate: Option<bool>,
    /// Networks (CIDR, IPv4 or IPv6) the token may be used from; empty or
    /// absent: any. Checked against `client_ip` of an authorised verifier,
    /// else the caller's address.
    #[schema(max_items = 100)]
    pub ip_allow: Option<Vec<String>>,
    /// Networks the token may never be used from (wins over `ip_allow`).
    #[schema(max_items = 100)]
    pub ip_deny: Option<Vec<String>>,
    /// `none` (default), `first_use` (the first device that presents the
    /// token binds it) or `required` (only the `device_id` given here).
    #[schema(pattern = "^(none|first_use|required)$")]
    pub device_binding: Option<String>,
    /// Binds this device now (required with `device_binding: required`);
    /// stored only as a keyed hash.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub device_id: Option<String>,
    /// Uses the token has (each verification spends its `cost`); absent: unlimited.
    #[schema(value_type = Option<CreditsBody>)]
    pub credits: Option<Obj<CreditsBody>>,
    /// Named rate limits, enforced at verification.
    #[schema(max_items = 16, value_type = Option<Vec<RateLimitBody>>)]
    pub ratelimits: Option<Vec<Obj<RateLimitBody>>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTokenRequest {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// `null` clears the description.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 1000, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub description: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// RFC 3339 time, or `"never"` where the operator allows it.
    pub expires_at: Option<String>,
    /// Lifetime in seconds (instead of `expires_at`), at most `TESSERA_TOKEN_MAX_TTL`.
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "crate::http::extract::integral")]
    pub expires_in: Option<i64>,
    pub auto_rotate: Option<bool>,
    /// Networks (CIDR, IPv4 or IPv6) the token may be used from; empty or
    /// absent: unchanged. Checked against `client_ip` of an authorised verifier,
    /// else the caller's address.
    #[schema(max_items = 100)]
    pub ip_allow: Option<Vec<String>>,
    /// Networks the token may never be used from (wins over `ip_allow`).
    #[schema(max_items = 100)]
    pub ip_deny: Option<Vec<String>>,
    /// `none` (default), `first_use` (the first device that presents the
    /// token binds it) or `required` (only the `device_id` given here).
    #[schema(pattern = "^(none|first_use|required)$")]
    pub device_binding: Option<String>,
    /// Binds this device now (required with `device_binding: required`);
    /// stored only as a keyed hash.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub device_id: Option<String>,
    /// Sets the credits (counted from now); `null` makes the token unlimited.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<CreditsBody>)]
    pub credits: Option<Option<Obj<CreditsBody>>>,
    /// Replaces the named rate limits (`[]` removes them).
    #[schema(max_items = 16, value_type = Option<Vec<RateLimitBody>>)]
    pub ratelimits: Option<Vec<Obj<RateLimitBody>>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Keep the old secret working this long (0–86400 s, never past expiry).
    #[schema(minimum = 0, maximum = 86400)]
    #[serde(default, deserialize_with = "crate::http::extract::integral")]
    pub grace_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Also mark the token purged (permanently retired).
    pub purge: Option<bool>,
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    #[schema(max_length = 1024)]
    pub token: String,
    /// Scopes the token must all have.
    pub scopes: Option<Vec<String>>,
    /// The address of the resource server's caller, checked against the
    /// token's IP lists. Honoured only from an authorised verifier (an
    /// admin token, or a client with the `verify` capability by HTTP Basic).
    pub client_ip: Option<String>,
    /// The caller's device (opaque, 1-200 characters), for device-bound
    /// tokens; authorised verifiers only. Not proof of possession: it is
    /// what the client says.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub device_id: Option<String>,
    /// Credits this use costs (1-1000, default 1); authorised verifiers only.
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "crate::http::extract::integral")]
    pub cost: Option<i64>,
    /// The rate limit to count against; authorised verifiers only.
    #[schema(value_type = Option<VerifyRateLimitBody>)]
    pub ratelimit: Option<Obj<VerifyRateLimitBody>>,
}

impl VerifyRequest {
    /// The caller's facts, checked (422 on a bad value).
    pub fn facts(&mut self) -> Result<CallerFacts, DomainError> {
        caller_facts(
            self.client_ip.take(),
            self.device_id.take(),
            self.cost.take(),
            self.ratelimit.take(),
        )
    }
}

/// `{"valid": true, "token": …}` or `{"valid": false, "code": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<ApiTokenView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<VerifyFailure>,
    /// Credits left (tokens with credits): after this use, or with
    /// `USAGE_EXCEEDED` the balance that did not cover the cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
    /// The state of the rate limit that applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratelimit: Option<RateLimitState>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `active`, `expired`, `revoked` or `purged`.
    #[param(pattern = "^(active|expired|revoked|purged)$")]
    pub state: Option<String>,
    pub owner: Option<String>,
    /// 1–1000, default 50.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
    /// Include soft-deleted tokens.
    pub include_deleted: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPage {
    pub items: Vec<ApiTokenView>,
    pub next_cursor: Option<String>,
}

/// A token's expiry: an RFC 3339 time, `"never"`, or a lifetime.
fn expiry(
    expires_at: Option<String>,
    expires_in: Option<i64>,
) -> Result<Option<ExpiryRequest>, DomainError> {
    let Some(given) = body_parts::expiry(expires_at, expires_in)? else {
        return Ok(None);
    };
    match given {
        Expiry::At(at) if at.eq_ignore_ascii_case("never") => Ok(Some(ExpiryRequest::Never)),
        Expiry::At(at) => DateTime::parse_from_rfc3339(&at)
            .map(|t| Some(ExpiryRequest::At(t.with_timezone(&Utc))))
            .map_err(|_| {
                DomainError::invalid("expires_at", "must be an RFC 3339 time or \"never\"")
            }),
        Expiry::InSeconds(secs) => Ok(Some(ExpiryRequest::InSeconds(secs))),
    }
}

impl TryFrom<CreateTokenRequest> for CreateToken {
    type Error = DomainError;

    fn try_from(r: CreateTokenRequest) -> Result<Self, DomainError> {
        Ok(Self {
            expiry: expiry(r.expires_at, r.expires_in)?,
            name: r.name,
            description: r.description,
            owner: r.owner,
            scopes: r.scopes,
            metadata: r.metadata,
            auto_rotate: r.auto_rotate.unwrap_or(false),
            controls: ControlFields {
                ip_allow: r.ip_allow,
                ip_deny: r.ip_deny,
                device_binding: r.device_binding,
                device_id: r.device_id,
                credits: r.credits.map(Some),
                ratelimits: r.ratelimits,
            }
            .into(),
        })
    }
}

impl TryFrom<UpdateTokenRequest> for UpdateToken {
    type Error = DomainError;

    fn try_from(r: UpdateTokenRequest) -> Result<Self, DomainError> {
        Ok(Self {
            expiry: expiry(r.expires_at, r.expires_in)?,
            name: r.name,
            description: r.description,
            scopes: r.scopes,
            metadata: r.metadata,
            auto_rotate: r.auto_rotate,
            controls: ControlFields {
                ip_allow: r.ip_allow,
                ip_deny: r.ip_deny,
                device_binding: r.device_binding,
                device_id: r.device_id,
                credits: r.credits,
                ratelimits: r.ratelimits,
            }
            .into(),
        })
    }
}

impl TryFrom<ListQuery> for TokenQuery {
    type Error = DomainError;

    fn try_from(q: ListQuery) -> Result<Self, DomainError> {
        let state = state_filter(
            q.state.as_deref(),
            TokenState::parse,
            "must be active, expired, revoked or purged",
        )?;
        let limit = tessera_core::pagination::page_size(q.limit)?;
        // A filter is compared with stored text: it may hold anything a
        // stored owner could, but never a control character.
        if let Some(owner) = &q.owner {
            text::check("owner", owner, TextRule::Line)?;
        }
        Ok(Self {
            state,
            owner: q.owner,
            include_deleted: q.include_deleted.unwrap_or(false),
            cursor: q.cursor,
            limit,
        })
    }
}
