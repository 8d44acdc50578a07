//! `tessera upstream …`: the upstream token cache's commands.

use clap::Subcommand;

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
