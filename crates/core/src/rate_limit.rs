//! One vocabulary for the limits counted in the database: what is limited
//! (a [`LimitKey`]), how much ([`Limit`], a sliding window), and the answer
//! ([`Decision`]). The invite quota and the auth-code limits count rows
//! inside the write transaction that adds one, and decide with
//! [`Limit::decide`]. Request rates and failure limits (login, refresh,
//! links, invite guesses, verify, client authentication, per-token limits)
//! use GCRA instead ([`crate::gcra`]), in process or in Redis; their keys
//! are [`LimitKey`]s too.
//!
//! A client address becomes a key only through [`client_key`]: an IPv4
//! client is its address, an IPv6 client its /64 (one subscriber usually
//! holds a whole /64, so keying by the full address would give it 2^64
//! fresh counts).

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
};

use chrono::{DateTime, Duration, Utc};

/// What a per-client limit counts a client address as: `a.b.c.d` for IPv4
/// (an IPv4-mapped IPv6 address counts as its IPv4 address), the /64
/// network `2001:db8:1:2::/64` for IPv6. The one place a per-IP limit's key
/// is derived; audit rows keep the full address.
pub fn client_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u64::MAX as u128);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

/// A client address as per-IP limits count it (see [`client_key`]). Built
/// only from an address, so no limit can key by the full IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(String);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        Self(client_key(ip))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a limit is counted per.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// A client address, IPv6 by its /64 (brute-force defence before
    /// authentication). Build it with [`LimitKey::client`].
    Ip(ClientKey),
    /// An API token, by id.
    Token(String),
    /// A subject: a user or the application's account for an end user.
    Account(String),
    /// A message destination, by its keyed hash (never the address itself).
    Destination(String),
    /// The issuer of invites (the quota).
    Issuer(String),
}

impl LimitKey {
    /// The per-IP key of a client address (see [`client_key`]).
    pub fn client(ip: IpAddr) -> Self {
        Self::Ip(ClientKey::of(ip))
    }

    /// The kind of key, for metric labels and storage prefixes.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ip(_) => "ip",
            Self::Token(_) => "token",
            Self::Account(_) => "account",
            Self::Destination(_) => "destination",
            Self::Issuer(_) => "issuer",
        }
    }
}

/// `kind:value`: the key as a shared store (Redis, a lock row) names it.
impl fmt::Display for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "ip:{ip}"),
            Self::Token(v) | Self::Account(v) | Self::Destination(v) | Self::Issuer(v) => {
                write!(f, "{}:{v}", self.kind())
            }
        }
    }
}

/// At most `max` events per key in any sliding `window`; `max == 0` turns
/// the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: i64,
    pub window: Duration,
}

/// Whether one more event may happen now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Over the limit until the oldest counted event leaves the window.
    Deny {
        retry_after_secs: i64,
    },
}

impl Limit {
    pub fn new(max: i64, window: Duration) -> Self {
        Self { max, window }
    }

    pub fn is_off(&self) -> bool {
        self.max <= 0
    }

    /// Where the window starts for a decision at `now`: events after it count.
    pub fn window_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.window
    }

    /// The decision given `used` events in the window, the oldest of them at
    /// `oldest`. The wait is at least one second, so a client told to retry
    /// never retries at once.
    pub fn decide(&self, used: i64, oldest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Decision {
        if self.is_off() || used < self.max {
            return Decision::Allow;
        }
        let oldest = oldest.unwrap_or(now);
        let wait = oldest + self.window - now;
        // Round up: 0.2 s left is "retry in 1 s", not "retry now".
        let secs = (wait.num_milliseconds() + 999).div_euclid(1000);
        Decision::Deny {
            retry_after_secs: secs.max(1),
        }
    }
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        matches!(self, Self::Allow)
    }

    /// `Err(seconds to wait)` when denied.
    pub fn into_result(self) -> Result<(), i64> {
        match self {
            Self::Allow => Ok(()),
            Self::Deny { retry_after_secs } => Err(retry_after_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn allows_below_the_limit_and_denies_at_it() {
        let limit = Limit::new(3, Duration::seconds(60));
        assert_eq!(limit.decide(2, Some(at(0)), at(10)), Decision::Allow);
        assert_eq!(
            limit.decide(3, Some(at(0)), at(10)),
            Decision::Deny {
                retry_after_secs: 50
            }
        );
    }

    #[test]
    fn the_wait_rounds_up_and_is_never_zero() {
        let limit = Limit::new(1, Duration::seconds(60));
        let now = at(59) + Duration::milliseconds(800);
        assert_eq!(limit.decide(1, Some(at(0)), now).into_result(), Err(1));
        assert_eq!(limit.decide(1, Some(at(0)), at(60)).into_result(), Err(1));
        assert_eq!(limit.decide(1, None, at(0)).into_result(), Err(60));
    }

    #[test]
    fn a_zero_limit_is_off() {
        let limit = Limit::new(0, Duration::seconds(60));
        assert!(limit.is_off());
        assert!(limit.decide(1_000, Some(at(0)), at(1)).is_allowed());
    }

    #[test]
    fn client_keys_are_the_ipv4_address_or_the_ipv6_64() {
        let cases = [
            ("203.0.113.7", "203.0.113.7"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8:1:2::", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
            ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
            ("::1", "::/64"),
            ("fe80::1", "fe80::/64"),
        ];
        for (ip, key) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(client_key(ip), key, "{ip}");
            assert_eq!(LimitKey::client(ip).to_string(), format!("ip:{key}"));
        }
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        assert_eq!(LimitKey::client(a), LimitKey::client(b), "one /64, one key");
    }

    #[test]
    fn keys_name_their_kind() {
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(LimitKey::client(ip).to_string(), "ip:203.0.113.7");
        assert_eq!(LimitKey::Issuer("alice".into()).to_string(), "issuer:alice");
        assert_eq!(LimitKey::Destination("ab12".into()).kind(), "destination");
    }
}
