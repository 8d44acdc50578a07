//! Logging in to an upstream over HTTP. Errors say what went wrong without
//! echoing the response body (which may hold a token or a hint about the
//! credentials) and without the credentials themselves. The outcome of the
//! last login is kept for the health report.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tessera_core::SecretString;

use crate::config::{ClientAuth, Expiry, LoginSpec};

/// Why a login failed. Cheap to clone: single flight hands one failure to every waiter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("the login request timed out")]
    Timeout,
    #[error("could not connect to the upstream")]
    Connect,
    #[error("the login request failed")]
    Transport,
    #[error("the upstream refused the login with HTTP {status}")]
    Status { status: u16 },
    #[error("the login response is not what the configuration describes: {0}")]
    BadResponse(&'static str),
    #[error("the upstream issued a token that expires within the safety margin")]
    ExpiresTooSoon,
}

impl LoginError {
    /// Whether the upstream rejected the credentials (as opposed to being unreachable).
    pub fn is_rejection(&self) -> bool {
        matches!(self, Self::Status { status: 400..=499 })
    }
}

#[derive(Debug, Clone, Serialize)]
/// How the last login to an upstream went, for the health report.
pub struct LoginOutcome {
    pub at: DateTime<Utc>,
    pub ok: bool,
    /// The error's category (never the upstream's body or a credential).
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// A token fresh from a login.
pub(crate) struct Fetched {
    pub token: SecretString,
    pub expires_at: DateTime<Utc>,
}

fn transport(e: reqwest::Error) -> LoginError {
    // Only the category: reqwest's Display includes the URL, which may carry a query secret.
    if e.is_timeout() {
        LoginError::Timeout
    } else if e.is_connect() {
        LoginError::Connect
    } else {
        LoginError::Transport
    }
}

/// Reads an expiry: seconds from now (number or numeric string), an RFC 3339
/// time, or unix seconds (any number above ten years' worth of seconds).
pub(crate) fn expiry_from(v: &Value, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    const TEN_YEARS: i64 = 10 * 365 * 86_400;
    let secs = match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return DateTime::parse_from_rfc3339(s)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            }
        },
        _ => None,
    }?;
    if secs > TEN_YEARS {
        DateTime::from_timestamp(secs, 0)
    } else {
        Some(now + chrono::Duration::seconds(secs.max(0)))
    }
}

pub(crate) async fn login(
    http: &reqwest::Client,
    spec: &LoginSpec,
    user: &str,
) -> Result<Fetched, LoginError> {
    let now = Utc::now();
    let response = send(http, spec, user).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(LoginError::Status {
            status: status.as_u16(),
        });
    }
    let body: Value = response
        .json()
        .await
        .map_err(|_| LoginError::BadResponse("the body is not JSON"))?;
    let (token, expires_at) = read_token(spec, &body, now)?;
    if token.is_empty() {
        return Err(LoginError::BadResponse("the token is empty"));
    }
    Ok(Fetched {
        token: SecretString::new(token.to_string()),
        expires_at,
    })
}

/// Sends the login request the spec describes, for `user`.
async fn send(
    http: &reqwest::Client,
    spec: &LoginSpec,
    user: &str,
) -> Result<reqwest::Response, LoginError> {
    match spec {
        LoginSpec::Json {
            url, method, body, ..
        } => {
            let mut req = http.request(method.clone(), url);
            if let Some(b) = body {
                req = req.json(&b.render(user));
            }
            req.send().await.map_err(transport)
        }
        LoginSpec::ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scope,
            audience,
            client_auth,
            ..
        } => {
            let mut form = vec![("grant_type", "client_credentials")];
            if *client_auth == ClientAuth::Body {
                form.push(("client_id", client_id));
                form.push(("client_secret", client_secret.expose()));
            }
            if let Some(s) = scope {
                form.push(("scope", s));
            }
            if let Some(a) = audience {
                form.push(("audience", a));
            }
            let mut req = http
                .post(token_url)
                .header(reqwest::header::ACCEPT, "application/json");
            if *client_auth == ClientAuth::Basic {
                req = req.basic_auth(client_id, Some(client_secret.expose()));
            }
            req.form(&form).send().await.map_err(transport)
        }
    }
}

/// The token and its expiry, where the spec says the response holds them.
fn read_token<'a>(
    spec: &LoginSpec,
    body: &'a Value,
    now: DateTime<Utc>,
) -> Result<(&'a str, DateTime<Utc>), LoginError> {
    match spec {
        LoginSpec::Json {
            token_pointer,
            expiry,
            ..
        } => {
            let token = body
                .pointer(token_pointer)
                .and_then(Value::as_str)
                .ok_or(LoginError::BadResponse("no string at token_pointer"))?;
            let expires_at = match expiry {
                Expiry::Fixed(d) => now + *d,
                Expiry::Pointer(p) => body
                    .pointer(p)
                    .and_then(|v| expiry_from(v, now))
                    .ok_or(LoginError::BadResponse("no expiry at expires_in_pointer"))?,
            };
            Ok((token, expires_at))
        }
        LoginSpec::ClientCredentials {
            fallback_expiry, ..
        } => {
            let token = body["access_token"]
                .as_str()
                .ok_or(LoginError::BadResponse("no access_token"))?;
            let expires_at = expiry_from(&body["expires_in"], now)
                .or_else(|| fallback_expiry.map(|d| now + d))
                .ok_or(LoginError::BadResponse("no expires_in"))?;
            Ok((token, expires_at))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiry_forms() {
        let now = Utc::now();
        let in60 = Some(now + chrono::Duration::seconds(60));
        assert_eq!(expiry_from(&json!(60), now), in60);
        assert_eq!(expiry_from(&json!("60"), now), in60);
        assert_eq!(expiry_from(&json!(60.0), now), in60);
        assert_eq!(
            expiry_from(&json!("2030-01-01T00:00:00Z"), now)
                .unwrap()
                .timestamp(),
            1_893_456_000
        );
        assert_eq!(
            expiry_from(&json!(1_900_000_000), now).unwrap().timestamp(),
            1_900_000_000
        );
        assert_eq!(expiry_from(&json!(null), now), None);
        assert_eq!(expiry_from(&json!("soon"), now), None);
    }

    #[test]
    fn rejections_are_client_errors() {
        assert!(LoginError::Status { status: 401 }.is_rejection());
        assert!(!LoginError::Status { status: 503 }.is_rejection());
        assert!(!LoginError::Timeout.is_rejection());
    }
}
