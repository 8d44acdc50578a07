//! Identifiers and timestamps: UUIDv7 ids as text, so ids sort by creation
//! time on every backend, and "now" at the precision the database keeps.

/// A new time-ordered id (UUIDv7, hyphenated lower-case).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// Whether `s` looks like an id we issued. Checked before any lookup so that a
/// bad id is a 404/400 decision made without touching the database.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

/// The current time at the precision we store (milliseconds), so a record
/// returned at creation is identical to the same record read back later.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let t = chrono::Utc::now();
    chrono::DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}
