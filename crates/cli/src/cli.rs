//! The command-line definition (clap). Every command and flag has help text;
//! `tessera <command> --help` is the reference.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tessera_server::config::{Config, ConfigError, Overrides, Sources};

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

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print one JSON object on stdout: the same object the HTTP API returns.
    #[arg(long)]
    pub json: bool,
}

/// Defines the arguments of a command that acts on one object: its id (with
/// this help text) and `--json`. A macro because the help text differs per
/// kind of object and clap takes it from a doc attribute.
macro_rules! id_args {
    ($name:ident, $help:literal) => {
        #[derive(Debug, Args)]
        pub struct $name {
            #[doc = $help]
            pub id: String,
            #[command(flatten)]
            pub out: JsonFlag,
        }
    };
}

id_args!(TokenIdArgs, "Token id.");
id_args!(InviteIdArgs, "Invite id.");
id_args!(EndpointIdArgs, "Endpoint id.");

// A shared argument group carries no doc comment: clap would take it as the
// about text of the commands that use it.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// Page size, 1-1000.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// The next_cursor printed by the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token. The secret is printed once; store it now.
    Create(CreateArgs),
    /// List tokens, newest first.
    List(ListArgs),
    /// Show one token.
    Show(TokenIdArgs),
    /// Change a token's name, description, scopes, metadata or expiry.
    Update(UpdateArgs),
    /// Issue a new secret; the old one stops working (after --grace, if given).
    Rotate(RotateArgs),
    /// Revoke a token (idempotent); --purge also retires it permanently.
    Revoke(RevokeArgs),
    /// Soft-delete a token: it stops authenticating and is hidden from lists.
    Delete(TokenIdArgs),
    /// Undo a soft delete.
    Restore(TokenIdArgs),
    /// Check a token. Exit 0 if valid, 1 if not. Pass - to read it from stdin
    /// (keeps it out of shell history).
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Token id.
    pub id: String,
    /// Keep the old secret working this long, e.g. 10m or 1h (max 24h).
    #[arg(long, value_name = "DURATION")]
    pub grace: Option<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Token id.
    pub id: String,
    /// Mark the token purged: permanently retired.
    #[arg(long)]
    pub purge: bool,
    /// Why, for the audit log.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The raw token, or - for stdin.
    pub token: String,
    /// Scopes the token must have, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "SCOPES")]
    pub scopes: Vec<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A name people will recognise, e.g. "billing-sync (prod)".
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub description: Option<String>,
    /// The user or service the token belongs to.
    #[arg(long)]
    pub owner: Option<String>,
    /// Comma-separated scopes (default: read).
    #[arg(long, value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
    #[command(flatten)]
    pub expiry: ExpiryArgs,
    /// A JSON object stored with the token.
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    /// Issue a successor automatically before expiry; the owner claims it
    /// with POST /v1/tokens/self/successor.
    #[arg(long)]
    pub auto_rotate: bool,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct ExpiryArgs {
    /// Lifetime, e.g. 30d, 12h (default from the server's policy: 90d).
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,
    /// RFC 3339 time, or "never" where the operator allows it.
    #[arg(long, value_name = "TIME")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Token id.
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    /// New description ("" clears it).
    #[arg(long)]
    pub description: Option<String>,
    /// Replace the scopes, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
    /// Replace the metadata with this JSON object.
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    #[command(flatten)]
    pub expiry: ExpiryArgs,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// active, expired, revoked or purged.
    #[arg(long)]
    pub state: Option<String>,
    #[arg(long)]
    pub owner: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
    /// Include soft-deleted tokens.
    #[arg(long)]
    pub include_deleted: bool,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Webhook endpoints (receivers).
    #[command(subcommand)]
    Endpoints(EndpointsCommand),
    /// List deliveries, newest first, with their last status code and latency.
    Deliveries {
        /// pending, succeeded or failed.
        #[arg(long)]
        status: Option<String>,
        /// Event type, e.g. revoked.
        #[arg(long)]
        event: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Send a delivery again now (its retry schedule starts over).
    Retry {
        /// Delivery id.
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum EndpointsCommand {
    /// List endpoints.
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Register an endpoint; its signing secret is printed once.
    Create {
        /// http(s) URL receiving signed POSTs.
        #[arg(long)]
        url: String,
        #[arg(long)]
        description: Option<String>,
        /// Event types to deliver, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Change an endpoint; --enable re-enables one disabled by a 410.
    Update {
        /// Endpoint id.
        id: String,
        #[arg(long)]
        url: Option<String>,
        /// Replace the event types, comma-separated.
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Delete an endpoint.
    Delete(EndpointIdArgs),
    /// Issue a new signing secret (printed once); the old one keeps signing for 24 h.
    RotateSecret(EndpointIdArgs),
}

#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Configured upstreams and what is cached for their default user.
    List,
    /// What is cached for USER (tier, expiry, remaining TTL); never the token.
    Info {
        api: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Print a token for USER (memory, Redis or a fresh login).
    Token {
        api: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Forget cached tokens: of one upstream (and one --user), or all.
    Clear {
        /// Upstream name; omit to clear every upstream's tokens.
        api: Option<String>,
        #[arg(long, requires = "api")]
        user: Option<String>,
    },
    /// Memory, Redis and each upstream's last login.
    Health,
}

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// List a subject's TOTP devices (pending and active), oldest first.
    #[command(
        long_about = "List a subject's TOTP devices, oldest first: id, name, status (pending \
until confirmed with a first code, then active), algorithm/digits, when it was created, confirmed \
and last used. Never shows secrets.\n\nWith --json prints {\"items\": [...]}, the object \
GET /v1/subjects/{subject}/totp returns."
    )]
    Devices {
        /// The application's user id the devices belong to.
        subject: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Remove a TOTP device at once; its codes stop working immediately.
    #[command(
        long_about = "Remove a TOTP device at once: its codes stop working immediately and there \
is no undo (the user enrols again). Recorded in the audit log with actor `cli` and announced \
with an mfa.enroll.removed event.\n\nA device that does not exist (or belongs to another \
subject) is an error: device_not_found, exit code 2."
    )]
    Remove {
        /// The application's user id the device belongs to.
        subject: String,
        /// Device id (see `tessera mfa devices SUBJECT`).
        device: String,
        /// Print {"removed": true, "subject": …, "device_id": …} on stdout
        /// (errors as the API's problem object).
        #[arg(long)]
        json: bool,
    },
    /// Lift a subject's TOTP lockout and forget its earlier failures.
    #[command(
        long_about = "Lift a subject's TOTP lockout (after too many wrong codes) and forget its \
earlier failures, for support staff helping a user who proved who they are some other way. \
Recorded in the audit log with actor `cli`. Prints whether there was anything to clear."
    )]
    Unlock {
        /// The application's user id.
        subject: String,
        /// Print {"cleared": true|false} on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Re-encrypt every TOTP secret under the current TOTP_ENC_KEY.
    #[command(
        long_about = "Re-encrypt every stored TOTP secret under the current TOTP_ENC_KEY, so an \
old key can be retired. Secrets already under the current key are left alone, so running it \
again is harmless; it is safe while servers are running. Prints how many secrets were \
re-encrypted and the id of the key they are now under.",
        after_help = "Rotating TOTP_ENC_KEY (no downtime, no re-enrolment):\n  \
1. On every replica: TOTP_ENC_KEY=<old key>, TOTP_ENC_KEY_PREVIOUS=<new key>; restart\n     \
(every replica can read the new key before any writes with it).\n  \
2. On every replica: TOTP_ENC_KEY=<new key>, TOTP_ENC_KEY_PREVIOUS=<old key>; restart.\n  \
3. Run `tessera mfa rekey` with those same two settings.\n  \
4. On every replica: drop the old key from TOTP_ENC_KEY_PREVIOUS; restart.\n\n\
Start-up refuses to run while any stored secret still needs a key that is not configured, so \
a skipped step stops the process with a message instead of failing every login."
    )]
    Rekey {
        /// Print {"rekeyed": N, "key_id": "…"} on stdout (errors as the API's
        /// problem object).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Each job's interval and last run.
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Run one job now: revoke_expired_tokens, purge_old_logs,
    /// rotate_expiring_tokens or resend_pending_webhooks.
    Run {
        name: String,
        #[command(flatten)]
        out: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Create an invite. The code is printed once; share it with the invitee.
    Create(InviteCreateArgs),
    /// List invites, newest first.
    List {
        /// active, used, expired or revoked.
        #[arg(long)]
        state: Option<String>,
        /// Issuer subject.
        #[arg(long)]
        issuer: Option<String>,
        #[command(flatten)]
        page: PageArgs,
        /// Include soft-deleted invites.
        #[arg(long)]
        include_deleted: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show one invite.
    Show(InviteIdArgs),
    /// Revoke an invite (idempotent).
    Revoke(InviteIdArgs),
    /// Soft-delete an invite.
    Delete(InviteIdArgs),
    /// Check a code without using it. Exit 0 if valid, 1 if not.
    Validate(ValidateArgs),
    /// Use one of the invite's uses for SUBJECT.
    Redeem(RedeemArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The code (case and hyphens do not matter), or - for stdin.
    pub code: String,
    /// The e-mail address the invitee will use.
    #[arg(long)]
    pub email: Option<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct RedeemArgs {
    /// The code, or - for stdin.
    pub code: String,
    /// The application's id for the person redeeming.
    #[arg(long)]
    pub subject: String,
    #[arg(long)]
    pub email: Option<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct InviteCreateArgs {
    /// The role the invitee receives.
    #[arg(long)]
    pub role: String,
    /// Scopes granted with the role, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// Only this e-mail address may use the invite.
    #[arg(long)]
    pub email: Option<String>,
    /// How many times it can be redeemed (default 1).
    #[arg(long)]
    pub max_uses: Option<i64>,
    /// Lifetime, e.g. 7d (default from the policy).
    #[arg(long, value_name = "DURATION", conflicts_with = "expires_at")]
    pub expires_in: Option<String>,
    /// RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub expires_at: Option<String>,
    /// Issue as this application user, SUBJECT:ROLE (the policy applies to ROLE).
    #[arg(long, value_name = "SUBJECT:ROLE")]
    pub on_behalf_of: Option<String>,
    /// A JSON object stored with the invite.
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    #[command(flatten)]
    pub out: JsonFlag,
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
