//! Invite use cases: create under the issuer policy and quota, validate,
//! redeem atomically, revoke and delete. Validation and redemption are
//! public and guessable-input paths, so they are rate limited per client
//! and log every attempt (asynchronously, except the redemption itself).

mod input;
mod limits;
mod new_user;

use std::{net::IpAddr, sync::Arc, time::Instant};

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use tessera_core::{
    api_token::validate_metadata,
    audit::{Actor, AuditEntry, RequestContext},
    crypto::{KeyedHasher, Keyring},
    email::normalize_email,
    error::Entity,
    event::OutboxEvent,
    gcra::RateRule,
    ids::{is_valid_id, new_id, validate_subject},
    invite::{generate_code, normalize_code, Grants, Invite, InviteFailure, Issuer},
    DomainError,
};
use tessera_store::{
    InviteQuery, InviteQuota, InviteUsageRecord, NewInvite, Page, Redemption, Store, StoreError,
};

use self::input::{check_given_email, validate_grant_scopes, validate_issuer, validate_role};
use super::{background::BackgroundWriter, rate_limit::RateLimits, ServiceError};
use crate::{config::InviteSettings, metrics::Metrics};

/// When an invite should expire, as requested.
#[derive(Debug, Clone, Copy)]
pub enum InviteExpiry {
    At(DateTime<Utc>),
    InSeconds(i64),
}

#[derive(Debug)]
pub struct CreateInvite {
    pub grants: Grants,
    pub email: Option<String>,
    pub max_uses: Option<i64>,
    pub expiry: Option<InviteExpiry>,
    pub metadata: Option<Map<String, Value>>,
    /// The application user the caller acts for; default: the caller itself.
    pub on_behalf_of: Option<Issuer>,
}

/// Where an attempt came from: its rate-limit key and sealed audit context.
pub struct Attempt<'a> {
    pub client_ip: Option<IpAddr>,
    pub context: &'a (dyn Fn() -> RequestContext + Send + Sync),
}

pub struct InviteService {
    store: Arc<dyn Store>,
    settings: InviteSettings,
    /// Current key first; older keys keep codes issued before a rotation valid.
    hashers: Vec<KeyedHasher>,
    outbox_keyring: Keyring,
    /// Requests and guess-like failures per client address (see `limits`).
    limits: Arc<RateLimits>,
    failure_rule: Option<RateRule>,
    background: Arc<BackgroundWriter>,
    metrics: Arc<Metrics>,
    signup_links: Option<super::links::LinkService>,
}

const HASH_PURPOSE: &str = "invite-code";

impl InviteService {
    pub fn new(
        store: Arc<dyn Store>,
        settings: InviteSettings,
        keys: &[&str],
        outbox_keyring: Keyring,
        background: Arc<BackgroundWriter>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, tessera_core::crypto::CryptoError> {
        Ok(Self {
            hashers: keys
                .iter()
                .map(|k| KeyedHasher::new(k, HASH_PURPOSE))
                .collect::<Result<_, _>>()?,
            limits: Arc::new(RateLimits::in_process(metrics.clone())),
            failure_rule: RateRule::new(
                settings.failure_limit_per_minute,
                std::time::Duration::from_secs(60),
            )
            .ok(),
            store,
            settings,
            outbox_keyring,
            background,
            metrics,
            signup_links: None,
        })
    }

    /// Lifetime and size limits of new invites (the API document states them).
    pub fn limits(&self) -> &tessera_core::invite::InviteLimits {
        &self.settings.limits
    }

    fn code_hashes(&self, canonical: &str) -> Vec<String> {
        self.hashers
            .iter()
            .map(|h| h.hash_hex(canonical.as_bytes()))
            .collect()
    }

    /// The issuer a caller acts as when it names no one: itself, as admin
    /// (only admin callers reach invite management).
    fn default_issuer(actor: &Actor) -> Issuer {
        Issuer {
            subject: actor.as_audit_string(),
            role: "admin".into(),
        }
    }

    pub async fn create(
        &self,
        input: CreateInvite,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<(Invite, String), ServiceError> {
        let now = tessera_core::ids::now();
        // Checked in this order, so the first bad field reported is stable.
        let (issuer, grants) = self.issuer_and_grants(input.on_behalf_of, &input.grants, actor)?;
        let max_uses = self.max_uses(input.max_uses)?;
        let expires_at = self.expiry(input.expiry, now)?;
        let invite = Invite {
            id: new_id(),
            email: input
                .email
                .as_deref()
                .map(|e| normalize_email("email", e))
                .transpose()?,
            issuer,
            grants,
            max_uses,
            uses: 0,
            expires_at,
            revoked_at: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            metadata: validate_metadata(input.metadata.unwrap_or_default())?,
        };
        let code = generate_code();
        let canonical = normalize_code(&code).expect("generated codes are canonical");
        let quota = self.quota(&invite.issuer.role);
        let audit = AuditEntry::success(
            actor,
            "invite.create",
            "invite",
            &invite.id,
            json!({ "issuer": invite.issuer, "grants": invite.grants, "max_uses": max_uses }),
            ctx,
        );
        let event = OutboxEvent::invite_created(&invite.id, &code, &self.outbox_keyring);
        let new = NewInvite {
            // New codes are hashed under the current key only.
            code_hash: self.hashers[0].hash_hex(canonical.as_bytes()),
            invite,
        };
        match self
            .store
            .create_invite(&new, quota, &audit, &[event])
            .await
        {
            Err(StoreError::Domain(e @ DomainError::InviteQuotaExceeded { .. })) => {
                Err(self.quota_refused(&e))
            }
            Err(e) => Err(e.into()),
            Ok(()) => {
                self.metrics.invites_created.inc();
                tracing::info!(invite_id = %new.invite.id, "invite created");
                Ok((new.invite, code))
            }
        }
    }

    /// Who issues the invite and what it grants, if the policy allows it.
    fn issuer_and_grants(
        &self,
        on_behalf_of: Option<Issuer>,
        requested: &Grants,
        actor: &Actor,
    ) -> Result<(Issuer, Grants), DomainError> {
        let issuer = match on_behalf_of {
            Some(i) => validate_issuer(i)?,
            None => Self::default_issuer(actor),
        };
        let grants = Grants {
            role: validate_role("grants.role", &requested.role)?,
            scopes: validate_grant_scopes(&requested.scopes)?,
        };
        if !self.settings.policy.allows(&issuer.role, &grants.role) {
            return Err(DomainError::InviteNotAllowed {
                issuer_role: issuer.role,
                granted_role: grants.role,
            });
        }
        Ok((issuer, grants))
    }

    fn max_uses(&self, requested: Option<i64>) -> Result<i64, DomainError> {
        let limit = self.settings.limits.max_uses;
        let max_uses = requested.unwrap_or(1);
        if !(1..=limit).contains(&max_uses) {
            return Err(DomainError::invalid(
                "max_uses",
                format!("must be between 1 and {limit}"),
            ));
        }
        Ok(max_uses)
    }

    /// When the invite expires: the default lifetime, or the requested
    /// instant or duration within the maximum lifetime.
    fn expiry(
        &self,
        requested: Option<InviteExpiry>,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, DomainError> {
        let limits = &self.settings.limits;
        let expires_at = match requested {
            None => now + limits.default_lifetime,
            Some(InviteExpiry::At(at)) => at,
            // Range-checked before any arithmetic: a huge value must be a 422, not an overflow.
            Some(InviteExpiry::InSeconds(s))
                if (1..=limits.max_lifetime.num_seconds()).contains(&s) =>
            {
                now + Duration::seconds(s)
            }
            Some(InviteExpiry::InSeconds(_)) => {
                return Err(DomainError::invalid(
                    "expires_in",
                    format!(
                        "must be between 1 and {} seconds",
                        limits.max_lifetime.num_seconds()
                    ),
                ))
            }
        };
        if expires_at <= now || expires_at > now + limits.max_lifetime {
            return Err(DomainError::invalid(
                "expires_at",
                format!(
                    "must be in the future and at most {} days away",
                    limits.max_lifetime.num_days()
                ),
            ));
        }
        Ok(expires_at)
    }

    /// The issuer's rolling daily quota (counted back from the invite's
    /// creation time by the store), unless quotas are off or its role
    /// is exempt.
    fn quota(&self, issuer_role: &str) -> Option<InviteQuota> {
        let exempt = self.settings.quota_exempt_roles.contains(issuer_role);
        (self.settings.daily_quota > 0 && !exempt)
            .then(|| InviteQuota::new(self.settings.daily_quota, Duration::hours(24)))
    }

    /// An invite by id. A deleted invite is gone for reading and revoking
    /// (there is no undelete): `404`, as for an id that never existed;
    /// deleting it again returns it unchanged. Listings with
    /// `include_deleted` and the audit log still show it.
    pub async fn get(&self, id: &str) -> Result<Invite, ServiceError> {
        let not_found = || ServiceError::from(DomainError::NotFound(Entity::Invite));
        if !is_valid_id(id) {
            return Err(not_found());
        }
        let invite = self.store.get_invite(id).await?;
        invite
            .filter(|i| i.deleted_at.is_none())
            .ok_or_else(not_found)
    }

    /// A page of invites, newest first; states are judged now.
    pub async fn list(&self, q: InviteQuery) -> Result<Page<Invite>, ServiceError> {
        if q.cursor.as_deref().is_some_and(|c| !is_valid_id(c)) {
            return Err(DomainError::invalid("cursor", "is not a cursor this API returned").into());
        }
        Ok(self.store.list_invites(&q, Utc::now()).await?)
    }

    /// Revokes an invite; idempotent (revoking a revoked invite returns it).
    pub async fn revoke(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<Invite, ServiceError> {
        let (invite, changed) = self.stamp_once(id, actor, ctx, &REVOKE).await?;
        if changed {
            self.metrics.invites_revoked.inc();
        }
        Ok(invite)
    }

    /// Soft-deletes an invite; idempotent (deleting it again returns it
    /// unchanged, so a retried request succeeds).
    pub async fn delete(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<Invite, ServiceError> {
        let (invite, _) = self.stamp_once(id, actor, ctx, &DELETE).await?;
        Ok(invite)
    }

    /// Sets the timestamp `stamp.field` picks to now, unless it is already
    /// set (then nothing is written): the shape of revoke and delete.
    async fn stamp_once(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
        stamp: &Stamp,
    ) -> Result<(Invite, bool), ServiceError> {
        self.change(id, actor, ctx, stamp.if_deleted, |i, now| {
            let at = (stamp.field)(i);
            if at.is_some() {
                return None;
            }
            *at = Some(now);
            Some((stamp.action, (stamp.events)(i)))
        })
        .await
    }

    async fn change(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
        if_deleted: IfDeleted,
        rule: impl FnOnce(&mut Invite, DateTime<Utc>) -> Option<(&'static str, Vec<OutboxEvent>)> + Send,
    ) -> Result<(Invite, bool), ServiceError> {
        let not_found = || ServiceError::from(DomainError::NotFound(Entity::Invite));
        if !is_valid_id(id) {
            return Err(not_found());
        }
        let now = tessera_core::ids::now();
        let mut tx = self.store.begin_write().await?;
        let mut invite = tx.lock_invite(id).await?.ok_or_else(not_found)?;
        if invite.deleted_at.is_some() {
            return match if_deleted {
                IfDeleted::NotFound => Err(not_found()),
                IfDeleted::Unchanged => Ok((invite, false)),
            };
        }
        // Nothing to do: dropping the transaction rolls it back.
        let Some((action, events)) = rule(&mut invite, now) else {
            return Ok((invite, false));
        };
        invite.updated_at = now;
        tx.update_invite(&invite).await?;
        let audit = AuditEntry::success(actor, action, "invite", &invite.id, json!({}), ctx);
        tx.append_audit(&[audit]).await?;
        tx.append_events(&events).await?;
        tx.commit().await?;
        Ok((invite, true))
    }

    /// The canonical code, or a 422 (counted as a failed attempt).
    async fn canonical(
        &self,
        code: &str,
        action: &'static str,
        subject: Option<&str>,
        attempt: &Attempt<'_>,
    ) -> Result<String, ServiceError> {
        if let Some(canonical) = normalize_code(code) {
            return Ok(canonical);
        }
        self.record_failure("MALFORMED");
        self.log_usage(None, action, "MALFORMED", subject, attempt);
        Err(DomainError::invalid(
            "code",
            "is not an invite code (16 characters, e.g. K7QH-2MXD-9TVA-R4PE)",
        )
        .into())
    }

    fn log_usage(
        &self,
        invite_id: Option<String>,
        action: &'static str,
        outcome: &'static str,
        subject: Option<&str>,
        attempt: &Attempt<'_>,
    ) {
        self.background.queue_invite_usage(InviteUsageRecord {
            invite_id,
            action,
            outcome,
            subject: subject.map(str::to_string),
            context: (attempt.context)(),
        });
    }

    /// Does this code work (for this e-mail)? Never consumes a use.
    pub async fn validate(
        &self,
        code: &str,
        email: Option<&str>,
        attempt: &Attempt<'_>,
    ) -> Result<Result<Invite, InviteFailure>, ServiceError> {
        check_given_email(email)?;
        let admission = self.check_limit(attempt).await?;
        let outcome = self.validate_admitted(code, email, attempt).await;
        let guessed = match &outcome {
            Ok(Ok(_)) => false,
            Ok(Err(f)) => limits::is_guess(*f),
            Err(e) => limits::guessed_error(e),
        };
        self.settle(attempt, admission, guessed).await;
        outcome
    }

    async fn validate_admitted(
        &self,
        code: &str,
        email: Option<&str>,
        attempt: &Attempt<'_>,
    ) -> Result<Result<Invite, InviteFailure>, ServiceError> {
        let started = Instant::now();
        let canonical = self.canonical(code, "validate", None, attempt).await?;
        let found = self
            .store
            .find_invite_by_code(&self.code_hashes(&canonical))
            .await?;
        let now = Utc::now();
        let result = match found {
            None => Err((InviteFailure::NotFound, None)),
            Some(i) => match i.check_usable(email, now) {
                Ok(()) => Ok(i),
                Err(f) => Err((f, Some(i.id))),
            },
        };
        let outcome = match result {
            Ok(i) => {
                self.log_usage(Some(i.id.clone()), "validate", "ok", None, attempt);
                Ok(i)
            }
            Err((f, id)) => {
                self.record_failure(f.as_str());
                self.log_usage(id, "validate", f.as_str(), None, attempt);
                Err(f)
            }
        };
        self.metrics
            .validation_latency
            .observe(started.elapsed().as_secs_f64());
        Ok(outcome)
    }

    /// Consumes one use for `subject`, atomically; a used-up invite is a 409.
    pub async fn redeem(
        &self,
        code: &str,
        subject: &str,
        email: Option<&str>,
        attempt: &Attempt<'_>,
    ) -> Result<Invite, ServiceError> {
        check_given_email(email)?;
        let subject = validate_subject(subject)?;
        let admission = self.check_limit(attempt).await?;
        let outcome = self.redeem_admitted(code, subject, email, attempt).await;
        let guessed = outcome.as_ref().is_err_and(limits::guessed_error);
        self.settle(attempt, admission, guessed).await;
        outcome
    }

    async fn redeem_admitted(
        &self,
        code: &str,
        subject: String,
        email: Option<&str>,
        attempt: &Attempt<'_>,
    ) -> Result<Invite, ServiceError> {
        let canonical = self
            .canonical(code, "redeem", Some(&subject), attempt)
            .await?;
        let redemption = Redemption {
            code_hashes: self.code_hashes(&canonical),
            email: email.map(str::to_string),
            now: tessera_core::ids::now(),
            usage: InviteUsageRecord {
                invite_id: None,
                action: "redeem",
                outcome: "ok",
                subject: Some(subject.clone()),
                context: (attempt.context)(),
            },
        };
        match self.store.redeem_invite(&redemption).await? {
            Ok(invite) => {
                self.metrics.invites_used.inc();
                tracing::info!(invite_id = %invite.id, "invite redeemed");
                Ok(invite)
            }
            Err((failure, id)) => {
                self.record_failure(failure.as_str());
                self.log_usage(id, "redeem", failure.as_str(), Some(&subject), attempt);
                Err(DomainError::InviteUnusable(failure).into())
            }
        }
    }
}

/// A change that sets one timestamp once: its audit action, what it does to
/// a deleted invite, the field, and the events it emits.
struct Stamp {
    action: &'static str,
    if_deleted: IfDeleted,
    field: fn(&mut Invite) -> &mut Option<DateTime<Utc>>,
    events: fn(&Invite) -> Vec<OutboxEvent>,
}

const REVOKE: Stamp = Stamp {
    action: "invite.revoke",
    if_deleted: IfDeleted::NotFound,
    field: |i| &mut i.revoked_at,
    events: |i| vec![OutboxEvent::invite_revoked(&i.id)],
};

const DELETE: Stamp = Stamp {
    action: "invite.delete",
    if_deleted: IfDeleted::Unchanged,
    field: |i| &mut i.deleted_at,
    events: |_| vec![],
};

/// What a change does to an invite that is already deleted.
#[derive(Debug, Clone, Copy)]
enum IfDeleted {
    /// Answer as if it did not exist (see [`InviteService::get`]).
    NotFound,
    /// Return it as it is (a repeated delete).
    Unchanged,
}
