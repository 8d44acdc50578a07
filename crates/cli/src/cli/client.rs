//! `tessera client …`: the managed registry of OAuth2 clients (resource
//! servers and gateways that introspect or revoke tokens or redeem
//! WebSocket tickets).

use clap::{Args, Subcommand};

use super::shared::{JsonFlag, PageArgs};

const CREATE_HELP: &str = "Create an OAuth2 client in the managed registry, with the same \
rules as POST /v1/clients. The client id (cl_…) and its secret (tsc_…, over 256 bits) are \
printed once: the secret is stored only as an HMAC-SHA-256 under the server key, so it cannot \
be shown again (rotate it if it is lost).\n\nCapabilities: introspect (POST /oauth2/introspect), \
revoke (POST /oauth2/revoke), ws_tickets (redeem WebSocket tickets), verify (usage controls), \
events (GET /v1/events/stream). With --audience the client may introspect only tokens for \
those audiences; without, any.\n\n\
Example:\n  tessera client create --name 'orders API' --capability introspect --audience orders";

const ROTATE_HELP: &str = "Give a client a new secret, printed once. With --grace-seconds N \
the current secret keeps working for N more seconds (0-604800, 7 days) so the client can be \
redeployed without an outage; without it the current secret stops at once. A secret still in \
an earlier grace stops at once either way.\n\nClients of INTROSPECTION_CLIENTS are changed by \
editing that variable, not here.";

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a client; its secret is printed once.
    #[command(long_about = CREATE_HELP)]
    Create(ClientCreateArgs),
    /// List clients: those of INTROSPECTION_CLIENTS first, then the registry's, newest first.
    List {
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show one client (never its secret).
    Show(ClientIdArgs),
    /// Change a client's name, capabilities or audiences.
    Update(ClientUpdateArgs),
    /// Give a client a new secret (printed once), optionally keeping the old one for a grace period.
    #[command(long_about = ROTATE_HELP)]
    RotateSecret(RotateArgs),
    /// Delete a client: it stops authenticating (other replicas within the verify cache's TTL).
    Delete(ClientIdArgs),
}

#[derive(Debug, Args)]
pub struct ClientIdArgs {
    /// Client id (cl_…).
    pub id: String,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ClientCreateArgs {
    /// A name for people.
    #[arg(long)]
    pub name: String,
    /// A capability: introspect, revoke, ws_tickets, verify or events (repeat for several).
    #[arg(long = "capability", value_name = "CAPABILITY", required = true)]
    pub capabilities: Vec<String>,
    /// An audience whose tokens it may introspect (repeat for several; none: any).
    #[arg(long = "audience", value_name = "AUDIENCE")]
    pub audiences: Vec<String>,
    /// Networks (CIDR) the client may authenticate from (comma-separated or repeated; none: any).
    #[arg(long, value_delimiter = ',', value_name = "CIDR")]
    pub ip_allow: Vec<String>,
    /// Networks it may never authenticate from (wins over --ip-allow).
    #[arg(long, value_delimiter = ',', value_name = "CIDR")]
    pub ip_deny: Vec<String>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ClientUpdateArgs {
    /// Client id (cl_…).
    pub id: String,
    /// A new name.
    #[arg(long)]
    pub name: Option<String>,
    /// Replace the capabilities (repeat for several).
    #[arg(long = "capability", value_name = "CAPABILITY")]
    pub capabilities: Vec<String>,
    /// Replace the audiences (repeat for several).
    #[arg(
        long = "audience",
        value_name = "AUDIENCE",
        conflicts_with = "any_audience"
    )]
    pub audiences: Vec<String>,
    /// Let the client introspect tokens for any audience.
    #[arg(long)]
    pub any_audience: bool,
    /// Replace the networks it may authenticate from (`none`: any).
    #[arg(long, value_delimiter = ',', value_name = "CIDR")]
    pub ip_allow: Option<Vec<String>>,
    /// Replace the networks it may never authenticate from (`none`: clear).
    #[arg(long, value_delimiter = ',', value_name = "CIDR")]
    pub ip_deny: Option<Vec<String>>,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Client id (cl_…).
    pub id: String,
    /// How long the current secret keeps working, 0-604800 seconds (default 0).
    #[arg(long, value_name = "SECONDS")]
    pub grace_seconds: Option<i64>,
    #[command(flatten)]
    pub out: JsonFlag,
}
