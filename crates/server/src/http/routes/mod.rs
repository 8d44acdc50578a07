//! The handlers, grouped by resource, with their request and response
//! bodies (`*_dto`). Each handler parses, calls one service function and
//! shapes the result. Each resource module lists its routes in `routes()`
//! (route and OpenAPI operation together, via `routes!`); `super::router`
//! merges them.

pub mod audit;
pub mod auth;
mod auth_dto;
mod body_parts;
mod client_dto;
pub mod clients;
pub mod csrf;
pub mod events;
pub mod invite_dto;
pub mod invites;
pub mod me_mfa;
pub mod mfa;
mod mfa_dto;
pub mod oauth2;
pub mod recovery;
pub mod sessions;
pub mod system;
mod token_controls_dto;
pub mod token_dto;
pub mod tokens;
pub mod upstreams;
mod user_dto;
pub mod users;
pub mod webhooks;
pub mod ws_tickets;
