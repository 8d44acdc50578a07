//! The server's integration tests, one binary so they link once. Each module
//! is one former test file; `common` is the shared harness (a real server
//! over a fresh database of either backend, request helpers, receivers).

mod common;

mod background_writer;
mod client_address;
mod db_outage;
mod delivery;
mod hostile_input;
mod http_auth_codes;
mod http_bad_input;
mod http_invites;
mod http_mfa;
mod http_mfa_events;
mod http_tokens;
mod http_upstreams;
mod http_webhooks;
mod jobs;
mod openapi;
mod secrets_never_leak;
mod slow_clients;
mod verify_cache;
mod verify_failures;
