//! Lifecycle events as written to the transactional outbox.
//!
//! The payloads are a public contract (webhook receivers parse them), so they
//! are built only here, and none of them ever carries a raw secret.

use serde_json::{json, Value};

/// One event row: its type and its JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub event_type: &'static str,
    pub payload: Value,
}

impl OutboxEvent {
    fn simple(event_type: &'static str, id: &str) -> Self {
        Self {
            event_type,
            payload: json!({ "event": event_type, "id": id }),
        }
    }

    /// `created`: carries the SHA-256 hex of the raw token, never the token.
    pub fn token_created(id: &str, token_sha256_hex: &str) -> Self {
        Self {
            event_type: "created",
            payload: json!({ "event": "created", "id": id, "token": token_sha256_hex }),
        }
    }

    /// `rotated`: an in-place rotation keeps the id, so `new_id == id`.
    pub fn token_rotated(id: &str, new_id: &str) -> Self {
        Self {
            event_type: "rotated",
            payload: json!({ "event": "rotated", "id": id, "new_id": new_id }),
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
    }
}
