//! Request and response bodies of the invite API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tessera_core::{
    invite::{Grants, Invite, InviteFailure, InviteState, InviteView, Issuer},
    text::{self, TextRule},
    DomainError,
};
use utoipa::{IntoParams, ToSchema};

use super::body_parts::{expiry, state_filter, Expiry};
use crate::service::invites::{CreateInvite, InviteExpiry};
use tessera_store::InviteQuery;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// The role (and optional scopes) the invitee receives.
    pub grants: Grants,
    /// Only this address may use the invite.
    #[schema(
        max_length = 254,
        // One `@`, a dot after it, no space, control, bidirectional or
        // zero-width character (`tessera_core::email::normalize_email`).
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]+@[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*\.[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub email: Option<String>,
    /// Default 1; at most `TESSERA_INVITE_MAX_USES`.
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "crate::http::extract::integral")]
    pub max_uses: Option<i64>,
    /// RFC 3339 time (default: 7 days from now).
    pub expires_at: Option<DateTime<Utc>>,
    /// Lifetime in seconds (instead of `expires_at`), at most `TESSERA_INVITE_MAX_TTL`.
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "crate::http::extract::integral")]
    pub expires_in: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// Create the invite as this application user; the issuer policy applies
    /// to their role.
    pub on_behalf_of: Option<Issuer>,
}

/// The invite and its code. The code is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInvite {
    pub invite: InviteView,
    /// Share it with the invitee; it cannot be shown again.
    pub code: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListInvitesQuery {
    /// `active`, `used`, `expired` or `revoked`.
    #[param(pattern = "^(active|used|expired|revoked)$")]
    pub state: Option<String>,
    /// Issuer subject.
    pub issuer: Option<String>,
    /// 1–1000, default 50.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub include_deleted: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitePage {
    pub items: Vec<InviteView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateInviteRequest {
    /// 16 Crockford base32 characters, case-insensitive, hyphens and spaces
    /// optional (`K7QH-2MXD-9TVA-R4PE`).
    #[schema(max_length = 64, pattern = r"^[- ]*([0-9A-TV-Za-tv-z][- ]*){16}$")]
    pub code: String,
    /// Compared with the address the invite is bound to, if any.
    pub email: Option<String>,
}

/// What a valid invite offers, without consuming it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteSummary {
    pub id: String,
    pub grants: Grants,
    pub expires_at: DateTime<Utc>,
    pub uses_left: i64,
}

/// `{"valid": true, "invite": …}` or `{"valid": false, "code": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidateInviteResponse {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite: Option<InviteSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<InviteFailure>,
}

impl From<Result<Invite, InviteFailure>> for ValidateInviteResponse {
    fn from(r: Result<Invite, InviteFailure>) -> Self {
        match r {
            Ok(i) => Self {
                valid: true,
                invite: Some(InviteSummary {
                    uses_left: i.uses_left(),
                    id: i.id,
                    grants: i.grants,
                    expires_at: i.expires_at,
                }),
                code: None,
            },
            Err(f) => Self {
                valid: false,
                invite: None,
                code: Some(f),
            },
        }
    }
}

/// Redeem for an application's own subject, or create the account the
/// invite is for (Tessera's built-in users).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RedeemInviteRequest {
    ForSubject(RedeemForSubject),
    NewUser(RedeemForNewUser),
}

/// Create the account in the redemption's transaction; the new user's id
/// becomes the subject and the invite's role its role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemForNewUser {
    #[schema(max_length = 64, pattern = r"^[- ]*([0-9A-TV-Za-tv-z][- ]*){16}$")]
    pub code: String,
    pub create_user: NewInvitedUser,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitedUser {
    /// Must be the invite's address when it is bound to one.
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]+@[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*\.[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub email: String,
    /// The password policy applies (`422 weak_password`).
    #[schema(value_type = String, max_length = 1024)]
    pub password: tessera_core::SecretString,
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemForSubject {
    /// 16 Crockford base32 characters, case-insensitive, hyphens and spaces
    /// optional (`K7QH-2MXD-9TVA-R4PE`).
    #[schema(max_length = 64, pattern = r"^[- ]*([0-9A-TV-Za-tv-z][- ]*){16}$")]
    pub code: String,
    /// The application's id for the person redeeming: 1-200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub subject: String,
    /// Compared with the address the invite is bound to, if any.
    pub email: Option<String>,
}

/// What was granted to whom.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedeemedInvite {
    pub invite_id: String,
    pub subject: String,
    pub grants: Grants,
    pub uses_left: i64,
    pub redeemed_at: DateTime<Utc>,
    /// The account created by the redemption (`create_user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<tessera_core::user::UserView>,
}

impl TryFrom<CreateInviteRequest> for CreateInvite {
    type Error = DomainError;

    fn try_from(r: CreateInviteRequest) -> Result<Self, DomainError> {
        let expiry = expiry(r.expires_at, r.expires_in)?.map(|given| match given {
            Expiry::At(at) => InviteExpiry::At(at),
            Expiry::InSeconds(secs) => InviteExpiry::InSeconds(secs),
        });
        Ok(Self {
            grants: r.grants,
            email: r.email,
            max_uses: r.max_uses,
            expiry,
            metadata: r.metadata,
            on_behalf_of: r.on_behalf_of,
        })
    }
}

impl TryFrom<ListInvitesQuery> for InviteQuery {
    type Error = DomainError;

    fn try_from(q: ListInvitesQuery) -> Result<Self, DomainError> {
        let state = state_filter(
            q.state.as_deref(),
            InviteState::parse,
            "must be active, used, expired or revoked",
        )?;
        let limit = tessera_core::pagination::page_size(q.limit)?;
        // Compared with stored subjects: never a control character.
        if let Some(issuer) = &q.issuer {
            text::check("issuer", issuer, TextRule::Line)?;
        }
        Ok(Self {
            state,
            issuer: q.issuer,
            include_deleted: q.include_deleted.unwrap_or(false),
            cursor: q.cursor,
            limit,
        })
    }
}
