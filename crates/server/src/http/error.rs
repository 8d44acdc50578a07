//! API errors as RFC 9457 `application/problem+json`.
//!
//! Every failure a client can see goes through [`ApiError`]: a status, a
//! stable `code`, and a message that is safe to show. Causes that are not the
//! client's business (driver errors, bugs) are logged here with the request
//! and replaced by a generic body, so no internal detail leaks.

use crate::service::{
    error::{Dependency, Refusal},
    ServiceError,
};
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use tessera_core::DomainError;
use tessera_store::StoreError;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A client-facing error.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub field: Option<&'static str>,
    pub retry_after: Option<u64>,
    /// A limit's refusal: answered with the `RateLimit-Policy` and
    /// `RateLimit` fields beside `Retry-After`.
    pub rate_limit: Option<Box<Refusal>>,
}

/// The problem document. `request_id` is filled in by the request-id layer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type; stable per `code`.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable error code.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after: None,
            rate_limit: None,
        }
    }

    /// `429` for a limit's refusal, with its fields.
    pub fn rate_limited(refusal: Box<Refusal>) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            refusal.code,
            refusal.detail.clone(),
        );
        e.retry_after = Some(refusal.retry_after.max(1));
        e.rate_limit = Some(refusal);
        e
    }

    pub fn unauthorized(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(code: &'static str, detail: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn unavailable() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "a dependency is unavailable; retry shortly",
        );
        e.retry_after = Some(5);
        e
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_uri: format!("urn:tessera:problem:{}", self.code),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            field: self.field.map(str::to_string),
            request_id: None,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        use tessera_core::{invite::InviteFailure, user_link::LinkFailure};
        let status = match &e {
            DomainError::InvalidQuery { .. } => StatusCode::BAD_REQUEST,
            DomainError::Invalid { .. }
            | DomainError::InvalidCharacters { .. }
            | DomainError::WeakPassword { .. }
            | DomainError::WebhookUrlForbidden => StatusCode::UNPROCESSABLE_ENTITY,
            // A refresh token or login challenge that does not work is a
            // credential that does not authenticate.
            DomainError::InvalidCredentials
            | DomainError::InvalidCode
            | DomainError::InvalidGrant
            | DomainError::InvalidChallenge => StatusCode::UNAUTHORIZED,
            DomainError::LoginThrottled { .. } => StatusCode::TOO_MANY_REQUESTS,
            // A live refresh token, from the wrong device; a login where
            // sessions must be device-bound, without a device.
            DomainError::EmailUnverified
            | DomainError::DeviceMismatch
            | DomainError::DeviceRequired => StatusCode::FORBIDDEN,
            DomainError::EmailTaken
            | DomainError::SigningKeyState(_)
            | DomainError::ClientFromEnvironment
            | DomainError::ClientIdTaken => StatusCode::CONFLICT,
            DomainError::NotFound(_) => StatusCode::NOT_FOUND,
            DomainError::TokenNotActive { .. } | DomainError::TokenDeleted => StatusCode::CONFLICT,
            DomainError::InviteNotAllowed { .. } => StatusCode::FORBIDDEN,
            DomainError::InviteQuotaExceeded { .. } | DomainError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            DomainError::InviteUnusable(f) => match f {
                InviteFailure::NotFound => StatusCode::NOT_FOUND,
                InviteFailure::Expired | InviteFailure::Revoked => StatusCode::GONE,
                InviteFailure::UsedUp => StatusCode::CONFLICT,
                // Both depend on the invite, not on the request's shape: a
                // request without `email` is valid, and some invite refuses it.
                InviteFailure::EmailMismatch | InviteFailure::EmailRequired => {
                    StatusCode::FORBIDDEN
                }
            },
            DomainError::LinkUnusable(f) => match f {
                LinkFailure::Invalid => StatusCode::BAD_REQUEST,
                LinkFailure::Expired => StatusCode::GONE,
            },
            DomainError::NotConfigured { .. } => StatusCode::SERVICE_UNAVAILABLE,
            DomainError::DeviceAlreadyActive | DomainError::DeviceLimitReached { .. } => {
                StatusCode::CONFLICT
            }
        };
        let mut api = Self::new(status, e.code(), e.to_string());
        match e {
            DomainError::Invalid { field, .. }
            | DomainError::InvalidCharacters { field, .. }
            | DomainError::InvalidQuery { field, .. } => api.field = Some(field),
            DomainError::WebhookUrlForbidden => api.field = Some("url"),
            DomainError::WeakPassword { field, .. } => api.field = Some(field),
            DomainError::EmailTaken => api.field = Some("email"),
            DomainError::InviteQuotaExceeded {
                retry_after_secs, ..
            }
            | DomainError::RateLimited { retry_after_secs }
            | DomainError::LoginThrottled { retry_after_secs } => {
                api.retry_after = Some(retry_after_secs.max(1) as u64);
            }
            _ => {}
        }
        api
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Domain(d) => d.into(),
            ServiceError::RateLimited(refusal) => Self::rate_limited(refusal),
            ServiceError::Unavailable(Dependency::MessageProvider { channel }) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "delivery_failed",
                ServiceError::delivery_failed(channel).to_string(),
            ),
            ServiceError::Unavailable(Dependency::PasswordHashing) => {
                let mut e = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "too many password checks are waiting; retry shortly",
                );
                e.retry_after = Some(1);
                e
            }
            // Logged where it failed (service::ws_tickets).
            ServiceError::Unavailable(Dependency::TicketStore) => Self::unavailable(),
            ServiceError::Unavailable(Dependency::Database(e))
            | ServiceError::Conflict(e)
            | ServiceError::Internal(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d.into(),
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Self::unavailable()
            }
            StoreError::SchemaBehind => {
                tracing::error!("database schema is behind this binary");
                Self::unavailable()
            }
            StoreError::Conflict(cause) => {
                tracing::warn!(error = %cause, "unique constraint violated");
                Self::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    "a conflicting change happened; retry",
                )
            }
            other => {
                tracing::error!(error = ?other, "internal storage error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "an internal error occurred; it has been logged",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let mut res = (self.status, axum::Json(&problem)).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(r) = &self.rate_limit {
            // Both are built from digits, ASCII names and quotes: valid values.
            for (name, value) in [
                ("ratelimit-policy", r.policy_field()),
                ("ratelimit", r.limit_field()),
            ] {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    res.headers_mut().insert(name, v);
                }
            }
        }
        // Kept so the request-id layer can re-render the body with the id.
        res.extensions_mut().insert(problem);
        res
    }
}
