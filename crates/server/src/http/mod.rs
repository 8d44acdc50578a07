//! The HTTP layer. `state` is the leaf every handler shares; extractors
//! (`client`, `principal`, `extract`), `error` and `request_id` sit on it;
//! `forwarded` (who the client is behind proxies) is pure and stands alone;
//! `problems` declares, once per family, the error responses of the API document,
//! and `doc_rules` the request rules its derives cannot state;
//! `routes` holds the handlers and their bodies; `router` is the one place
//! that assembles routes, the OpenAPI document and the middleware; `server`
//! binds, runs and shuts down, with `connections` (the accept loop, the
//! connection cap, load shedding) over `watchdog` (slow and idle clients)
//! and `fd_limit`, and `tls` (HTTPS and client certificates) as the
//! handshake of that loop; `limits` is the middleware for request size and
//! body deadlines; `csrf` guards the routes browser front ends call and
//! answers their CORS.

pub mod client;
pub mod connections;
pub mod csrf;
pub mod doc_rules;
pub mod error;
pub mod extract;
pub mod fd_limit;
pub mod form;
pub mod forwarded;
pub mod limits;
pub mod oauth_client;
pub mod principal;
pub mod problems;
pub mod request_id;
pub mod router;
pub mod routes;
pub mod server;
pub mod state;
pub mod tls;
pub mod watchdog;
