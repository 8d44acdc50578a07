//! The service layer: one function per use case, shared by the HTTP handlers
//! and the CLI admin commands so both apply the same rules and produce the
//! same JSON.

pub mod audit;
pub mod auth_codes;
pub mod background;
pub mod clients;
pub mod error;
pub mod events;
pub mod failure_audit;
pub mod hash_pool;
pub mod hot_cache;
pub mod invites;
pub mod keys;
pub mod links;
pub mod mfa;
pub mod oauth;
pub mod passwords;
pub mod rate_limit;
pub mod sessions;
pub mod signatures;
pub mod tokens;
pub mod users;
pub mod verify_cache;
pub mod webhooks;
pub mod ws_tickets;

pub use audit::AuditService;
pub use auth_codes::AuthCodeService;
pub use error::ServiceError;
pub use invites::InviteService;
pub use mfa::MfaService;
pub use tokens::TokenService;
pub use webhooks::WebhookService;
