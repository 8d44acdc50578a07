//! Validation of the connection settings (`http.*_timeout`,
//! `http.max_connections`): how long a client may take to send a request and
//! how many connections are served at once, so slow or idle clients cannot
//! hold the server's sockets.

use std::time::Duration;

use super::layers::{at_most, err, number, positive_duration, ConfigError, Layers};

/// How the server treats connections; see the README's Configuration section.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// A request's headers must be complete this long after the connection
    /// opened, or after the first byte of a following request arrived.
    pub header_timeout: Duration,
    /// A request's body must be complete this long after its headers.
    pub body_timeout: Duration,
    /// A connection with no request in progress and no bytes moving is
    /// closed after this long (idle keep-alive, or a client not reading).
    pub idle_timeout: Duration,
    /// Connections served at once; more are answered `503` and closed.
    /// `None`: derived at start-up from the file-descriptor limit.
    pub max_connections: Option<usize>,
}

/// No timeout above an hour: longer ones would defeat their purpose.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

pub(super) fn connection_settings(l: &Layers) -> Result<ConnectionSettings, ConfigError> {
    let timeout = |key: &str, default_secs: u64| {
        l.parse(key, Duration::from_secs(default_secs), |v| {
            at_most(positive_duration(v)?, MAX_TIMEOUT, "must be at most 1h")
        })
    };
    Ok(ConnectionSettings {
        header_timeout: timeout("http.header_timeout", 10)?,
        body_timeout: timeout("http.body_timeout", 30)?,
        idle_timeout: timeout("http.idle_timeout", 60)?,
        max_connections: l
            .get("http.max_connections")
            .map(|(v, src)| number(v.trim(), 1, 1_000_000).map_err(|m| err(src, m)))
            .transpose()?,
    })
}
