//! The command-line definition (clap). Every command and flag has help text;
//! `tessera <command> --help` is the reference. The top level is here; each
//! command group's arguments are in a child module, as the commands are in
//! `commands/`.

mod invite;
mod jobs;
mod mfa;
mod shared;
mod token;
mod upstream;
mod webhooks;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tessera_server::config::{Config, ConfigError, Overrides, Sources};

pub use invite::{InviteCommand, InviteCreateArgs, RedeemArgs, ValidateArgs};
pub use jobs::JobsCommand;
pub use mfa::MfaCommand;
pub use token::{CreateArgs, ExpiryArgs, ListArgs, TokenCommand, UpdateArgs, VerifyArgs};
pub use upstream::UpstreamCommand;
pub use webhooks::{EndpointsCommand, WebhooksCommand};

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Issue, verify, rotate and revoke API credentials.",
    long_about = "Tessera issues, verifies, rotates and revokes API credentials and keeps every \
change auditable.\n\nWith no configuration it uses an embedded SQLite file (tessera.db) in the \
working directory. Point it at PostgreSQL with DATABASE_URL or DB_DRIVER/DB_HOST/DB_PORT/\
DB_USERNAME/DB_PASSWORD/DB_DATABASE.\n\nAdmin commands (token …) work directly on the configured \
database, so the first admin token can be created before the server runs:\n\n  \
tessera token create --name bootstrap --scopes admin",
    after_help = "Exit codes: 0 success; 1 `token verify` found the token invalid; 2 any error."
)]
pub struct Cli {
    /// TOML configuration file (also TESSERA_CONFIG). Flags beat environment beats file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Database URL, sqlite://PATH or postgres://… (overrides DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Directory for the embedded database and generated key (TESSERA_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(ServeArgs),
    /// Apply pending database migrations (the only way to change a PostgreSQL schema).
    Migrate(MigrateArgs),
    /// Manage machine API tokens directly on the database.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage invite codes directly on the database.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Manage webhook endpoints and deliveries directly on the database.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Scheduled maintenance jobs: see their last runs, or run one now.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// The upstream token cache: configured upstreams, cached tokens, health.
    #[command(subcommand)]
    Upstream(UpstreamCommand),
    /// Second factors: list and remove TOTP devices, rotate TOTP_ENC_KEY.
    #[command(
        subcommand,
        long_about = "Second factors, directly on the database (no server needed).\n\nTOTP secrets \
are stored encrypted with TOTP_ENC_KEY (at least 32 characters); TOTP_ENC_KEY_PREVIOUS holds \
older keys, comma-separated, that can still decrypt. Every command here opens the database with \
the same checks as `tessera serve`: if the database holds TOTP secrets and TOTP_ENC_KEY is \
missing or cannot decrypt them, it stops and says so."
    )]
    Mfa(MfaCommand),
    /// Inspect the effective configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the OpenAPI 3.1 document of the HTTP API.
    Openapi,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (TESSERA_LISTEN; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Only report applied and pending migrations; change nothing.
    #[arg(long)]
    pub status: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print it, secrets masked.
    Check,
}

impl Cli {
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let listen = match &self.command {
            Command::Serve(a) => a.listen.clone(),
            _ => None,
        };
        Config::load(&Sources::from_process(
            self.config.clone(),
            Overrides {
                listen,
                database_url: self.database_url.clone(),
                data_dir: self.data_dir.clone(),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        super::Cli::command().debug_assert();
    }
}
