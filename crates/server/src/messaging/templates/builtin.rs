//! The templates compiled into the binary, English and Brazilian
//! Portuguese, kept as files in `builtin/<locale>/<kind>.<part>`: the same
//! layout as `TESSERA_TEMPLATES_DIR`, so an operator can copy one as a start.

use std::borrow::Cow;

use super::{MessageKind, Parts};

/// One built-in part, its trailing line end dropped (the files end with one).
macro_rules! part {
    ($locale:literal, $kind:literal, $ext:literal) => {
        Cow::Borrowed(trim_end(include_str!(concat!(
            "builtin/", $locale, "/", $kind, ".", $ext
        ))))
    };
}

macro_rules! parts {
    ($locale:literal, $kind:literal) => {
        Parts {
            subject: part!($locale, $kind, "subject"),
            text: part!($locale, $kind, "txt"),
            html: part!($locale, $kind, "html"),
        }
    };
}

/// A template file's content without its final line end (and a UTF-8 byte
/// order mark, which some editors write, at the start).
pub(super) fn trim_end(s: &str) -> &str {
    s.strip_prefix('\u{feff}')
        .unwrap_or(s)
        .trim_end_matches(['\r', '\n'])
}

fn english(kind: MessageKind) -> Parts {
    match kind {
        MessageKind::AuthCode => parts!("en", "auth_code"),
        MessageKind::PasswordReset => parts!("en", "password_reset"),
        MessageKind::EmailVerification => parts!("en", "email_verification"),
        MessageKind::PasswordChanged => parts!("en", "password_changed"),
    }
}

fn portuguese(kind: MessageKind) -> Parts {
    match kind {
        MessageKind::AuthCode => parts!("pt-BR", "auth_code"),
        MessageKind::PasswordReset => parts!("pt-BR", "password_reset"),
        MessageKind::EmailVerification => parts!("pt-BR", "email_verification"),
        MessageKind::PasswordChanged => parts!("pt-BR", "password_changed"),
    }
}

/// A built-in locale's templates, by kind.
type Locale = fn(MessageKind) -> Parts;

/// The built-in locales, each complete (every kind, every part).
pub(super) const LOCALES: [(&str, Locale); 2] = [("en", english), ("pt-BR", portuguese)];

/// The last resort of every lookup: English exists for every kind, so
/// rendering always has a template.
pub(super) fn fallback(kind: MessageKind) -> Parts {
    english(kind)
}
