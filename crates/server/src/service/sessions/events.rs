//! What sessions write to the audit log and the outbox. Every record names
//! the session and the masked user id; none carries a password, a token or
//! a code. Security events (refresh-token reuse) are marked for the audit
//! channel.

use serde_json::{json, Value};
use tessera_core::{
    audit::{Actor, AuditEntry, RequestContext},
    event::OutboxEvent,
    session::{RevokeReason, Session},
    user::mask_user_id,
};

/// The masked user (or subject) a session belongs to.
fn who(session: &Session) -> String {
    match &session.user_id {
        Some(id) => mask_user_id(id),
        None => tessera_core::mfa::mask_subject(&session.subject),
    }
}

fn details(session: &Session, ctx: &RequestContext, extra: Value) -> Value {
    let mut d = json!({
        "session_id": session.id,
        "user": who(session),
        "request_id": ctx.request_id,
    });
    if let (Some(map), Value::Object(extra)) = (d.as_object_mut(), extra) {
        map.extend(extra);
    }
    d
}

/// One audit row and one event about a session.
fn pair(
    action: &'static str,
    event: &'static str,
    session: &Session,
    outcome: &'static str,
    actor: &Actor,
    ctx: &RequestContext,
    extra: Value,
) -> (AuditEntry, OutboxEvent) {
    let d = details(session, ctx, extra);
    let audit = AuditEntry {
        outcome,
        ..AuditEntry::success(actor, action, "session", &session.id, d.clone(), ctx)
    };
    (audit, OutboxEvent::session(event, d))
}

pub(super) fn session_created(
    session: &Session,
    actor: &Actor,
    ctx: &RequestContext,
) -> (AuditEntry, OutboxEvent) {
    let extra = json!({ "amr": session.amr, "client_id": session.client_id });
    pair(
        "session.create",
        "session.created",
        session,
        "success",
        actor,
        ctx,
        extra,
    )
}

pub(super) fn session_revoked(
    session: &Session,
    reason: RevokeReason,
    actor: &Actor,
    ctx: &RequestContext,
) -> (AuditEntry, OutboxEvent) {
    let extra = json!({ "reason": reason.as_str() });
    pair(
        "session.revoke",
        "session.revoked",
        session,
        "success",
        actor,
        ctx,
        extra,
    )
}

/// `session.revoked` for a session known only by id (revoke-all).
pub(super) fn session_id_revoked(
    sid: &str,
    user_id: &str,
    reason: RevokeReason,
    actor: &Actor,
    ctx: &RequestContext,
) -> (AuditEntry, OutboxEvent) {
    let d = json!({
        "session_id": sid,
        "user": mask_user_id(user_id),
        "request_id": ctx.request_id,
        "reason": reason.as_str(),
    });
    let audit = AuditEntry::success(actor, "session.revoke", "session", sid, d.clone(), ctx);
    (audit, OutboxEvent::session("session.revoked", d))
}

pub(super) fn login_succeeded(
    session: &Session,
    ctx: &RequestContext,
) -> (AuditEntry, OutboxEvent) {
    let actor = Actor::User(session.subject.clone());
    let extra = json!({ "amr": session.amr });
    pair(
        "auth.login",
        "auth.login.succeeded",
        session,
        "success",
        &actor,
        ctx,
        extra,
    )
}

/// A login refused or paused: failed, throttled, mfa_required. `user_id`
/// is known when the e-mail has an account.
pub(super) fn login_event(
    event: &'static str,
    user_id: Option<&str>,
    outcome: &'static str,
    ctx: &RequestContext,
    extra: Value,
) -> (AuditEntry, OutboxEvent) {
    let mut d = json!({
        "user": user_id.map(mask_user_id),
        "request_id": ctx.request_id,
    });
    if let (Some(map), Value::Object(extra)) = (d.as_object_mut(), extra) {
        map.extend(extra);
    }
    let audit = AuditEntry {
        actor: Actor::Anonymous.as_audit_string(),
        action: "auth.login",
        target_type: "user",
        target_id: user_id.map(str::to_string),
        outcome,
        details: d.clone(),
        context: ctx.clone(),
        channel: None,
    };
    (audit, OutboxEvent::session(event, d))
}

pub(super) fn refresh_rotated(
    session: &Session,
    grace: bool,
    ctx: &RequestContext,
) -> (AuditEntry, OutboxEvent) {
    let actor = Actor::User(session.subject.clone());
    pair(
        "auth.refresh",
        "auth.refresh.rotated",
        session,
        "success",
        &actor,
        ctx,
        json!({ "grace": grace }),
    )
}

/// Refresh-token reuse: the whole family and its session are revoked. The
/// audit row goes to the audit channel.
pub(super) fn reuse_detected(session: &Session, ctx: &RequestContext) -> (AuditEntry, OutboxEvent) {
    let (audit, event) = pair(
        "auth.refresh.reuse_detected",
        "auth.refresh.reuse_detected",
        session,
        "failure",
        &Actor::Anonymous,
        ctx,
        json!({ "revoked": "family_and_session" }),
    );
    (
        audit.with_channel(tessera_core::audit::SECURITY_CHANNEL),
        event,
    )
}

pub(super) fn refresh_failed(
    session: &Session,
    why: &'static str,
    ctx: &RequestContext,
) -> (AuditEntry, OutboxEvent) {
    pair(
        "auth.refresh",
        "auth.refresh.failed",
        session,
        "failure",
        &Actor::Anonymous,
        ctx,
        json!({ "reason": why }),
    )
}
