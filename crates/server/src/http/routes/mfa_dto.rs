//! Request and response bodies of the second-factor API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tessera_core::mfa::{
    auth_code::{AuthCode, Channel},
    MfaFailure, TotpDevice,
};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum QrFormat {
    #[default]
    Svg,
    Png,
    /// No QR code (the URI and secret only).
    None,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollTotpRequest {
    /// Shown in listings, e.g. "Alice's phone". Default "Authenticator".
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// Shown in the authenticator app. Default: `TESSERA_TOTP_ISSUER`.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^:\x00-\x1f\x7f-\x9f]*[^:\s\x00-\x1f\x7f-\x9f][^:\x00-\x1f\x7f-\x9f]*$"
    )]
    pub issuer: Option<String>,
    /// The account label in the app, e.g. the user's e-mail. Default: the subject.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^:\x00-\x1f\x7f-\x9f]*[^:\s\x00-\x1f\x7f-\x9f][^:\x00-\x1f\x7f-\x9f]*$"
    )]
    pub account_name: Option<String>,
    /// `svg` (default), `png` (base64) or `none`.
    #[serde(default)]
    pub qr: QrFormat,
}

/// A pending device and what the authenticator app needs. Shown once.
/// (No `Debug`: it holds the secret.)
#[derive(Serialize, ToSchema)]
pub struct EnrolledTotp {
    pub device_id: String,
    pub device: TotpDevice,
    /// Base32, for manual entry.
    pub secret: String,
    pub otpauth_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
    /// Base64 PNG, when `qr` was `png`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_png: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    pub code: String,
}

/// The result of a check. Failures are 200 with `valid: false` and a `code`;
/// HTTP errors mean the request itself was wrong.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct CheckResult {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// `INVALID`, `REPLAYED`, `LOCKED`, `NO_DEVICE` (and for auth codes `EXPIRED`, `NO_CODE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<MfaFailure>,
    /// Recovery codes left (recovery-code checks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
    /// The auth code's id (auth-code checks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// What a successful check reports besides `valid: true`.
pub enum Passed {
    /// A TOTP code: the device that accepted it.
    Device(String),
    /// A recovery code: how many are left.
    RecoveryCode(i64),
    /// An auth code: its id.
    AuthCode(String),
}

impl From<TotpDevice> for Passed {
    fn from(device: TotpDevice) -> Self {
        Self::Device(device.id)
    }
}

impl From<AuthCode> for Passed {
    fn from(code: AuthCode) -> Self {
        Self::AuthCode(code.id)
    }
}

/// The one mapping from a check's outcome to its response: what passed, or
/// why nothing did.
impl<T: Into<Passed>> From<Result<T, MfaFailure>> for CheckResult {
    fn from(result: Result<T, MfaFailure>) -> Self {
        let mut response = Self::default();
        match result.map(Into::into) {
            Err(code) => response.code = Some(code),
            Ok(passed) => {
                response.valid = true;
                match passed {
                    Passed::Device(id) => response.device_id = Some(id),
                    Passed::RecoveryCode(left) => response.remaining = Some(left),
                    Passed::AuthCode(id) => response.id = Some(id),
                }
            }
        }
        response
    }
}

/// The result of an unlock.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unlocked {
    /// `false` when there was no lock or failure count to clear.
    pub cleared: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub items: Vec<TotpDevice>,
}

/// A new set of recovery codes: shown once, each usable once.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    pub codes: Vec<String>,
    pub remaining: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryStatus {
    pub remaining: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendAuthCodeRequest {
    /// The application's user id.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub subject: String,
    /// Why the code is sent, e.g. `login` or `verify_email`; a code only verifies for its purpose.
    #[schema(pattern = r"^[a-z0-9_:.-]{1,64}$")]
    pub purpose: String,
    pub channel: Channel,
    /// E-mail address, or E.164 phone number for SMS.
    pub destination: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SentAuthCode {
    pub id: String,
    pub expires_at: DateTime<Utc>,
    pub channel: Channel,
    pub max_attempts: i64,
}

impl From<AuthCode> for SentAuthCode {
    fn from(c: AuthCode) -> Self {
        Self {
            id: c.id,
            expires_at: c.expires_at,
            channel: c.channel,
            max_attempts: c.max_attempts,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyAuthCodeRequest {
    /// The id from the send response; when given it must be the current code.
    #[schema(
        pattern = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
    )]
    pub id: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub subject: String,
    #[schema(pattern = r"^[a-z0-9_:.-]{1,64}$")]
    pub purpose: String,
    /// The code as sent (1-16 characters).
    #[schema(
        min_length = 1,
        max_length = 16,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub code: String,
}
