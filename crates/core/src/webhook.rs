//! Webhook signing per the Standard Webhooks specification, endpoint
//! secrets, the event-type catalogue and the retry schedule.
//!
//! A signature is `v1,<base64 HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}")>`
//! where the key is the base64-decoded part of the `whsec_…` secret. During a
//! secret rotation the header carries one signature per live secret,
//! space-separated, so receivers holding either secret verify.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::{rngs::OsRng, Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::SecretString;

pub const SECRET_PREFIX: &str = "whsec_";

/// Token and invite events (the second-factor ones are
/// [`crate::event::MFA_EVENT_TYPES`]).
const LIFECYCLE_EVENT_TYPES: &[&str] = &[
    "created",
    "updated",
    "rotated",
    "updated",
    "revoked",
    "purged",
    "deleted",
    "restored",
    "expired",
    "invite.created",
    "invite.used",
    "invite.revoked",
];

/// Every event type a webhook endpoint can subscribe to.
pub fn event_types() -> impl Iterator<Item = &'static str> {
    LIFECYCLE_EVENT_TYPES
        .iter()
        .chain(crate::event::MFA_EVENT_TYPES)
        .chain(crate::event::SESSION_EVENT_TYPES)
        .chain(crate::event::WS_CONNECTION_EVENT_TYPES)
        .chain(crate::event::CLIENT_EVENT_TYPES)
        .copied()
}

/// A new endpoint secret: `whsec_` + base64 of 24 random bytes.
pub fn generate_secret() -> SecretString {
    let mut key = [0u8; 24];
    OsRng.fill_bytes(&mut key);
    SecretString::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// The HMAC key inside a `whsec_…` secret, or `None` if it is not one.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix(SECRET_PREFIX)?;
    STANDARD
        .decode(b64)
        .ok()
        .filter(|k| (16..=64).contains(&k.len()))
}

/// One `v1,…` signature.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header value for every live key.
pub fn signature_header(keys: &[Vec<u8>], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| sign(k, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// When to try again after each failed attempt. Held as data (configurable),
/// with ±`jitter` spread so that a recovering receiver is not hit by every
/// retry at the same instant.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    pub delays: Vec<Duration>,
    /// Fraction, e.g. 0.2 for ±20%.
    pub jitter: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        let s = Duration::from_secs;
        Self {
            delays: vec![s(5), s(300), s(1800), s(7200), s(18000), s(36000), s(36000)],
            jitter: 0.2,
        }
    }
}

impl RetrySchedule {
    /// The delay before retry number `failed_attempts` (1-based), or `None`
    /// when the schedule is exhausted and the delivery has failed for good.
    /// `retry_after` (from a 429/503) wins when it is longer.
    pub fn next_delay(
        &self,
        failed_attempts: usize,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let base = *self.delays.get(failed_attempts.checked_sub(1)?)?;
        let factor = if self.jitter > 0.0 {
            OsRng.gen_range(1.0 - self.jitter..=1.0 + self.jitter)
        } else {
            1.0
        };
        let jittered = base.mul_f64(factor);
        Some(retry_after.map_or(jittered, |r| r.max(jittered)))
    }

    /// Total attempts: the first plus one per scheduled retry.
    pub fn max_attempts(&self) -> usize {
        self.delays.len() + 1
    }
}

/// A receiver of webhooks. Its signing secrets are stored sealed, apart.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// Event types delivered here; empty means all.
    pub event_types: Vec<String>,
    /// The endpoint configured by `TOKENS_WEBHOOK_URL`.
    pub is_default: bool,
    /// Set when the receiver answered 410 Gone (or by hand); no deliveries then.
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl WebhookEndpoint {
    pub fn accepts(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    /// The outbox event id; also the `webhook-id` header, stable across retries.
    pub event_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i64>,
    pub last_latency_ms: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    pub id: String,
    pub delivery_id: String,
    pub at: DateTime<Utc>,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// Validates an endpoint URL: http(s), a host, no credentials, bounded.
pub fn validate_url(url: &str) -> Result<String, crate::DomainError> {
    let bad = || {
        crate::DomainError::invalid(
            "url",
            "must be an http:// or https:// URL with a host and no user:password",
        )
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if url.len() > 2048
        || host.is_empty()
        || host.contains('@')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(url.to_string())
}

/// An endpoint's description: free text for operators (tab and line breaks
/// allowed, see [`crate::text`]), at most 1000 characters.
pub fn validate_description(value: Option<String>) -> Result<Option<String>, crate::DomainError> {
    crate::text::optional("description", value, 1000, crate::text::TextRule::Multiline)
}

/// Whether a webhook may not be sent to `ip` unless the operator allows
/// private networks (SSRF): loopback, private (RFC 1918, `fc00::/7`),
/// shared CGNAT space (`100.64.0.0/10`), link-local (`169.254.0.0/16` with
/// the cloud metadata address, `fe80::/10`), unspecified, `0.0.0.0/8`,
/// multicast, broadcast and the reserved `240.0.0.0/4`, and the same
/// addresses written in IPv6 (IPv4-mapped, IPv4-compatible, NAT64).
pub fn is_internal_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_unspecified()
        || a == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (64..128).contains(&b))
        || ip.is_multicast()
        || ip.is_broadcast()
        || a >= 240
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64):
    // judged by the IPv4 address they reach.
    let embedded =
        |s: &[u16]| Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    if segments[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback() {
        return is_internal_v4(embedded(&segments));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_internal_v4(embedded(&segments));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || ip.is_multicast()
}

/// Validates subscribed event types against the catalogue.
pub fn validate_event_types(types: &[String]) -> Result<Vec<String>, crate::DomainError> {
    let mut out = std::collections::BTreeSet::new();
    for t in types {
        if !event_types().any(|known| known == t) {
            let known: Vec<&str> = event_types().collect();
            return Err(crate::DomainError::invalid(
                "event_types",
                format!("unknown event type; known: {}", known.join(", ")),
            ));
        }
        out.insert(t.clone());
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_vectors() {
        let v = crate::test_vectors::load("standard-webhooks.json");
        for case in v["vectors"].as_array().unwrap() {
            let key = secret_key(case["secret"].as_str().unwrap()).unwrap();
            let sig = sign(
                &key,
                case["msg_id"].as_str().unwrap(),
                case["timestamp"].as_i64().unwrap(),
                case["payload"].as_str().unwrap().as_bytes(),
            );
            assert_eq!(sig, case["signature"].as_str().unwrap());
        }
        for case in v["must_reject"].as_array().unwrap() {
            let key = secret_key(case["secret"].as_str().unwrap()).unwrap();
            let sig = sign(
                &key,
                case["msg_id"].as_str().unwrap(),
                case["timestamp"].as_i64().unwrap(),
                case["payload"].as_str().unwrap().as_bytes(),
            );
            assert_ne!(sig, case["signature"].as_str().unwrap());
        }
    }

    #[test]
    fn rotation_header_has_one_signature_per_key() {
        let a = secret_key(generate_secret().expose()).unwrap();
        let b = secret_key(generate_secret().expose()).unwrap();
        let h = signature_header(&[a.clone(), b], "msg_1", 1, b"{}");
        let parts: Vec<_> = h.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign(&a, "msg_1", 1, b"{}"));
    }

    #[test]
    fn schedule_with_jitter_and_retry_after() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 8);
        for _ in 0..100 {
            let d = s.next_delay(1, None).unwrap();
            assert!(
                d >= Duration::from_secs(4) && d <= Duration::from_secs(6),
                "{d:?}"
            );
        }
        assert!(s.next_delay(1, Some(Duration::from_secs(60))).unwrap() >= Duration::from_secs(60));
        assert_eq!(s.next_delay(8, None), None);
        assert_eq!(s.next_delay(0, None), None);
        assert!(secret_key("whsec_!!").is_none() && secret_key("nope").is_none());
    }

    #[test]
    fn urls_and_event_types() {
        assert!(validate_url("https://hooks.example.com/tessera").is_ok());
        assert!(validate_url("http://127.0.0.1:9000").is_ok());
        for bad in ["ftp://x", "https://", "https://u:p@host/", "https://a b"] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            validate_event_types(&["revoked".into(), "created".into()]).unwrap(),
            vec!["created", "revoked"]
        );
        assert!(validate_event_types(&["nope".into()]).is_err());
    }

    #[test]
    fn internal_addresses_are_recognised_in_every_spelling() {
        for internal in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::10.0.0.1",
        ] {
            let ip: IpAddr = internal.parse().unwrap();
            assert!(is_internal_address(ip), "{internal}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "169.255.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert!(!is_internal_address(ip), "{public}");
        }
    }
}
