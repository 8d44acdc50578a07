//! Argument groups that several commands share (`--json`, an object's id,
//! a page of a list), so each flag is defined, and documented, once.

use clap::Args;

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print one JSON object on stdout: the same object the HTTP API returns.
    #[arg(long)]
    pub json: bool,
}

/// Defines the arguments of a command that acts on one object: its id (with
/// this help text) and `--json`. A macro because the help text differs per
/// kind of object and clap takes it from a doc attribute.
macro_rules! id_args {
    ($name:ident, $help:literal) => {
        #[derive(Debug, Args)]
        pub struct $name {
            #[doc = $help]
            pub id: String,
            #[command(flatten)]
            pub out: JsonFlag,
        }
    };
}

id_args!(TokenIdArgs, "Token id.");
id_args!(InviteIdArgs, "Invite id.");
id_args!(EndpointIdArgs, "Endpoint id.");
id_args!(UserIdArgs, "User id.");
id_args!(SessionIdArgs, "Session id.");

// A shared argument group carries no doc comment: clap would take it as the
// about text of the commands that use it.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// Page size, 1-1000.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// The next_cursor printed by the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}
