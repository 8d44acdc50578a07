//! `tessera jobs …`: the scheduled jobs' commands.

use clap::Subcommand;

use super::shared::JsonFlag;

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
        /// The job's name, as `tessera jobs list` shows it.
        name: String,
        #[command(flatten)]
        out: JsonFlag,
    },
}
