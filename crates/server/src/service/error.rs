//! What a use case fails with, in the caller's terms: the request broke a
//! rule (a 4xx), something the use case depends on is down or refused (a
//! 503), two changes raced (a 409), or a bug (a 500). Storage errors are
//! translated here once, so that a message provider refusing an SMS is no
//! longer dressed up as a database error. A storage error keeps its own
//! message (job runs and logs record it as before). A limit's refusal
//! carries what the client is told about the limit ([`Refusal`]).

use tessera_core::{
    gcra::{RateDecision, RateRule},
    DomainError,
};
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
    /// A rate limit or quota refused the request (a 429 with the
    /// `RateLimit-Policy`, `RateLimit` and `Retry-After` fields).
    #[error("{}", .0.detail)]
    RateLimited(Box<Refusal>),
}

/// A limit's refusal as the client learns it: the problem's `code` and
/// detail, and the IETF `RateLimit-Policy` / `RateLimit` fields
/// (draft-ietf-httpapi-ratelimit-headers): the policy's name (the limiter,
/// as the `limiter` label of `tokens_rate_limited_total` names it), its
/// quota and window, what remains and when it is whole again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `rate_limited`, or the code of a database-counted limit
    /// (`login_throttled`, `invite_quota_exceeded`).
    pub code: &'static str,
    pub detail: String,
    pub policy: String,
    /// Units per window.
    pub quota: u64,
    /// The window, in seconds.
    pub window: u64,
    pub remaining: u64,
    /// Seconds until the quota is whole again.
    pub reset: u64,
    /// Seconds until the refused request would be admitted (at least 1).
    pub retry_after: u64,
}

impl Refusal {
    /// A GCRA limit's refusal.
    pub fn rate(limiter: &str, rule: &RateRule, d: &RateDecision) -> Self {
        let retry_after = d.retry_after.max(1);
        Self {
            code: "rate_limited",
            detail: format!("too many requests; retry in {retry_after} s"),
            policy: limiter.to_string(),
            quota: u64::from(rule.limit()),
            window: rule.window_secs(),
            remaining: u64::from(d.remaining),
            reset: d.reset.max(retry_after),
            retry_after,
        }
    }

    /// The refusal of a limit counted in the database, from its domain
    /// error (which keeps its code and message) and its policy.
    pub fn quota(error: &DomainError, policy: &str, quota: u64, window: u64) -> Self {
        let retry = match error {
            DomainError::RateLimited { retry_after_secs }
            | DomainError::LoginThrottled { retry_after_secs }
            | DomainError::InviteQuotaExceeded {
                retry_after_secs, ..
            } => *retry_after_secs,
            _ => 1,
        };
        let retry_after = retry.max(1) as u64;
        Self {
            code: error.code(),
            detail: error.to_string(),
            policy: policy.to_string(),
            quota,
            window,
            remaining: 0,
            reset: retry_after,
            retry_after,
        }
    }

    /// `RateLimit-Policy`: `"login_ip";q=60;w=60`.
    pub fn policy_field(&self) -> String {
        format!(
            "{};q={};w={}",
            sf_string(&self.policy),
            self.quota,
            self.window
        )
    }

    /// `RateLimit`: `"login_ip";r=0;t=17`.
    pub fn limit_field(&self) -> String {
        format!(
            "{};r={};t={}",
            sf_string(&self.policy),
            self.remaining,
            self.reset
        )
    }
}

impl From<Refusal> for ServiceError {
    fn from(r: Refusal) -> Self {
        Self::RateLimited(Box::new(r))
    }
}

/// A structured-field string (RFC 8941): quoted, `\` and `"` escaped, and
/// anything outside printable ASCII replaced, so a policy named by a
/// client (a token's limit) can never break the header.
fn sf_string(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
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
    fn refusals_render_the_ratelimit_fields() {
        let rule: RateRule = "60/1m".parse().unwrap();
        let d = RateDecision {
            allowed: false,
            limit: 60,
            remaining: 0,
            reset: 17,
            retry_after: 2,
        };
        let r = Refusal::rate("login_ip", &rule, &d);
        assert_eq!(r.policy_field(), "\"login_ip\";q=60;w=60");
        assert_eq!(r.limit_field(), "\"login_ip\";r=0;t=17");
        assert_eq!((r.code, r.retry_after), ("rate_limited", 2));
        let e = ServiceError::from(r);
        assert_eq!(e.to_string(), "too many requests; retry in 2 s");
        let q = Refusal::quota(
            &DomainError::LoginThrottled {
                retry_after_secs: 30,
            },
            "login_failures_user",
            10,
            900,
        );
        assert_eq!(q.code, "login_throttled");
        assert_eq!(q.limit_field(), "\"login_failures_user\";r=0;t=30");
        assert_eq!(sf_string("a\"b\\c\u{e9}\n"), "\"a\\\"b\\\\c??\"");
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
