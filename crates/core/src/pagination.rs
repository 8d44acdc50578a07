//! Page sizes: one rule for every list endpoint and list command.

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
