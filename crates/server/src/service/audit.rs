//! Reading the audit log (issue #13): a filtered page of entries, or one
//! entry, with the client's IP address and user agent opened for the admin
//! who asks. Reading the log is itself audited (`audit.read`, with the
//! filters used and never the opened values), so that who looked at whose
//! addresses is on record. Shared by `GET /v1/audit` and `tessera audit`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tessera_core::{
    audit::{Actor, AuditEntry, RequestContext, IP_CONTEXT, OUTCOMES, USER_AGENT_CONTEXT},
    crypto::Keyring,
    error::Entity,
    ids::is_valid_id,
    text::{self, TextRule},
    DomainError,
};
use tessera_store::{AuditQuery, AuditRecord, Store};
use utoipa::ToSchema;

use super::ServiceError;

/// What the audit log records about reading it.
const READ_ACTION: &str = "audit.read";
const TARGET_TYPE: &str = "audit_log";

/// The filters of a listing as the caller gave them (query parameters or
/// command-line flags); [`AuditService::list`] checks them.
#[derive(Debug, Clone, Default)]
pub struct AuditFilters {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    pub channel: Option<String>,
    /// RFC 3339; inclusive.
    pub since: Option<String>,
    /// RFC 3339; exclusive.
    pub until: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// One audit entry as an admin reads it: client details opened.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: String,
    pub at: DateTime<Utc>,
    /// `token:<id>`, `user:<id>`, `client:<id>`, `cli`, `system` or `anonymous`.
    pub actor: String,
    /// What was done, e.g. `token.create`.
    pub action: String,
    /// What kind of object it was done to, e.g. `api_token`.
    pub target_type: String,
    pub target_id: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// `audit` for security events; `null` for ordinary entries.
    pub channel: Option<String>,
    /// What the entry says beyond the columns above.
    #[schema(value_type = Object)]
    pub details: Value,
    pub request_id: Option<String>,
    /// The client's IP address; `null` when none was recorded or no
    /// configured key opens it.
    pub ip: Option<String>,
    /// The client's user agent, under the same terms as `ip`.
    pub user_agent: Option<String>,
    /// How many events the entry stands for (more than 1 for aggregated
    /// failures, counted per client, code and minute).
    pub occurrences: i64,
}

/// A page of entries, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

pub struct AuditService {
    store: Arc<dyn Store>,
    /// The keys the request context was sealed with.
    keyring: Keyring,
}

impl AuditService {
    pub fn new(store: Arc<dyn Store>, keyring: Keyring) -> Self {
        Self { store, keyring }
    }

    /// A page of entries matching `filters`, newest first; the read is
    /// audited as `actor`'s.
    pub async fn list(
        &self,
        filters: AuditFilters,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<AuditPage, ServiceError> {
        let query = query(filters)?;
        let page = self.store.list_audit(&query).await?;
        let details = json!({ "filters": filters_details(&query), "returned": page.items.len() });
        self.record_read(actor, None, details, ctx).await?;
        Ok(AuditPage {
            items: page.items.into_iter().map(|r| self.view(r)).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// One entry; the read is audited as `actor`'s.
    pub async fn show(
        &self,
        id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<AuditEntryView, ServiceError> {
        let not_found = || ServiceError::from(DomainError::NotFound(Entity::AuditEntry));
        if !is_valid_id(id) {
            return Err(not_found());
        }
        let record = self.store.get_audit(id).await?.ok_or_else(not_found)?;
        self.record_read(actor, Some(id), json!({}), ctx).await?;
        Ok(self.view(record))
    }

    /// Appends the `audit.read` row. It is written before the entries are
    /// handed out: a read that cannot be recorded is refused.
    async fn record_read(
        &self,
        actor: &Actor,
        id: Option<&str>,
        details: Value,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        let entry = AuditEntry {
            target_id: id.map(str::to_string),
            ..AuditEntry::success(actor, READ_ACTION, TARGET_TYPE, "", details, ctx)
        };
        Ok(self.store.append_audit(&[entry]).await?)
    }

    fn view(&self, r: AuditRecord) -> AuditEntryView {
        AuditEntryView {
            ip: self.open(r.ip_sealed.as_deref(), IP_CONTEXT, &r.id),
            user_agent: self.open(r.user_agent_sealed.as_deref(), USER_AGENT_CONTEXT, &r.id),
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            outcome: r.outcome,
            channel: r.channel,
            details: r.details,
            request_id: r.request_id,
            occurrences: r.occurrences,
        }
    }

    /// A sealed client detail in clear, or `None`. A value no configured
    /// key opens (a retired key, a damaged row) is logged, not an error: the
    /// rest of the entry is still worth reading.
    fn open(&self, sealed: Option<&str>, context: &str, id: &str) -> Option<String> {
        let opened = self.keyring.open(sealed?, context);
        match opened.map(String::from_utf8) {
            Ok(Ok(text)) => Some(text),
            Ok(Err(_)) => {
                tracing::warn!(entry = id, context, "audit client detail is not UTF-8");
                None
            }
            Err(e) => {
                tracing::warn!(entry = id, context, error = %e, "cannot open an audit client detail");
                None
            }
        }
    }
}

/// The filters checked and turned into a store query. Errors name the
/// filter and the rule, never the value.
pub fn query(f: AuditFilters) -> Result<AuditQuery, DomainError> {
    let limit = f.limit.unwrap_or(AuditQuery::DEFAULT_LIMIT);
    if !(1..=AuditQuery::MAX_LIMIT).contains(&limit) {
        return Err(DomainError::invalid_query(
            "limit",
            "must be between 1 and 500",
        ));
    }
    if f.cursor.as_deref().is_some_and(|c| !is_valid_id(c)) {
        return Err(DomainError::invalid_query(
            "cursor",
            "is not a cursor this API returned",
        ));
    }
    if f.outcome.as_deref().is_some_and(|o| !OUTCOMES.contains(&o)) {
        return Err(DomainError::invalid_query(
            "outcome",
            "must be success or failure",
        ));
    }
    // A text filter is compared with stored text: anything a stored value
    // could hold, but never a control character.
    for (field, value) in [
        ("actor", &f.actor),
        ("action", &f.action),
        ("target_type", &f.target_type),
        ("target_id", &f.target_id),
        ("channel", &f.channel),
    ] {
        if let Some(v) = value {
            text::check(field, v, TextRule::Line)?;
        }
    }
    let since = time("since", f.since.as_deref())?;
    let until = time("until", f.until.as_deref())?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(DomainError::invalid_query(
                "since",
                "must not be later than until",
            ));
        }
    }
    Ok(AuditQuery {
        actor: f.actor,
        action: f.action,
        target_type: f.target_type,
        target_id: f.target_id,
        outcome: f.outcome,
        channel: f.channel,
        since,
        until,
        limit,
        cursor: f.cursor,
    })
}

fn time(field: &'static str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, DomainError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| DomainError::invalid_query(field, "must be an RFC 3339 time"))
        })
        .transpose()
}

/// The filters a read used, for its `audit.read` row: only those given,
/// plus the page size.
fn filters_details(q: &AuditQuery) -> Value {
    let mut out = Map::new();
    let text = [
        ("actor", &q.actor),
        ("action", &q.action),
        ("target_type", &q.target_type),
        ("target_id", &q.target_id),
        ("outcome", &q.outcome),
        ("channel", &q.channel),
        ("cursor", &q.cursor),
    ];
    for (name, value) in text {
        if let Some(v) = value {
            out.insert(name.into(), json!(v));
        }
    }
    for (name, value) in [("since", q.since), ("until", q.until)] {
        if let Some(t) = value {
            out.insert(name.into(), json!(t.to_rfc3339()));
        }
    }
    out.insert("limit".into(), json!(q.limit));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(f: AuditFilters) -> &'static str {
        match query(f) {
            Err(DomainError::InvalidQuery { field, .. }) => field,
            other => panic!("expected an invalid query, got {other:?}"),
        }
    }

    #[test]
    fn filters_are_checked_and_named() {
        let q = query(AuditFilters::default()).unwrap();
        assert_eq!(q.limit, 50);
        let bad = |f: fn(&mut AuditFilters)| {
            let mut filters = AuditFilters::default();
            f(&mut filters);
            invalid(filters)
        };
        assert_eq!(bad(|f| f.limit = Some(0)), "limit");
        assert_eq!(bad(|f| f.limit = Some(501)), "limit");
        assert_eq!(bad(|f| f.cursor = Some("nope".into())), "cursor");
        assert_eq!(bad(|f| f.outcome = Some("ok".into())), "outcome");
        assert_eq!(bad(|f| f.since = Some("yesterday".into())), "since");
        assert_eq!(bad(|f| f.until = Some("2024-13-01".into())), "until");
        assert_eq!(
            bad(|f| {
                f.since = Some("2024-02-01T00:00:00Z".into());
                f.until = Some("2024-01-01T00:00:00Z".into());
            }),
            "since"
        );
        let e = query(AuditFilters {
            actor: Some("a\u{7}".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.code(), "invalid_characters");
    }

    #[test]
    fn the_read_records_the_filters_given() {
        let q = query(AuditFilters {
            action: Some("token.create".into()),
            since: Some("2024-01-01T00:00:00+01:00".into()),
            limit: Some(10),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            filters_details(&q),
            json!({
                "action": "token.create",
                "since": "2023-12-31T23:00:00+00:00",
                "limit": 10,
            })
        );
    }
}
