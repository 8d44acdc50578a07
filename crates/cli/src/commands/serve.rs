//! `tessera serve`: bind, then serve until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use tessera_server::{config::LogFormat, describe, shutdown_signal, Config, Server};

pub async fn run(config: Config) -> ExitCode {
    let format = config.log_format;
    let server = match Server::bind(config).await {
        Ok(s) => s,
        Err(e) => {
            refuse(format, &format!("cannot start: {}", describe(e.as_ref())));
            return ExitCode::from(crate::output::EXIT_ERROR);
        }
    };
    match server.run(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            refuse(
                format,
                &format!("the server stopped: {}", describe(e.as_ref())),
            );
            ExitCode::from(crate::output::EXIT_ERROR)
        }
    }
}

/// One message per error: the log and stderr are the same stream, so a
/// JSON log gets it as an event and a text log as a plain `error:` line.
fn refuse(format: LogFormat, message: &str) {
    match format {
        LogFormat::Json => tracing::error!("{message}"),
        LogFormat::Text => eprintln!("error: {message}"),
    }
}
