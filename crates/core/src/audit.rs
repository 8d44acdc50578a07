//! Audit entries: who did what to which object, written in the same
//! transaction as the change they describe.
//!
//! The caller's IP address and user agent arrive here already sealed (see
//! [`crate::crypto::Keyring`]); the audit log never holds them in clear.

use serde_json::Value;

/// The contexts the client's IP address and user agent are sealed under
/// (see [`crate::crypto::Keyring::seal`]): the server seals with them, and
/// reading the log opens with them.
pub const IP_CONTEXT: &str = "audit.ip";
pub const USER_AGENT_CONTEXT: &str = "audit.user_agent";

/// Who performed an action, stored as text: an API token (`token:<id>`), a
/// signed-in user (`user:<id>`), an OAuth2 client (`client:<id>`), `cli`,
/// `system`, or `anonymous`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Token(String),
    User(String),
    Client(String),
    Cli,
    System,
    Anonymous,
}

impl Actor {
    pub fn as_audit_string(&self) -> String {
        match self {
            Self::Token(id) => format!("token:{id}"),
            Self::User(id) => format!("user:{id}"),
            Self::Client(id) => format!("client:{id}"),
            Self::Cli => "cli".into(),
            Self::System => "system".into(),
            Self::Anonymous => "anonymous".into(),
        }
    }

    /// The id recorded as `revoked_by` on a token.
    pub fn revoked_by(&self) -> String {
        self.as_audit_string()
    }
}

/// The request context an audit row records, with client details sealed.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub ip_sealed: Option<String>,
    pub user_agent_sealed: Option<String>,
}

/// One row of the append-only audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: String,
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: Option<String>,
    pub outcome: &'static str,
    pub details: Value,
    pub context: RequestContext,
    /// A log the row also belongs to, e.g. [`SECURITY_CHANNEL`] for security
    /// events (refresh-token reuse); `None` for ordinary rows.
    pub channel: Option<&'static str>,
}

impl AuditEntry {
    pub fn success(
        actor: &Actor,
        action: &'static str,
        target_type: &'static str,
        target_id: &str,
        details: Value,
        context: &RequestContext,
    ) -> Self {
        Self {
            actor: actor.as_audit_string(),
            action,
            target_type,
            target_id: Some(target_id.to_string()),
            outcome: "success",
            details,
            context: context.clone(),
            channel: None,
        }
    }

    /// The same entry, in `channel` (see [`SECURITY_CHANNEL`]).
    pub fn with_channel(self, channel: &'static str) -> Self {
        Self {
            channel: Some(channel),
            ..self
        }
    }
}

/// The channel of security events, which operators watch apart from the
/// rest of the log.
pub const SECURITY_CHANNEL: &str = "audit";

/// Every outcome an audit row records: the allowed values of a filter on it.
pub const OUTCOMES: &[&str] = &["success", "failure"];

#[cfg(test)]
mod tests {
    use super::{Actor, AuditEntry, RequestContext, SECURITY_CHANNEL};

    #[test]
    fn entries_have_no_channel_until_given_one() {
        let e = AuditEntry::success(
            &Actor::Cli,
            "token.create",
            "api_token",
            "t1",
            serde_json::json!({}),
            &RequestContext::default(),
        );
        assert_eq!(e.channel, None);
        let e = e.with_channel(SECURITY_CHANNEL);
        assert_eq!(e.channel, Some("audit"));
        assert_eq!(e.action, "token.create");
    }

    #[test]
    fn actors_have_a_stable_stored_form() {
        let cases = [
            (Actor::Token("t1".into()), "token:t1"),
            (Actor::User("u1".into()), "user:u1"),
            (Actor::Client("c1".into()), "client:c1"),
            (Actor::Cli, "cli"),
            (Actor::System, "system"),
            (Actor::Anonymous, "anonymous"),
        ];
        for (actor, stored) in cases {
            assert_eq!(actor.as_audit_string(), stored);
            assert_eq!(actor.revoked_by(), stored);
        }
    }
}
