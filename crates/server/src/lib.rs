//! Tessera's HTTP service and the runtime shared with the CLI.
//!
//! The folders show the layers, each importing only the ones below it:
//! - `http/`: the HTTP layer (state, extractors and the principal, problem+json
//!   errors, request ids, route handlers, the router and the server loop);
//! - `jobs/`: work beside the requests (scheduler, webhook dispatcher,
//!   scheduled token jobs); above `service/`, which it drives;
//! - `service/`: one function per use case, shared by handlers and the CLI;
//! - `messaging/`: how one-time codes leave the building (SMTP, SMS webhook,
//!   log file) and the message templates;
//! - `config/`: layered, validated configuration.
//!
//! `runtime` opens the services from a configuration; `metrics`, `qr` and
//! `telemetry` are leaves.

pub mod config;
pub mod http;
pub mod jobs;
pub mod messaging;
pub mod metrics;
pub mod qr;
pub mod runtime;
pub mod service;
pub mod telemetry;

// The paths the CLI, the tests and embedders use.
pub use config::Config;
pub use http::{
    error,
    router::{openapi, router},
    server::{shutdown_signal, Server},
};
pub use jobs::scheduler;
pub use runtime::{describe, Services};
