//! `tessera`: run the service, migrate the database, and administer
//! credentials directly on the configured database (no server needed).

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    let config = match cli.load_config() {
        Ok(c) => c,
        Err(e) => {
            // `config check --json` answers in JSON whatever it finds.
            if matches!(&cli.command, Command::Config(crate::cli::ConfigCommand::Check(a)) if a.json)
            {
                let error = format!("invalid configuration: {e}");
                output::json(&serde_json::json!({ "ok": false, "error": error }));
            }
            eprintln!("error: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let is_serve = matches!(cli.command, Command::Serve(_));
    // Admin commands keep stdout clean for their output; logs go to stderr.
    let level = if is_serve {
        config.log_level.as_str()
    } else {
        "warn"
    };
    tessera_server::telemetry::init(config.log_format, level);
    match cli.command {
        Command::Serve(_) => commands::serve::run(config).await,
        Command::Migrate(args) => commands::migrate::run(config, args).await,
        Command::Token(cmd) => commands::token::run(config, cmd).await,
        Command::Invite(cmd) => commands::invite::run(config, cmd).await,
        Command::User(cmd) => commands::user::run(config, cmd).await,
        Command::Session(cmd) => commands::session::run(config, cmd).await,
        Command::Client(cmd) => commands::client::run(config, cmd).await,
        Command::Keys(cmd) => commands::keys::run(config, cmd).await,
        Command::Webhooks(cmd) => commands::webhooks::run(config, cmd).await,
        Command::Audit(cmd) => commands::audit::run(config, cmd).await,
        Command::Jobs(cmd) => commands::jobs::run(config, cmd).await,
        Command::Upstream(cmd) => commands::upstream::run(config, cmd).await,
        Command::Mfa(cmd) => commands::mfa::run(config, cmd).await,
        Command::Config(crate::cli::ConfigCommand::Check(args)) => {
            commands::config::check(config, args).await
        }
        Command::Openapi => commands::config::print_openapi(),
    }
}
