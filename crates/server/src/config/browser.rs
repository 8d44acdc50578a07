//! Browser front ends: `TESSERA_ALLOWED_ORIGINS`, the web origins whose
//! pages may call Tessera (CORS is answered for them, and only their
//! requests pass the CSRF guard), and how long a CSRF token from `GET /csrf`
//! lives. Origins are normalised here once, the same way the guard
//! normalises a request's `Origin`, so comparing them is a string equality.

use std::time::Duration;

use super::layers::{at_most, positive_duration, ConfigError, Layers};

/// The browser settings; see the README's "Browser front ends" section.
#[derive(Debug, Clone)]
pub struct BrowserSettings {
    /// Normalised origins (`https://app.example.com`, `http://localhost:3000`).
    /// Empty: every browser request to a protected route is refused and no
    /// CORS headers are sent.
    pub allowed_origins: Vec<String>,
    /// How long a CSRF token is accepted after `GET /csrf` made it.
    pub csrf_token_ttl: Duration,
}

impl Default for BrowserSettings {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            csrf_token_ttl: DEFAULT_CSRF_TOKEN_TTL,
        }
    }
}

impl BrowserSettings {
    /// Whether `origin` (already normalised) is one of the allowed origins.
    pub fn allows(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == origin)
    }
}

const DEFAULT_CSRF_TOKEN_TTL: Duration = Duration::from_secs(2 * 3600);
/// A token is a bearer of the origin's right to post: a day at most.
const MAX_CSRF_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

pub(super) fn browser_settings(l: &Layers) -> Result<BrowserSettings, ConfigError> {
    let allowed_origins = l.parse("browser.allowed_origins", Vec::new(), origin_list)?;
    let csrf_token_ttl = l.parse("browser.csrf_token_ttl", DEFAULT_CSRF_TOKEN_TTL, |v| {
        at_most(
            positive_duration(v)?,
            MAX_CSRF_TOKEN_TTL,
            "must be at most 24h",
        )
    })?;
    Ok(BrowserSettings {
        allowed_origins,
        csrf_token_ttl,
    })
}

/// A comma-separated list of origins, each normalised; an entry that is not
/// an origin is named by its position (1-based) so the operator finds it.
fn origin_list(v: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for (i, entry) in v.split(',').map(str::trim).enumerate() {
        if entry.is_empty() {
            continue;
        }
        let origin =
            normalize_origin(entry).map_err(|why| format!("entry {} ({entry:?}): {why}", i + 1))?;
        if !out.contains(&origin) {
            out.push(origin);
        }
    }
    Ok(out)
}

/// `scheme://host[:port]` in the form browsers send in `Origin`: scheme and
/// host in lower case, the scheme's default port dropped. Refuses `null`,
/// wildcards, user info, paths, queries and fragments, and non-ASCII hosts
/// (browsers send the `xn--` form). Public: the CSRF guard normalises a
/// request's `Origin` with it before comparing.
pub fn normalize_origin(raw: &str) -> Result<String, String> {
    if raw.eq_ignore_ascii_case("null") {
        return Err(
            "`null` is the origin of sandboxed and file pages; it cannot be allowed".into(),
        );
    }
    if raw.contains('*') {
        return Err("wildcards are not allowed; list each origin".into());
    }
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or("expected an origin such as https://app.example.com")?;
    let scheme = scheme.to_ascii_lowercase();
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err("the scheme must be letters, such as https".into());
    }
    if rest.contains(['/', '?', '#']) {
        return Err("an origin has no path, query or fragment (not even a trailing /)".into());
    }
    if rest.contains('@') {
        return Err("an origin has no user name or password".into());
    }
    let (host, port) = split_host_port(rest)?;
    let default_port = match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    Ok(match port {
        Some(p) if Some(p) != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The lower-cased host (a name, an IPv4 address or a bracketed IPv6
/// address) and the port, if one is given.
fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']').ok_or("an IPv6 address needs its ]")?;
        let (host, after) = authority.split_at(end + 1);
        let address = &host[1..host.len() - 1];
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("not an IPv6 address between [ and ]".into());
        }
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or("expected :port after ]")?),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let name_ok = |h: &str| {
        !h.is_empty()
            && h.len() <= 253
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
    };
    if !host.starts_with('[') && !name_ok(host) {
        return Err(
            "the host must be a name or address in ASCII (use the xn-- form of a Unicode name)"
                .into(),
        );
    }
    let port = port
        .map(|p| {
            // Digits only: `parse` would also take a leading `+`.
            p.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| p.parse::<u16>().ok())
                .flatten()
                .filter(|p| *p > 0)
                .ok_or("the port must be a number 1-65535")
        })
        .transpose()?;
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<crate::config::Config, ConfigError> {
        crate::config::tests::load(env, None)
    }

    #[test]
    fn origins_are_normalised_as_browsers_send_them() {
        for (raw, expected) in [
            ("https://App.Example.COM", "https://app.example.com"),
            ("HTTPS://app.example.com:443", "https://app.example.com"),
            ("http://localhost:80", "http://localhost"),
            ("http://localhost:3000", "http://localhost:3000"),
            ("https://example.com:80", "https://example.com:80"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://[::1]:5173", "http://[::1]:5173"),
            ("http://[::1]", "http://[::1]"),
            ("capacitor://localhost", "capacitor://localhost"),
        ] {
            assert_eq!(normalize_origin(raw).as_deref(), Ok(expected), "{raw}");
        }
    }

    #[test]
    fn what_is_not_an_origin_is_refused() {
        for raw in [
            "null",
            "NULL",
            "*",
            "https://*.example.com",
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://app.example.com?x=1",
            "https://app.example.com#top",
            "https://user@app.example.com",
            "https://",
            "https://:8080",
            "https://app.example.com:0",
            "https://app.example.com:65536",
            "https://app.example.com:+80",
            "https://app.example.com:",
            "https://bücher.example",
            "https://[::1",
            "https://[nope]",
            "https://[::1]x",
            "1http://x.example",
            "ht tp://x.example",
        ] {
            assert!(normalize_origin(raw).is_err(), "{raw} was accepted");
        }
    }

    #[test]
    fn allowed_origins_are_read_deduplicated_and_default_empty() {
        let c = load(&[]).unwrap();
        assert!(c.browser.allowed_origins.is_empty());
        assert_eq!(c.browser.csrf_token_ttl, Duration::from_secs(7200));
        let c = load(&[(
            "TESSERA_ALLOWED_ORIGINS",
            " https://App.example.com , http://localhost:3000,,https://app.example.com:443",
        )])
        .unwrap();
        assert_eq!(
            c.browser.allowed_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        assert!(c.browser.allows("http://localhost:3000"));
        assert!(!c.browser.allows("http://localhost:3001"));
        let c = load(&[("TESSERA_CSRF_TOKEN_TTL", "30m")]).unwrap();
        assert_eq!(c.browser.csrf_token_ttl, Duration::from_secs(1800));
    }

    #[test]
    fn a_bad_entry_stops_start_up_naming_the_variable_and_the_position() {
        for (list, position) in [
            ("https://a.example,null", "entry 2"),
            ("*", "entry 1"),
            ("https://a.example, https://b.example/app", "entry 2"),
            ("https://a.example,,https://*.example", "entry 3"),
        ] {
            let e = load(&[("TESSERA_ALLOWED_ORIGINS", list)]).unwrap_err();
            assert_eq!(e.source_name, "TESSERA_ALLOWED_ORIGINS", "{list}");
            assert!(e.message.starts_with(position), "{list}: {}", e.message);
        }
        for ttl in ["0s", "25h", "soon"] {
            let e = load(&[("TESSERA_CSRF_TOKEN_TTL", ttl)]).unwrap_err();
            assert_eq!(e.source_name, "TESSERA_CSRF_TOKEN_TTL", "{ttl}");
        }
    }
}
