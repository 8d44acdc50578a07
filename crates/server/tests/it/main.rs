//! The server's integration tests, one binary so they link once. Each module
//! is one former test file; `common` is the shared harness (a real server
//! over a fresh database of either backend, request helpers, receivers).
//! `harness = false`: each module lists its tests (`backend_tests!` or
//! `tests!`) and `main` runs them all through tessera_test_support's
//! harness, which reports the tests it skips for want of PostgreSQL or pyotp.

mod common;

mod audit_read;
mod background_writer;
mod client_address;
mod clients_api;
mod clients_auth;
mod csrf;
mod db_outage;
mod delivery;
mod event_stream;
mod event_stream_access;
mod event_stream_openers;
mod hostile_input;
mod http_auth_codes;
mod http_bad_input;
mod http_invites;
mod http_mfa;
mod http_mfa_events;
mod http_tokens;
mod http_upstreams;
mod http_webhooks;
mod introspection;
mod introspection_python;
mod jobs;
mod link_secrets;
mod login_throttle;
mod mail_templates;
mod openapi;
mod rate_limit_store;
mod rate_limits;
mod recovery;
mod recovery_browser;
mod recovery_rules;
mod revocation_everywhere;
mod secrets_never_leak;
mod sessions_devices;
mod sessions_keys;
mod sessions_python;
mod sessions_races;
mod sessions_walk;
mod slow_clients;
mod tls;
mod tls_introspect;
mod token_controls;
mod token_rate_limits;
mod token_usage;
mod verify_cache;
mod verify_failures;
mod ws_tickets;

fn main() -> std::process::ExitCode {
    let modules = [
        audit_read::trials(),
        background_writer::trials(),
        client_address::trials(),
        clients_api::trials(),
        clients_auth::trials(),
        csrf::trials(),
        db_outage::trials(),
        delivery::trials(),
        event_stream::trials(),
        event_stream_access::trials(),
        event_stream_openers::trials(),
        hostile_input::trials(),
        introspection::trials(),
        introspection_python::trials(),
        http_auth_codes::trials(),
        http_bad_input::trials(),
        http_invites::trials(),
        http_mfa::trials(),
        http_mfa_events::trials(),
        http_tokens::trials(),
        http_upstreams::trials(),
        http_webhooks::trials(),
        jobs::trials(),
        link_secrets::trials(),
        mail_templates::trials(),
        login_throttle::trials(),
        openapi::trials(),
        rate_limit_store::trials(),
        rate_limits::trials(),
        recovery::trials(),
        recovery_browser::trials(),
        recovery_rules::trials(),
        revocation_everywhere::trials(),
        secrets_never_leak::trials(),
        sessions_devices::trials(),
        sessions_keys::trials(),
        sessions_python::trials(),
        sessions_races::trials(),
        sessions_walk::trials(),
        slow_clients::trials(),
        tls::trials(),
        tls_introspect::trials(),
        verify_cache::trials(),
        verify_failures::trials(),
        token_controls::trials(),
        token_rate_limits::trials(),
        token_usage::trials(),
        ws_tickets::trials(),
    ];
    tessera_test_support::harness::run(modules.into_iter().flatten())
}
