//! Identifiers: UUIDv7 as text, so ids sort by creation time on every backend.

/// A new time-ordered id (UUIDv7, hyphenated lower-case).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// Whether `s` looks like an id we issued. Checked before any lookup so that a
/// bad id is a 404/400 decision made without touching the database.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}
