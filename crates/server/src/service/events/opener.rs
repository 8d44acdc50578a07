//! Who opened a stream, and whether they still may read it. A stream lives
//! longer than the request that opened it, so the credential is judged
//! again: when an invalidation names it (revoked, rotated, its scopes or
//! capabilities changed, its session or user ended), and every keep-alive
//! interval in case a change was missed. A stream whose opener no longer
//! passes ends; the client's reconnection then meets the usual 401.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use tessera_core::{
    api_token::evaluate, client::Capability, client_registry::RegisteredClient,
    scopes::ADMIN_SCOPE, token_controls::ip_allowed, token_format::TokenHash,
};
use tessera_store::{Invalidation, InvalidationKind, Store, StoreError};

/// The credential a stream was opened with, and the address it came from.
/// Holds no secret: an API token is known by its id and the SHA-256 of its
/// secret, a client by the keyed digests of its secret, the forms the
/// database stores.
#[derive(Debug, Clone)]
pub enum Opener {
    /// An API token with the admin scope.
    Token {
        id: String,
        secret_hash: TokenHash,
        client_ip: Option<IpAddr>,
    },
    /// A person's access token (a JWT with the admin scope): its session,
    /// its user, and the token's own expiry, when the stream ends regardless.
    Session {
        session_id: String,
        user_id: String,
        expires_at: DateTime<Utc>,
    },
    /// A registry client with the `events` capability.
    Client {
        id: String,
        secret_digests: Vec<String>,
        client_ip: Option<IpAddr>,
    },
}

/// What judging an opener found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// It would no longer open the stream.
    Ended,
    /// It still would, until this time if it ends by itself (a rotated
    /// secret's grace, a token's expiry, a JWT's `exp`).
    Admitted { until: Option<DateTime<Utc>> },
}

impl Opener {
    /// Whether an invalidation may concern this opener.
    pub fn concerns(&self, row: &Invalidation) -> bool {
        let id = row.target_id.as_str();
        match (self, row.kind) {
            (Self::Token { id: mine, .. }, InvalidationKind::Token) => mine == id,
            (Self::Session { session_id, .. }, InvalidationKind::Session) => session_id == id,
            (Self::Session { user_id, .. }, InvalidationKind::User) => user_id == id,
            (Self::Client { id: mine, .. }, InvalidationKind::Client) => mine == id,
            _ => false,
        }
    }

    /// When the credential ends by itself, as known when the stream opens.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Session { expires_at, .. } => Some(*expires_at),
            Self::Token { .. } | Self::Client { .. } => None,
        }
    }

    /// Whether the credential would still open the stream at `now`, from
    /// the same address: one read of its record (the secret by hash, the
    /// session, the client).
    pub async fn judge(
        &self,
        store: &dyn Store,
        now: DateTime<Utc>,
    ) -> Result<Judgement, StoreError> {
        let admitted = |until| Judgement::Admitted { until };
        Ok(match self {
            Self::Token {
                secret_hash,
                client_ip,
                ..
            } => {
                let admin = [ADMIN_SCOPE.to_string()];
                match store.find_token_by_secret(secret_hash).await? {
                    Some(m)
                        if evaluate(&m.token, m.valid_until, &admin, now).is_ok()
                            && m.token.controls.ip_allowed(*client_ip) =>
                    {
                        let ends = [m.token.expires_at, m.valid_until];
                        admitted(ends.into_iter().flatten().min())
                    }
                    _ => Judgement::Ended,
                }
            }
            Self::Session {
                session_id,
                expires_at,
                ..
            } => {
                let live = now < *expires_at
                    && store
                        .get_session(session_id)
                        .await?
                        .is_some_and(|s| s.is_active_at(now));
                if live {
                    admitted(Some(*expires_at))
                } else {
                    Judgement::Ended
                }
            }
            Self::Client {
                id,
                secret_digests,
                client_ip,
            } => match store.get_client(id).await? {
                Some(c) if client_admits(&c, secret_digests, *client_ip, now) => {
                    let in_grace = !secret_digests.contains(&c.secret_hash);
                    admitted(in_grace.then_some(c.previous_secret_expires_at).flatten())
                }
                _ => Judgement::Ended,
            },
        })
    }
}

/// A registry client still admits a stream: not deleted, with `events`,
/// the presented secret still its own (or the previous one, in its grace),
/// and the address within its IP lists.
fn client_admits(
    c: &RegisteredClient,
    digests: &[String],
    ip: Option<IpAddr>,
    now: DateTime<Utc>,
) -> bool {
    let current = digests.contains(&c.secret_hash);
    let previous = c.previous_secret_expires_at.is_some_and(|e| now < e)
        && c.previous_secret_hash
            .as_ref()
            .is_some_and(|h| digests.contains(h));
    c.deleted_at.is_none()
        && c.capabilities.contains(&Capability::Events)
        && (current || previous)
        && ip_allowed(&c.ip_allow, &c.ip_deny, ip)
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
    fn an_opener_is_concerned_by_its_own_record_and_a_session_by_its_user() {
        let token = Opener::Token {
            id: "t1".into(),
            secret_hash: TokenHash([0; 32]),
            client_ip: None,
        };
        assert!(token.concerns(&row(InvalidationKind::Token, "t1")));
        assert!(!token.concerns(&row(InvalidationKind::Token, "t2")));
        assert!(!token.concerns(&row(InvalidationKind::Client, "t1")));
        let session = Opener::Session {
            session_id: "s1".into(),
            user_id: "u1".into(),
            expires_at: Utc::now(),
        };
        assert!(session.concerns(&row(InvalidationKind::Session, "s1")));
        assert!(!session.concerns(&row(InvalidationKind::Session, "s2")));
        assert!(session.concerns(&row(InvalidationKind::User, "u1")));
        assert!(!session.concerns(&row(InvalidationKind::User, "u9")));
        assert!(session.expires_at().is_some());
        let client = Opener::Client {
            id: "c1".into(),
            secret_digests: vec![],
            client_ip: None,
        };
        assert!(client.concerns(&row(InvalidationKind::Client, "c1")));
        assert!(!client.concerns(&row(InvalidationKind::User, "c1")));
        assert_eq!(client.expires_at(), None);
    }
}
