//! Domain errors: what went wrong in terms a caller can act on.
//!
//! Each variant has a stable machine-readable `code` (part of the public API,
//! never renamed) and a message that is safe to show: it never contains a
//! secret or an internal detail, and never quotes what the client sent (the
//! field is named, the rule is stated). Mapping to HTTP status lives in the server.

/// What a `NotFound` is about. The name appears in messages and the code in
/// problem+json bodies; both are part of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Token,
    /// The successor of an automatically rotated token (claimable once).
    Successor,
    Invite,
    Endpoint,
    Delivery,
    Device,
    User,
    Session,
    SigningKey,
    /// A row of the audit log.
    AuditEntry,
    /// An OAuth2 client of the managed registry.
    Client,
    /// A WebSocket connection opened with a ticket.
    WsConnection,
}

impl Entity {
    /// The stable name used in messages ("{name} not found").
    pub fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Successor => "successor",
            Self::Invite => "invite",
            Self::Endpoint => "webhook endpoint",
            Self::Delivery => "delivery",
            Self::Device => "totp device",
            Self::User => "user",
            Self::Session => "session",
            Self::SigningKey => "signing key",
            Self::AuditEntry => "audit entry",
            Self::Client => "client",
            Self::WsConnection => "websocket connection",
        }
    }

    /// The stable error code of "not found" for this entity.
    fn not_found_code(self) -> &'static str {
        match self {
            Self::Token => "token_not_found",
            Self::Successor => "successor_not_available",
            Self::Invite => "invite_not_found",
            Self::Endpoint => "endpoint_not_found",
            Self::Delivery => "delivery_not_found",
            Self::Device => "device_not_found",
            Self::User => "user_not_found",
            Self::Session => "session_not_found",
            Self::SigningKey => "signing_key_not_found",
            Self::AuditEntry => "audit_entry_not_found",
            Self::Client => "client_not_found",
            Self::WsConnection => "ws_connection_not_found",
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule of the domain was broken by the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field has a bad value; `field` names it.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A query filter has a value the listing cannot take (a bad cursor, a
    /// limit out of range, a time window that ends before it starts): the
    /// request is wrong as a query, not a value breaking a rule of a record.
    #[error("{field}: {message}")]
    InvalidQuery {
        field: &'static str,
        message: &'static str,
    },
    /// A text field holds a character its rule refuses (the rules are in
    /// the `text` module, which words `refused`). The message names the field
    /// and the rule, never the value.
    #[error("{field}: {refused}")]
    InvalidCharacters {
        field: &'static str,
        refused: &'static str,
    },
    /// The referenced object does not exist (or is hidden from this caller).
    #[error("{0} not found")]
    NotFound(Entity),
    /// The token is revoked, purged or expired and the operation needs an active one.
    #[error("the token is {state}; only an active token can be {operation}")]
    TokenNotActive {
        state: &'static str,
        operation: &'static str,
    },
    /// The token is soft-deleted; restore it first.
    #[error("the token is deleted; restore it first")]
    TokenDeleted,
    /// The issuer's role may not grant the requested role. The message names
    /// neither: they are what the client sent.
    #[error("the issuer's role may not grant the requested role")]
    InviteNotAllowed {
        issuer_role: String,
        granted_role: String,
    },
    /// The issuer created its quota of invites in the last 24 hours.
    #[error("invite quota of {limit} per 24 hours reached; retry in {retry_after_secs} s")]
    InviteQuotaExceeded { limit: i64, retry_after_secs: i64 },
    /// Too many failed attempts from this client; wait before trying again.
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: i64 },
    /// The invite cannot be used (redeem reports this as an error).
    #[error("the invite cannot be used: {}", .0.as_str())]
    InviteUnusable(crate::invite::InviteFailure),
    /// A feature needs a setting the operator has not made (names the variable).
    #[error("{feature} is not configured: set {variable}")]
    NotConfigured {
        feature: &'static str,
        variable: &'static str,
    },
    /// The subject has as many TOTP devices as allowed.
    #[error("a subject may have at most {max} TOTP devices; remove one first")]
    DeviceLimitReached { max: usize },
    /// The TOTP device is already confirmed.
    #[error("the device is already active")]
    DeviceAlreadyActive,
    /// A webhook URL names an internal address (loopback, private,
    /// link-local, ...) and the operator does not allow those. The URL is
    /// not echoed.
    #[error("url: webhooks may not be sent to loopback, private, link-local or other internal addresses on this server")]
    WebhookUrlForbidden,
    /// The password breaks the password policy. `reason` is one a person can
    /// act on; the password itself is never quoted.
    #[error("{field}: {reason}")]
    WeakPassword { field: &'static str, reason: String },
    /// Unknown e-mail, wrong password or disabled account: one answer for
    /// all three, so none can be told from the others.
    #[error("the e-mail address or password is not correct")]
    InvalidCredentials,
    /// Too many failed logins for this account or client.
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    LoginThrottled { retry_after_secs: i64 },
    /// The password was right but the e-mail address is not verified yet.
    #[error("the e-mail address is not verified yet")]
    EmailUnverified,
    /// Another user has this e-mail address.
    #[error("email: another user has this e-mail address")]
    EmailTaken,
    /// A refresh token that is unknown, expired, revoked or reused (RFC 6749
    /// `invalid_grant`); the reason stays in the logs.
    #[error("the refresh token is not valid (unknown, expired, revoked or already used)")]
    InvalidGrant,
    /// A live refresh token of a device-bound session, presented without
    /// the device id the session was opened from (another one, or none).
    /// Nothing is used or revoked: the right device can still refresh.
    #[error("the session is bound to another device; send the X-Device-Id it was opened with")]
    DeviceMismatch,
    /// Sessions must be device-bound here and the request named no device.
    #[error("sessions are device-bound on this server: send an X-Device-Id")]
    DeviceRequired,
    /// A login challenge that is unknown, expired or already completed.
    #[error(
        "the login challenge is not valid (unknown, expired or already completed); log in again"
    )]
    InvalidChallenge,
    /// The second factor's code was wrong (or replayed) at login.
    #[error("the code is not valid")]
    InvalidCode,
    /// A client from `INTROSPECTION_CLIENTS` cannot be changed through the
    /// API (edit the variable instead).
    #[error("the client is defined by INTROSPECTION_CLIENTS; change it there")]
    ClientFromEnvironment,
    /// A new client's id is already taken (by a client from the environment).
    #[error("a client with this id already exists")]
    ClientIdTaken,
    /// A signing key change that the key's state forbids.
    #[error("{0}")]
    SigningKeyState(&'static str),
    /// A password-reset or e-mail verification link that does not work.
    #[error("{}", link_failure_message(*.0))]
    LinkUnusable(crate::user_link::LinkFailure),
}

fn link_failure_message(f: crate::user_link::LinkFailure) -> &'static str {
    match f {
        crate::user_link::LinkFailure::Invalid => {
            "the link is not valid (unknown, already used, replaced by a newer one, or mistyped)"
        }
        crate::user_link::LinkFailure::Expired => "the link has expired; ask for a new one",
    }
}

impl DomainError {
    /// A query filter `field` that cannot be used; `message` states the rule
    /// (never the value).
    pub fn invalid_query(field: &'static str, message: &'static str) -> Self {
        Self::InvalidQuery { field, message }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    /// The stable error code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "validation_failed",
            Self::InvalidQuery { .. } => "invalid_query",
            Self::InvalidCharacters { .. } => "invalid_characters",
            Self::NotFound(entity) => entity.not_found_code(),
            Self::TokenNotActive { .. } => "token_not_active",
            Self::TokenDeleted => "token_deleted",
            Self::InviteNotAllowed { .. } => "invite_not_allowed",
            Self::InviteQuotaExceeded { .. } => "invite_quota_exceeded",
            Self::RateLimited { .. } => "rate_limited",
            Self::NotConfigured {
                feature: "totp", ..
            } => "totp_not_configured",
            Self::NotConfigured { .. } => "not_configured",
            Self::DeviceAlreadyActive => "device_already_active",
            Self::DeviceLimitReached { .. } => "device_limit_reached",
            Self::WebhookUrlForbidden => "webhook_url_forbidden",
            Self::WeakPassword { .. } => "weak_password",
            Self::InvalidCredentials => "invalid_credentials",
            Self::LoginThrottled { .. } => "login_throttled",
            Self::EmailUnverified => "email_unverified",
            Self::EmailTaken => "email_taken",
            Self::InvalidGrant => "invalid_grant",
            Self::DeviceMismatch => "device_mismatch",
            Self::DeviceRequired => "device_required",
            Self::InvalidChallenge => "invalid_challenge",
            Self::InvalidCode => "invalid_code",
            Self::SigningKeyState(_) => "signing_key_state",
            Self::ClientFromEnvironment => "client_from_environment",
            Self::ClientIdTaken => "client_id_taken",
            Self::LinkUnusable(crate::user_link::LinkFailure::Invalid) => "invalid_token",
            Self::LinkUnusable(crate::user_link::LinkFailure::Expired) => "token_expired",
            Self::InviteUnusable(f) => match f {
                crate::invite::InviteFailure::NotFound => "invite_not_found",
                crate::invite::InviteFailure::Expired => "invite_expired",
                crate::invite::InviteFailure::Revoked => "invite_revoked",
                crate::invite::InviteFailure::UsedUp => "invite_used_up",
                crate::invite::InviteFailure::EmailMismatch => "invite_email_mismatch",
                crate::invite::InviteFailure::EmailRequired => "invite_email_required",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DomainError, Entity};

    /// Codes and messages are public API: they must not change with the
    /// move from entity-name strings to `Entity`.
    #[test]
    fn not_found_codes_and_messages_are_stable() {
        for (entity, code, message) in [
            (Entity::Token, "token_not_found", "token not found"),
            (Entity::Invite, "invite_not_found", "invite not found"),
            (
                Entity::Successor,
                "successor_not_available",
                "successor not found",
            ),
            (
                Entity::Endpoint,
                "endpoint_not_found",
                "webhook endpoint not found",
            ),
            (Entity::Delivery, "delivery_not_found", "delivery not found"),
            (Entity::Device, "device_not_found", "totp device not found"),
            (
                Entity::AuditEntry,
                "audit_entry_not_found",
                "audit entry not found",
            ),
        ] {
            let e = DomainError::NotFound(entity);
            assert_eq!(e.code(), code);
            assert_eq!(e.to_string(), message);
        }
    }
}
