//! The page type every list query returns (keyset pagination, see `sql::listing`).

/// A page of results, newest first, with the cursor for the next page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
