//! Who the client is behind reverse proxies: the trusted-proxy list
//! (`TESSERA_TRUSTED_PROXIES`) and the `X-Forwarded-For` walk. Pure and
//! panic-free on any input, because the header is written by whoever
//! connects. Here rather than in the server's HTTP layer so that the
//! configuration can validate the list with the same parser; the server
//! re-exports it as `tessera_server::http::forwarded`, the API its fuzz
//! target calls.
//!
//! The rule. Each proxy appends the address it received the request from,
//! so only entries added by proxies we trust are believable, and those are
//! at the right-hand end. Start from the TCP peer:
//!
//! 1. If the peer is not a trusted proxy, it is the client; the header is
//!    ignored entirely (anyone can send one).
//! 2. Otherwise read `X-Forwarded-For` from the right. Each entry is what
//!    the hop to its right (a trusted proxy) saw. The first entry that is not
//!    a trusted proxy is the client.
//! 3. An entry that does not parse as an address (`unknown`, a hostname, a
//!    zone id, garbage) stops the walk: the client is the last address read,
//!    i.e. the trusted hop right of the bad entry (or the peer). Empty list
//!    elements (`a,,b`) are skipped. At most [`MAX_HOPS`] entries are read;
//!    a longer chain stops there the same way.
//! 4. If every entry is trusted, the client is the left-most entry read.
//!
//! An entry may carry a port (`203.0.113.7:4711`, `[2001:db8::1]:443`) or
//! brackets (`[2001:db8::1]`); the port is dropped. IPv4-mapped IPv6
//! addresses (`::ffff:192.0.2.1`, what a dual-stack socket reports for an
//! IPv4 peer) are treated as the IPv4 address, for the peer, the entries
//! and the list alike.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
};

/// The most `X-Forwarded-For` entries read from the right; real chains are
/// a handful of hops, and the bound keeps a huge header cheap.
pub const MAX_HOPS: usize = 64;

/// One network in CIDR form: an address and a prefix length. Host bits are
/// cleared at parse time, so `10.1.2.3/8` is `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `a.b.c.d/n`, `x:y::z/n`, or a bare address (a /32 or /128).
    pub fn parse(text: &str) -> Result<Self, ProxyListError> {
        let bad = || ProxyListError::Invalid(truncated(text));
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        // A mapped address in the list means its IPv4 address.
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            // Digits only: `u8::from_str` would also take `+8`.
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|n| *n <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        Ok(Self {
            network: mask(addr, prefix),
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `ip` with every bit after the first `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((bits & keep).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((bits & keep).to_be_bytes())
        }
    }
}

/// A list entry that is not an address or a CIDR. Carries the entry (cut
/// to 64 characters): it is the operator's configuration, not client input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyListError {
    #[error(
        "{0:?} is not an IP address or CIDR network (e.g. 10.0.0.0/8, 2001:db8::/32, 127.0.0.1)"
    )]
    Invalid(String),
}

fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The reverse proxies whose `X-Forwarded-For` entries are believed.
/// Empty (the default): the header is ignored and the TCP peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Cidr>,
}

impl TrustedProxies {
    /// Trust nobody: the TCP peer is always the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trust every hop (`0.0.0.0/0` and `::/0`): the legacy
    /// `TESSERA_TRUST_PROXY_HEADERS=true`.
    pub fn everyone() -> Self {
        Self {
            nets: vec![
                Cidr::parse("0.0.0.0/0").expect("a valid network"),
                Cidr::parse("::/0").expect("a valid network"),
            ],
        }
    }

    /// A list of addresses and CIDR networks separated by commas and/or
    /// whitespace. An empty list trusts nobody.
    pub fn parse(list: &str) -> Result<Self, ProxyListError> {
        let nets = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { nets })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    pub fn networks(&self) -> &[Cidr] {
        &self.nets
    }
}

/// One `X-Forwarded-For` entry as an address: bare, bracketed IPv6, or
/// either with a port. `None` for anything else.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = entry.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse::<std::net::Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

/// The client of a request that arrived from `peer` with this
/// `X-Forwarded-For` (several header lines joined with `,`), under the rule
/// in the module documentation. Always an address: at worst the peer.
pub fn client_ip(peer: IpAddr, x_forwarded_for: Option<&str>, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    let Some(header) = x_forwarded_for else {
        return client;
    };
    let entries = header.rsplit(',').map(str::trim).filter(|e| !e.is_empty());
    for (read, entry) in entries.enumerate() {
        if read == MAX_HOPS {
            break;
        }
        let Some(ip) = parse_entry(entry) else {
            break;
        };
        client = ip.to_canonical();
        if !trusted.contains(client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lists_parse_addresses_and_networks() {
        let list = TrustedProxies::parse(
            " 10.0.0.0/8,192.168.1.7 2001:db8::/32\n::1, ::ffff:172.16.0.0/12 ,, 10.1.2.3/8",
        )
        .unwrap();
        let shown: Vec<String> = list.networks().iter().map(Cidr::to_string).collect();
        assert_eq!(
            shown,
            [
                "10.0.0.0/8",
                "192.168.1.7/32",
                "2001:db8::/32",
                "::1/128",
                "172.16.0.0/12",
                "10.0.0.0/8"
            ]
        );
        assert!(list.contains(ip("10.255.0.1")));
        assert!(
            list.contains(ip("::ffff:10.0.0.1")),
            "a mapped peer is IPv4"
        );
        assert!(list.contains(ip("172.31.255.255")));
        assert!(list.contains(ip("2001:db8:ffff::1")));
        assert!(!list.contains(ip("192.168.1.8")));
        assert!(!list.contains(ip("11.0.0.1")));
        assert!(!list.contains(ip("2001:db9::1")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse(" , ").unwrap().is_empty());
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("1.2.3.4")));
        assert!(!TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("::2")));
    }

    #[test]
    fn bad_list_entries_are_rejected() {
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0.0/8/8",
            "10.0.0",
            "localhost",
            "10.0.0.1:80",
            "[::1]",
            "fe80::1%eth0",
            "10.0.0.0/0008",
            "*",
        ] {
            let e = TrustedProxies::parse(&format!("127.0.0.1, {bad}")).unwrap_err();
            assert!(e.to_string().contains("is not an IP address"), "{bad}: {e}");
        }
    }

    /// (peer, X-Forwarded-For, trusted list, expected client).
    const CASES: &[(&str, Option<&str>, &str, &str)] = &[
        // Nobody trusted: the header never counts.
        ("203.0.113.9", Some("198.51.100.1"), "", "203.0.113.9"),
        // The finding: a spoofed left-most entry behind one trusted proxy.
        (
            "127.0.0.1",
            Some("203.0.113.5, 10.9.9.9"),
            "127.0.0.1/32",
            "10.9.9.9",
        ),
        (
            "127.0.0.1",
            Some("203.0.113.5, 10.9.9.9"),
            "127.0.0.1, 10.0.0.0/8",
            "203.0.113.5",
        ),
        // A peer that is not trusted: the header is ignored entirely.
        (
            "198.51.100.7",
            Some("203.0.113.5"),
            "127.0.0.1",
            "198.51.100.7",
        ),
        // Trusted peer, no header, or an empty one.
        ("127.0.0.1", None, "127.0.0.1", "127.0.0.1"),
        ("127.0.0.1", Some(""), "127.0.0.1", "127.0.0.1"),
        ("127.0.0.1", Some(" , ,"), "127.0.0.1", "127.0.0.1"),
        // A chain of trusted proxies: the first untrusted from the right.
        (
            "10.0.0.2",
            Some("1.1.1.1, 198.51.100.20, 10.0.0.9, 10.0.0.8"),
            "10.0.0.0/8",
            "198.51.100.20",
        ),
        // Every hop trusted: the left-most entry.
        (
            "10.0.0.2",
            Some("10.0.0.7, 10.0.0.8"),
            "10.0.0.0/8",
            "10.0.0.7",
        ),
        // Garbage stops the walk at the last trusted hop.
        (
            "127.0.0.1",
            Some("203.0.113.5, unknown"),
            "127.0.0.1",
            "127.0.0.1",
        ),
        (
            "127.0.0.1",
            Some("203.0.113.5, garbage, 10.0.0.3"),
            "127.0.0.0/8, 10.0.0.0/8",
            "10.0.0.3",
        ),
        (
            "127.0.0.1",
            Some("garbage, 198.51.100.1"),
            "127.0.0.1",
            "198.51.100.1",
        ),
        (
            "127.0.0.1",
            Some("203.0.113.5, 999.1.1.1"),
            "0.0.0.0/0",
            "127.0.0.1",
        ),
        (
            "127.0.0.1",
            Some("203.0.113.5, fe80::1%eth0"),
            "0.0.0.0/0, ::/0",
            "127.0.0.1",
        ),
        (
            "127.0.0.1",
            Some("203.0.113.5, 10.0.0.1 10.0.0.2"),
            "0.0.0.0/0",
            "127.0.0.1",
        ),
        // Empty list elements are skipped.
        (
            "127.0.0.1",
            Some("203.0.113.5,,"),
            "127.0.0.1",
            "203.0.113.5",
        ),
        // Trust everyone (the legacy flag): the left-most parseable entry.
        (
            "127.0.0.1",
            Some("203.0.113.5, 10.9.9.9"),
            "0.0.0.0/0, ::/0",
            "203.0.113.5",
        ),
        // Ports and brackets.
        (
            "127.0.0.1",
            Some("203.0.113.5:4711"),
            "127.0.0.1",
            "203.0.113.5",
        ),
        (
            "127.0.0.1",
            Some("[2001:db8::7]:443"),
            "127.0.0.1",
            "2001:db8::7",
        ),
        (
            "127.0.0.1",
            Some("[2001:db8::7]"),
            "127.0.0.1",
            "2001:db8::7",
        ),
        // IPv6 peers and chains.
        (
            "::1",
            Some("2001:db8::1, fd00::5"),
            "::1, fd00::/8",
            "2001:db8::1",
        ),
        ("2001:db8::9", Some("203.0.113.5"), "::1", "2001:db8::9"),
        (
            "fd00::5",
            Some("203.0.113.5, ::ffff:10.0.0.1"),
            "fd00::/8, 10.0.0.0/8",
            "203.0.113.5",
        ),
        // IPv4-mapped peers are IPv4, trusted and reported as such.
        (
            "::ffff:127.0.0.1",
            Some("203.0.113.5"),
            "127.0.0.1",
            "203.0.113.5",
        ),
        (
            "::ffff:198.51.100.7",
            Some("203.0.113.5"),
            "127.0.0.1",
            "198.51.100.7",
        ),
        (
            "127.0.0.1",
            Some("::ffff:203.0.113.5"),
            "127.0.0.1",
            "203.0.113.5",
        ),
    ];

    #[test]
    fn the_client_is_the_first_untrusted_address_from_the_right() {
        for (peer, xff, list, want) in CASES {
            let trusted = TrustedProxies::parse(list).unwrap();
            assert_eq!(
                client_ip(ip(peer), *xff, &trusted),
                ip(want),
                "peer {peer}, X-Forwarded-For {xff:?}, trusted {list:?}"
            );
        }
    }

    #[test]
    fn a_long_chain_stops_after_max_hops() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let mut chain = vec!["203.0.113.5".to_string()];
        chain.extend((0..MAX_HOPS).map(|i| format!("10.0.{}.{}", i / 256, i % 256)));
        let header = chain.join(", ");
        // 64 trusted entries are read; the 65th (the client) is not.
        assert_eq!(
            client_ip(ip("10.1.1.1"), Some(&header), &trusted),
            ip("10.0.0.0")
        );
        let header = chain[..MAX_HOPS].join(", ");
        assert_eq!(
            client_ip(ip("10.1.1.1"), Some(&header), &trusted),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn hostile_headers_never_panic() {
        let trusted = TrustedProxies::everyone();
        for header in [
            ",,,,",
            "\u{0}",
            "[",
            "[]:",
            "[::1",
            "::1]:80",
            "1.2.3.4:99999",
            &"9".repeat(10_000),
            &"1.2.3.4,".repeat(10_000),
            "ÿÿ, 1.2.3.4",
        ] {
            let _ = client_ip(ip("127.0.0.1"), Some(header), &trusted);
        }
        let _ = TrustedProxies::parse("\u{0}/\u{0}");
        let _ = TrustedProxies::parse("1.2.3.4/٣");
    }
}
