//! `/v1/audit`: reading the audit log, for admins. Thin handlers that parse,
//! call one service function (which opens client details and audits the
//! read), and return its JSON.

use axum::{extract::State, Json};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    http::{
        error::ApiError,
        extract::{ApiPath, ApiQuery},
        principal::{AdminScope, Require},
        problems::{NotFound, Path, Query, Scoped, Unavailable},
        state::AppState,
    },
    service::audit::{AuditEntryView, AuditFilters, AuditPage},
};

/// The listing's filters. Text filters match the stored value exactly.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditListQuery {
    /// Who acted: `token:<id>`, `user:<id>`, `client:<id>`, `cli`, `system` or `anonymous`.
    pub actor: Option<String>,
    /// What was done, e.g. `token.create` or `audit.read`.
    pub action: Option<String>,
    /// What kind of object, e.g. `api_token`, `invite`, `subject`.
    pub target_type: Option<String>,
    /// The object's id.
    pub target_id: Option<String>,
    /// `success` or `failure`.
    #[param(pattern = "^(success|failure)$")]
    pub outcome: Option<String>,
    /// `audit` for security events.
    pub channel: Option<String>,
    /// Entries at or after this RFC 3339 time.
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// Entries before this RFC 3339 time (not after `since`).
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

impl From<AuditListQuery> for AuditFilters {
    fn from(q: AuditListQuery) -> Self {
        Self {
            actor: q.actor,
            action: q.action,
            target_type: q.target_type,
            target_id: q.target_id,
            outcome: q.outcome,
            channel: q.channel,
            since: q.since,
            until: q.until,
            limit: q.limit,
            cursor: q.cursor,
        }
    }
}

/// Audit entries, newest first, with client IP address and user agent in
/// clear. The read is itself audited (`audit.read`, with the filters).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("bearer" = [])),
    params(AuditListQuery),
    responses((status = 200, body = AuditPage), Scoped, Query, Unavailable))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiQuery(query): ApiQuery<AuditListQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let page = state
        .audit()
        .list(query.into(), &caller.actor(), caller.context())
        .await?;
    Ok(Json(page))
}

/// One audit entry, client details in clear. The read is itself audited.
#[utoipa::path(get, path = "/v1/audit/{id}", tag = "audit", security(("bearer" = [])),
    params(("id" = String, Path, description = "Audit entry id")),
    responses((status = 200, body = AuditEntryView), Scoped, Path, NotFound, Unavailable))]
pub async fn get_audit(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AuditEntryView>, ApiError> {
    let entry = state
        .audit()
        .show(&id, &caller.actor(), caller.context())
        .await?;
    Ok(Json(entry))
}

/// The audit routes, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(get_audit))
}
