//! The command-line definition (clap). Every command and flag has help text;
//! `tessera <command> --help` is the reference. The top level is here; each
//! command group's arguments are in a child module, as the commands are in
//! `commands/`.

mod audit;
mod client;
mod invite;
mod jobs;
mod keys;
mod mfa;
mod session;
mod shared;
mod token;
mod upstream;
mod user;
mod webhooks;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tessera_server::config::{Config, ConfigError, Overrides, Sources};

pub use audit::{AuditCommand, AuditListArgs};
pub use client::{ClientCommand, ClientUpdateArgs};
pub use invite::{InviteCommand, InviteCreateArgs, RedeemArgs, ValidateArgs};
pub use jobs::JobsCommand;
pub use keys::KeysCommand;
pub use mfa::MfaCommand;
pub use session::{SessionCommand, SessionListArgs};
pub use token::{
    ControlArgs, CreateArgs, ExpiryArgs, ListArgs, TokenCommand, UpdateArgs, VerifyArgs,
};
pub use upstream::UpstreamCommand;
pub use user::{EraseArgs, ImportArgs, ImportFormat, SetPasswordArgs, UserCommand, UserCreateArgs};
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
    /// People in the built-in identity store: create, list, import, export, erase.
    #[command(subcommand)]
    User(UserCommand),
    /// People's sessions: list a user's or a subject's, revoke one.
    #[command(subcommand)]
    Session(SessionCommand),
    /// OAuth2 clients (resource servers, gateways): create, list, show, update, rotate-secret, delete.
    #[command(subcommand)]
    Client(ClientCommand),
    /// JWT signing keys: list, rotate, retire, re-seal after an encryption-key change.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage webhook endpoints and deliveries directly on the database.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Read the audit log, client IP addresses and user agents in clear.
    #[command(subcommand)]
    Audit(AuditCommand),
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
the same checks as the other admin commands; only `rekey`, which decrypts secrets, needs \
TOTP_ENC_KEY. `tessera serve` and `tessera config check` refuse to start while the database holds \
TOTP secrets that TOTP_ENC_KEY cannot decrypt."
    )]
    Mfa(MfaCommand),
    /// Check the configuration as `serve` would, and what each feature still needs.
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
    /// Check what `tessera serve` would check, then print the configuration (secrets masked).
    #[command(
        long_about = "Check the configuration exactly as `tessera serve` does before it listens: \
every variable, file key and flag is validated, the database is opened (an embedded SQLite file \
and its key are created on first use, as `serve` would), its schema checked, and stored TOTP \
secrets tried against TOTP_ENC_KEY. Prints the effective configuration with secrets masked, \
and a warning for each setting that is set but has no effect.\n\nExit codes: 0 `serve` would \
start; 2 it would refuse, with the same message `serve` prints.\n\nWith --deep it also tells, \
feature by feature, what is missing: whether the listen address is free, the SMTP server and \
Redis answer, and second factors are enabled; it exits 2 too when a configured SMTP server or \
Redis does not answer."
    )]
    Check(ConfigCheckArgs),
}

#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// Also probe what `serve` only meets later: the listen address, SMTP, Redis.
    #[arg(long)]
    pub deep: bool,
    /// Print one JSON object on stdout: {"ok", "warnings", "settings", "checks"}.
    #[arg(long)]
    pub json: bool,
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

    /// `--help` is the reference: every command, argument and flag says
    /// what it is for.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && path != " tessera" {
                missing.push(path.clone());
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
