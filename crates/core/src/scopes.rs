//! The registry of scopes an operator allows, so a typo in a scope is an error
//! at issue time rather than a silently useless token.

use std::collections::BTreeSet;

use crate::DomainError;

/// The scope that grants access to the management API.
pub const ADMIN_SCOPE: &str = "admin";
/// The scope that lets internal callers fetch cached upstream tokens.
pub const UPSTREAM_READ_SCOPE: &str = "upstream:read";
/// The scope that lets operators' tools forget cached upstream tokens
/// (it does not read them: a token is a credential, clearing is not).
pub const UPSTREAM_ADMIN_SCOPE: &str = "upstream:admin";
/// The scope that lets an application manage and check its users' second factors.
pub const MFA_SCOPE: &str = "mfa";
/// The scope that lets an application open sessions for people it
/// authenticated itself (`POST /v1/sessions`).
pub const SESSIONS_SCOPE: &str = "sessions";

#[derive(Debug, Clone)]
pub struct ScopeRegistry {
    known: BTreeSet<String>,
}

impl Default for ScopeRegistry {
    fn default() -> Self {
        Self::new(
            [
                "read",
                "write",
                UPSTREAM_READ_SCOPE,
                UPSTREAM_ADMIN_SCOPE,
                MFA_SCOPE,
                SESSIONS_SCOPE,
                ADMIN_SCOPE,
            ]
            .map(String::from),
        )
        .expect("defaults are valid")
    }
}

impl ScopeRegistry {
    /// Scopes are 1–64 chars of `[a-z0-9_:.-]`; `admin` is always present.
    pub fn new(scopes: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut known = BTreeSet::new();
        for s in scopes {
            let s = s.trim().to_string();
            if !is_valid_scope_name(&s) {
                return Err(format!(
                    "invalid scope name {s:?}: use 1-64 characters of a-z, 0-9, _ : . -"
                ));
            }
            known.insert(s);
        }
        known.insert(ADMIN_SCOPE.to_string());
        Ok(Self { known })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.known.iter().map(String::as_str)
    }

    /// Sorted, de-duplicated scopes, or an error listing the known ones.
    pub fn validate(&self, requested: &[String]) -> Result<Vec<String>, DomainError> {
        let mut out = BTreeSet::new();
        for s in requested {
            if !self.known.contains(s) {
                let known: Vec<&str> = self.names().collect();
                // The unknown scope is not quoted: it is what the client sent.
                return Err(DomainError::invalid(
                    "scopes",
                    format!("unknown scope; known scopes: {}", known.join(", ")),
                ));
            }
            out.insert(s.clone());
        }
        Ok(out.into_iter().collect())
    }
}

fn is_valid_scope_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b':' | b'.' | b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_and_normalises() {
        let r = ScopeRegistry::default();
        assert_eq!(
            r.validate(&["write".into(), "read".into(), "read".into()])
                .unwrap(),
            vec!["read", "write"]
        );
        let err = r.validate(&["reed".into()]).unwrap_err();
        assert_eq!(err.code(), "validation_failed");
        assert!(!err.to_string().contains("reed"), "{err}");
        assert!(err.to_string().contains("known scopes: admin"), "{err}");
    }

    #[test]
    fn admin_is_always_known() {
        let r = ScopeRegistry::new(["billing:read".to_string()]).unwrap();
        assert!(r.validate(&["admin".into()]).is_ok());
        assert!(ScopeRegistry::new(["Bad Scope".to_string()]).is_err());
    }
}
