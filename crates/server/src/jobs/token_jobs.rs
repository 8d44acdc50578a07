//! Token use cases driven by the scheduler: revoking expired tokens and
//! rotating tokens that opted in, and the successor's one-time claim.

use chrono::Duration;
use serde_json::json;
use tessera_core::error::Entity;
use tessera_core::{
    api_token::ApiToken,
    audit::{Actor, AuditEntry, RequestContext},
    event::OutboxEvent,
    ids::new_id,
    DomainError, SecretString,
};
use tessera_store::{NewToken, SecretChange, StoreError, Succession, TokenChange};

use crate::service::{
    tokens::{IssuedToken, TokenService},
    ServiceError,
};

const SUCCESSOR_CONTEXT: &str = "api_tokens.successor_secret";

impl TokenService {
    /// Revokes tokens past expiry with reason `expired`; emits `expired` and
    /// `revoked`. Returns how many were revoked.
    pub async fn revoke_expired(&self, batch: u32) -> Result<i64, ServiceError> {
        let now = tessera_core::ids::now();
        let mut revoked = 0;
        for id in self.store.expired_unrevoked(now, batch).await? {
            let mut changed = false;
            let flag = &mut changed;
            self.change(&id, move |current: &ApiToken| {
                // Re-checked under the lock: someone may have revoked it.
                if current.revoked_at.is_some() || current.purged_at.is_some() {
                    return Ok(None);
                }
                let mut t = current.clone();
                t.revoked_at = Some(now);
                t.revoked_by = Some(Actor::System.revoked_by());
                t.revoke_reason = Some("expired".into());
                t.updated_at = now;
                *flag = true;
                Ok(Some(TokenChange {
                    audit: AuditEntry::success(
                        &Actor::System,
                        "token.revoke",
                        "api_token",
                        &t.id,
                        json!({ "reason": "expired" }),
                        &RequestContext::default(),
                    ),
                    events: vec![
                        OutboxEvent::token_expired(&t.id),
                        OutboxEvent::token_revoked(&t.id),
                    ],
                    token: t,
                    secrets: SecretChange::Keep,
                }))
            })
            .await?;
            if changed {
                revoked += 1;
                self.metrics.api_tokens_revoked.inc();
            }
        }
        Ok(revoked)
    }

    /// For tokens that opted in and expire within `window`, issues a
    /// successor (same name, owner, scopes, metadata; a renewed expiry of the
    /// same lifetime, within policy) and emits `rotated` {id, new_id}. The
    /// successor's secret waits, sealed, for the old token to claim it.
    pub async fn rotate_expiring(&self, window: Duration, batch: u32) -> Result<i64, ServiceError> {
        let now = tessera_core::ids::now();
        let mut rotated = 0;
        for old in self
            .store
            .due_for_rotation(now, now + window, batch)
            .await?
        {
            let lifetime = old
                .expires_at
                .map_or(self.settings.expiry.default_lifetime, |e| {
                    e - old.created_at
                })
                .clamp(Duration::hours(1), self.settings.expiry.max_lifetime);
            let generated = self.settings.format.generate();
            let successor = old
                .successor(new_id(), now)
                .with_hint(generated.hint.clone())
                .with_expiry(Some(now + lifetime));
            let sealed = self
                .successor_keyring
                .seal(generated.raw.expose().as_bytes(), SUCCESSOR_CONTEXT);
            let audit = AuditEntry::success(
                &Actor::System,
                "token.rotate",
                "api_token",
                &old.id,
                json!({ "successor_id": successor.id, "automatic": true }),
                &RequestContext::default(),
            );
            let events = vec![
                OutboxEvent::token_created(&successor.id, &generated.hash.to_hex()),
                OutboxEvent::token_rotated(&old.id, &successor.id),
            ];
            let attached = self
                .store
                .attach_successor(&Succession {
                    old_id: old.id.clone(),
                    successor: NewToken {
                        token: successor,
                        secret_hash: generated.hash,
                    },
                    sealed_secret: sealed,
                    audit,
                    events,
                })
                .await?;
            if attached {
                rotated += 1;
                self.metrics.api_tokens_rotated.inc();
            }
        }
        Ok(rotated)
    }

    /// The successor issued for `old` by automatic rotation, with its secret:
    /// available once.
    pub async fn claim_successor(&self, old: &ApiToken) -> Result<IssuedToken, ServiceError> {
        let unavailable = || ServiceError::from(DomainError::NotFound(Entity::Successor));
        let (successor_id, sealed) = self
            .store
            .take_successor_secret(&old.id)
            .await?
            .ok_or_else(unavailable)?;
        let secret = self
            .successor_keyring
            .open(&sealed, SUCCESSOR_CONTEXT)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                ServiceError::Internal(StoreError::Corrupt(
                    "successor secret does not decrypt".into(),
                ))
            })?;
        let successor = self.get(&successor_id).await?;
        Ok(IssuedToken {
            token: successor.view(tessera_core::ids::now()),
            secret: SecretString::new(secret),
        })
    }
}
