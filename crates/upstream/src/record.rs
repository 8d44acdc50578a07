//! The Redis value format, shared with the Python `TokenCacheService` it
//! replaces: key `token:{api}:{user}`, JSON `{token, expires_at, created_at,
//! api_name, usuario, user, ...}`. The token is sealed with the keyring by
//! default (`"encrypted": true`); in clear only when configured, for readers
//! that need the old format. Reading is lenient about what the Python side wrote.
//! Times kept in memory are unix milliseconds ([`now_ms`]).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_core::{crypto::Keyring, SecretString};

/// The keyring purpose embedders should derive the cache's keyring with.
pub const KEYRING_PURPOSE: &str = "upstream-token";

/// Now in unix milliseconds: the unit of the memory tier's deadlines.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub(crate) fn key(api: &str, user: &str) -> String {
    format!("token:{api}:{user}")
}

/// How tokens are written to Redis.
#[derive(Clone, Debug)]
pub(crate) enum Sealing {
    Keyring(Keyring),
    Clear,
}

#[derive(Serialize)]
struct Out<'a> {
    token: &'a str,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    api_name: &'a str,
    /// The Python service's field name for the user; kept so it can still read our entries.
    usuario: &'a str,
    user: &'a str,
    encrypted: bool,
}

#[derive(Deserialize)]
struct In {
    token: String,
    expires_at: Value,
    #[serde(default)]
    created_at: Value,
    #[serde(default)]
    encrypted: bool,
}

pub(crate) struct Record {
    pub token: SecretString,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// Python's `isoformat()` may be naive (taken as UTC), numbers are unix seconds.
fn time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                    .ok()
                    .map(|n| n.and_utc())
            }),
        Value::Number(n) => n
            .as_f64()
            .and_then(|f| DateTime::from_timestamp_millis((f * 1000.0) as i64)),
        _ => None,
    }
}

impl Sealing {
    pub fn encode(&self, api: &str, user: &str, r: &Record) -> String {
        let sealed;
        let (token, encrypted) = match self {
            // The key is the AAD: a value copied to another user's key fails to open.
            Sealing::Keyring(k) => {
                sealed = k.seal(r.token.expose().as_bytes(), &key(api, user));
                (sealed.as_str(), true)
            }
            Sealing::Clear => (r.token.expose(), false),
        };
        serde_json::to_string(&Out {
            token,
            expires_at: r.expires_at,
            created_at: r.created_at,
            api_name: api,
            usuario: user,
            user,
            encrypted,
        })
        .expect("serializing plain fields cannot fail")
    }

    /// `None` for anything unreadable (treated as a miss, then overwritten by a login).
    pub fn decode(&self, api: &str, user: &str, raw: &str) -> Option<Record> {
        let v: In = serde_json::from_str(raw).ok()?;
        let expires_at = time(&v.expires_at)?;
        let created_at = time(&v.created_at).unwrap_or_else(Utc::now);
        let token = if v.encrypted {
            let Sealing::Keyring(k) = self else {
                tracing::warn!(
                    upstream = api,
                    "an encrypted token is in Redis but this cache has no keyring: ignoring it"
                );
                return None;
            };
            match k.open(&v.token, &key(api, user)) {
                Ok(bytes) => String::from_utf8(bytes).ok()?,
                Err(e) => {
                    tracing::warn!(upstream = api, error = %e, "cannot decrypt a cached token: ignoring it");
                    return None;
                }
            }
        } else {
            v.token
        };
        Some(Record {
            token: SecretString::new(token),
            expires_at,
            created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        Record {
            token: SecretString::new("tok-123".into()),
            expires_at: DateTime::from_timestamp(2_000_000_000, 0).unwrap(),
            created_at: DateTime::from_timestamp(1_999_990_000, 0).unwrap(),
        }
    }

    #[test]
    fn sealed_round_trip_is_bound_to_the_key() {
        let s = Sealing::Keyring(
            Keyring::new("0123456789abcdef0123456789abcdef", &[], KEYRING_PURPOSE).unwrap(),
        );
        let raw = s.encode("cpj", "ana", &rec());
        assert!(!raw.contains("tok-123"));
        let v: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(v["api_name"], "cpj");
        assert_eq!(v["usuario"], "ana");
        assert_eq!(v["user"], "ana");
        assert_eq!(v["encrypted"], true);
        let back = s.decode("cpj", "ana", &raw).unwrap();
        assert_eq!(back.token.expose(), "tok-123");
        assert_eq!(back.expires_at, rec().expires_at);
        assert!(s.decode("cpj", "bob", &raw).is_none());
        assert!(Sealing::Clear.decode("cpj", "ana", &raw).is_none());
    }

    #[test]
    fn reads_the_python_format() {
        let raw = r#"{"token":"abc","expires_at":"2033-05-18T03:33:20.123456","created_at":"2033-05-18T03:00:00","api_name":"cpj","usuario":"ana"}"#;
        let r = Sealing::Clear.decode("cpj", "ana", raw).unwrap();
        assert_eq!(r.token.expose(), "abc");
        assert_eq!(r.expires_at.timestamp(), 2_000_000_000);
        let clear = Sealing::Clear.encode("cpj", "ana", &rec());
        assert!(clear.contains("\"token\":\"tok-123\""));
        assert!(Sealing::Clear.decode("cpj", "ana", "not json").is_none());
    }
}
