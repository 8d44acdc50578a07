//! Settings for sessions for people: the JWT issuer and lifetimes, refresh
//! rotation's grace window, login throttling, the password policy, the
//! password-hashing pool, and the role → scope map.

use std::time::Duration;

use tessera_core::jwt::Algorithm;
use tessera_core::session::{
    RoleScopes, SessionDeviceBinding, SessionLifetimes, MAX_ACCESS_TTL_SECS, MAX_REFRESH_GRACE_SECS,
};

use super::layers::{chrono, err, number, parse_bool, parse_duration, ConfigError, Layers};

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `iss` of access tokens (`TESSERA_ISSUER`).
    pub issuer: String,
    /// `aud` of access tokens, when set (`TESSERA_AUDIENCE`).
    pub audience: Option<String>,
    pub lifetimes: SessionLifetimes,
    /// `TESSERA_SESSION_DEVICE_BINDING`: whether sessions bind to the
    /// `X-Device-Id` they are opened with.
    pub device_binding: SessionDeviceBinding,
    /// `AUTH_REQUIRE_VERIFIED_EMAIL`: refuse login until the e-mail is verified.
    pub require_verified_email: bool,
    pub password_min_length: usize,
    /// Failed logins per account (the normalised e-mail), and per client IP,
    /// in `throttle_window`.
    pub login_max_failures: i64,
    pub login_ip_max_failures: i64,
    pub throttle_window: chrono::Duration,
    pub signing_algorithm: Algorithm,
    /// `Cache-Control: max-age` of the JWKS.
    pub jwks_max_age: Duration,
    /// How long a rotated-in key is published before it signs.
    pub key_prepublish: Duration,
    /// Password-hashing threads (default: cores − 1, at least 1) and the
    /// queue beyond which a login answers 503.
    pub hash_threads: usize,
    pub hash_queue: usize,
    pub role_scopes: RoleScopes,
}

/// Seconds as a plain number, or a duration such as `15m`.
fn seconds_or_duration(v: &str) -> Result<Duration, String> {
    match v.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => parse_duration(v),
    }
}

fn bounded(v: &str, min_secs: u64, max_secs: u64, rule: &str) -> Result<Duration, String> {
    let d = seconds_or_duration(v)?;
    if d.as_secs() < min_secs || d.as_secs() > max_secs {
        Err(rule.to_string())
    } else {
        Ok(d)
    }
}

/// `AUTH_REQUIRE_VERIFIED_EMAIL`: the usual spellings of on and off, any
/// case; blank is off; anything else stops start-up.
fn on_off(v: &str) -> Result<bool, String> {
    if v.is_empty() {
        return Ok(false);
    }
    parse_bool(v)
        .map_err(|_| format!("expected true, 1, yes or on (or false, 0, no, off), got {v:?}"))
}

/// `role=scope,scope;role2=scope`: the variable's form, and what
/// `[roles.<role>] scopes = [...]` in the file is reduced to.
fn role_scopes(v: &str) -> Result<RoleScopes, String> {
    let mut map = RoleScopes::new();
    for part in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (role, scopes) = part
            .split_once('=')
            .ok_or_else(|| format!("expected role=scope,scope;… , got {part:?}"))?;
        let role = role.trim();
        if !tessera_core::invite::is_role_name(role) {
            return Err(format!("{role:?} is not a role name (a-z, 0-9, _ : . -)"));
        }
        let scopes: Vec<String> = scopes
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(bad) = scopes.iter().find(|s| !is_scope_token(s)) {
            return Err(format!(
                "{bad:?} is not a scope (printable ASCII, no spaces or quotes)"
            ));
        }
        map.insert(role.to_string(), scopes);
    }
    Ok(map)
}

/// RFC 6749 §3.3 scope-token characters.
fn is_scope_token(s: &str) -> bool {
    s.bytes()
        .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// `TESSERA_SESSION_DEVICE_BINDING`: `off`, `when_sent` or `required`, exactly.
fn device_binding(v: &str) -> Result<SessionDeviceBinding, String> {
    SessionDeviceBinding::parse(v)
        .ok_or_else(|| format!("expected off, when_sent or required, got {v:?}"))
}

fn algorithm(v: &str) -> Result<Algorithm, String> {
    v.parse()
        .map_err(|_| format!("expected EdDSA or ES256 (exactly), got {v:?}"))
}

fn text(l: &Layers, key: &str, default: Option<&str>) -> Result<Option<String>, ConfigError> {
    match l.get(key) {
        None => Ok(default.map(str::to_string)),
        Some((v, _)) if v.trim().is_empty() => Ok(default.map(str::to_string)),
        Some((v, src)) => {
            let v = v.trim();
            if v.len() > 256 || v.chars().any(char::is_control) {
                Err(err(src, "must be at most 256 printable characters"))
            } else {
                Ok(Some(v.to_string()))
            }
        }
    }
}

pub(super) fn auth_settings(l: &Layers) -> Result<AuthSettings, ConfigError> {
    let day = 86_400;
    let access = l.parse("auth.access_token_ttl", Duration::from_secs(900), |v| {
        bounded(v, 30, MAX_ACCESS_TTL_SECS as u64, "must be 30s to 1h")
    })?;
    let absolute = l.parse(
        "auth.session_lifetime",
        Duration::from_secs(30 * day),
        |v| bounded(v, 60, 400 * day, "must be 1m to 400d"),
    )?;
    let idle = l.parse(
        "auth.session_idle_timeout",
        Duration::from_secs(7 * day),
        |v| bounded(v, 60, 400 * day, "must be 1m to 400d"),
    )?;
    let grace = l.parse("auth.refresh_reuse_grace", Duration::ZERO, |v| {
        bounded(
            v,
            0,
            MAX_REFRESH_GRACE_SECS as u64,
            "must be 0 to 60 seconds",
        )
    })?;
    let jwks_max_age = l.parse("auth.jwks_max_age", Duration::from_secs(900), |v| {
        bounded(v, 0, day, "must be 0s to 24h")
    })?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hash_threads = l.parse("auth.hash_threads", cores.saturating_sub(1).max(1), |v| {
        number(v, 1, 256)
    })?;
    let to_chrono = |d: Duration| chrono(d).unwrap_or_else(|_| chrono::Duration::days(400));
    Ok(AuthSettings {
        issuer: text(l, "auth.issuer", Some("tessera"))?.unwrap_or_default(),
        audience: text(l, "auth.audience", None)?,
        lifetimes: SessionLifetimes {
            access: to_chrono(access),
            absolute: to_chrono(absolute),
            idle: to_chrono(idle),
            reuse_grace: to_chrono(grace),
        },
        device_binding: l.parse(
            "auth.session_device_binding",
            SessionDeviceBinding::default(),
            device_binding,
        )?,
        require_verified_email: l.parse("auth.require_verified_email", false, on_off)?,
        password_min_length: l.parse("auth.password_min_length", 12, |v| number(v, 8, 128))?,
        login_max_failures: l.parse("auth.login_max_failures", 10, |v| number(v, 1, 10_000))?,
        login_ip_max_failures: l.parse("auth.login_ip_max_failures", 100, |v| {
            number(v, 1, 1_000_000)
        })?,
        throttle_window: to_chrono(l.parse(
            "auth.login_throttle_window",
            Duration::from_secs(900),
            |v| bounded(v, 1, day, "must be 1s to 24h"),
        )?),
        signing_algorithm: l.parse("auth.signing_algorithm", Algorithm::EdDSA, algorithm)?,
        jwks_max_age,
        key_prepublish: l.parse("auth.key_prepublish", jwks_max_age, |v| {
            bounded(v, 0, 7 * day, "must be 0s to 7d")
        })?,
        hash_threads,
        hash_queue: l.parse("auth.hash_queue", 64 * hash_threads, |v| {
            number(v, 1, 100_000)
        })?,
        role_scopes: l.parse("roles", RoleScopes::new(), role_scopes)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings these variables (and this file) give.
    fn load(
        env: &[(&str, &str)],
        file: Option<&str>,
    ) -> Result<AuthSettings, super::super::ConfigError> {
        let env: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = file.map(|text| {
            let p = dir.path().join("tessera.toml");
            std::fs::write(&p, text).unwrap();
            p
        });
        let lookup = move |name: &str| env.get(name).cloned();
        super::super::Config::load(&super::super::Sources {
            file: path,
            env: &lookup,
            overrides: Default::default(),
        })
        .map(|c| c.auth)
    }

    #[test]
    fn roles_come_from_the_file_or_the_variable() {
        let file = "[roles.member]\nscopes = [\"orders:read\", \"profile\"]\n[roles.admin]\nscopes = [\"admin\"]\n";
        let a = load(&[], Some(file)).unwrap();
        assert_eq!(a.role_scopes["member"], vec!["orders:read", "profile"]);
        assert_eq!(a.role_scopes["admin"], vec!["admin"]);
        let a = load(&[("TESSERA_ROLE_SCOPES", "member=profile")], None).unwrap();
        assert_eq!(a.role_scopes["member"], vec!["profile"]);
        let bad = load(&[], Some("[roles.member]\nscope = [\"x\"]\n")).unwrap_err();
        assert!(bad.source_name.starts_with("roles.member"), "{bad}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("AUTH_REQUIRE_VERIFIED_EMAIL", "maybe"),
            ("TESSERA_REFRESH_REUSE_GRACE", "61"),
            ("TESSERA_ACCESS_TOKEN_TTL", "2h"),
            ("TESSERA_PASSWORD_MIN_LENGTH", "7"),
            ("TESSERA_SIGNING_ALGORITHM", "RS256"),
            ("TESSERA_ROLE_SCOPES", "member"),
            ("TESSERA_SESSION_DEVICE_BINDING", "always"),
            ("TESSERA_SESSION_DEVICE_BINDING", "Required"),
        ] {
            let e = load(&[(var, value)], None).unwrap_err();
            assert_eq!(e.source_name, var, "{e}");
        }
        let a = load(
            &[
                ("AUTH_REQUIRE_VERIFIED_EMAIL", "Yes"),
                ("TESSERA_REFRESH_REUSE_GRACE", "10"),
            ],
            None,
        )
        .unwrap();
        assert!(a.require_verified_email);
        assert_eq!(a.lifetimes.reuse_grace, chrono::Duration::seconds(10));
    }

    #[test]
    fn session_device_binding_defaults_to_when_sent() {
        let a = load(&[], None).unwrap();
        assert_eq!(a.device_binding, SessionDeviceBinding::WhenSent);
        for (value, mode) in [
            ("off", SessionDeviceBinding::Off),
            ("when_sent", SessionDeviceBinding::WhenSent),
            ("required", SessionDeviceBinding::Required),
        ] {
            let a = load(&[("TESSERA_SESSION_DEVICE_BINDING", value)], None).unwrap();
            assert_eq!(a.device_binding, mode);
        }
        let file = "[auth]\nsession_device_binding = \"required\"\n";
        let a = load(&[], Some(file)).unwrap();
        assert_eq!(a.device_binding, SessionDeviceBinding::Required);
        let bad = load(&[], Some("[auth]\nsession_device_binding = \"on\"\n")).unwrap_err();
        assert!(
            bad.source_name.starts_with("auth.session_device_binding"),
            "{bad}"
        );
    }

    #[test]
    fn role_scopes_parse() {
        let m = role_scopes("member=orders:read,profile; admin=admin").unwrap();
        assert_eq!(m["member"], vec!["orders:read", "profile"]);
        assert_eq!(m["admin"], vec!["admin"]);
        assert!(role_scopes("member").is_err());
        assert!(role_scopes("Bad Role=x").is_err());
        assert!(role_scopes("member=\"x\"").is_err());
    }

    #[test]
    fn verified_email_switch() {
        for on in ["true", "1", "YES", "On"] {
            assert_eq!(on_off(on), Ok(true));
        }
        for off in ["false", "0", "no", "OFF", ""] {
            assert_eq!(on_off(off), Ok(false));
        }
        assert!(on_off("maybe").is_err());
    }
}
