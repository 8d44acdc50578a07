//! Machine API tokens: the record, its derived state, and the lifecycle rules
//! (expiry policy, rotation grace, verification outcome) that every caller
//! (HTTP, CLI, scheduled jobs) must apply identically.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::{
    text::{self, TextRule},
    token_controls::{Credits, DeviceBinding, IpNet, RateLimitSpec, TokenControls},
    DomainError,
};

/// Longest rotation grace period: one day.
pub const MAX_GRACE_SECONDS: i64 = 86_400;
/// Bound on serialized metadata, so one token cannot bloat every cache entry.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

/// A stored API token. Never holds the secret or its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub scopes: Vec<String>,
    pub hint: String,
    pub metadata: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub use_count: i64,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
    pub purged_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Opted into automatic rotation before expiry (a successor is issued).
    pub auto_rotate: bool,
    /// The token that replaced this one by automatic rotation.
    pub successor_id: Option<String>,
    /// IP lists, device binding mode and rate limits (static: cacheable).
    pub controls: TokenControls,
    /// The keyed hash of the device the token is bound to (never the id).
    pub bound_device: Option<String>,
    /// Uses left; `None` for unlimited.
    pub credits: Option<Credits>,
}

/// The lifecycle state, derived from timestamps rather than stored, so it can
/// never disagree with them. Soft deletion is orthogonal (see `deleted_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
    Purged,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Purged => "purged",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "expired" => Self::Expired,
            "revoked" => Self::Revoked,
            "purged" => Self::Purged,
            _ => return None,
        })
    }
}

impl ApiToken {
    /// A fresh token: never used, not revoked, deleted or rotated, no
    /// description, owner, hint, metadata or expiry until set with the
    /// `with_*` setters below. The one place that lists every field, so a
    /// new field touches only this constructor.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        scopes: Vec<String>,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            description: None,
            owner: None,
            scopes,
            hint: String::new(),
            metadata: Map::new(),
            created_at,
            updated_at: created_at,
            expires_at: None,
            last_used_at: None,
            use_count: 0,
            revoked_at: None,
            revoked_by: None,
            revoke_reason: None,
            purged_at: None,
            deleted_at: None,
            auto_rotate: false,
            successor_id: None,
            controls: TokenControls::default(),
            bound_device: None,
            credits: None,
        }
    }

    pub fn with_description(mut self, description: Option<String>) -> Self {
        self.description = description;
        self
    }

    pub fn with_owner(mut self, owner: Option<String>) -> Self {
        self.owner = owner;
        self
    }

    /// The displayable hint of the token's secret.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    pub fn with_metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = metadata;
        self
    }

    pub fn with_expiry(mut self, expires_at: Option<DateTime<Utc>>) -> Self {
        self.expires_at = expires_at;
        self
    }

    pub fn with_auto_rotate(mut self, auto_rotate: bool) -> Self {
        self.auto_rotate = auto_rotate;
        self
    }

    /// Usage controls: the static ones, the bound device's keyed hash and
    /// the credits.
    pub fn with_controls(
        mut self,
        controls: TokenControls,
        bound_device: Option<String>,
        credits: Option<Credits>,
    ) -> Self {
        self.controls = controls;
        self.bound_device = bound_device;
        self.credits = credits;
        self
    }

    /// Whether any usage control applies: then only an authorised caller
    /// may verify it, and verification may write.
    pub fn has_controls(&self) -> bool {
        !self.controls.is_empty() || self.credits.is_some()
    }

    /// A fresh token that takes over this one's name, description, owner,
    /// scopes, metadata, rotation setting and usage controls (automatic
    /// rotation): the same device binding and the credits left now.
    pub fn successor(&self, id: impl Into<String>, created_at: DateTime<Utc>) -> Self {
        Self::new(id, self.name.clone(), self.scopes.clone(), created_at)
            .with_description(self.description.clone())
            .with_owner(self.owner.clone())
            .with_metadata(self.metadata.clone())
            .with_auto_rotate(self.auto_rotate)
            .with_controls(
                self.controls.clone(),
                self.bound_device.clone(),
                self.credits,
            )
    }

    pub fn state_at(&self, now: DateTime<Utc>) -> TokenState {
        if self.purged_at.is_some() {
            TokenState::Purged
        } else if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if self.expires_at.is_some_and(|e| now > e) {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }

    /// Rotation needs an active, not deleted token.
    pub fn check_rotatable(&self, now: DateTime<Utc>) -> Result<(), DomainError> {
        if self.deleted_at.is_some() {
            return Err(DomainError::TokenDeleted);
        }
        match self.state_at(now) {
            TokenState::Active => Ok(()),
            other => Err(DomainError::TokenNotActive {
                state: other.as_str(),
                operation: "rotated",
            }),
        }
    }

    /// When the old secret stops working after a rotation with `grace_seconds`:
    /// never past the token's own expiry. `None` means "at once".
    pub fn grace_end(
        &self,
        grace_seconds: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, DomainError> {
        if !(0..=MAX_GRACE_SECONDS).contains(&grace_seconds) {
            return Err(DomainError::invalid(
                "grace_seconds",
                format!("must be between 0 and {MAX_GRACE_SECONDS} (24 hours)"),
            ));
        }
        if grace_seconds == 0 {
            return Ok(None);
        }
        let end = now + Duration::seconds(grace_seconds);
        Ok(Some(self.expires_at.map_or(end, |e| end.min(e))))
    }

    /// The public JSON view: no hash, no secret; state computed at `now`.
    pub fn view(&self, now: DateTime<Utc>) -> ApiTokenView {
        ApiTokenView {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            owner: self.owner.clone(),
            scopes: self.scopes.clone(),
            state: self.state_at(now),
            hint: self.hint.clone(),
            metadata: self.metadata.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
            purged_at: self.purged_at,
            deleted_at: self.deleted_at,
            auto_rotate: self.auto_rotate,
            successor_id: self.successor_id.clone(),
            ip_allow: self.controls.ip_allow.clone(),
            ip_deny: self.controls.ip_deny.clone(),
            device_binding: self.controls.device_binding,
            device_bound: self.bound_device.is_some(),
            credits: self.credits,
            ratelimits: self.controls.ratelimits.clone(),
        }
    }

    pub fn has_scopes(&self, required: &[String]) -> bool {
        required.iter().all(|r| self.scopes.iter().any(|s| s == r))
    }
}

/// The token as every API and CLI `--json` output shows it.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ApiTokenView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub scopes: Vec<String>,
    pub state: TokenState,
    /// Non-secret display hint: the prefix and the last four characters.
    pub hint: String,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub purged_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Whether a successor is issued automatically before expiry.
    pub auto_rotate: bool,
    /// Set once automatic rotation has issued a successor.
    pub successor_id: Option<String>,
    /// Networks the token may be used from (empty: any).
    #[schema(value_type = Vec<String>)]
    pub ip_allow: Vec<IpNet>,
    /// Networks the token may never be used from (wins over `ip_allow`).
    #[schema(value_type = Vec<String>)]
    pub ip_deny: Vec<IpNet>,
    pub device_binding: DeviceBinding,
    /// Whether a device is bound (its id is never shown, only kept hashed).
    pub device_bound: bool,
    /// Uses left and their refill; `null` for unlimited.
    pub credits: Option<Credits>,
    /// Named rate limits (enforced at verification).
    pub ratelimits: Vec<RateLimitSpec>,
}

/// Why a presented token does not authenticate. The codes are public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerifyFailure {
    Malformed,
    NotFound,
    Expired,
    Revoked,
    Purged,
    Deleted,
    InsufficientScope,
    /// The client sent too many failed verifications; answered without
    /// looking the token up.
    RateLimited,
    /// The token has usage controls and the caller did not authenticate as
    /// a verifier (an admin token or a client with the `verify` capability).
    CallerNotAuthorized,
    /// The caller's address is outside the token's IP lists.
    IpNotAllowed,
    /// The token is bound to another device.
    DeviceMismatch,
    /// The token is device-bound and no `device_id` was given.
    DeviceRequired,
    /// The token's credits do not cover the cost.
    UsageExceeded,
}

impl VerifyFailure {
    pub const ALL: [Self; 13] = [
        Self::Malformed,
        Self::NotFound,
        Self::Expired,
        Self::Revoked,
        Self::Purged,
        Self::Deleted,
        Self::InsufficientScope,
        Self::RateLimited,
        Self::CallerNotAuthorized,
        Self::IpNotAllowed,
        Self::DeviceMismatch,
        Self::DeviceRequired,
        Self::UsageExceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "MALFORMED",
            Self::NotFound => "NOT_FOUND",
            Self::Expired => "EXPIRED",
            Self::Revoked => "REVOKED",
            Self::Purged => "PURGED",
            Self::Deleted => "DELETED",
            Self::InsufficientScope => "INSUFFICIENT_SCOPE",
            Self::RateLimited => "RATE_LIMITED",
            Self::CallerNotAuthorized => "CALLER_NOT_AUTHORIZED",
            Self::IpNotAllowed => "IP_NOT_ALLOWED",
            Self::DeviceMismatch => "DEVICE_MISMATCH",
            Self::DeviceRequired => "DEVICE_REQUIRED",
            Self::UsageExceeded => "USAGE_EXCEEDED",
        }
    }
}

/// Decides whether a token found by its secret's hash authenticates now.
/// `secret_valid_until` is set when the presented secret was replaced by a
/// rotation and is only inside its grace period.
pub fn evaluate(
    token: &ApiToken,
    secret_valid_until: Option<DateTime<Utc>>,
    required_scopes: &[String],
    now: DateTime<Utc>,
) -> Result<(), VerifyFailure> {
    if token.deleted_at.is_some() {
        return Err(VerifyFailure::Deleted);
    }
    match token.state_at(now) {
        TokenState::Purged => return Err(VerifyFailure::Purged),
        TokenState::Revoked => return Err(VerifyFailure::Revoked),
        TokenState::Expired => return Err(VerifyFailure::Expired),
        TokenState::Active => {}
    }
    // A replaced secret past its grace is indistinguishable from an unknown one.
    if secret_valid_until.is_some_and(|until| now >= until) {
        return Err(VerifyFailure::NotFound);
    }
    if !token.has_scopes(required_scopes) {
        return Err(VerifyFailure::InsufficientScope);
    }
    Ok(())
}

/// How long tokens may live, as the operator configured it.
#[derive(Debug, Clone)]
pub struct ExpiryPolicy {
    pub default_lifetime: Duration,
    pub max_lifetime: Duration,
    /// Whether `never` is an acceptable expiry.
    pub allow_never: bool,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self {
            default_lifetime: Duration::days(90),
            max_lifetime: Duration::days(365),
            allow_never: false,
        }
    }
}

/// What the caller asked for as an expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryRequest {
    Default,
    Never,
    At(DateTime<Utc>),
    InSeconds(i64),
}

impl ExpiryPolicy {
    pub fn resolve(
        &self,
        req: ExpiryRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, DomainError> {
        let at = match req {
            ExpiryRequest::Default => now + self.default_lifetime.min(self.max_lifetime),
            ExpiryRequest::Never if self.allow_never => return Ok(None),
            ExpiryRequest::Never => {
                return Err(DomainError::invalid(
                    "expires_at",
                    "tokens that never expire are disabled on this server",
                ))
            }
            ExpiryRequest::At(at) => at,
            ExpiryRequest::InSeconds(s) => {
                if s <= 0 || s > self.max_lifetime.num_seconds() {
                    return Err(DomainError::invalid(
                        "expires_in",
                        format!(
                            "must be between 1 and {} seconds",
                            self.max_lifetime.num_seconds()
                        ),
                    ));
                }
                now + Duration::seconds(s)
            }
        };
        if at <= now {
            return Err(DomainError::invalid("expires_at", "must be in the future"));
        }
        if at > now + self.max_lifetime {
            return Err(DomainError::invalid(
                "expires_at",
                format!(
                    "must be at most {} days from now",
                    self.max_lifetime.num_days()
                ),
            ));
        }
        Ok(Some(at))
    }
}

/// Validated text fields of a token. Limits keep rows and logs bounded; the
/// character rules are [`crate::text`]'s: a name or owner is an identifier
/// (no control, bidirectional or zero-width characters), a description or
/// revoke reason is free text (tab and line breaks allowed).
pub fn validate_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    text::check("name", name, TextRule::Name)?;
    if name.is_empty() || name.chars().count() > 200 {
        return Err(DomainError::invalid("name", "must be 1-200 characters"));
    }
    Ok(name.to_string())
}

/// A token's optional text: the `description` is free text (tab and line
/// breaks allowed), any other field (the `owner`) an identifier.
pub fn validate_optional_text(
    field: &'static str,
    value: Option<String>,
    max_chars: usize,
) -> Result<Option<String>, DomainError> {
    let rule = match field {
        "description" => TextRule::Multiline,
        _ => TextRule::Name,
    };
    text::optional(field, value, max_chars, rule)
}

/// Metadata is the application's JSON, stored as text: bounded in size, and
/// its strings follow the free-text rules (keys on one line, values may span
/// lines), so nothing in it is a character the databases disagree on.
pub fn validate_metadata(metadata: Map<String, Value>) -> Result<Map<String, Value>, DomainError> {
    let size = serde_json::to_vec(&metadata).map_or(usize::MAX, |v| v.len());
    if size > MAX_METADATA_BYTES {
        return Err(DomainError::invalid(
            "metadata",
            format!("must serialize to at most {MAX_METADATA_BYTES} bytes"),
        ));
    }
    check_json_text(&metadata)?;
    Ok(metadata)
}

/// Checks every key and string in `map`, at any depth (the size bound above
/// keeps the recursion shallow enough).
fn check_json_text(map: &Map<String, Value>) -> Result<(), DomainError> {
    fn value(v: &Value) -> Result<(), DomainError> {
        match v {
            Value::String(s) => text::check("metadata", s, TextRule::Multiline),
            Value::Array(items) => items.iter().try_for_each(value),
            Value::Object(m) => check_json_text(m),
            _ => Ok(()),
        }
    }
    for (k, v) in map {
        text::check("metadata", k, TextRule::Line)?;
        value(v)?;
    }
    Ok(())
}

/// A revoke reason is free text shown to operators; keep it short.
pub fn validate_reason(reason: Option<String>) -> Result<Option<String>, DomainError> {
    text::optional("reason", reason, 500, TextRule::Multiline)
}

#[cfg(test)]
mod tests;
