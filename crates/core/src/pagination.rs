//! Page sizes and list filters: one rule for every list endpoint and list command.

use crate::DomainError;

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The requested page size, defaulted and checked.
pub fn page_size(requested: Option<u32>) -> Result<u32, DomainError> {
    let n = requested.unwrap_or(DEFAULT_PAGE_SIZE);
    if (1..=MAX_PAGE_SIZE).contains(&n) {
        Ok(n)
    } else {
        Err(DomainError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ))
    }
}

/// A list filter's value, if one was given: `parse` it, or fail naming the
/// `field` with `expected` (e.g. "must be active, expired, revoked or purged").
pub fn parse_filter<T>(
    field: &'static str,
    value: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    expected: &'static str,
) -> Result<Option<T>, DomainError> {
    value
        .map(|s| parse(s).ok_or_else(|| DomainError::invalid(field, expected)))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(None), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(Some(MAX_PAGE_SIZE)), Ok(MAX_PAGE_SIZE));
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(MAX_PAGE_SIZE + 1)).is_err());
    }

    #[test]
    fn filters_parse_or_name_the_field() {
        let parse = |s: &str| (s == "on").then_some(true);
        assert_eq!(parse_filter("state", None, parse, "must be on"), Ok(None));
        assert_eq!(
            parse_filter("state", Some("on"), parse, "must be on"),
            Ok(Some(true))
        );
        assert_eq!(
            parse_filter("state", Some("off"), parse, "must be on"),
            Err(DomainError::invalid("state", "must be on"))
        );
    }
}
