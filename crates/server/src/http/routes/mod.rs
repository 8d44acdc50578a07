//! The handlers, grouped by resource, with their request and response
//! bodies (`*_dto`). Each handler parses, calls one service function and
//! shapes the result; `super::router` puts them together.

mod body_parts;
mod invite_dto;
pub mod invites;
pub mod mfa;
mod mfa_dto;
pub mod system;
mod token_dto;
pub mod tokens;
pub mod upstreams;
pub mod webhooks;
