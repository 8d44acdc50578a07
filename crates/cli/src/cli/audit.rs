//! `tessera audit …`: reading the audit log, and its arguments (the same
//! filters as `GET /v1/audit`).

use clap::{Args, Subcommand};

use super::shared::JsonFlag;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit entries, newest first, client IP and user agent in clear
    /// (the read is itself audited, as `audit.read` by `cli`).
    List(AuditListArgs),
    /// Show one audit entry, client IP and user agent in clear (audited too).
    Show(AuditIdArgs),
}

#[derive(Debug, Args)]
pub struct AuditListArgs {
    /// Who acted: token:ID, user:ID, client:ID, cli, system or anonymous.
    #[arg(long, value_name = "ACTOR")]
    pub actor: Option<String>,
    /// What was done, e.g. token.create or audit.read.
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// What kind of object, e.g. api_token, invite, subject.
    #[arg(long, value_name = "TYPE")]
    pub target_type: Option<String>,
    /// The object's id.
    #[arg(long, value_name = "ID")]
    pub target_id: Option<String>,
    /// success or failure.
    #[arg(long, value_name = "OUTCOME")]
    pub outcome: Option<String>,
    /// audit for security events.
    #[arg(long, value_name = "CHANNEL")]
    pub channel: Option<String>,
    /// Entries at or after this RFC 3339 time, e.g. 2024-05-01T00:00:00Z.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Entries before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Page size, 1-500 (default 50).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// The next_cursor printed by the previous page.
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

// Not through `id_args!` (cli::shared): these arguments are private to the
// audit commands.
#[derive(Debug, Args)]
pub struct AuditIdArgs {
    /// Audit entry id.
    pub id: String,
    #[command(flatten)]
    pub out: JsonFlag,
}
