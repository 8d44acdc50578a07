//! Logging set-up: human-readable text by default, JSON lines with
//! `TESSERA_LOG_FORMAT=json`. Filter from `TESSERA_LOG` (or `RUST_LOG`).

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{log_filter, LogFormat};

/// Installs the global subscriber once; later calls are no-ops (tests).
pub fn init(format: LogFormat, level: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| log_filter(&v))
        // `level` was checked by the configuration, with `log_filter` too.
        .or_else(|| log_filter(level))
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
