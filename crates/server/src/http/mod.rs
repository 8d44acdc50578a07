//! The HTTP layer. `state` is the leaf every handler shares; extractors
//! (`client`, `principal`, `extract`), `error` and `request_id` sit on it;
//! `forwarded` (who the client is behind proxies) is pure and stands alone;
//! `routes` holds the handlers and their bodies; `router` is the one place
//! that assembles routes, the OpenAPI document and the middleware; `server`
//! binds, runs and shuts down.

pub mod client;
pub mod error;
pub mod extract;
pub mod forwarded;
pub mod principal;
pub mod request_id;
pub mod router;
pub mod routes;
pub mod server;
pub mod state;
