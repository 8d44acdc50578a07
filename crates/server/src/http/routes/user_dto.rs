//! Request and response bodies of the user and session APIs.

use serde::{Deserialize, Serialize};
use tessera_core::{session::SessionView, user::UserView, SecretString};
use tessera_store::{SessionQuery, UserQuery};
use utoipa::{IntoParams, ToSchema};

use crate::service::users::{CreateUser, UpdateUser};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]+@[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*\.[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub email: String,
    /// At least 12 characters (configurable), at most 128; not a common
    /// password, not built from the e-mail or name.
    #[schema(value_type = Option<String>, max_length = 1024)]
    pub password: Option<SecretString>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub display_name: Option<String>,
    #[schema(
        max_length = 35,
        pattern = r"^\s*[A-Za-z0-9]{1,8}(-[A-Za-z0-9]{1,8})*\s*$"
    )]
    pub locale: Option<String>,
    #[serde(default)]
    #[schema(max_items = 16, value_type = Vec<RoleName>)]
    pub roles: Vec<String>,
    /// Mark the address as verified now (an admin vouches for it).
    #[serde(default)]
    pub email_verified: bool,
}

impl From<CreateUserRequest> for CreateUser {
    fn from(r: CreateUserRequest) -> Self {
        Self {
            email: r.email,
            password: r.password,
            display_name: r.display_name,
            locale: r.locale,
            roles: r.roles,
            email_verified: r.email_verified,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]+@[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*\.[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub email: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::double_option")]
    #[schema(value_type = Option<String>, max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$")]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::extract::double_option")]
    #[schema(value_type = Option<String>, max_length = 35, pattern = r"^\s*[A-Za-z0-9]{1,8}(-[A-Za-z0-9]{1,8})*\s*$")]
    pub locale: Option<Option<String>>,
    #[schema(max_items = 16, value_type = Option<Vec<RoleName>>)]
    pub roles: Option<Vec<String>>,
    pub email_verified: Option<bool>,
}

impl From<UpdateUserRequest> for UpdateUser {
    fn from(r: UpdateUserRequest) -> Self {
        Self {
            email: r.email,
            display_name: r.display_name,
            locale: r.locale,
            roles: r.roles,
            email_verified: r.email_verified,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    /// Exactly this address (normalised: trimmed, lower-cased).
    #[param(
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]+@[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*\.[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub email: Option<String>,
    /// `active` or `disabled`.
    #[param(pattern = "^(active|disabled)$")]
    pub status: Option<String>,
    /// 1-200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    #[param(max_length = 36)]
    pub cursor: Option<String>,
}

impl TryFrom<ListUsersQuery> for UserQuery {
    type Error = tessera_core::DomainError;

    fn try_from(q: ListUsersQuery) -> Result<Self, Self::Error> {
        let status = q
            .status
            .as_deref()
            .map(|s| {
                tessera_core::user::UserStatus::parse(s).ok_or_else(|| {
                    tessera_core::DomainError::invalid("status", "must be active or disabled")
                })
            })
            .transpose()?;
        Ok(UserQuery {
            email: q.email,
            status,
            include_deleted: false,
            cursor: q.cursor,
            limit: limit(q.limit)?,
        })
    }
}

pub(crate) fn limit(l: Option<u32>) -> Result<u32, tessera_core::DomainError> {
    match l {
        None => Ok(50),
        Some(n) if (1..=200).contains(&n) => Ok(n),
        Some(_) => Err(tessera_core::DomainError::invalid("limit", "must be 1-200")),
    }
}

/// An RFC 8176 authentication method: 1-32 of `a-z 0-9 _ -`.
#[derive(ToSchema)]
#[schema(pattern = r"^[a-z0-9_-]{1,32}$")]
#[allow(dead_code)]
pub struct AmrValue(String);

/// An RFC 6749 scope token: 1-128 printable ASCII, no space, `"` or `\\`.
#[derive(ToSchema)]
#[schema(pattern = r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$")]
#[allow(dead_code)]
pub struct ScopeToken(String);

/// A role: 1-64 of `a-z 0-9 _ : . -`.
#[derive(ToSchema)]
#[schema(pattern = r"^\s*[a-z0-9_:.-]{1,64}\s*$")]
#[allow(dead_code)]
pub struct RoleName(String);

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    #[schema(value_type = String, max_length = 1024)]
    pub password: SecretString,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, max_length = 1024)]
    pub current_password: SecretString,
    #[schema(value_type = String, max_length = 1024)]
    pub new_password: SecretString,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListSessionsQuery {
    /// Only sessions that are live now.
    pub active: Option<bool>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    #[param(max_length = 36)]
    pub cursor: Option<String>,
}

impl ListSessionsQuery {
    pub fn into_query(
        self,
        user_id: Option<String>,
        subject: Option<String>,
    ) -> Result<SessionQuery, tessera_core::DomainError> {
        Ok(SessionQuery {
            subject,
            user_id,
            active_at: self.active.unwrap_or(false).then(chrono::Utc::now),
            cursor: self.cursor,
            limit: limit(self.limit)?,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionPage {
    pub items: Vec<SessionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenSessionRequest {
    /// The application's id for the person: 1-200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub subject: String,
    #[schema(max_items = 64, value_type = Option<Vec<ScopeToken>>)]
    pub scopes: Option<Vec<String>>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub client_id: Option<String>,
    /// How the application authenticated the person (RFC 8176 values).
    #[schema(max_items = 8, value_type = Option<Vec<AmrValue>>)]
    pub amr: Option<Vec<String>>,
    /// The person's device (1-200 characters): the session binds to it
    /// (unless `TESSERA_SESSION_DEVICE_BINDING=off`), and a refresh must
    /// send it as `X-Device-Id`. A body field here because this request's
    /// own `X-Device-Id` belongs to the calling token.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub device_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedSessions {
    pub revoked: usize,
}
