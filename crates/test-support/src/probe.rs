//! Whether a service or tool that some tests need is there: each probe runs
//! once per test binary and its answer is kept, so the harness can mark the
//! tests before they start and the tests reuse what it found (the PostgreSQL
//! URL, with its database created).

use std::{str::FromStr, time::Duration};

use sqlx::{postgres::PgConnectOptions, ConnectOptions, Connection, Executor};
use tokio::sync::OnceCell;

/// Names the PostgreSQL server (and database) the tests use.
pub const POSTGRES_ENV: &str = "TESSERA_TEST_POSTGRES_URL";
/// Names the Redis server the tests use.
pub const REDIS_ENV: &str = "TESSERA_TEST_REDIS_URL";
const LOCAL_REDIS: &str = "redis://127.0.0.1:6379";
/// Long enough for a loaded machine, short enough that a host that drops
/// packets does not stall the run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a requirement is missing.
#[derive(Clone, Debug)]
pub struct Missing {
    /// What is missing and what to do about it, on one line.
    pub reason: String,
    /// The developer asked for this service explicitly (its variable is
    /// set), so its absence is a failure even outside CI.
    pub explicit: bool,
}

type Answer = Result<String, Missing>;

/// The variable's value when it is set and not empty.
fn explicit(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// The local default: `postgres://postgres@127.0.0.1:5432/test`, the port
/// taken from `PGPORT` when set, as libpq clients do. (`PGPORT` pointing at
/// a closed port is also the honest way to see the skip path without
/// stopping a shared server.)
pub fn local_postgres() -> String {
    let port = std::env::var("PGPORT")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "5432".into());
    format!("postgres://postgres@127.0.0.1:{port}/test")
}

/// A URL fit to print: a password replaced by `***`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_string(),
    }
}

/// The PostgreSQL base URL, reachable and with its database created; or why not.
pub async fn postgres() -> Answer {
    static ANSWER: OnceCell<Answer> = OnceCell::const_new();
    ANSWER.get_or_init(probe_postgres).await.clone()
}

async fn probe_postgres() -> Answer {
    let (url, explicit) = match explicit(POSTGRES_ENV) {
        Some(url) => (url, true),
        None => (local_postgres(), false),
    };
    let missing = |why: String| Missing {
        reason: format!(
            "PostgreSQL unreachable at {}: {why} (start it, or set {POSTGRES_ENV})",
            redacted(&url)
        ),
        explicit,
    };
    match tokio::time::timeout(PROBE_TIMEOUT, connect_creating(&url)).await {
        Ok(Ok(())) => Ok(url),
        Ok(Err(e)) => Err(missing(e)),
        Err(_) => Err(missing(format!("no answer in {PROBE_TIMEOUT:?}"))),
    }
}

/// Connects to `url`; when the server answers that its database does not
/// exist, creates it through the server's `postgres` database, so a fresh
/// server needs no set-up.
async fn connect_creating(url: &str) -> Result<(), String> {
    let options = PgConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    match options.connect().await {
        Ok(conn) => return conn.close().await.map_err(|e| e.to_string()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {}
        Err(e) => return Err(e.to_string()),
    }
    let name = options.get_database().unwrap_or_default().to_string();
    let mut admin = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .map_err(|e| format!("database {name} is missing and the server refused: {e}"))?;
    let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
    match admin.execute(create.as_str()).await {
        Ok(_) => {}
        // Another test binary created it meanwhile.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
        Err(e) => return Err(format!("could not create database {name}: {e}")),
    }
    admin.close().await.ok();
    let conn = options.connect().await.map_err(|e| e.to_string())?;
    conn.close().await.map_err(|e| e.to_string())
}

/// The Redis URL, answering `PING`; or why not.
pub async fn redis() -> Answer {
    static ANSWER: OnceCell<Answer> = OnceCell::const_new();
    ANSWER.get_or_init(probe_redis).await.clone()
}

async fn probe_redis() -> Answer {
    let (url, explicit) = match explicit(REDIS_ENV) {
        Some(url) => (url, true),
        None => (LOCAL_REDIS.to_string(), false),
    };
    let ping = async {
        let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    };
    let why = match tokio::time::timeout(PROBE_TIMEOUT, ping).await {
        Ok(Ok(_)) => return Ok(url),
        Ok(Err(e)) => e,
        Err(_) => format!("no answer in {PROBE_TIMEOUT:?}"),
    };
    Err(Missing {
        reason: format!(
            "Redis unreachable at {}: {why} (start it, or set {REDIS_ENV})",
            redacted(&url)
        ),
        explicit,
    })
}

/// The Redis URL when a TCP proxy can stand in front of it: plain
/// `redis://host:port`, no TLS, no credentials.
pub async fn plain_redis() -> Answer {
    let url = redis().await?;
    if url.starts_with("redis://") && !url.contains('@') {
        return Ok(url);
    }
    Err(Missing {
        reason: format!(
            "the Redis at {} is not a plain redis://host:port URL (a test proxies it)",
            redacted(&url)
        ),
        explicit: false,
    })
}

/// The path of `command` on `PATH`; or why not.
pub fn command(command: &str) -> Answer {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(command))
            .find(|p| is_executable(p))
    });
    found
        .map(|p| p.display().to_string())
        .ok_or_else(|| Missing {
            reason: format!("{command} is not on PATH (install it)"),
            explicit: false,
        })
}

#[cfg(unix)]
fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &std::path::Path) -> bool {
    path.is_file()
}

/// `python3 -c "import module"` succeeds; or why not.
pub fn python_module(module: &str) -> Answer {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Ok(module.to_string());
    }
    // The distribution's name where it differs from the module's.
    let package = match module {
        "jwt" => "pyjwt",
        other => other,
    };
    Err(Missing {
        reason: format!("python3 cannot import {module} (pip install {package})"),
        explicit: false,
    })
}
