//! Tessera's HTTP service and the runtime shared with the CLI: configuration,
//! start-up, the service layer, routes, authentication, errors and metrics.

pub mod app;
pub mod auth;
pub mod client;
pub mod config;
pub mod delivery;
pub mod dispatcher;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod qr;
pub mod request_id;
pub mod routes;
pub mod runtime;
pub mod scheduler;
pub mod service;
pub mod telemetry;

pub use app::{router, Server};
pub use config::Config;
pub use runtime::Services;
