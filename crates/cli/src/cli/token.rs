//! `tessera token …`: the token commands and their arguments.

use clap::{Args, Subcommand};

use super::shared::{JsonFlag, PageArgs, TokenIdArgs};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token. The secret is printed once; store it now.
    Create(CreateArgs),
    /// List tokens, newest first.
    List(ListArgs),
    /// Show one token.
    Show(TokenIdArgs),
    /// Change a token's name, description, scopes, metadata, expiry or usage controls.
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
    /// (keeps it out of shell history). Usage controls are not applied and
    /// nothing is consumed.
    Verify(VerifyArgs),
    /// Forget the device a token is bound to (first_use: the next device binds it).
    UnbindDevice(TokenIdArgs),
}

/// Usage controls, on create and update. On update, each flag replaces
/// what it names; `none` clears a list, the credits or the rate limits.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// Networks the token may be used from (CIDR, IPv4 or IPv6; comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "CIDR")]
    pub ip_allow: Option<Vec<String>>,
    /// Networks the token may never be used from (wins over --ip-allow).
    #[arg(long, value_delimiter = ',', value_name = "CIDR")]
    pub ip_deny: Option<Vec<String>>,
    /// none, first_use (the first device binds it) or required (only --device-id).
    #[arg(long, value_name = "MODE")]
    pub device_binding: Option<String>,
    /// Bind this device now (needed with --device-binding required); stored hashed.
    #[arg(long, value_name = "ID")]
    pub device_id: Option<String>,
    /// Uses the token has, e.g. 1000 (`none`: unlimited).
    #[arg(long, value_name = "N")]
    pub credits: Option<String>,
    /// With --credits: set the balance back to AMOUNT every INTERVAL, e.g. 1000/1d.
    #[arg(long, value_name = "AMOUNT/INTERVAL", requires = "credits")]
    pub refill: Option<String>,
    /// A named rate limit NAME:LIMIT/PERIOD or NAME:LIMIT/PERIOD:BURST, e.g. default:100/1m (repeat for several; `none` removes all).
    #[arg(long = "ratelimit", value_name = "NAME:LIMIT/PERIOD")]
    pub ratelimits: Option<Vec<String>>,
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
    /// Free text for people: what the token is for, who to ask (≤ 1000 characters).
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
    pub controls: ControlArgs,
    /// Print only the secret on stdout, for `ADMIN=$(tessera token create … --secret-only)`.
    #[arg(long, conflicts_with = "json")]
    pub secret_only: bool,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct ExpiryArgs {
    /// Lifetime: 30d, 12h, or seconds (default TESSERA_TOKEN_DEFAULT_TTL, 90d).
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
    /// New name.
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
    pub controls: ControlArgs,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// active, expired, revoked or purged.
    #[arg(long)]
    pub state: Option<String>,
    /// Only tokens of this owner.
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
