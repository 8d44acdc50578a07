//! Refresh-token rotation. One transaction per presentation: lock the
//! session (so refreshes of one family run one after another, on every
//! replica), judge the token, and either rotate it by one conditional
//! update, hand out the same successor again inside the grace window, or,
//! for a used token, revoke the whole family and its session. First the
//! request rates per client IP (`TESSERA_RATE_LIMIT_REFRESH`) and per user
//! (`TESSERA_RATE_LIMIT_REFRESH_USER`) are counted.
//!
//! A device-bound session refreshes only from the device it was opened
//! from. Its token presented from another device (or with none) is refused
//! with `device_mismatch`, audited, and changes nothing: no token is used
//! and nothing is revoked, so the right device can still refresh. That
//! holds for a used token too: reuse detection judges what the session's
//! own device presents (and every presentation for an unbound session), so
//! a caller without the device id can neither refresh nor end the session.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use tessera_core::{
    audit::RequestContext,
    rate_limit::LimitKey,
    session::{RefreshToken, RefreshVerdict, RevokeReason, Session},
    token_format::{GeneratedToken, TokenHash},
    user::mask_user_id,
    DomainError, SecretString,
};
use tessera_store::{PresentedDevice, RefreshSuccession, WriteTx};

use super::{events, IssuedSession, SessionService, SUCCESSOR_CONTEXT};
use crate::service::ServiceError;

/// Why a refresh token of a device-bound session was refused: it came from
/// another device (the audit reason, the metric label and the answer's code).
const DEVICE_MISMATCH: &str = "device_mismatch";

/// What the locked transaction decided.
// Returned once per refresh: boxing the session buys nothing.
#[allow(clippy::large_enum_variant)]
enum Step {
    Issued(IssuedSession),
    Refused(&'static str),
}

/// A successor kept sealed for the reuse grace window (none without one).
struct SealedSuccessor {
    sealed: Option<String>,
    until: Option<DateTime<Utc>>,
}

impl SealedSuccessor {
    fn succession<'a>(&'a self, successor_id: &'a str) -> RefreshSuccession<'a> {
        RefreshSuccession {
            successor_id,
            sealed: self.sealed.as_deref(),
            until: self.until,
        }
    }
}

impl SessionService {
    /// `POST /v1/auth/refresh` and `grant_type=refresh_token`. Anything but
    /// a successful rotation is `invalid_grant` (but `device_mismatch`: a
    /// token of a live, bound session, from another device); why is logged
    /// and audited. Past the request rate of `client_ip`: `429
    /// rate_limited`. `device_id` is the request's (well-formed)
    /// `X-Device-Id`.
    pub async fn refresh(
        &self,
        raw: &str,
        client_id: Option<&str>,
        device_id: Option<&str>,
        client_ip: Option<IpAddr>,
        ctx: &RequestContext,
    ) -> Result<IssuedSession, ServiceError> {
        if let Some(ip) = client_ip {
            let rule = self.rate_limits.classes().refresh_ip.as_ref();
            let key = LimitKey::client(ip).to_string();
            self.rate_limits.admit("refresh_ip", &key, rule).await?;
        }
        let presented = self.presented_device(device_id);
        let device = PresentedDevice { hashes: &presented };
        let outcome = match self.refresh_format.parse(raw) {
            Ok(hash) => {
                self.admit_user_refresh(&hash).await?;
                self.refresh_hashed(&hash, client_id, &device, ctx).await?
            }
            Err(_) => Step::Refused("malformed"),
        };
        match outcome {
            Step::Issued(issued) => Ok(issued),
            Step::Refused(DEVICE_MISMATCH) => {
                tracing::info!(reason = DEVICE_MISMATCH, "refresh refused; nothing revoked");
                self.count_refresh(DEVICE_MISMATCH);
                Err(DomainError::DeviceMismatch.into())
            }
            Step::Refused(why) => {
                tracing::debug!(reason = why, "refresh refused");
                if why != "reuse_detected" {
                    self.count_refresh("failed");
                }
                Err(DomainError::InvalidGrant.into())
            }
        }
    }

    /// The request rate per user (`refresh_user`, keyed by the session's
    /// subject): one indexed read for the token's owner, outside the rotation's transaction so that no lock is
    /// held across the limiter's call. A token of no session counts nowhere
    /// (it is refused next).
    async fn admit_user_refresh(&self, hash: &TokenHash) -> Result<(), ServiceError> {
        let Some(rule) = self.rate_limits.classes().refresh_user.as_ref() else {
            return Ok(());
        };
        let now = tessera_core::ids::now();
        match self.store.refresh_token_subject(hash, now).await? {
            Some(user) => {
                self.rate_limits
                    .admit("refresh_user", &user, Some(rule))
                    .await
            }
            None => Ok(()),
        }
    }

    async fn refresh_hashed(
        &self,
        hash: &TokenHash,
        client_id: Option<&str>,
        device: &PresentedDevice<'_>,
        ctx: &RequestContext,
    ) -> Result<Step, ServiceError> {
        let now = tessera_core::ids::now();
        let fast = self.rotate_fast(hash, client_id, device, ctx, now).await?;
        if let Some(step) = fast {
            return Ok(step);
        }
        self.refresh_judged(hash, client_id, device, ctx, now).await
    }

    /// The common case, a live token of a live session, in one short
    /// transaction: touch (and so lock) the session, use the token by its
    /// conditional update, insert the successor. Each step's condition is
    /// the rule the slow path checks; when one does not hold, nothing is
    /// kept and `None` sends the presentation to [`Self::refresh_judged`],
    /// which tells a grace replay, a reuse and a refusal apart. On SQLite,
    /// whose writers take turns, the statements inside a turn are the
    /// refresh rate: five here against nine on the slow path. The device
    /// is part of the first update's condition: from another device it
    /// matches no row.
    async fn rotate_fast(
        &self,
        hash: &TokenHash,
        client_id: Option<&str>,
        device: &PresentedDevice<'_>,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<Option<Step>, ServiceError> {
        let mut tx = self.store.begin_write().await?;
        let idle = now + self.settings.lifetimes.idle;
        let session = tx
            .touch_live_session_of_refresh(hash, now, idle, device)
            .await?;
        let Some(session) =
            session.filter(|s| client_id.is_none() || s.client_id.as_deref() == client_id)
        else {
            tx.rollback().await?;
            return Ok(None);
        };
        let (next_raw, mut next) = self.new_refresh_token(&session, None, now);
        let sealed = self.seal_successor(&next_raw, now);
        let Some(token) = tx
            .use_refresh_token_by_hash(hash, now, &sealed.succession(&next.id))
            .await?
        else {
            tx.rollback().await?;
            return Ok(None);
        };
        next.parent_id = Some(token.id);
        self.finish_rotation(tx, &session, next_raw, next, ctx, now)
            .await
            .map(Some)
    }

    /// Judges the token under the session's lock: rotation, a grace replay,
    /// reuse (the family revoked) or a refusal. Before any verdict, a bound
    /// session's token is held to its device: from another one it is
    /// refused and nothing changes (not even for a used token).
    async fn refresh_judged(
        &self,
        hash: &TokenHash,
        client_id: Option<&str>,
        device: &PresentedDevice<'_>,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<Step, ServiceError> {
        let mut tx = self.store.begin_write().await?;
        let Some(found) = tx.find_refresh_token(hash).await? else {
            return Ok(Step::Refused("unknown"));
        };
        let Some(session) = tx.lock_session(&found.session_id).await? else {
            return Ok(Step::Refused("unknown"));
        };
        // Read again under the session's lock: a refresh that held it before
        // us may have used this token.
        let token = tx
            .get_refresh_token(&found.id)
            .await?
            .ok_or(DomainError::InvalidGrant)?;
        if !session.is_active_at(now) {
            return self.refuse(tx, &session, "session_ended", ctx).await;
        }
        if client_id.is_some() && session.client_id.as_deref() != client_id {
            return self.refuse(tx, &session, "client_mismatch", ctx).await;
        }
        if !Self::device_may_refresh(&session, device.hashes) {
            return self.refuse(tx, &session, DEVICE_MISMATCH, ctx).await;
        }
        let successor_unused = match &token.successor_id {
            Some(id) => tx
                .get_refresh_token(id)
                .await?
                .is_some_and(|s| s.used_at.is_none() && s.revoked_at.is_none()),
            None => false,
        };
        match token.verdict(now, successor_unused) {
            RefreshVerdict::Rotate => self.rotate(tx, &session, &token, device, ctx, now).await,
            RefreshVerdict::GraceReplay => self.replay(tx, &session, &token, ctx, now).await,
            RefreshVerdict::Reuse => self.reuse(tx, &session, ctx, now).await,
            RefreshVerdict::Dead => self.refuse(tx, &session, "expired_or_revoked", ctx).await,
        }
    }

    /// The successor sealed for the grace window, when there is one.
    fn seal_successor(&self, next_raw: &GeneratedToken, now: DateTime<Utc>) -> SealedSuccessor {
        let grace = self.settings.lifetimes.reuse_grace;
        let sealed = (!grace.is_zero()).then(|| {
            self.successor_keyring
                .seal(next_raw.raw.expose().as_bytes(), SUCCESSOR_CONTEXT)
        });
        SealedSuccessor {
            until: sealed.as_ref().map(|_| now + grace),
            sealed,
        }
    }

    async fn rotate(
        &self,
        mut tx: WriteTx,
        session: &Session,
        token: &RefreshToken,
        device: &PresentedDevice<'_>,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<Step, ServiceError> {
        let (next_raw, next) = self.new_refresh_token(session, Some(&token.id), now);
        let sealed = self.seal_successor(&next_raw, now);
        // The conditional update is the guard: under the session lock it
        // cannot fail, and if it ever did, nothing is minted.
        if !tx
            .use_refresh_token(&token.id, now, &sealed.succession(&next.id))
            .await?
        {
            return Ok(Step::Refused("raced"));
        }
        let idle = self
            .settings
            .lifetimes
            .idle_deadline(now, session.expires_at);
        tx.touch_session(&session.id, now, idle, device).await?;
        self.finish_rotation(tx, session, next_raw, next, ctx, now)
            .await
    }

    /// Inserts the successor, writes the audit row and the event, commits,
    /// and hands out the new pair.
    async fn finish_rotation(
        &self,
        mut tx: WriteTx,
        session: &Session,
        next_raw: GeneratedToken,
        next: RefreshToken,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<Step, ServiceError> {
        tx.insert_refresh_token(&next, &next_raw.hash).await?;
        let (audit, event) = events::refresh_rotated(session, false, ctx);
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        tx.commit().await?;
        self.count_refresh("rotated");
        let issued = self.issue(session, next_raw.raw, next.expires_at, None, now)?;
        Ok(Step::Issued(issued))
    }

    /// Inside the grace window: the same successor again, with a fresh
    /// access token. Nothing is minted but the access token.
    async fn replay(
        &self,
        mut tx: WriteTx,
        session: &Session,
        token: &RefreshToken,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<Step, ServiceError> {
        let (Some(sealed), Some(successor_id)) = (&token.successor_sealed, &token.successor_id)
        else {
            return self.reuse(tx, session, ctx, now).await;
        };
        let Ok(opened) = self.successor_keyring.open(sealed, SUCCESSOR_CONTEXT) else {
            return self.reuse(tx, session, ctx, now).await;
        };
        let raw = SecretString::new(String::from_utf8(opened).unwrap_or_default());
        let successor = tx
            .get_refresh_token(successor_id)
            .await?
            .ok_or(DomainError::InvalidGrant)?;
        let (audit, event) = events::refresh_rotated(session, true, ctx);
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        tx.commit().await?;
        self.count_refresh("grace");
        let issued = self.issue(session, raw, successor.expires_at, None, now)?;
        Ok(Step::Issued(issued))
    }

    /// A used refresh token came back: revoke the family and the session in
    /// this transaction, and raise the alarm (ERROR log, audit channel,
    /// webhook event).
    async fn reuse(
        &self,
        mut tx: WriteTx,
        session: &Session,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<Step, ServiceError> {
        let newly = tx
            .revoke_session(&session.id, now, RevokeReason::ReuseDetected)
            .await?;
        let (audit, event) = events::reuse_detected(session, ctx);
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        if newly {
            let (audit, event) = events::session_revoked(
                session,
                RevokeReason::ReuseDetected,
                &tessera_core::audit::Actor::System,
                ctx,
            );
            tx.append_audit(&[audit]).await?;
            tx.append_events(&[event]).await?;
        }
        tx.commit().await?;
        self.sessions_changed();
        let user = session
            .user_id
            .as_deref()
            .map(mask_user_id)
            .unwrap_or_else(|| tessera_core::mfa::mask_subject(&session.subject));
        tracing::error!(
            event = "auth.refresh.reuse_detected",
            request_id = ctx.request_id.as_deref().unwrap_or("-"),
            user = %user,
            session_id = %session.id,
            "a used refresh token was presented again: its family and session are revoked"
        );
        self.count_refresh("reuse_detected");
        if newly {
            self.metrics
                .sessions
                .revoked
                .with_label_values(&[RevokeReason::ReuseDetected.as_str()])
                .inc();
        }
        Ok(Step::Refused("reuse_detected"))
    }

    /// A known token that cannot refresh (expired, revoked, its session
    /// ended, another client): audited, nothing revoked.
    async fn refuse(
        &self,
        mut tx: WriteTx,
        session: &Session,
        why: &'static str,
        ctx: &RequestContext,
    ) -> Result<Step, ServiceError> {
        let (audit, event) = events::refresh_failed(session, why, ctx);
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        tx.commit().await?;
        Ok(Step::Refused(why))
    }

    fn count_refresh(&self, outcome: &str) {
        self.metrics
            .sessions
            .refreshes
            .with_label_values(&[outcome])
            .inc();
    }
}
