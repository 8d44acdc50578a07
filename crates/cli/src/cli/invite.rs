//! `tessera invite …`: the invite commands and their arguments.

use clap::{Args, Subcommand};

use super::shared::{InviteIdArgs, JsonFlag, PageArgs};

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
    /// The invitee's e-mail address; required when the invite is bound to one.
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
