//! `tessera upstream …`: the upstream token cache's commands.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Configured upstreams and what is cached for their default user.
    List,
    /// What is cached for USER (tier, expiry, remaining TTL); never the token.
    Info {
        /// Upstream name, as `tessera upstream list` shows it.
        api: String,
        /// User to look up (default: the upstream's default user).
        #[arg(long)]
        user: Option<String>,
    },
    /// Print a token for USER (memory, Redis or a fresh login).
    Token {
        /// Upstream name, as `tessera upstream list` shows it.
        api: String,
        /// User to get a token for (default: the upstream's default user).
        #[arg(long)]
        user: Option<String>,
    },
    /// Forget cached tokens: of one upstream (and one --user), or all.
    Clear {
        /// Upstream name; omit to clear every upstream's tokens.
        api: Option<String>,
        /// Only this user's token (needs API).
        #[arg(long, requires = "api")]
        user: Option<String>,
    },
    /// Memory, Redis and each upstream's last login.
    Health,
}
