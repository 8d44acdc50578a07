//! Per-token usage controls: IP allow and deny lists, device binding,
//! credits (remaining uses with an optional refill) and the named rate
//! limits a token declares. Here are the values, their strict parsing and
//! the pure checks; what needs the database (binding a first device,
//! spending credits) is the server's, and the rate-limit engine is separate.
//!
//! Static controls (lists, binding mode, rate limits) may be cached with the
//! token; the mutable state (the bound device, the credits left) is decided
//! by a conditional database write, never by a cached copy.

use std::{fmt, net::IpAddr};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use crate::{
    forwarded::Cidr,
    gcra::{RateRule, MAX_PERIOD, MAX_UNITS},
    text, DomainError,
};

/// Entries per IP list.
pub const MAX_IP_ENTRIES: usize = 100;
/// Named rate limits per token.
pub const MAX_RATELIMITS: usize = 16;
/// The largest `cost` one verification may ask for.
pub const MAX_COST: i64 = 1000;
/// Longest device id, in characters.
pub const MAX_DEVICE_ID_CHARS: usize = 200;
/// Largest credit balance or refill amount. A rate limit's limit and burst
/// stop at the rate-limit engine's [`MAX_UNITS`].
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// The pattern of a period: at most 8 digits of seconds, 6 of minutes, 4
/// of hours or 3 of days (so every period it admits is at most
/// 99,999,999 s, about three years, and parses).
pub const PERIOD_PATTERN: &str =
    "^([1-9][0-9]{0,7}s|[1-9][0-9]{0,5}m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d)$";

/// One network of an IP list, in canonical CIDR form (`10.0.0.0/8`,
/// `2001:db8::/32`; an IPv4-mapped IPv6 network is its IPv4 network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet(Cidr);

impl IpNet {
    /// Strict: an address, or an address and a prefix length in digits
    /// (no sign, no leading zero), with no host bits set and no spaces or
    /// zone id. `::ffff:a.b.c.d/n` (n ≥ 96) is read as `a.b.c.d/(n-96)`.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() > 64 || text.contains('%') {
            return None;
        }
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let written: IpAddr = addr.parse().ok()?;
        let max: u8 = if written.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if is_plain_number(p) => p.parse::<u8>().ok().filter(|n| *n <= max)?,
            Some(_) => return None,
        };
        let canonical = written.to_canonical();
        let prefix = match (written, canonical) {
            (IpAddr::V6(_), IpAddr::V4(_)) => prefix.checked_sub(96)?,
            _ => prefix,
        };
        let normal = format!("{canonical}/{prefix}");
        let cidr = Cidr::parse(&normal).ok()?;
        // Cidr clears host bits; a strict list refuses them instead, since
        // `10.1.2.3/8` usually means a typing mistake.
        (cidr.to_string() == normal).then_some(Self(cidr))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(ip)
    }
}

/// Digits only, and no leading zero unless it is `0`.
fn is_plain_number(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 3
        && p.bytes().all(|b| b.is_ascii_digit())
        && (p == "0" || !p.starts_with('0'))
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for IpNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom("not an IP network"))
    }
}

/// Parses an IP list: at most [`MAX_IP_ENTRIES`] networks, duplicates
/// dropped, order kept. The message names the entry's position, never its
/// text (it is client input).
pub fn parse_ip_list<S: AsRef<str>>(
    field: &'static str,
    entries: &[S],
) -> Result<Vec<IpNet>, DomainError> {
    if entries.len() > MAX_IP_ENTRIES {
        return Err(DomainError::invalid(
            field,
            format!("must list at most {MAX_IP_ENTRIES} networks"),
        ));
    }
    let mut out: Vec<IpNet> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let net = IpNet::parse(entry.as_ref()).ok_or_else(|| {
            DomainError::invalid(
                field,
                format!(
                    "entry {} is not an IPv4 or IPv6 address or network in CIDR form \
                     without host bits (e.g. 10.0.0.0/8, 2001:db8::/32, 192.0.2.7)",
                    i + 1
                ),
            )
        })?;
        if !out.contains(&net) {
            out.push(net);
        }
    }
    Ok(out)
}

/// How a token is tied to the device that presents it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceBinding {
    /// Any device (the default).
    #[default]
    None,
    /// The first device that presents the token binds it; others are refused.
    FirstUse,
    /// Only the device named when the binding was set.
    Required,
}

impl DeviceBinding {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "first_use" => Self::FirstUse,
            "required" => Self::Required,
            _ => return None,
        })
    }
}

/// A device id as a caller passes it: opaque, 1-200 characters, one line.
pub fn validate_device_id(id: &str) -> Result<(), DomainError> {
    text::check("device_id", id, text::TextRule::Line)?;
    if id.is_empty() || id.chars().count() > MAX_DEVICE_ID_CHARS {
        return Err(DomainError::invalid(
            "device_id",
            format!("must be 1-{MAX_DEVICE_ID_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A verification's `cost`: 1-1000.
pub fn validate_cost(field: &'static str, cost: i64) -> Result<i64, DomainError> {
    if (1..=MAX_COST).contains(&cost) {
        Ok(cost)
    } else {
        Err(DomainError::invalid(
            field,
            format!("must be between 1 and {MAX_COST}"),
        ))
    }
}

/// A period of whole seconds, written `<n>s`, `<n>m`, `<n>h` or `<n>d` and
/// shown in the largest unit that divides it (within the unit's digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Period(i64);

impl Period {
    /// `30s`, `1m`, `12h`, `1d`: a number from 1 without a leading zero and
    /// one unit, as [`PERIOD_PATTERN`] says.
    pub fn parse(text: &str) -> Option<Self> {
        let unit = text.chars().last()?;
        let (factor, max_digits) = match unit {
            's' => (1, 8),
            'm' => (60, 6),
            'h' => (3600, 4),
            'd' => (86_400, 3),
            _ => return None,
        };
        let digits = &text[..text.len() - 1];
        if digits.is_empty()
            || digits.len() > max_digits
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(Self(digits.parse::<i64>().ok()? * factor))
    }

    /// From stored seconds (trusted: written by [`Period::parse`]).
    pub fn from_seconds(seconds: i64) -> Self {
        Self(seconds.max(1))
    }

    pub fn seconds(self) -> i64 {
        self.0
    }

    pub fn duration(self) -> Duration {
        Duration::seconds(self.0)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The largest unit that divides it and whose digit limit holds it,
        // so that the text always parses back (seconds always do).
        let s = self.0;
        for (unit, size, limit) in [
            ("d", 86_400, 1_000),
            ("h", 3600, 10_000),
            ("m", 60, 1_000_000),
        ] {
            if s % size == 0 && s / size < limit {
                return write!(f, "{}{unit}", s / size);
            }
        }
        write!(f, "{s}s")
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom("not a period"))
    }
}

/// A period from client input, or a 422 naming `field`.
pub fn parse_period(field: &'static str, text: &str) -> Result<Period, DomainError> {
    Period::parse(text).ok_or_else(|| {
        DomainError::invalid(
            field,
            "must be a number and a unit s, m, h or d (e.g. 30s, 1m, 1h, 1d): \
             at most 8 digits of seconds, 6 of minutes, 4 of hours or 3 of days",
        )
    })
}

/// A named rate limit of a token: `limit` requests per `period`, with a
/// burst of `burst` (default: `limit`, so a fresh period admits `limit`).
/// Enforced by the rate-limit engine, not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RateLimitSpec {
    /// `[a-z0-9_-]{1,32}`, unique per token.
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    pub name: String,
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub limit: i64,
    /// `30s`, `1m`, `1h`, `1d` …
    #[schema(value_type = String, pattern = "^([1-9][0-9]{0,7}s|[1-9][0-9]{0,5}m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d)$")]
    pub period: Period,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub burst: Option<i64>,
}

impl RateLimitSpec {
    /// The rate-limit engine's rule for this limit (a burst beyond about 35
    /// years of the rate capped there); `None` when the engine cannot hold
    /// it (a limit or burst over [`MAX_UNITS`], a period over
    /// [`MAX_PERIOD`]). [`validate_ratelimits`] admits only limits that
    /// have one, so a limit that was accepted is never skipped.
    pub fn rule(&self) -> Option<RateRule> {
        let limit = u32::try_from(self.limit).ok()?;
        let seconds = u64::try_from(self.period.seconds()).ok()?;
        let rule = RateRule::new(limit, std::time::Duration::from_secs(seconds)).ok()?;
        match self.burst {
            Some(b) => rule.with_burst_at_most(u32::try_from(b).ok()?).ok(),
            None => Some(rule),
        }
    }
}

/// A rate limit's name: `[a-z0-9_-]{1,32}`.
pub fn is_valid_limit_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// Checks a token's rate limits: names well-formed and unique, amounts in
/// range, at most [`MAX_RATELIMITS`].
pub fn validate_ratelimits(limits: Vec<RateLimitSpec>) -> Result<Vec<RateLimitSpec>, DomainError> {
    let field = "ratelimits";
    if limits.len() > MAX_RATELIMITS {
        return Err(DomainError::invalid(
            field,
            format!("must list at most {MAX_RATELIMITS} limits"),
        ));
    }
    for (i, l) in limits.iter().enumerate() {
        if !is_valid_limit_name(&l.name) {
            return Err(DomainError::invalid(
                field,
                "each name must be 1-32 characters of a-z, 0-9, _ and -",
            ));
        }
        if limits[..i].iter().any(|o| o.name == l.name) {
            return Err(DomainError::invalid(field, "names must be unique"));
        }
        let in_range = |v: i64| (1..=i64::from(MAX_UNITS)).contains(&v);
        if !in_range(l.limit) || !l.burst.is_none_or(in_range) {
            return Err(DomainError::invalid(
                field,
                format!("limit and burst must be between 1 and {MAX_UNITS}"),
            ));
        }
        // The engine would not hold these, and a limit it cannot hold
        // would not apply at all.
        if l.period.seconds() as u64 > MAX_PERIOD.as_secs() {
            return Err(DomainError::invalid(
                field,
                "each period must be at most 366d",
            ));
        }
        if l.rule().is_none() {
            return Err(DomainError::invalid(
                field,
                "the rate-limit engine cannot hold this limit",
            ));
        }
    }
    Ok(limits)
}

/// How credits come back: every `interval`, the balance is set back to
/// `amount` (not added to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Refill {
    #[schema(minimum = 1)]
    pub amount: i64,
    /// `1h`, `1d`, `30d` …
    #[schema(value_type = String, pattern = "^([1-9][0-9]{0,7}s|[1-9][0-9]{0,5}m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d)$")]
    pub interval: Period,
}

/// A token's credits: uses left, and the refill that restores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Credits {
    /// Uses left as of the last verification that spent some (a refill due
    /// since then is applied by the next one).
    pub remaining: i64,
    pub refill: Option<Refill>,
    /// When the balance was last set or refilled.
    pub refilled_at: DateTime<Utc>,
}

impl Credits {
    /// New credits from client input, counted from `now`.
    pub fn new(
        remaining: i64,
        refill: Option<Refill>,
        now: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        if !(0..=MAX_AMOUNT).contains(&remaining) {
            return Err(DomainError::invalid(
                "credits",
                format!("remaining must be between 0 and {MAX_AMOUNT}"),
            ));
        }
        if refill.is_some_and(|r| !(1..=MAX_AMOUNT).contains(&r.amount)) {
            return Err(DomainError::invalid(
                "credits",
                format!("refill amount must be between 1 and {MAX_AMOUNT}"),
            ));
        }
        Ok(Self {
            remaining,
            refill,
            refilled_at: now,
        })
    }

    /// The balance at `now` with any refill due applied, and when that
    /// refill counts from: the same arithmetic the database's conditional
    /// update does, for read-only answers.
    pub fn at(&self, now: DateTime<Utc>) -> (i64, DateTime<Utc>) {
        let Some(refill) = self.refill else {
            return (self.remaining, self.refilled_at);
        };
        let elapsed = (now - self.refilled_at).num_milliseconds();
        let interval = refill.interval.seconds() * 1000;
        if elapsed < interval {
            return (self.remaining, self.refilled_at);
        }
        let periods = elapsed / interval;
        let at = self.refilled_at + Duration::milliseconds(periods * interval);
        (refill.amount, at)
    }
}

/// The static controls of a token (cacheable with it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenControls {
    #[serde(default)]
    pub ip_allow: Vec<IpNet>,
    #[serde(default)]
    pub ip_deny: Vec<IpNet>,
    #[serde(default)]
    pub device_binding: DeviceBinding,
    #[serde(default)]
    pub ratelimits: Vec<RateLimitSpec>,
}

impl TokenControls {
    /// No control at all: the token verifies as it always did.
    pub fn is_empty(&self) -> bool {
        self.ip_allow.is_empty()
            && self.ip_deny.is_empty()
            && self.device_binding == DeviceBinding::None
            && self.ratelimits.is_empty()
    }

    /// Whether `ip` may use the token: outside every deny network and, when
    /// there is an allow list, inside one of its networks (deny wins). With
    /// a list but no known address the answer is no.
    pub fn ip_allowed(&self, ip: Option<IpAddr>) -> bool {
        ip_allowed(&self.ip_allow, &self.ip_deny, ip)
    }
}

/// The IP rule of tokens and clients alike: deny wins, an allow list admits
/// only its networks, no lists admit everyone, a list and no address no one.
pub fn ip_allowed(allow: &[IpNet], deny: &[IpNet], ip: Option<IpAddr>) -> bool {
    if allow.is_empty() && deny.is_empty() {
        return true;
    }
    let Some(ip) = ip else {
        return false;
    };
    if deny.iter().any(|n| n.contains(ip)) {
        return false;
    }
    allow.is_empty() || allow.iter().any(|n| n.contains(ip))
}

#[cfg(test)]
mod tests;
