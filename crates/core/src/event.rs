//! Lifecycle events as written to the transactional outbox.
//!
//! The payloads are a public contract (webhook receivers parse them), so they
//! are built only here, and none of them ever carries a raw secret.

use serde_json::{json, Value};

use crate::crypto::Keyring;

/// One event row: its type and its JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub event_type: &'static str,
    /// The payload; for a sealed event, a JSON string holding the ciphertext.
    pub payload: Value,
    /// The payload carries a secret (an invite code) and is stored encrypted;
    /// only the dispatcher opens it, to deliver it.
    pub sealed: bool,
}

/// The second-factor events (also in the webhook catalogue).
pub const MFA_EVENT_TYPES: &[&str] = &[
    "mfa.enroll.started",
    "mfa.enroll.completed",
    "mfa.enroll.removed",
    "mfa.challenge.succeeded",
    "mfa.challenge.failed",
    "mfa.challenge.replayed",
    "mfa.challenge.locked",
    "mfa.recovery_codes.generated",
    "mfa.recovery_code.used",
    "auth_code.sent",
    "auth_code.verified",
];

/// The events of users, logins, refreshes and sessions (also in the webhook
/// catalogue). Their payloads carry ids and the masked user id, never a
/// password, token or code.
pub const SESSION_EVENT_TYPES: &[&str] = &[
    "user.created",
    "user.updated",
    "user.disabled",
    "user.enabled",
    "user.deleted",
    "user.erased",
    "user.password_changed",
    "auth.login.succeeded",
    "auth.login.failed",
    "auth.login.throttled",
    "auth.login.mfa_required",
    "auth.refresh.rotated",
    "auth.refresh.reuse_detected",
    "auth.refresh.failed",
    "session.created",
    "session.revoked",
    "auth.recovery.requested",
    "auth.recovery.completed",
    "auth.recovery.failed",
    "auth.email_verification.requested",
    "auth.email_verification.completed",
    "auth.email_verification.failed",
    "user.password_reset",
    "user.email_verified",
];

/// The WebSocket connection events (also in the webhook catalogue): a ticket
/// redeemed, refused, and the gateway's report of the connection's end.
/// Their payloads carry ids, the masked user id and reasons, never a ticket.
pub const WS_CONNECTION_EVENT_TYPES: &[&str] = &[
    "ws.connection.opened",
    "ws.connection.rejected",
    "ws.connection.closed",
];

/// The events of the managed OAuth2 client registry (also in the webhook
/// catalogue). Their payloads carry the client id, name, capabilities and
/// what changed, never a secret or its digest.
pub const CLIENT_EVENT_TYPES: &[&str] = &[
    "client.created",
    "client.updated",
    "client.deleted",
    "client.secret_rotated",
];

/// The encryption context of sealed outbox payloads.
pub const SEALED_PAYLOAD_CONTEXT: &str = "outbox.payload";

/// The fields that make a payload sealed: secrets a webhook receiver needs
/// (the invite code, to send the invitation) but that no other reader of
/// the events gets. [`without_secrets`] drops them.
pub const SECRET_FIELDS: &[&str] = &["code"];

/// An opened payload without its [`SECRET_FIELDS`]: what readers other than
/// webhook receivers (the event stream) get of a sealed event.
pub fn without_secrets(mut payload: Value) -> Value {
    if let Some(fields) = payload.as_object_mut() {
        for secret in SECRET_FIELDS {
            fields.remove(*secret);
        }
    }
    payload
}

impl OutboxEvent {
    fn simple(event_type: &'static str, id: &str) -> Self {
        Self {
            event_type,
            payload: json!({ "event": event_type, "id": id }),
            sealed: false,
        }
    }

    /// `invite.created` carries the invite code, as receivers need it to send
    /// the invitation; so the payload is sealed at rest.
    pub fn invite_created(id: &str, code: &str, keyring: &Keyring) -> Self {
        let clear = json!({ "event": "invite.created", "id": id, "code": code });
        Self {
            event_type: "invite.created",
            payload: Value::String(
                keyring.seal(clear.to_string().as_bytes(), SEALED_PAYLOAD_CONTEXT),
            ),
            sealed: true,
        }
    }

    pub fn invite_used(id: &str) -> Self {
        Self::simple("invite.used", id)
    }

    pub fn invite_revoked(id: &str) -> Self {
        Self::simple("invite.revoked", id)
    }

    /// A second-factor event: `{event, subject, ...details}`. The details
    /// name devices, purposes and channels, never a code, secret or address.
    pub fn mfa(event_type: &'static str, subject: &str, details: Value) -> Self {
        debug_assert!(MFA_EVENT_TYPES.contains(&event_type), "{event_type}");
        Self::with_details(
            event_type,
            json!({ "event": event_type, "subject": subject }),
            details,
        )
    }

    /// A user, login, refresh or session event: `{event, ...details}`.
    pub fn session(event_type: &'static str, details: Value) -> Self {
        debug_assert!(SESSION_EVENT_TYPES.contains(&event_type), "{event_type}");
        Self::with_details(event_type, json!({ "event": event_type }), details)
    }

    /// A WebSocket connection event: `{event, ...details}`.
    pub fn ws_connection(event_type: &'static str, details: Value) -> Self {
        debug_assert!(
            WS_CONNECTION_EVENT_TYPES.contains(&event_type),
            "{event_type}"
        );
        Self::with_details(event_type, json!({ "event": event_type }), details)
    }

    /// A client registry event: `{event, ...details}`.
    pub fn client(event_type: &'static str, details: Value) -> Self {
        debug_assert!(CLIENT_EVENT_TYPES.contains(&event_type), "{event_type}");
        Self::with_details(event_type, json!({ "event": event_type }), details)
    }

    /// `base` (an object) with the fields of `details` (an object) added:
    /// the shape of every event that carries details.
    fn with_details(event_type: &'static str, mut payload: Value, details: Value) -> Self {
        if let (Some(p), Value::Object(extra)) = (payload.as_object_mut(), details) {
            p.extend(extra);
        }
        Self {
            event_type,
            payload,
            sealed: false,
        }
    }

    /// The payload as JSON text, as stored.
    pub fn payload_text(&self) -> String {
        match (&self.payload, self.sealed) {
            (Value::String(sealed), true) => sealed.clone(),
            (payload, _) => payload.to_string(),
        }
    }

    /// `created`: carries the SHA-256 hex of the raw token, never the token.
    pub fn token_created(id: &str, token_sha256_hex: &str) -> Self {
        Self {
            event_type: "created",
            payload: json!({ "event": "created", "id": id, "token": token_sha256_hex }),
            sealed: false,
        }
    }

    /// `rotated`: an in-place rotation keeps the id, so `new_id == id`.
    pub fn token_rotated(id: &str, new_id: &str) -> Self {
        Self {
            event_type: "rotated",
            payload: json!({ "event": "rotated", "id": id, "new_id": new_id }),
            sealed: false,
        }
    }

    /// `updated`: the token's fields changed (scopes, expiry, usage
    /// controls, an unbound device); `fields` names which, never a value.
    pub fn token_updated(id: &str, fields: &[&str]) -> Self {
        Self {
            event_type: "updated",
            payload: json!({ "event": "updated", "id": id, "fields": fields }),
            sealed: false,
        }
    }

    pub fn token_revoked(id: &str) -> Self {
        Self::simple("revoked", id)
    }

    pub fn token_purged(id: &str) -> Self {
        Self::simple("purged", id)
    }

    pub fn token_deleted(id: &str) -> Self {
        Self::simple("deleted", id)
    }

    pub fn token_restored(id: &str) -> Self {
        Self::simple("restored", id)
    }

    pub fn token_expired(id: &str) -> Self {
        Self::simple("expired", id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_match_the_catalogue() {
        assert_eq!(
            OutboxEvent::token_created("t1", "ab").payload,
            json!({"event":"created","id":"t1","token":"ab"})
        );
        assert_eq!(
            OutboxEvent::token_rotated("t1", "t1").payload,
            json!({"event":"rotated","id":"t1","new_id":"t1"})
        );
        assert_eq!(
            OutboxEvent::token_revoked("t1").payload,
            json!({"event":"revoked","id":"t1"})
        );
        assert_eq!(
            OutboxEvent::token_updated("t1", &["name", "scopes"]).payload,
            json!({"event":"updated","id":"t1","fields":["name","scopes"]})
        );
        assert!(crate::webhook::event_types().any(|t| t == "updated"));
    }

    #[test]
    fn invite_created_is_sealed_but_opens_to_the_catalogue_payload() {
        let ring = Keyring::new("0123456789abcdef0123456789abcdef", &[], "outbox").unwrap();
        let e = OutboxEvent::invite_created("i1", "K7QH-2MXD-9TVA-R4PE", &ring);
        assert!(e.sealed);
        assert!(!e.payload_text().contains("K7QH"));
        let opened = ring
            .open(&e.payload_text(), SEALED_PAYLOAD_CONTEXT)
            .unwrap();
        let v: Value = serde_json::from_slice(&opened).unwrap();
        assert_eq!(
            v,
            json!({"event":"invite.created","id":"i1","code":"K7QH-2MXD-9TVA-R4PE"})
        );
        assert_eq!(
            without_secrets(v),
            json!({"event":"invite.created","id":"i1"})
        );
    }
}
