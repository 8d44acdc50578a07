//! Tessera's domain: what a credential is and which rules it obeys, with no I/O.
//!
//! Everything here is pure and synchronous so that the storage layer, the HTTP
//! server and the CLI all apply the same rules, and so the hot paths (token
//! parsing, hashing) can be benchmarked in isolation.

pub mod api_token;
pub mod audit;
pub mod client;
pub mod client_registry;
pub mod crockford;
pub mod crypto;
pub mod email;
pub mod error;
pub mod event;
pub mod forwarded;
pub mod gcra;
pub mod ids;
pub mod invite;
pub mod jwt;
pub mod mfa;
pub mod one_time;
pub mod pagination;
pub mod password;
pub mod rate_limit;
pub mod scopes;
pub mod secret;
pub mod session;
pub mod text;
pub mod token_controls;
pub mod token_format;
pub mod user;
pub mod user_link;
pub mod webhook;
pub mod ws_ticket;

pub use error::DomainError;
pub use secret::SecretString;

#[cfg(test)]
mod test_vectors {
    /// A file of published test vectors from the repository's tests/vectors/.
    pub fn load(name: &str) -> serde_json::Value {
        let path = format!("{}/../../tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).expect("vectors file");
        serde_json::from_str(&text).unwrap()
    }
}
