//! The stored form of an invite (`invites`) and its one conversion into the
//! domain type.

use tessera_core::invite::{Grants, Invite, Issuer};

use crate::{
    error::StoreError,
    sql::{from_json, from_millis, from_opt_millis, TableRow},
};

/// The table, and every column the domain type needs.
impl TableRow for InviteRow {
    type Domain = Invite;
    const TABLE: &'static str = "invites";
    const COLUMNS: &'static str =
        "t.id, t.issuer_subject, t.issuer_role, t.grant_role, t.grant_scopes, \
        t.email, t.max_uses, t.uses, t.expires_at, t.revoked_at, t.created_at, t.updated_at, \
        t.deleted_at, t.metadata";
}

#[derive(sqlx::FromRow)]
pub(super) struct InviteRow {
    id: String,
    issuer_subject: String,
    issuer_role: String,
    grant_role: String,
    grant_scopes: String,
    email: Option<String>,
    max_uses: i64,
    uses: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
    metadata: String,
}

impl TryFrom<InviteRow> for Invite {
    type Error = StoreError;

    fn try_from(r: InviteRow) -> Result<Self, StoreError> {
        Ok(Invite {
            id: r.id,
            issuer: Issuer {
                subject: r.issuer_subject,
                role: r.issuer_role,
            },
            grants: Grants {
                role: r.grant_role,
                scopes: from_json(&r.grant_scopes, "grant_scopes")?,
            },
            email: r.email,
            max_uses: r.max_uses,
            uses: r.uses,
            expires_at: from_millis(r.expires_at)?,
            revoked_at: from_opt_millis(r.revoked_at)?,
            created_at: from_millis(r.created_at)?,
            updated_at: from_millis(r.updated_at)?,
            deleted_at: from_opt_millis(r.deleted_at)?,
            metadata: from_json(&r.metadata, "metadata")?,
        })
    }
}
