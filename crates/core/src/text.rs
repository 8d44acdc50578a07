//! The character rules for every piece of text a client sends, in one place,
//! so every field accepts and refuses the same things and says so in the same
//! words, on SQLite and PostgreSQL alike (PostgreSQL cannot store NUL at all;
//! SQLite would keep it).
//!
//! Three rules, chosen per field (the README lists which field has which):
//! - [`TextRule::Name`]: names and identifiers (token names, owners,
//!   subjects, device names, e-mail addresses, labels). No control character,
//!   and none of the invisible formatting characters that make one name look
//!   like another: bidirectional overrides and isolates (U+202A–U+202E,
//!   U+2066–U+2069) and zero-width characters (U+200B–U+200D, U+2060, U+FEFF).
//! - [`TextRule::Line`]: one line of free text (query filters, metadata keys).
//!   No control character.
//! - [`TextRule::Multiline`]: free text that may span lines (descriptions,
//!   revoke reasons, metadata values). Tab, line feed and carriage return are
//!   allowed; every other control character is not.
//!
//! "Control character" means C0 (U+0000–U+001F, NUL always included), DEL
//! (U+007F) and C1 (U+0080–U+009F). Errors name the field and never quote the
//! value.

use crate::DomainError;

/// Which characters a field accepts besides ordinary printable text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRule {
    /// Names and identifiers: no control, bidirectional or zero-width characters.
    Name,
    /// One line of free text: no control characters.
    Line,
    /// Free text over several lines: tab, LF and CR allowed, no other control character.
    Multiline,
}

impl TextRule {
    /// Whether `c` is refused under this rule.
    pub fn refuses(self, c: char) -> bool {
        match self {
            Self::Name => c.is_control() || is_spoofing_format(c),
            Self::Line => c.is_control(),
            Self::Multiline => c.is_control() && !matches!(c, '\t' | '\n' | '\r'),
        }
    }

    /// What the field must not contain, for the error message.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::Name => {
                "must not contain control characters, bidirectional controls or zero-width characters"
            }
            Self::Line => "must not contain control characters",
            Self::Multiline => {
                "must not contain control characters other than tab, line feed and carriage return"
            }
        }
    }
}

/// Bidirectional overrides, embeddings and isolates, and zero-width
/// characters: invisible, and able to make `"\u{202e}lave"` display as
/// "evil" or two different names look the same.
pub fn is_spoofing_format(c: char) -> bool {
    matches!(c,
        '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{200B}'..='\u{200D}'
        | '\u{2060}'
        | '\u{FEFF}')
}

/// `Ok` if `value` has no character `rule` refuses; else the
/// `invalid_characters` error naming `field` (never quoting the value).
pub fn check(field: &'static str, value: &str, rule: TextRule) -> Result<(), DomainError> {
    if value.chars().any(|c| rule.refuses(c)) {
        Err(DomainError::InvalidCharacters {
            field,
            refused: rule.explanation(),
        })
    } else {
        Ok(())
    }
}

/// Whether `value` holds a control character: the query-string and path
/// guards refuse those before any handler runs, as no parameter takes one.
pub fn has_control(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// A header value kept for the audit log (the user agent): control,
/// bidirectional and zero-width characters replaced by U+FFFD, so the
/// request is still served and the stored text cannot break or spoof a
/// display of the log.
pub fn sanitize_header_text(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if TextRule::Name.refuses(c) {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect()
}

/// `value` trimmed, if it is 1 to `max_chars` characters under the
/// [`TextRule::Name`] rule; else an error naming `field`.
pub fn printable(
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<String, DomainError> {
    let s = value.trim();
    check(field, s, TextRule::Name)?;
    if s.is_empty() || s.chars().count() > max_chars {
        return Err(DomainError::invalid(
            field,
            format!("must be 1-{max_chars} printable characters"),
        ));
    }
    Ok(s.to_string())
}

/// An optional free-text field: at most `max_chars` characters under `rule`.
/// Kept as given (not trimmed).
pub fn optional(
    field: &'static str,
    value: Option<String>,
    max_chars: usize,
    rule: TextRule,
) -> Result<Option<String>, DomainError> {
    if let Some(v) = &value {
        check(field, v, rule)?;
        if v.chars().count() > max_chars {
            return Err(DomainError::invalid(
                field,
                format!("must be at most {max_chars} characters"),
            ));
        }
    }
    Ok(value)
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
        for bad in ["", " "] {
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

    #[test]
    fn control_characters_are_refused_with_their_own_code() {
        for bad in [
            "a\u{7}b",
            "a\0b",
            "a\u{85}b",
            "a\u{7f}b",
            "\u{202e}evil",
            "a\u{200b}b",
        ] {
            let e = printable("name", bad, 64).unwrap_err();
            assert_eq!(e.code(), "invalid_characters", "{bad:?}");
            assert_eq!(
                e,
                DomainError::InvalidCharacters {
                    field: "name",
                    refused: TextRule::Name.explanation()
                }
            );
            assert!(!e.to_string().contains(bad));
        }
    }

    #[test]
    fn rules_differ_in_newlines_and_format_characters() {
        let cases = [
            // (char, refused by Name, by Line, by Multiline)
            ('\0', true, true, true),
            ('\u{1}', true, true, true),
            ('\t', true, true, false),
            ('\n', true, true, false),
            ('\r', true, true, false),
            ('\u{1b}', true, true, true),
            ('\u{7f}', true, true, true),
            ('\u{80}', true, true, true),
            ('\u{9f}', true, true, true),
            ('\u{202a}', true, false, false),
            ('\u{202e}', true, false, false),
            ('\u{2066}', true, false, false),
            ('\u{2069}', true, false, false),
            ('\u{200b}', true, false, false),
            ('\u{200d}', true, false, false),
            ('\u{2060}', true, false, false),
            ('\u{feff}', true, false, false),
            ('a', false, false, false),
            ('é', false, false, false),
            ('\u{a0}', false, false, false),
            ('\u{200e}', false, false, false),
        ];
        for (c, name, line, multi) in cases {
            assert_eq!(TextRule::Name.refuses(c), name, "{c:?}");
            assert_eq!(TextRule::Line.refuses(c), line, "{c:?}");
            assert_eq!(TextRule::Multiline.refuses(c), multi, "{c:?}");
        }
    }

    #[test]
    fn optional_text_checks_characters_then_length() {
        assert_eq!(
            optional("description", Some("a\nb".into()), 10, TextRule::Multiline).unwrap(),
            Some("a\nb".to_string())
        );
        assert_eq!(optional("d", None, 10, TextRule::Line).unwrap(), None);
        let e = optional("d", Some("a\0b".into()), 10, TextRule::Multiline).unwrap_err();
        assert_eq!(e.code(), "invalid_characters");
        let e = optional("d", Some("x".repeat(11)), 10, TextRule::Multiline).unwrap_err();
        assert_eq!(e.code(), "validation_failed");
        assert!(!e.to_string().contains("xxx"));
    }

    #[test]
    fn header_text_is_cleaned_not_refused() {
        assert_eq!(sanitize_header_text("curl/8.0"), "curl/8.0");
        assert_eq!(sanitize_header_text("a\tb\u{202e}c"), "a\u{fffd}b\u{fffd}c");
    }
}
