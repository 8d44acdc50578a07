//! The `X-Forwarded-For` walk: which address a request is from, given the
//! TCP peer, the header (client-controlled, up to the first trusted hop)
//! and the operator's list of trusted proxies.

use std::net::IpAddr;

use tessera_core::forwarded::{client_ip, Cidr, TrustedProxies};

/// Input: line 1 a trusted-proxy list, line 2 the peer address, the rest
/// the header (absent when there is no third line). Invariants: the list
/// parser never panics and every network it returns re-parses to itself;
/// the client is the peer (canonical) or an address written in the header;
/// an untrusted peer is always the client; with no header the peer is.
pub fn x_forwarded_for(data: &[u8]) {
    let text = crate::text(data);
    let mut lines = text.splitn(3, '\n');
    let list = lines.next().unwrap_or_default();
    let peer = lines.next().and_then(|p| p.trim().parse::<IpAddr>().ok());
    let header = lines.next();

    let trusted = match TrustedProxies::parse(list) {
        Ok(trusted) => trusted,
        Err(_) => TrustedProxies::parse("10.0.0.0/8, 127.0.0.1, ::1, fd00::/8").expect("a list"),
    };
    for net in trusted.networks() {
        let shown = net.to_string();
        let again = Cidr::parse(&shown).expect("a shown network re-parses");
        assert_eq!(again.to_string(), shown);
    }
    let peer = peer.unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let client = client_ip(peer, header, &trusted);
    let canonical_peer = peer.to_canonical();
    if !trusted.contains(canonical_peer) || header.is_none() {
        assert_eq!(client, canonical_peer, "the peer is the client");
        return;
    }
    if client != canonical_peer {
        let header = header.unwrap_or_default();
        let written = header.split(',').any(|entry| {
            let entry = entry.trim();
            [entry, entry.trim_start_matches('[')]
                .iter()
                .any(|e| e.contains(&client.to_string()) || mapped_form(e, client))
        });
        assert!(written, "{client} is neither the peer nor in the header");
    }
}

/// Whether `entry` writes `client` in another spelling the parser accepts
/// (an IPv4-mapped IPv6 address, a zero-compressed form, with a port).
fn mapped_form(entry: &str, client: IpAddr) -> bool {
    let bare = entry
        .trim_start_matches('[')
        .split(']')
        .next()
        .unwrap_or_default();
    let candidates = [
        bare.to_owned(),
        bare.rsplit_once(':')
            .map(|(h, _)| h.to_owned())
            .unwrap_or_default(),
    ];
    candidates
        .iter()
        .filter_map(|c| c.parse::<IpAddr>().ok())
        .any(|ip| ip.to_canonical() == client)
}
