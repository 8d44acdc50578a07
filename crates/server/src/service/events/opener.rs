//! Who opened a stream, and whether they still may read it. A stream lives
//! longer than the request that opened it, so the credential is judged
//! again: when an invalidation names it (revoked, rotated, its scopes or
//! capabilities changed, its session or user ended), and every keep-alive
//! interval in case a change was missed. A stream whose opener no longer
//! passes ends; the client's reconnection then meets the usual 401.

use chrono::{DateTime, Utc};
use tessera_core::{
    api_token::evaluate, client::Capability, scopes::ADMIN_SCOPE, token_format::TokenHash,
};
use tessera_store::{Invalidation, InvalidationKind, Store, StoreError};

/// The credential a stream was opened with. Holds no secret: an API token
/// is known by its id and the SHA-256 of its secret, the form the database
/// stores.
#[derive(Debug, Clone)]
pub enum Opener {
    /// An API token with the admin scope.
    Token { id: String, secret_hash: TokenHash },
    /// A person's access token (a JWT with the admin scope): its session,
    /// and the token's own expiry, when the stream ends regardless.
    Session {
        session_id: String,
        expires_at: DateTime<Utc>,
    },
    /// A registry client with the `events` capability.
    Client { id: String },
}

impl Opener {
    /// Whether an invalidation may concern this opener (a user's change
    /// may end any session: the row names the user, not the session).
    pub fn concerns(&self, row: &Invalidation) -> bool {
        let id = row.target_id.as_str();
        match (self, row.kind) {
            (Self::Token { id: mine, .. }, InvalidationKind::Token) => mine == id,
            (Self::Session { session_id, .. }, InvalidationKind::Session) => session_id == id,
            (Self::Session { .. }, InvalidationKind::User) => true,
            (Self::Client { id: mine }, InvalidationKind::Client) => mine == id,
            _ => false,
        }
    }

    /// When the credential ends by itself.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Session { expires_at, .. } => Some(*expires_at),
            Self::Token { .. } | Self::Client { .. } => None,
        }
    }

    /// Whether the credential would still open the stream at `now`: one
    /// read of its record (the secret by hash, the session, the client).
    pub async fn still_admitted(
        &self,
        store: &dyn Store,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(match self {
            Self::Token { secret_hash, .. } => {
                let admin = [ADMIN_SCOPE.to_string()];
                store
                    .find_token_by_secret(secret_hash)
                    .await?
                    .is_some_and(|m| evaluate(&m.token, m.valid_until, &admin, now).is_ok())
            }
            Self::Session {
                session_id,
                expires_at,
            } => {
                now < *expires_at
                    && store
                        .get_session(session_id)
                        .await?
                        .is_some_and(|s| s.is_active_at(now))
            }
            Self::Client { id } => store.get_client(id).await?.is_some_and(|c| {
                c.deleted_at.is_none() && c.capabilities.contains(&Capability::Events)
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: InvalidationKind, id: &str) -> Invalidation {
        Invalidation {
            seq: 1,
            kind,
            target_id: id.to_string(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn an_opener_is_concerned_by_its_own_record_and_a_session_by_any_user() {
        let token = Opener::Token {
            id: "t1".into(),
            secret_hash: TokenHash([0; 32]),
        };
        assert!(token.concerns(&row(InvalidationKind::Token, "t1")));
        assert!(!token.concerns(&row(InvalidationKind::Token, "t2")));
        assert!(!token.concerns(&row(InvalidationKind::Client, "t1")));
        let session = Opener::Session {
            session_id: "s1".into(),
            expires_at: Utc::now(),
        };
        assert!(session.concerns(&row(InvalidationKind::Session, "s1")));
        assert!(!session.concerns(&row(InvalidationKind::Session, "s2")));
        assert!(session.concerns(&row(InvalidationKind::User, "u9")));
        assert!(session.expires_at().is_some());
        let client = Opener::Client { id: "c1".into() };
        assert!(client.concerns(&row(InvalidationKind::Client, "c1")));
        assert!(!client.concerns(&row(InvalidationKind::User, "c1")));
        assert_eq!(client.expires_at(), None);
    }
}
