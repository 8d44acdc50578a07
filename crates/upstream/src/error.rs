//! Why a lookup failed, and how a caller's own error says "the upstream
//! rejected this token" so that `TokenCache::call_with_token` can
//! retry once with a fresh one.

use crate::login::LoginError;

/// Why a token could not be had. Redis problems never appear here: they
/// degrade the cache to memory + login instead of failing a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("no upstream named {0:?} is configured")]
    UnknownUpstream(String),
    #[error("invalid user name: {0}")]
    InvalidUser(&'static str),
    /// The name is valid but not in the upstream's `users` list.
    #[error("upstream {0:?} may not log in as this user")]
    UserNotAllowed(String),
    #[error("login to upstream {upstream:?} failed: {source}")]
    Login {
        upstream: String,
        #[source]
        source: LoginError,
    },
}

/// An error that may mean "the upstream rejected this token" (HTTP 401), for
/// `TokenCache::call_with_token`.
pub trait Unauthorized {
    fn is_unauthorized(&self) -> bool;
}

impl Unauthorized for reqwest::Error {
    fn is_unauthorized(&self) -> bool {
        self.status() == Some(reqwest::StatusCode::UNAUTHORIZED)
    }
}

/// The outcome of `TokenCache::call_with_token`:
/// no token, or the call's own error.
#[derive(Debug)]
pub enum CallError<E> {
    Token(UpstreamError),
    Call(E),
}

impl<E: std::fmt::Display> std::fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Token(e) => e.fmt(f),
            CallError::Call(e) => write!(f, "the upstream call failed: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Token(e) => Some(e),
            CallError::Call(e) => Some(e),
        }
    }
}
