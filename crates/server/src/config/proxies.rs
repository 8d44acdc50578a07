//! Which reverse proxies are believed about the client address:
//! `TESSERA_TRUSTED_PROXIES` (a CIDR list), and the legacy boolean
//! `TESSERA_TRUST_PROXY_HEADERS` it replaces, which still works and means
//! "trust every hop".

use tessera_core::forwarded::TrustedProxies;

use super::layers::{err, parse_bool, source_of, ConfigError, Layers};

#[derive(Debug, Clone, Default)]
pub struct ProxySettings {
    /// Proxies whose `X-Forwarded-For` entries are believed; empty: none.
    pub trusted: TrustedProxies,
    /// Set by the legacy `TESSERA_TRUST_PROXY_HEADERS=true` (every hop is
    /// trusted, so the left-most entry is the client): warned about at start-up.
    pub legacy_trust_all: bool,
}

impl ProxySettings {
    /// Logs the start-up warning for the legacy setting, if it is in use.
    pub fn warn_if_legacy(&self) {
        if self.legacy_trust_all {
            tracing::warn!(
                "TESSERA_TRUST_PROXY_HEADERS=true trusts every X-Forwarded-For entry, so any \
                 client can choose the address its limits and audit rows are keyed by; set \
                 TESSERA_TRUSTED_PROXIES to your proxies' addresses (e.g. 10.0.0.0/8) instead"
            );
        }
    }
}

pub(super) fn proxy_settings(l: &Layers) -> Result<ProxySettings, ConfigError> {
    let list = l.parse("http.trusted_proxies", None, |v| {
        TrustedProxies::parse(v)
            .map(Some)
            .map_err(|e| e.to_string())
    })?;
    let legacy = l.parse("http.trust_proxy_headers", false, parse_bool)?;
    match (list, l.get("http.trust_proxy_headers")) {
        // Two answers to one question: refuse rather than pick one silently.
        (Some(_), Some((_, old))) => Err(err(
            old,
            format!(
                "is replaced by {}, which is also set; remove {old}",
                source_of(l, "http.trusted_proxies")
            ),
        )),
        (Some(trusted), None) => Ok(ProxySettings {
            trusted,
            legacy_trust_all: false,
        }),
        (None, _) if legacy => Ok(ProxySettings {
            trusted: TrustedProxies::everyone(),
            legacy_trust_all: true,
        }),
        (None, _) => Ok(ProxySettings::default()),
    }
}
