//! Identifiers and timestamps: UUIDv7 ids as text, so ids sort by creation
//! time on every backend, "now" at the precision the database keeps, and the
//! shape rule for subjects (the application's own user ids).

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

/// Subjects are opaque application ids: 1-200 printable characters.
pub fn validate_subject(subject: &str) -> Result<String, crate::DomainError> {
    let s = subject.trim();
    if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(crate::DomainError::invalid(
            "subject",
            "must be 1-200 printable characters",
        ));
    }
    Ok(s.to_string())
}
