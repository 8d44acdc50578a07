//! Work that runs beside the HTTP requests: the scheduled maintenance jobs
//! (and the token use cases they drive), the webhook dispatcher, and the
//! reader of the invalidation log that keeps every process's caches fresh.
//!
//! The background writer stays in `service/`: services write into it, and
//! jobs use services, so it living here would make the two depend on each
//! other.

mod address_guard;
pub mod dispatcher;
pub mod invalidations;
pub mod scheduler;
mod token_jobs;
