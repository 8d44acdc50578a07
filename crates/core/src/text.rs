//! Short free-text fields (subjects, device names): one rule for "1 to N
//! printable characters, surrounding space trimmed", so such fields accept
//! and refuse the same things and say so in the same words.

use crate::DomainError;

/// `value` trimmed, if it is 1 to `max_chars` characters with no control
/// character; else a validation error naming `field`.
pub fn printable(
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<String, DomainError> {
    let s = value.trim();
    if s.is_empty() || s.chars().count() > max_chars || s.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            format!("must be 1-{max_chars} printable characters"),
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_bounds() {
        assert_eq!(printable("name", "  phone ", 64).unwrap(), "phone");
        assert_eq!(
            printable("name", &"é".repeat(64), 64)
                .unwrap()
                .chars()
                .count(),
            64
        );
        for bad in ["", " ", "a\u{7}b"] {
            assert_eq!(
                printable("name", bad, 64),
                Err(DomainError::invalid(
                    "name",
                    "must be 1-64 printable characters"
                ))
            );
        }
        assert!(printable("name", &"x".repeat(65), 64).is_err());
    }
}
