//! One module per top-level command.

pub mod config;
pub mod invite;
pub mod migrate;
pub mod serve;
pub mod token;
