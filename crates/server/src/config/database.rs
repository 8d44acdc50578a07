//! Where the database is: `DATABASE_URL`, or `DB_DRIVER` and the `DB_*`
//! parts. Every part that is set is validated whatever the driver, so a typo
//! fails on SQLite too, and a part the chosen source ignores is reported.

use std::path::{Path, PathBuf};

use super::layers::{err, ConfigError, Layers};

/// The database URL, and one warning per `DB_*` setting that is set but
/// ignored (by `DATABASE_URL`, or by the SQLite driver).
pub(super) struct DatabaseChoice {
    pub url: String,
    pub ignored: Vec<String>,
}

/// The parts a PostgreSQL URL is built from, each validated when set.
struct PostgresParts {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    name: String,
}

/// `DATABASE_URL` wins; otherwise `DB_DRIVER` and the `DB_*` parts; otherwise
/// the embedded default, `tessera.db` in the data directory.
pub(super) fn database_choice(l: &Layers, data_dir: &Path) -> Result<DatabaseChoice, ConfigError> {
    // Validated first, whichever source wins: `DB_PORT=eighty` is an error
    // even where it would be ignored.
    let driver = l.parse("database.driver", "sqlite".to_string(), |v| {
        match v.to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => Ok("sqlite".into()),
            "postgres" | "postgresql" | "pgsql" => Ok("postgres".into()),
            _ => Err(format!("expected sqlite or postgres, got {v:?}")),
        }
    })?;
    let parts = postgres_parts(l)?;
    if let Some((url, src)) = l.get("database.url") {
        if tessera_store::Backend::of_url(url).is_none() {
            return Err(err(src, "must start with sqlite:// or postgres://"));
        }
        let ignored = ignored(l, &DB_PARTS, &format!("{src} is set"));
        return Ok(DatabaseChoice {
            url: url.to_string(),
            ignored,
        });
    }
    if driver == "sqlite" {
        let file = l.parse("database.name", data_dir.join("tessera.db"), |v| {
            Ok(PathBuf::from(v))
        })?;
        let reason = "the driver is SQLite (it applies with DB_DRIVER=postgres)";
        return Ok(DatabaseChoice {
            url: format!("sqlite://{}", file.display()),
            ignored: ignored(l, &DB_PARTS[1..5], reason),
        });
    }
    let auth = match &parts.password {
        Some(p) => format!("{}:{}", encode(&parts.user), encode(p)),
        None => encode(&parts.user),
    };
    Ok(DatabaseChoice {
        url: format!(
            "postgres://{auth}@{}:{}/{}",
            parts.host,
            parts.port,
            encode(&parts.name)
        ),
        ignored: Vec::new(),
    })
}

/// The `database.*` settings besides the URL; the SQLite driver reads only
/// the first (driver) and the last (the file name).
const DB_PARTS: [&str; 6] = [
    "database.driver",
    "database.host",
    "database.port",
    "database.username",
    "database.password",
    "database.name",
];

/// One line per setting in `keys` that is set, naming where it was set.
fn ignored(l: &Layers, keys: &[&str], reason: &str) -> Vec<String> {
    keys.iter()
        .filter_map(|key| l.get(key))
        .map(|(_, src)| format!("{src}: is set but ignored, because {reason}"))
        .collect()
}

fn postgres_parts(l: &Layers) -> Result<PostgresParts, ConfigError> {
    let host = l.parse("database.host", "127.0.0.1".to_string(), |v| {
        if v.is_empty() || v.contains(['/', '@', '?', '#', ' ']) {
            Err(format!("expected a host name or address, got {v:?}"))
        } else {
            Ok(v.to_string())
        }
    })?;
    let port = l.parse("database.port", 5432u16, |v| {
        v.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("expected a port number 1-65535, got {v:?}"))
    })?;
    let user = l.parse("database.username", "postgres".to_string(), non_empty)?;
    let password = l.get("database.password").map(|(v, _)| v.to_string());
    let name = l.parse("database.name", "tessera".to_string(), non_empty)?;
    Ok(PostgresParts {
        host,
        port,
        user,
        password,
        name,
    })
}

fn non_empty(v: &str) -> Result<String, String> {
    if v.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(v.to_string())
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The URL with its password, if any, replaced by `***`.
pub(super) fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((auth, host)) if auth.contains(':') => {
            let user = auth.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}
