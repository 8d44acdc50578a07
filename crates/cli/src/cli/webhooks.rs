//! `tessera webhooks …`: endpoint and delivery commands and their arguments.

use clap::Subcommand;

use super::shared::{EndpointIdArgs, JsonFlag};

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
        /// Page size, 1-1000.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// The next_cursor printed by the previous page.
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
        /// Free text for people: which system receives the events.
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
        /// New HTTPS URL to deliver to.
        #[arg(long)]
        url: Option<String>,
        /// Replace the event types, comma-separated.
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        /// Deliver to it again (also after a 410 Gone disabled it).
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Stop delivering to it until `--enable`.
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
