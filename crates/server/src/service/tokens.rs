//! API token use cases: issue, change, and verify.
//!
//! Each change runs in one write transaction (`WriteTx`): lock the record,
//! apply the domain rule, write it with its audit row and events, commit.
//! Verification is the hot path: checksum, SHA-256, cache, and on a miss one
//! indexed read; its side effects are handed to the [`BackgroundWriter`]
//! (failures aggregated per client, code and minute). Unauthenticated
//! callers are limited in failed verifications per client IP. A token with
//! usage controls (IP lists, device binding, rate limits, credits) goes on
//! to the `controls` step, which alone may write (a first device, credits).

use super::ServiceError;
use std::sync::Arc;
use tessera_core::error::Entity;

use chrono::Utc;
use serde::Serialize;
use serde_json::{json, Map, Value};
use tessera_core::{
    api_token::{
        validate_metadata, validate_name, validate_optional_text, validate_reason, ApiToken,
        ApiTokenView, ExpiryRequest,
    },
    audit::{Actor, AuditEntry, RequestContext},
    crypto::Keyring,
    event::OutboxEvent,
    gcra::RateRule,
    ids::{is_valid_id, new_id},
    DomainError, SecretString,
};
use tessera_store::{NewToken, Page, SecretChange, Store, TokenChange, TokenQuery};
use utoipa::ToSchema;

use super::{background::BackgroundWriter, rate_limit::RateLimits, verify_cache::VerifyCache};
use crate::{config::TokenSettings, metrics::Metrics};

/// A token together with its raw secret: returned only by create and rotate.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    pub token: ApiTokenView,
    /// The raw token. Shown once; store it now.
    #[schema(value_type = String, example = "tsr_…")]
    #[serde(serialize_with = "expose_secret")]
    pub secret: SecretString,
}

fn expose_secret<S: serde::Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose())
}

#[derive(Debug, Default)]
pub struct CreateToken {
    pub name: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub expiry: Option<ExpiryRequest>,
    pub metadata: Option<Map<String, Value>>,
    /// Opt into automatic rotation before expiry.
    pub auto_rotate: bool,
    /// Usage controls (IP lists, device binding, credits, rate limits).
    pub controls: ControlsInput,
}

/// A partial update; `None` leaves a field as it is. For nullable fields the
/// inner `None` clears the value.
#[derive(Debug, Default)]
pub struct UpdateToken {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    pub metadata: Option<Map<String, Value>>,
    pub expiry: Option<ExpiryRequest>,
    pub auto_rotate: Option<bool>,
    /// Usage controls to change.
    pub controls: ControlsInput,
}

/// An [`UpdateToken`] after validation: what to set.
struct ValidUpdate {
    name: Option<String>,
    description: Option<Option<String>>,
    scopes: Option<Vec<String>>,
    metadata: Option<Map<String, Value>>,
    expires_at: Option<Option<chrono::DateTime<Utc>>>,
    auto_rotate: Option<bool>,
    controls: ControlChange,
}

impl ValidUpdate {
    /// Sets the given fields on `t`; returns the names of those set, in a
    /// fixed order (they go into the audit row and the `updated` event).
    fn apply(self, t: &mut ApiToken) -> Result<Vec<&'static str>, DomainError> {
        let mut changed = Vec::new();
        set(&mut t.name, self.name, "name", &mut changed);
        set(
            &mut t.description,
            self.description,
            "description",
            &mut changed,
        );
        set(&mut t.scopes, self.scopes, "scopes", &mut changed);
        set(&mut t.metadata, self.metadata, "metadata", &mut changed);
        set(
            &mut t.expires_at,
            self.expires_at,
            "expires_at",
            &mut changed,
        );
        set(
            &mut t.auto_rotate,
            self.auto_rotate,
            "auto_rotate",
            &mut changed,
        );
        self.controls.apply(t, &mut changed)?;
        Ok(changed)
    }
}

/// Which way a soft-delete change goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deletion {
    Delete,
    Restore,
}

pub use control_input::{ControlsInput, CreditsInput, RateLimitInput};
pub use controls::{
    CallerFacts, Controls, DeviceKeys, RateLimitRequest, RateLimitState, Refusal, Verified,
    VerifyCaller, DEVICE_HASH_PURPOSE, SESSION_DEVICE_PURPOSE,
};

/// The answer to "does this token authenticate?".
pub type Verification = Result<Verified, Refusal>;

pub struct TokenService {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) settings: TokenSettings,
    /// Seals a successor's secret until its predecessor claims it.
    pub(crate) successor_keyring: Keyring,
    cache: VerifyCache,
    background: Arc<BackgroundWriter>,
    pub(crate) metrics: Arc<Metrics>,
    /// Failed verifications per client IP from unauthenticated callers
    /// (a failure limit on the shared engine), and the per-token limits.
    pub(crate) limits: Arc<RateLimits>,
    failure_rule: Option<RateRule>,
    /// Turns device ids into what is stored and compared (never the id).
    device_keys: DeviceKeys,
}

const VERIFY_CACHE_CAPACITY: usize = 100_000;

impl TokenService {
    pub fn new(
        store: Arc<dyn Store>,
        settings: TokenSettings,
        successor_keyring: Keyring,
        device_keys: DeviceKeys,
        background: Arc<BackgroundWriter>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            device_keys,
            cache: VerifyCache::new(settings.verify_cache_ttl, VERIFY_CACHE_CAPACITY),
            failure_rule: RateRule::new(
                settings.verify_failure_limit_per_minute,
                std::time::Duration::from_secs(60),
            )
            .ok(),
            limits: Arc::new(RateLimits::in_process(metrics.clone())),
            store,
            settings,
            successor_keyring,
            background,
            metrics,
        }
    }

    /// Uses the shared rate-limit engine (`Services::rate_limits`) instead
    /// of a process-local one of its own.
    pub fn with_rate_limits(mut self, limits: Arc<RateLimits>) -> Self {
        self.limits = limits;
        self
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    pub async fn create(
        &self,
        input: CreateToken,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<IssuedToken, ServiceError> {
        let now = tessera_core::ids::now();
        let scopes = match &input.scopes {
            Some(s) => self.settings.scopes.validate(s)?,
            None => vec!["read".to_string()],
        };
        // Validated in this order, so the first bad field reported is stable.
        let name = validate_name(&input.name)?;
        let description = validate_optional_text("description", input.description, 1000)?;
        let owner = validate_optional_text("owner", input.owner, 200)?;
        let metadata = validate_metadata(input.metadata.unwrap_or_default())?;
        let expires_at = self
            .settings
            .expiry
            .resolve(input.expiry.unwrap_or(ExpiryRequest::Default), now)?;
        let controls = input.controls.validate(self.device_keys.current(), now)?;
        let generated = self.settings.format.generate();
        let mut token = ApiToken::new(new_id(), name, scopes, now)
            .with_description(description)
            .with_owner(owner)
            .with_hint(generated.hint.clone())
            .with_metadata(metadata)
            .with_expiry(expires_at)
            .with_auto_rotate(input.auto_rotate);
        let mut set_controls = Vec::new();
        controls.apply(&mut token, &mut set_controls)?;
        let audit = AuditEntry::success(
            actor,
            "token.create",
            "api_token",
            &token.id,
            json!({"name": token.name, "owner": token.owner, "scopes": token.scopes,
                "controls": set_controls}),
            ctx,
        );
        let event = OutboxEvent::token_created(&token.id, &generated.hash.to_hex());
        self.store
            .create_token(
                &NewToken {
                    token: token.clone(),
                    secret_hash: generated.hash,
                },
                &audit,
                &[event],
            )
            .await?;
        self.metrics.api_tokens_created.inc();
        tracing::info!(token_id = %token.id, hint = %token.hint, "token created");
        Ok(IssuedToken {
            token: token.view(now),
            secret: generated.raw,
        })
    }

    pub async fn get(&self, id: &str) -> Result<ApiToken, ServiceError> {
        let not_found = || ServiceError::from(DomainError::NotFound(Entity::Token));
        if !is_valid_id(id) {
            return Err(not_found());
        }
        // A deleted token is gone for reading and changing until it is
        // restored: listings with `include_deleted` show it, restore takes
        // its id.
        let token = self.store.get_token(id).await?;
        token
            .filter(|t| t.deleted_at.is_none())
            .ok_or_else(not_found)
    }

    /// A page of tokens, newest first; states are judged now.
    pub async fn list(&self, q: TokenQuery) -> Result<Page<ApiToken>, ServiceError> {
        if let Some(c) = &q.cursor {
            if !is_valid_id(c) {
                return Err(
                    DomainError::invalid("cursor", "is not a cursor this API returned").into(),
                );
            }
        }
        Ok(self.store.list_tokens(&q, Utc::now()).await?)
    }

    /// Runs one lifecycle change and drops the token's cached lookups.
    /// `rule` decides, from the locked current record, what to write;
    /// `Ok(None)` means "nothing to do" (e.g. revoking a revoked token).
    pub(crate) async fn change<F>(&self, id: &str, rule: F) -> Result<ApiToken, ServiceError>
    where
        F: FnOnce(&ApiToken) -> Result<Option<TokenChange>, DomainError> + Send,
    {
        if !is_valid_id(id) {
            return Err(DomainError::NotFound(Entity::Token).into());
        }
        let result = self.apply_change(id, rule).await;
        self.cache.invalidate_token(id);
        result
    }

    /// One write transaction: lock the token, apply the rule, write the
    /// record, its secrets, audit row and events, commit. Concurrent changes
    /// of one token are serialised by the row lock.
    async fn apply_change<F>(&self, id: &str, rule: F) -> Result<ApiToken, ServiceError>
    where
        F: FnOnce(&ApiToken) -> Result<Option<TokenChange>, DomainError> + Send,
    {
        let mut tx = self.store.begin_write().await?;
        let current = tx
            .lock_token(id)
            .await?
            .ok_or(DomainError::NotFound(Entity::Token))?;
        // Nothing to do: dropping the transaction rolls it back.
        let Some(change) = rule(&current)? else {
            return Ok(current);
        };
        tx.write_token_change(&change).await?;
        tx.commit().await?;
        Ok(change.token)
    }

    pub async fn update(
        &self,
        id: &str,
        input: UpdateToken,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<ApiToken, ServiceError> {
        let now = tessera_core::ids::now();
        // Validate before taking the lock; only the state check needs it.
        let name = input.name.as_deref().map(validate_name).transpose()?;
        let description = match input.description {
            Some(d) => Some(validate_optional_text("description", d, 1000)?),
            None => None,
        };
        let scopes = input
            .scopes
            .as_deref()
            .map(|s| self.settings.scopes.validate(s))
            .transpose()?;
        let metadata = input.metadata.map(validate_metadata).transpose()?;
        let expires_at = input
            .expiry
            .map(|e| self.settings.expiry.resolve(e, now))
            .transpose()?;
        let fields = ValidUpdate {
            name,
            description,
            scopes,
            metadata,
            expires_at,
            auto_rotate: input.auto_rotate,
            controls: input.controls.validate(self.device_keys.current(), now)?,
        };
        self.change(id, move |current: &ApiToken| {
            if current.deleted_at.is_some() {
                return Err(DomainError::NotFound(Entity::Token));
            }
            if current.purged_at.is_some() {
                return Err(DomainError::TokenNotActive {
                    state: "purged",
                    operation: "updated",
                });
            }
            let mut t = current.clone();
            let changed = fields.apply(&mut t)?;
            if changed.is_empty() {
                return Ok(None);
            }
            t.updated_at = now;
            let event = OutboxEvent::token_updated(&t.id, &changed);
            let details = json!({ "fields": changed });
            Ok(Some(TokenChange {
                audit: AuditEntry::success(actor, "token.update", "api_token", &t.id, details, ctx),
                events: vec![event],
                token: t,
                secrets: SecretChange::Keep,
            }))
        })
        .await
    }

    /// Forgets the device a token is bound to (`first_use`: the next device
    /// binds it; `required`: no device is accepted until one is set by an
    /// update). Audited, emits `updated`; idempotent.
    pub async fn unbind_device(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<ApiToken, ServiceError> {
        let now = tessera_core::ids::now();
        self.change(id, move |current: &ApiToken| {
            if current.deleted_at.is_some() {
                return Err(DomainError::NotFound(Entity::Token));
            }
            if current.bound_device.is_none() {
                return Ok(None);
            }
            let mut t = current.clone();
            t.bound_device = None;
            t.updated_at = now;
            let fields = ["device_id"];
            Ok(Some(TokenChange {
                audit: AuditEntry::success(
                    actor,
                    "token.unbind_device",
                    "api_token",
                    &t.id,
                    json!({ "fields": fields }),
                    ctx,
                ),
                events: vec![OutboxEvent::token_updated(&t.id, &fields)],
                token: t,
                secrets: SecretChange::Keep,
            }))
        })
        .await
    }

    pub async fn rotate(
        &self,
        id: &str,
        grace_seconds: Option<i64>,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<IssuedToken, ServiceError> {
        let now = tessera_core::ids::now();
        let generated = self.settings.format.generate();
        let (hash, hint) = (generated.hash, generated.hint.clone());
        let token = self
            .change(id, move |current: &ApiToken| {
                current.check_rotatable(now)?;
                let grace = grace_seconds.unwrap_or(0);
                let old_valid_until = current.grace_end(grace, now)?;
                let mut t = current.clone();
                t.hint = hint;
                t.updated_at = now;
                Ok(Some(TokenChange {
                    audit: AuditEntry::success(
                        actor,
                        "token.rotate",
                        "api_token",
                        &t.id,
                        json!({ "grace_seconds": grace }),
                        ctx,
                    ),
                    events: vec![OutboxEvent::token_rotated(&t.id, &t.id)],
                    token: t,
                    secrets: SecretChange::Rotate {
                        new_hash: hash,
                        old_valid_until,
                    },
                }))
            })
            .await?;
        self.metrics.api_tokens_rotated.inc();
        tracing::info!(token_id = %token.id, "token rotated");
        Ok(IssuedToken {
            token: token.view(now),
            secret: generated.raw,
        })
    }

    /// Revokes (and with `purge`, permanently retires) a token. Idempotent:
    /// revoking a revoked token returns it unchanged.
    pub async fn revoke(
        &self,
        id: &str,
        purge: bool,
        reason: Option<String>,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<ApiToken, ServiceError> {
        let now = tessera_core::ids::now();
        let reason = validate_reason(reason)?;
        let mut revoked_now = false;
        let flag = &mut revoked_now;
        let token = self
            .change(id, move |current: &ApiToken| {
                let mut t = current.clone();
                let mut events = Vec::new();
                if t.revoked_at.is_none() {
                    t.revoked_at = Some(now);
                    t.revoked_by = Some(actor.revoked_by());
                    t.revoke_reason = reason.clone();
                    events.push(OutboxEvent::token_revoked(&t.id));
                    *flag = true;
                }
                if purge && t.purged_at.is_none() {
                    t.purged_at = Some(now);
                    events.push(OutboxEvent::token_purged(&t.id));
                }
                if events.is_empty() {
                    return Ok(None);
                }
                t.updated_at = now;
                let action = if purge { "token.purge" } else { "token.revoke" };
                Ok(Some(TokenChange {
                    audit: AuditEntry::success(
                        actor,
                        action,
                        "api_token",
                        &t.id,
                        json!({ "reason": reason, "purge": purge }),
                        ctx,
                    ),
                    events,
                    token: t,
                    secrets: SecretChange::Keep,
                }))
            })
            .await?;
        if revoked_now {
            self.metrics.api_tokens_revoked.inc();
            tracing::info!(token_id = %token.id, purge, "token revoked");
        }
        Ok(token)
    }

    /// Soft-deletes a token; idempotent.
    pub async fn delete(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<ApiToken, ServiceError> {
        self.set_deletion(id, Deletion::Delete, actor, ctx).await
    }

    /// Restores a soft-deleted token; idempotent.
    pub async fn restore(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<ApiToken, ServiceError> {
        self.set_deletion(id, Deletion::Restore, actor, ctx).await
    }

    async fn set_deletion(
        &self,
        id: &str,
        to: Deletion,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<ApiToken, ServiceError> {
        let now = tessera_core::ids::now();
        let deleted = to == Deletion::Delete;
        self.change(id, move |current: &ApiToken| {
            if current.deleted_at.is_some() == deleted {
                return Ok(None);
            }
            let mut t = current.clone();
            t.deleted_at = deleted.then_some(now);
            t.updated_at = now;
            let (action, event) = match to {
                Deletion::Delete => ("token.delete", OutboxEvent::token_deleted(&t.id)),
                Deletion::Restore => ("token.restore", OutboxEvent::token_restored(&t.id)),
            };
            Ok(Some(TokenChange {
                audit: AuditEntry::success(actor, action, "api_token", &t.id, json!({}), ctx),
                events: vec![event],
                token: t,
                secrets: SecretChange::Keep,
            }))
        })
        .await
    }

    pub fn cached_entries(&self) -> usize {
        self.cache.len()
    }

    /// Changes committed elsewhere (another replica, the CLI): drops this
    /// process's cached lookups of these tokens.
    pub fn forget_cached(&self, token_ids: &std::collections::HashSet<&str>) {
        self.cache.invalidate_tokens(token_ids);
    }

    /// Drops every cached lookup (the invalidation log cannot be read).
    pub fn forget_all_cached(&self) {
        self.cache.clear();
    }
}

mod control_input;
mod controls;
mod verify;

use control_input::{set, ControlChange};
