//! Work that runs beside the HTTP requests: the scheduled maintenance jobs
//! (and the token use cases they drive) and the webhook dispatcher.
//!
//! The background writer stays in `service/`: services write into it, and
//! jobs use services, so it living here would make the two depend on each
//! other.

mod address_guard;
pub mod dispatcher;
pub mod scheduler;
mod token_jobs;
