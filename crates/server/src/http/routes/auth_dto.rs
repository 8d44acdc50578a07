//! Request and response bodies of login, refresh and logout.

use serde::{Deserialize, Serialize};
use tessera_core::SecretString;
use utoipa::{IntoParams, ToSchema};

use crate::service::sessions::{IssuedSession, LoginOutcome, MfaChallenge};

/// The `X-Device-Id` header of the requests that open or refresh a
/// session (for the document; handlers read the header itself).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct DeviceIdHeader {
    /// The client's opaque id for its device (1-200 characters). A login
    /// (or its second-factor step) that sends one opens a session bound to
    /// it, unless `TESSERA_SESSION_DEVICE_BINDING=off`; a refresh of a bound
    /// session must send the same one. It is the client's word, not proof
    /// of possession, and is stored only as a keyed hash.
    #[serde(rename = "X-Device-Id")]
    #[param(min_length = 1, max_length = 200, pattern = r"^[!-~]+$")]
    #[allow(dead_code)]
    pub device_id: Option<String>,
}

/// The `X-Device-Id` header of a refresh or a logout (for the document).
/// Any value is taken: one that is not a well-formed id is as if absent,
/// which matches no binding, so a bound session refuses it and an unbound
/// one does not care.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct PresentedDeviceHeader {
    /// The device id the session was opened with (see the login's header).
    #[serde(rename = "X-Device-Id")]
    #[allow(dead_code)]
    pub device_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequestBody {
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]+@[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*\.[^@\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub email: String,
    #[schema(value_type = String, max_length = 1024)]
    pub password: SecretString,
    /// The application signing in (kept on the session).
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069][^\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub client_id: Option<String>,
    /// Space-separated scopes to narrow the session to.
    #[schema(max_length = 2000)]
    pub scope: Option<String>,
}

/// Either a session, or (when the user has an active TOTP device) the
/// second-factor challenge to complete with `POST /v1/auth/login/mfa`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
// Built once per login and serialised at once: boxing the session buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum LoginResponse {
    Session(IssuedSession),
    MfaRequired(MfaChallenge),
}

impl From<LoginOutcome> for LoginResponse {
    fn from(o: LoginOutcome) -> Self {
        match o {
            LoginOutcome::Session(s) => Self::Session(s),
            LoginOutcome::MfaRequired(c) => Self::MfaRequired(c),
        }
    }
}

/// The challenge and one second factor: a TOTP code or a recovery code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LoginMfaRequest {
    Totp(TotpStep),
    Recovery(RecoveryStep),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpStep {
    #[schema(max_length = 64)]
    pub challenge_id: String,
    /// The code the authenticator app shows.
    #[schema(value_type = String, max_length = 64)]
    pub code: SecretString,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryStep {
    #[schema(max_length = 64)]
    pub challenge_id: String,
    /// One of the user's recovery codes.
    #[schema(value_type = String, max_length = 64)]
    pub recovery_code: SecretString,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[schema(value_type = String, max_length = 256)]
    pub refresh_token: SecretString,
    /// When given, it must be the session's client.
    #[schema(max_length = 200)]
    pub client_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// The session's refresh token; without it, the bearer access token
    /// names the session.
    #[schema(value_type = Option<String>, max_length = 256)]
    pub refresh_token: Option<SecretString>,
}

/// `POST /oauth2/token` form fields (RFC 6749 §6). Both fields are
/// required by the document; they are optional here so that a missing one
/// is answered in OAuth2's terms (`invalid_request`), and another grant
/// type with `unsupported_grant_type`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenForm {
    /// Only `refresh_token`.
    #[schema(required = true, value_type = String, pattern = "^refresh_token$")]
    pub grant_type: Option<String>,
    #[schema(required = true, value_type = String, max_length = 256)]
    pub refresh_token: Option<SecretString>,
    #[schema(max_length = 200)]
    pub client_id: Option<String>,
    /// Accepted and ignored: a refresh keeps the session's scopes.
    #[allow(dead_code)]
    pub scope: Option<String>,
}

/// The RFC 6749 §5.1 success body.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthTokenResponse {
    #[schema(value_type = String)]
    #[serde(serialize_with = "tessera_core::secret::serialize_exposed")]
    pub access_token: SecretString,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[schema(value_type = String)]
    #[serde(serialize_with = "tessera_core::secret::serialize_exposed")]
    pub refresh_token: SecretString,
    pub scope: String,
}

impl From<IssuedSession> for OAuthTokenResponse {
    fn from(s: IssuedSession) -> Self {
        Self {
            access_token: s.access_token,
            token_type: "Bearer",
            expires_in: s.expires_in,
            refresh_token: s.refresh_token,
            scope: s.scope,
        }
    }
}

/// The RFC 6749 §5.2 error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_grant` or `unsupported_grant_type`.
    pub error: &'static str,
    /// `device_mismatch` with `invalid_grant`: a device-bound session's
    /// refresh from another device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<&'static str>,
}
