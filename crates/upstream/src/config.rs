//! Upstreams as configuration: what to log in to and how. Credentials are
//! written as `${VAR}` (or `${file:/path}`) and read when the cache is built,
//! so they never sit in a config file; a missing variable is an error that
//! names the upstream, the field and the variable. Also the cache's tunables
//! ([`CacheSettings`]) and the user-name rule, which configuration and lookups
//! share: this module depends on no other module of the crate but the leaf
//! `users`.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_core::SecretString;

use crate::users::UserPolicy;

/// A configuration mistake, always naming the upstream and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("upstreams: {0}")]
    Parse(String),
    #[error("upstreams.{upstream}.{field}: environment variable {var} is not set")]
    MissingVar {
        upstream: String,
        field: String,
        var: String,
    },
    #[error("upstreams.{upstream}.{field}: cannot read the file {path}")]
    UnreadableFile {
        upstream: String,
        field: String,
        path: String,
    },
    #[error("upstreams.{upstream}.{field}: {message}")]
    Invalid {
        upstream: String,
        field: String,
        message: String,
    },
}

/// The `[upstreams]` table: upstream name → how to log in to it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct UpstreamsConfig(pub BTreeMap<String, UpstreamConfig>);

/// One `[upstreams.NAME]` table, as written (`${VAR}`s not yet resolved).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UpstreamConfig {
    JsonLogin(JsonLoginConfig),
    Oauth2ClientCredentials(ClientCredentialsConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonLoginConfig {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// JSON body; string values may hold `{user}` and `${VAR}`.
    #[serde(default)]
    pub body: Option<BodyTemplate>,
    /// JSON pointer to the token in the response, e.g. `/token`.
    pub token_pointer: String,
    /// JSON pointer to the expiry: seconds from now, an RFC 3339 time or unix seconds.
    pub expires_in_pointer: Option<String>,
    /// A fixed lifetime, for upstreams whose response carries no expiry.
    pub expiry_minutes: Option<u64>,
    #[serde(default = "default_margin")]
    pub margin_seconds: u64,
    pub default_user: Option<String>,
    /// The users it may log in as (names or `*` globs); unset: `default_user` only.
    pub users: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentialsConfig {
    pub token_url: String,
    pub client_id: String,
    /// Must be a `${VAR}` or `${file:PATH}` reference: secrets are not written in files.
    pub client_secret: String,
    pub scope: Option<String>,
    pub audience: Option<String>,
    /// How the client authenticates: in the form body (default) or HTTP Basic.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Lifetime used when the response has no `expires_in`.
    pub expiry_minutes: Option<u64>,
    #[serde(default = "default_margin")]
    pub margin_seconds: u64,
    pub default_user: Option<String>,
    /// The users it may log in as (names or `*` globs); unset: `default_user` only.
    pub users: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    Body,
    Basic,
}

/// A JSON body as written; its `Debug` shows only the field names because
/// people do write literal passwords in bodies despite the docs.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct BodyTemplate(pub Value);

impl std::fmt::Debug for BodyTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Value::Object(m) => f.debug_set().entries(m.keys()).finish(),
            _ => f.write_str("[redacted]"),
        }
    }
}

fn default_method() -> String {
    "POST".into()
}

fn default_margin() -> u64 {
    60
}

/// Tunables; the defaults suit most deployments.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Connect and per-operation timeout for Redis (never retried: a
    /// request waits for Redis at most this long).
    pub redis_timeout: Duration,
    /// After a Redis timeout or connection failure, skip Redis this long,
    /// then probe it in the background (the circuit breaker).
    pub redis_breaker: Duration,
    /// How often the background task pings Redis and prunes memory.
    pub health_interval: Duration,
    /// Refresh in the background during this last fraction of a token's
    /// servable life (0.2 = last 20%); 0 disables early refresh.
    pub early_refresh: f64,
    /// How long the cross-replica login lock lives at most.
    pub lock_ttl: Duration,
    /// How long a replica that lost the lock waits for the winner's token.
    pub lock_wait: Duration,
    /// Whole-request timeout of a login.
    pub login_timeout: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            redis_timeout: Duration::from_secs(5),
            redis_breaker: Duration::from_secs(30),
            health_interval: Duration::from_secs(30),
            early_refresh: 0.2,
            lock_ttl: Duration::from_secs(15),
            lock_wait: Duration::from_secs(3),
            login_timeout: Duration::from_secs(10),
        }
    }
}

/// User names become part of Redis keys and log lines.
pub(crate) fn check_user(user: &str) -> Result<(), &'static str> {
    if user.is_empty() || user.len() > 256 {
        Err("must be 1 to 256 bytes")
    } else if user.chars().any(char::is_control) {
        Err("must not contain control characters")
    } else {
        Ok(())
    }
}

/// Which login protocol an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamKind {
    JsonLogin,
    Oauth2ClientCredentials,
}

impl UpstreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JsonLogin => "json_login",
            Self::Oauth2ClientCredentials => "oauth2_client_credentials",
        }
    }
}

/// A JSON body with `${VAR}`s resolved, where each string is kept split at
/// `{user}`: the user is then inserted as data, so neither a secret that
/// happens to contain `{user}` nor a user name can change the body's shape.
#[derive(Clone)]
pub(crate) enum Body {
    Scalar(Value),
    Str(Vec<String>),
    Array(Vec<Body>),
    Object(Vec<(String, Body)>),
}

impl Body {
    pub(crate) fn render(&self, user: &str) -> Value {
        match self {
            Body::Scalar(v) => v.clone(),
            Body::Str(pieces) => Value::String(pieces.join(user)),
            Body::Array(a) => Value::Array(a.iter().map(|b| b.render(user)).collect()),
            Body::Object(m) => {
                Value::Object(m.iter().map(|(k, b)| (k.clone(), b.render(user))).collect())
            }
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Expiry {
    Pointer(String),
    Fixed(chrono::Duration),
}

/// How to obtain a token, every reference resolved. `Debug` is redacted by hand.
#[derive(Clone)]
pub(crate) enum LoginSpec {
    Json {
        url: String,
        method: reqwest::Method,
        body: Option<Body>,
        token_pointer: String,
        expiry: Expiry,
    },
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: SecretString,
        scope: Option<String>,
        audience: Option<String>,
        client_auth: ClientAuth,
        fallback_expiry: Option<chrono::Duration>,
    },
}

impl std::fmt::Debug for LoginSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginSpec::Json { url, method, .. } => f
                .debug_struct("Json")
                .field("url", url)
                .field("method", method)
                .finish_non_exhaustive(),
            LoginSpec::ClientCredentials {
                token_url,
                client_id,
                ..
            } => f
                .debug_struct("ClientCredentials")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .finish_non_exhaustive(),
        }
    }
}

/// A resolved upstream, ready for `TokenCache::builder`.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub kind: UpstreamKind,
    pub default_user: String,
    /// A token inside its last `margin` is never served.
    pub margin: chrono::Duration,
    /// The users it may log in as; always allows `default_user`.
    pub users: UserPolicy,
    pub(crate) login: LoginSpec,
}

impl UpstreamsConfig {
    /// Deserializes the server's raw `[upstreams]` table.
    pub fn from_toml(table: toml::Value) -> Result<Self, ConfigError> {
        table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.message().trim().to_string()))
    }

    /// Parses a TOML document whose `[upstreams]` table is read (a missing table is empty).
    pub fn from_toml_str(document: &str) -> Result<Self, ConfigError> {
        let mut doc: toml::Table = document
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.message().trim().to_string()))?;
        match doc.remove("upstreams") {
            Some(t) => Self::from_toml(t),
            None => Ok(Self::default()),
        }
    }

    /// Validates every upstream and resolves `${VAR}` from the process environment.
    pub fn resolve(&self) -> Result<Vec<Upstream>, ConfigError> {
        self.resolve_with(|var| std::env::var(var).ok())
    }

    /// Like [`Self::resolve`] with an explicit environment (for tests and embedders).
    pub fn resolve_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<Upstream>, ConfigError> {
        self.0
            .iter()
            .map(|(name, spec)| resolve_one(name, spec, &env))
            .collect()
    }
}

struct Ctx<'a> {
    upstream: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Ctx<'_> {
    fn invalid(&self, field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            upstream: self.upstream.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// Replaces every `${VAR}` / `${file:PATH}` in `s`.
    fn expand(&self, field: &str, s: &str) -> Result<String, ConfigError> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| self.invalid(field, "unterminated ${...}"))?;
            let reference = &after[..end];
            if let Some(path) = reference.strip_prefix("file:") {
                let content =
                    std::fs::read_to_string(path).map_err(|_| ConfigError::UnreadableFile {
                        upstream: self.upstream.into(),
                        field: field.into(),
                        path: path.into(),
                    })?;
                // Files written by editors and secret mounts end with a newline.
                out.push_str(content.trim_end_matches(['\r', '\n']));
            } else {
                let value = (self.env)(reference).ok_or_else(|| ConfigError::MissingVar {
                    upstream: self.upstream.into(),
                    field: field.into(),
                    var: reference.into(),
                })?;
                out.push_str(&value);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn body(&self, field: &str, v: &Value) -> Result<Body, ConfigError> {
        Ok(match v {
            Value::String(s) => Body::Str(
                s.split("{user}")
                    .map(|piece| self.expand(field, piece))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Array(a) => Body::Array(
                a.iter()
                    .map(|x| self.body(field, x))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => Body::Object(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), self.body(&format!("{field}.{k}"), x)?)))
                    .collect::<Result<_, ConfigError>>()?,
            ),
            other => Body::Scalar(other.clone()),
        })
    }

    fn url(&self, field: &str, raw: &str) -> Result<String, ConfigError> {
        let url = self.expand(field, raw)?;
        match reqwest::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(url),
            _ => Err(self.invalid(field, "must be an http:// or https:// URL")),
        }
    }

    fn pointer(&self, field: &str, p: &str) -> Result<String, ConfigError> {
        if p.is_empty() || p.starts_with('/') {
            Ok(p.to_string())
        } else {
            Err(self.invalid(field, "a JSON pointer starts with / (e.g. \"/token\")"))
        }
    }

    fn margin(&self, seconds: u64) -> Result<chrono::Duration, ConfigError> {
        if seconds > 86_400 {
            return Err(self.invalid("margin_seconds", "must be at most 86400"));
        }
        Ok(chrono::Duration::seconds(seconds as i64))
    }

    fn default_user(&self, u: &Option<String>) -> Result<String, ConfigError> {
        let u = u.clone().unwrap_or_else(|| "default".into());
        check_user(&u).map_err(|m| self.invalid("default_user", m))?;
        Ok(u)
    }

    /// The `users` list; without one, only the default user (deny by default:
    /// every other name would be a login a caller can trigger at will).
    fn users(
        &self,
        list: &Option<Vec<String>>,
        default_user: &str,
    ) -> Result<UserPolicy, ConfigError> {
        let policy = match list {
            None => UserPolicy::new([default_user.to_string()]),
            Some(l) => UserPolicy::new(l.iter().cloned()),
        }
        .map_err(|m| self.invalid("users", m))?;
        if list.is_none() {
            tracing::info!(
                upstream = self.upstream,
                default_user,
                "upstream has no `users` list: only its default user may be requested"
            );
        }
        if !policy.allows(default_user) {
            return Err(self.invalid("users", "must allow the default_user"));
        }
        Ok(policy)
    }
}

fn resolve_one(
    name: &str,
    spec: &UpstreamConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Upstream, ConfigError> {
    let cx = Ctx {
        upstream: name,
        env,
    };
    // Names become Redis key parts and SCAN patterns: no glob or separator characters.
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(cx.invalid("(name)", "names use 1-64 letters, digits, _ and -"));
    }
    match spec {
        UpstreamConfig::JsonLogin(c) => resolve_json_login(&cx, name, c),
        UpstreamConfig::Oauth2ClientCredentials(c) => resolve_client_credentials(&cx, name, c),
    }
}

fn resolve_json_login(
    cx: &Ctx<'_>,
    name: &str,
    c: &JsonLoginConfig,
) -> Result<Upstream, ConfigError> {
    let expiry = match (&c.expires_in_pointer, c.expiry_minutes) {
        (Some(p), None) => Expiry::Pointer(cx.pointer("expires_in_pointer", p)?),
        (None, Some(m)) if m > 0 => Expiry::Fixed(chrono::Duration::minutes(m as i64)),
        _ => {
            return Err(cx.invalid(
                "expiry_minutes",
                "set exactly one of expires_in_pointer or expiry_minutes (> 0)",
            ))
        }
    };
    let margin = cx.margin(c.margin_seconds)?;
    let default_user = cx.default_user(&c.default_user)?;
    if let Expiry::Fixed(life) = expiry {
        if life <= margin {
            return Err(cx.invalid("margin_seconds", "must be shorter than the lifetime"));
        }
    }
    Ok(Upstream {
        kind: UpstreamKind::JsonLogin,
        login: LoginSpec::Json {
            url: cx.url("url", &c.url)?,
            method: c
                .method
                .to_ascii_uppercase()
                .parse()
                .map_err(|_| cx.invalid("method", "not an HTTP method"))?,
            body: c.body.as_ref().map(|b| cx.body("body", &b.0)).transpose()?,
            token_pointer: cx.pointer("token_pointer", &c.token_pointer)?,
            expiry,
        },
        margin,
        users: cx.users(&c.users, &default_user)?,
        default_user,
        name: name.into(),
    })
}

fn resolve_client_credentials(
    cx: &Ctx<'_>,
    name: &str,
    c: &ClientCredentialsConfig,
) -> Result<Upstream, ConfigError> {
    if !c.client_secret.contains("${") {
        return Err(cx.invalid(
            "client_secret",
            "write it as ${VAR} (or ${file:PATH}): secrets are not kept in config files",
        ));
    }
    let optional =
        |field: &str, v: &Option<String>| v.as_deref().map(|s| cx.expand(field, s)).transpose();
    let default_user = cx.default_user(&c.default_user)?;
    Ok(Upstream {
        kind: UpstreamKind::Oauth2ClientCredentials,
        login: LoginSpec::ClientCredentials {
            token_url: cx.url("token_url", &c.token_url)?,
            client_id: cx.expand("client_id", &c.client_id)?,
            client_secret: SecretString::new(cx.expand("client_secret", &c.client_secret)?),
            scope: optional("scope", &c.scope)?,
            audience: optional("audience", &c.audience)?,
            client_auth: c.client_auth,
            fallback_expiry: c
                .expiry_minutes
                .map(|m| chrono::Duration::minutes(m as i64)),
        },
        margin: cx.margin(c.margin_seconds)?,
        users: cx.users(&c.users, &default_user)?,
        default_user,
        name: name.into(),
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
