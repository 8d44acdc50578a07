//! Settings of the mailed single-use links (password reset, e-mail
//! verification): their lifetimes (`RESET_TOKEN_TTL`,
//! `EMAIL_VERIFICATION_TOKEN_TTL`, the names the service being replaced
//! used), the front-end pages they point at (`PASSWORD_RESET_URL`,
//! `EMAIL_VERIFICATION_URL`), whether sign-up sends a verification mail,
//! and the request and confirmation rate limits (a count per the setting's
//! window, or `N/PERIOD`).

use chrono::Duration;
use tessera_core::user_link::MAX_TTL_SECS;

use super::{
    layers::{number, parse_bool, ConfigError, Layers},
    rate_limits::{rule_or_count, Rule},
};

/// Where a link points when its URL is not set: a front end's development
/// server. `serve` warns when this default is in use.
pub const DEV_RESET_URL: &str = "http://localhost:3000/reset-password";
pub const DEV_VERIFICATION_URL: &str = "http://localhost:3000/verify-email";

#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// `RESET_TOKEN_TTL`, seconds (1-3600, default 900).
    pub reset_ttl: Duration,
    /// `EMAIL_VERIFICATION_TOKEN_TTL`, seconds (1-3600, default 900).
    pub verification_ttl: Duration,
    /// `PASSWORD_RESET_URL`: the page that takes `?token=`.
    pub reset_url: LinkBase,
    /// `EMAIL_VERIFICATION_URL`.
    pub verification_url: LinkBase,
    /// `TESSERA_SEND_VERIFICATION_ON_SIGNUP`; default: on when
    /// `AUTH_REQUIRE_VERIFIED_EMAIL` is on.
    pub send_verification_on_signup: bool,
    /// Requests (`/recover`, `/verify-email`) per client IP: 10 per 15 min.
    pub requests_per_ip: Rule,
    /// Requests per e-mail address, known or not: 3 per hour.
    pub requests_per_address: Rule,
    /// Confirmations per client IP: 10 per minute.
    pub confirms_per_ip: Rule,
}

/// An absolute URL a token is appended to as the `token` query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkBase {
    url: String,
    /// Set from the default, not by the operator.
    pub is_default: bool,
}

impl LinkBase {
    /// The link for `token`: `url?token=…`, or `url&token=…` when the URL
    /// already has a query. The token is base64url and a UUID, so it needs
    /// no escaping.
    pub fn with_token(&self, token: &str) -> String {
        let joiner = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{joiner}token={token}", self.url)
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }
}

impl LinkSettings {
    /// Link URLs left at their development default, each as a line for the
    /// start-up log.
    pub fn defaults_in_use(&self) -> Vec<String> {
        [
            ("PASSWORD_RESET_URL", &self.reset_url),
            ("EMAIL_VERIFICATION_URL", &self.verification_url),
        ]
        .into_iter()
        .filter(|(_, base)| base.is_default)
        .map(|(name, base)| {
            format!(
                "{name} is not set: links point at {}, a development front end; \
                 set it to your front end's page",
                base.as_str()
            )
        })
        .collect()
    }
}

/// Whole seconds, 1 to 3600 (OWASP ASVS: a reset link lives under an hour).
fn ttl_seconds(v: &str) -> Result<Duration, String> {
    number(v, 1, MAX_TTL_SECS).map(Duration::seconds)
}

/// An absolute `https://` URL, or `http://` to localhost or a loopback
/// address (development). No credentials and no fragment (the token would
/// land after the `#` and never reach the server that serves the page).
fn link_url(v: &str) -> Result<LinkBase, String> {
    let expected = "expected an absolute https:// URL (or http://localhost… in development)";
    let url = reqwest::Url::parse(v).map_err(|_| expected.to_string())?;
    let host = url.host_str().unwrap_or("");
    let loopback = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback());
    let local = host == "localhost" || host.ends_with(".localhost") || loopback;
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && local);
    if !scheme_ok || host.is_empty() {
        return Err(expected.into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment (the token is added as a query parameter)".into());
    }
    Ok(LinkBase {
        url: v.to_string(),
        is_default: false,
    })
}

fn default_base(url: &str) -> LinkBase {
    LinkBase {
        url: url.to_string(),
        is_default: true,
    }
}

/// A count per `window` (`0` is off), or any `N/PERIOD` rule.
fn per_window(l: &Layers, key: &str, default: u32, secs: u64) -> Result<Rule, ConfigError> {
    let window = std::time::Duration::from_secs(secs);
    let default = tessera_core::gcra::RateRule::new(default, window).ok();
    l.parse(key, default, |v| rule_or_count(v, window))
}

pub(super) fn link_settings(
    l: &Layers,
    require_verified_email: bool,
) -> Result<LinkSettings, ConfigError> {
    let default_ttl = Duration::seconds(900);
    Ok(LinkSettings {
        reset_ttl: l.parse("links.reset_ttl", default_ttl, ttl_seconds)?,
        verification_ttl: l.parse("links.verification_ttl", default_ttl, ttl_seconds)?,
        reset_url: l.parse("links.reset_url", default_base(DEV_RESET_URL), link_url)?,
        verification_url: l.parse(
            "links.verification_url",
            default_base(DEV_VERIFICATION_URL),
            link_url,
        )?,
        send_verification_on_signup: l.parse(
            "links.send_verification_on_signup",
            require_verified_email,
            parse_bool,
        )?,
        requests_per_ip: per_window(l, "links.requests_per_ip", 10, 900)?,
        requests_per_address: per_window(l, "links.requests_per_address", 3, 3600)?,
        confirms_per_ip: per_window(l, "links.confirms_per_ip", 10, 60)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_whole_seconds_up_to_an_hour() {
        assert_eq!(ttl_seconds("900").unwrap(), Duration::seconds(900));
        assert_eq!(ttl_seconds("3600").unwrap(), Duration::seconds(3600));
        for bad in ["3601", "0", "-1", "abc", "15m", "", "1.5"] {
            assert!(ttl_seconds(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn link_urls_are_https_or_local_http() {
        for good in [
            "https://app.example.com/reset",
            "https://app.example.com/reset?lang=pt",
            "http://localhost:3000/reset",
            "http://127.0.0.1:5173/verify",
            "http://[::1]/verify",
            "http://app.localhost/reset",
        ] {
            assert!(link_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://app.example.com/reset",
            "ftp://app.example.com/reset",
            "/reset-password",
            "app.example.com/reset",
            "https://user:pw@app.example.com/reset",
            "https://app.example.com/reset#top",
            "javascript:alert(1)",
            "",
        ] {
            assert!(link_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_token_is_appended_as_a_query_parameter() {
        let plain = link_url("https://a.example/reset").unwrap();
        assert_eq!(plain.with_token("x.y"), "https://a.example/reset?token=x.y");
        let query = link_url("https://a.example/reset?lang=pt").unwrap();
        assert_eq!(
            query.with_token("x.y"),
            "https://a.example/reset?lang=pt&token=x.y"
        );
    }
}
