//! Who the client is behind reverse proxies: the trusted-proxy list and the
//! `X-Forwarded-For` walk, as the HTTP layer (and the fuzz target) uses
//! them. The rule is documented and implemented, pure, in
//! `tessera_core::forwarded`, where the configuration can validate the list
//! with the same parser without importing the HTTP layer.

pub use tessera_core::forwarded::{client_ip, Cidr, ProxyListError, TrustedProxies, MAX_HOPS};
