//! E-mail addresses as Tessera keeps them: trimmed and lower-cased, so that
//! one address is one key (invites bound to an address today; user accounts
//! and their uniqueness next).

use crate::DomainError;

/// A minimal e-mail check: one `@`, something on each side, no spaces, and a
/// sane length. Deliverability is the application's business.
pub fn normalize_email(field: &'static str, email: &str) -> Result<String, DomainError> {
    let e = email.trim().to_ascii_lowercase();
    crate::text::check(field, &e, crate::text::TextRule::Name)?;
    let ok = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'));
    if ok {
        Ok(e)
    } else {
        Err(DomainError::invalid(field, "must be an e-mail address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email("email", " Bob@Example.COM ").unwrap(),
            "bob@example.com"
        );
        assert!(normalize_email("email", "bob").is_err());
        assert!(normalize_email("email", "a b@c.d").is_err());
    }
}
