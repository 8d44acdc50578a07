//! Every domain error's `code` and message, pinned: clients match on the
//! codes and read the messages, so both are public API, and no message may
//! carry more than the fields it names.

use tessera_core::{error::Entity, invite::InviteFailure, DomainError};

#[test]
fn every_variant_has_its_stable_code_and_message() {
    let cases: Vec<(DomainError, &str, &str)> = vec![
        (
            DomainError::invalid("name", "must not be empty"),
            "validation_failed",
            "name: must not be empty",
        ),
        (
            DomainError::TokenNotActive {
                state: "revoked",
                operation: "rotated",
            },
            "token_not_active",
            "the token is revoked; only an active token can be rotated",
        ),
        (
            DomainError::TokenDeleted,
            "token_deleted",
            "the token is deleted; restore it first",
        ),
        (
            DomainError::InviteNotAllowed {
                issuer_role: "member".into(),
                granted_role: "admin".into(),
            },
            "invite_not_allowed",
            "the issuer's role may not grant the requested role",
        ),
        (
            DomainError::InviteQuotaExceeded {
                limit: 20,
                retry_after_secs: 61,
            },
            "invite_quota_exceeded",
            "invite quota of 20 per 24 hours reached; retry in 61 s",
        ),
        (
            DomainError::RateLimited {
                retry_after_secs: 7,
            },
            "rate_limited",
            "too many failed attempts; retry in 7 s",
        ),
        (
            DomainError::NotConfigured {
                feature: "totp",
                variable: "TOTP_ENC_KEY",
            },
            "totp_not_configured",
            "totp is not configured: set TOTP_ENC_KEY",
        ),
        (
            DomainError::NotConfigured {
                feature: "sms",
                variable: "SMS_WEBHOOK_URL",
            },
            "not_configured",
            "sms is not configured: set SMS_WEBHOOK_URL",
        ),
        (
            DomainError::DeviceLimitReached { max: 5 },
            "device_limit_reached",
            "a subject may have at most 5 TOTP devices; remove one first",
        ),
        (
            DomainError::DeviceAlreadyActive,
            "device_already_active",
            "the device is already active",
        ),
    ];
    for (error, code, message) in cases {
        assert_eq!(error.code(), code, "{error:?}");
        assert_eq!(error.to_string(), message, "{error:?}");
    }
}

#[test]
fn an_unusable_invite_reports_why_in_its_code() {
    for (failure, code) in [
        (InviteFailure::NotFound, "invite_not_found"),
        (InviteFailure::Expired, "invite_expired"),
        (InviteFailure::Revoked, "invite_revoked"),
        (InviteFailure::UsedUp, "invite_used_up"),
        (InviteFailure::EmailMismatch, "invite_email_mismatch"),
        (InviteFailure::EmailRequired, "invite_email_required"),
    ] {
        let error = DomainError::InviteUnusable(failure);
        assert_eq!(error.code(), code);
        assert_eq!(
            error.to_string(),
            format!("the invite cannot be used: {}", failure.as_str())
        );
    }
    // The list the OpenAPI document and the tests walk is complete.
    assert_eq!(InviteFailure::ALL.len(), 6);
}

#[test]
fn entities_display_as_their_stable_names() {
    assert_eq!(Entity::Endpoint.to_string(), "webhook endpoint");
    assert_eq!(Entity::Device.to_string(), Entity::Device.name());
    assert_eq!(
        DomainError::NotFound(Entity::Successor).code(),
        "successor_not_available"
    );
}
