//! What WebSocket tickets write to the audit log and the outbox. Every
//! record names the session, the masked user id, the gateway (client) and
//! the request id; none carries a ticket or an address.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tessera_core::{
    audit::{Actor, AuditEntry, RequestContext},
    event::OutboxEvent,
    mfa::mask_subject,
    user::mask_user_id,
    ws_ticket::{RejectReason, WsConnection},
};

/// The masked user (or, for an application's subject, the masked subject).
pub(super) fn who(user_id: Option<&str>, subject: &str) -> String {
    match user_id {
        Some(id) => mask_user_id(id),
        None => mask_subject(subject),
    }
}

/// One audit row and its event, with the same details.
fn pair(
    action: &'static str,
    event: &'static str,
    target: (&'static str, Option<&str>),
    outcome: &'static str,
    actor: &Actor,
    ctx: &RequestContext,
    details: Value,
) -> (AuditEntry, OutboxEvent) {
    let audit = AuditEntry {
        actor: actor.as_audit_string(),
        action,
        target_type: target.0,
        target_id: target.1.map(str::to_string),
        outcome,
        details: details.clone(),
        context: ctx.clone(),
        channel: None,
    };
    (audit, OutboxEvent::ws_connection(event, details))
}

fn connection_details(c: &WsConnection, ctx: &RequestContext) -> Value {
    json!({
        "connection_id": c.id,
        "session_id": c.session_id,
        "user": who(c.user_id.as_deref(), &c.subject),
        "client_id": c.client_id,
        "audience": c.audience,
        "request_id": ctx.request_id,
    })
}

/// A ticket redeemed: the connection is open.
pub(super) fn opened(c: &WsConnection, ctx: &RequestContext) -> (AuditEntry, OutboxEvent) {
    pair(
        "ws.connection.open",
        "ws.connection.opened",
        ("ws_connection", Some(&c.id)),
        "success",
        &Actor::Client(c.client_id.clone()),
        ctx,
        connection_details(c, ctx),
    )
}

/// The gateway reported the connection's end.
pub(super) fn closed(c: &WsConnection, ctx: &RequestContext) -> (AuditEntry, OutboxEvent) {
    let mut d = connection_details(c, ctx);
    d["code"] = json!(c.close_code);
    d["reason"] = json!(c.close_reason);
    pair(
        "ws.connection.close",
        "ws.connection.closed",
        ("ws_connection", Some(&c.id)),
        "success",
        &Actor::Client(c.client_id.clone()),
        ctx,
        d,
    )
}

/// Whose a refused ticket was, when it was found.
pub(super) struct Holder<'a> {
    pub session_id: &'a str,
    pub subject: &'a str,
    pub user_id: Option<&'a str>,
}

/// A ticket found but refused (expired, wrong audience or IP, session
/// revoked): one row and one event per ticket, as each was issued once.
pub(super) fn rejected(
    holder: &Holder<'_>,
    reason: RejectReason,
    client_id: &str,
    ctx: &RequestContext,
) -> (AuditEntry, OutboxEvent) {
    let d = json!({
        "session_id": holder.session_id,
        "user": who(holder.user_id, holder.subject),
        "client_id": client_id,
        "reason": reason.as_str(),
        "request_id": ctx.request_id,
    });
    pair(
        "ws.connection.reject",
        "ws.connection.rejected",
        ("session", Some(holder.session_id)),
        "failure",
        &Actor::Client(client_id.to_string()),
        ctx,
        d,
    )
}

/// Tickets nobody holds (never issued, already used): nothing tells whose
/// they were, and anyone can send them, so they are counted per gateway and
/// minute (see `unknown.rs`): the audit row is an aggregate and the event
/// is sent for the first of the minute.
pub(super) fn unknown(
    client_id: &str,
    window_start: DateTime<Utc>,
    ctx: &RequestContext,
) -> (AuditEntry, OutboxEvent) {
    let d = json!({
        "session_id": null,
        "user": null,
        "client_id": client_id,
        "reason": RejectReason::UnknownOrUsed.as_str(),
        "window_start": window_start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "request_id": ctx.request_id,
    });
    pair(
        "ws.connection.reject",
        "ws.connection.rejected",
        ("ws_ticket", None),
        "failure",
        &Actor::Client(client_id.to_string()),
        ctx,
        d,
    )
}
