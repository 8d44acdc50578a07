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
