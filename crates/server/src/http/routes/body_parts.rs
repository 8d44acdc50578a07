//! Parsing that several resources' request bodies and queries share, so a
//! rule and its error text live in one place.

use tessera_core::DomainError;

/// When something expires, as a request gives it: a time or a lifetime.
pub enum Expiry<At> {
    At(At),
    InSeconds(i64),
}

/// `expires_at` or `expires_in`, never both; `None` when neither is given.
pub fn expiry<At>(
    at: Option<At>,
    in_seconds: Option<i64>,
) -> Result<Option<Expiry<At>>, DomainError> {
    match (at, in_seconds) {
        (Some(_), Some(_)) => Err(DomainError::invalid(
            "expires_at",
            "give either expires_at or expires_in, not both",
        )),
        (Some(at), None) => Ok(Some(Expiry::At(at))),
        (None, Some(secs)) => Ok(Some(Expiry::InSeconds(secs))),
        (None, None) => Ok(None),
    }
}

/// A listing's `state` filter: `parse` it, or say which values it takes.
pub fn state_filter<S>(
    state: Option<&str>,
    parse: impl Fn(&str) -> Option<S>,
    expected: &'static str,
) -> Result<Option<S>, DomainError> {
    state
        .map(|s| parse(s).ok_or_else(|| DomainError::invalid("state", expected)))
        .transpose()
}
