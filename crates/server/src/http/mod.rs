//! The HTTP layer. `state` is the leaf every handler shares; extractors
//! (`client`, `principal`, `extract`), `error` and `request_id` sit on it;
//! `problems` declares, once per family, the error responses of the API document,
//! and `doc_rules` the request rules its derives cannot state;
//! `routes` holds the handlers and their bodies; `router` is the one place
//! that assembles routes, the OpenAPI document and the middleware; `server`
//! binds, runs and shuts down.

pub mod client;
pub mod doc_rules;
pub mod error;
pub mod extract;
pub mod principal;
pub mod problems;
pub mod request_id;
pub mod router;
pub mod routes;
pub mod server;
pub mod state;
