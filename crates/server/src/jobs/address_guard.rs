//! The webhook client's defence against SSRF at connection time: a DNS
//! resolver that drops internal addresses (loopback, private, link-local,
//! metadata, ...) from every answer, so a host name that resolved to a
//! public address when the endpoint was created cannot later be pointed at
//! an internal service (DNS rebinding). The check happens on the addresses
//! actually connected to; redirects are never followed. A URL with a literal
//! IP address bypasses DNS, so the dispatcher checks those itself with
//! [`crate::service::webhooks::literal_internal_ip`].

use std::{error::Error, fmt, net::SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tessera_core::webhook::is_internal_address;

/// Why a delivery was not attempted: every address of the host is internal.
#[derive(Debug)]
pub struct InternalAddress;

impl fmt::Display for InternalAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(INTERNAL_ADDRESS_REASON)
    }
}

impl Error for InternalAddress {}

/// The attempt's recorded error (stable text for operators).
pub const INTERNAL_ADDRESS_REASON: &str =
    "refused: the endpoint resolves to an internal address (set TESSERA_WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true to allow)";

/// Resolves with the system resolver and keeps only public addresses.
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all
                .into_iter()
                .filter(|a| !is_internal_address(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(Box::new(InternalAddress) as Box<dyn Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Whether `e` (or anything it wraps) is the resolver's refusal.
pub fn is_refusal(e: &(dyn Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.is::<InternalAddress>() {
            return true;
        }
        current = err.source();
    }
    false
}
