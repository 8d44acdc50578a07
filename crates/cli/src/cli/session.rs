//! `tessera session …`: people's login sessions and the sessions
//! applications open for their own subjects.

use clap::{Args, Subcommand};

use super::shared::{JsonFlag, PageArgs, SessionIdArgs};

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List the sessions of a user (--user) or of an application's subject (--subject).
    List(SessionListArgs),
    /// Revoke a session and its refresh tokens at once (idempotent).
    #[command(
        long_about = "Revoke a session: its refresh tokens stop working at once, and its \
access tokens are refused wherever they are checked against the session (introspection, \
Tessera's own API). Revoking a revoked session changes nothing. Recorded in the audit log with \
actor `cli`."
    )]
    Revoke(SessionIdArgs),
}

#[derive(Debug, Args)]
pub struct SessionListArgs {
    /// The sessions of this user (user id).
    #[arg(
        long,
        value_name = "ID",
        required_unless_present = "subject",
        conflicts_with = "subject"
    )]
    pub user: Option<String>,
    /// The sessions an application opened for this subject.
    #[arg(long, value_name = "SUBJECT")]
    pub subject: Option<String>,
    /// Only sessions that are live now (neither revoked nor expired).
    #[arg(long)]
    pub active: bool,
    #[command(flatten)]
    pub page: PageArgs,
    #[command(flatten)]
    pub out: JsonFlag,
}
