//! What a use case fails with, in the caller's terms: the request broke a
//! rule (a 4xx), something the use case depends on is down or refused (a
//! 503), two changes raced (a 409), or a bug (a 500). Storage errors are
//! translated here once, so that a message provider refusing an SMS is no
//! longer dressed up as a database error. A storage error keeps its own
//! message (job runs and logs record it as before).

use tessera_core::DomainError;
use tessera_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request breaks a domain rule: invalid input, unknown record,
    /// wrong state, a limit.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A dependency is down or refused the work; retrying later may succeed.
    #[error("{0}")]
    Unavailable(Dependency),
    /// A uniqueness rule caught a concurrent change.
    #[error(transparent)]
    Conflict(StoreError),
    /// A bug or corrupt data; logged, never shown to a client.
    #[error(transparent)]
    Internal(StoreError),
}

/// What was unavailable.
#[derive(Debug, thiserror::Error)]
pub enum Dependency {
    /// The database is unreachable or its schema is behind this binary.
    #[error(transparent)]
    Database(StoreError),
    /// The mail or SMS provider did not accept a message.
    #[error("the {channel} provider did not accept the message; retry later")]
    MessageProvider { channel: &'static str },
    /// The password-hashing pool's queue is full; retry in a moment.
    #[error("too many password checks are waiting; retry shortly")]
    PasswordHashing,
    /// Redis, where WebSocket tickets are kept when `REDIS_URI` is set.
    #[error("the ticket store is unavailable; retry shortly")]
    TicketStore,
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => Self::Domain(d),
            StoreError::Unavailable(_) | StoreError::SchemaBehind => {
                Self::Unavailable(Dependency::Database(e))
            }
            StoreError::Conflict(_) => Self::Conflict(e),
            other => Self::Internal(other),
        }
    }
}

impl ServiceError {
    /// The provider of `channel` refused a message.
    pub fn delivery_failed(channel: &'static str) -> Self {
        Self::Unavailable(Dependency::MessageProvider { channel })
    }

    /// The domain error, when the request broke a rule.
    pub fn as_domain(&self) -> Option<&DomainError> {
        match self {
            Self::Domain(d) => Some(d),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_are_sorted_by_what_the_caller_can_do() {
        let domain = ServiceError::from(StoreError::Domain(DomainError::TokenDeleted));
        assert!(matches!(
            domain.as_domain(),
            Some(DomainError::TokenDeleted)
        ));
        assert!(matches!(
            ServiceError::from(StoreError::SchemaBehind),
            ServiceError::Unavailable(Dependency::Database(StoreError::SchemaBehind))
        ));
        assert!(matches!(
            ServiceError::from(StoreError::BadUrl),
            ServiceError::Internal(StoreError::BadUrl)
        ));
    }

    #[test]
    fn a_refused_message_is_not_a_database_error() {
        let e = ServiceError::delivery_failed("sms");
        assert_eq!(
            e.to_string(),
            "the sms provider did not accept the message; retry later"
        );
        assert!(e.as_domain().is_none());
    }
}
