//! `tessera serve`: bind, then serve until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use tessera_server::{shutdown_signal, Config, Server};

pub async fn run(config: Config) -> ExitCode {
    let server = match Server::bind(config).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot start: {e:#}");
            eprintln!("error: cannot start: {e:#}");
            return ExitCode::from(crate::output::EXIT_ERROR);
        }
    };
    match server.run(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the server stopped: {e:#}");
            ExitCode::from(crate::output::EXIT_ERROR)
        }
    }
}
