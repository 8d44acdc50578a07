//! Message templates: the subject, plain-text and HTML bodies of each kind
//! of message we send, per locale. Kept as data apart from the services, so
//! a new message or a new language is a set of files, not code: English and
//! Brazilian Portuguese are built in (`builtin`), and an operator may
//! override any of them, or add a language, from `TESSERA_TEMPLATES_DIR`
//! (`load`), checked once at start-up so a bad file never reaches a user.
//!
//! Placeholders are `{name}` (`{{` and `}}` are literal braces), filled from
//! the values the caller passes. A rendered body may hold a live code or a
//! link's secret, so it is a [`SecretString`]. Values are HTML-escaped in the
//! HTML body; the text forms take them verbatim.

mod builtin;
mod load;
mod locale;
mod placeholders;
#[cfg(test)]
mod tests;

use std::{borrow::Cow, collections::BTreeMap, path::Path};

use tessera_core::SecretString;

pub use self::load::{TemplateError, MAX_FILE_BYTES};
use self::placeholders::Piece;

/// The setting that names the override directory, as errors name it.
pub const TEMPLATES_DIR_VAR: &str = "TESSERA_TEMPLATES_DIR";
/// The setting that names the default locale, as errors name it.
pub const DEFAULT_LOCALE_VAR: &str = "TESSERA_DEFAULT_LOCALE";
/// The default of `TESSERA_DEFAULT_LOCALE`, and the last resort of every
/// lookup (the built-in English set is complete).
pub const DEFAULT_LOCALE: &str = "en";

/// The kinds of message there are templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    /// A one-time auth code: `{issuer}`, `{code}`, `{minutes}`.
    AuthCode,
    /// A password-reset link: `{issuer}`, `{link}`, `{minutes}` (its lifetime).
    PasswordReset,
    /// An e-mail verification link: `{issuer}`, `{link}`, `{minutes}`.
    EmailVerification,
    /// The notice that a password was changed: `{issuer}`, `{time}` (UTC,
    /// such as `2026-11-30 08:15 UTC`).
    PasswordChanged,
}

impl MessageKind {
    pub const ALL: [MessageKind; 4] = [
        MessageKind::AuthCode,
        MessageKind::PasswordReset,
        MessageKind::EmailVerification,
        MessageKind::PasswordChanged,
    ];

    /// The name of its template files (`<kind>.subject`, `.txt`, `.html`).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::AuthCode => "auth_code",
            MessageKind::PasswordReset => "password_reset",
            MessageKind::EmailVerification => "email_verification",
            MessageKind::PasswordChanged => "password_changed",
        }
    }

    /// The placeholders its templates may use.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            MessageKind::AuthCode => &["issuer", "code", "minutes"],
            MessageKind::PasswordReset | MessageKind::EmailVerification => {
                &["issuer", "link", "minutes"]
            }
            MessageKind::PasswordChanged => &["issuer", "time"],
        }
    }

    /// The placeholder its text and HTML bodies must hold: the message is
    /// useless without it.
    fn required(self) -> Option<&'static str> {
        match self {
            MessageKind::AuthCode => Some("code"),
            MessageKind::PasswordReset | MessageKind::EmailVerification => Some("link"),
            MessageKind::PasswordChanged => None,
        }
    }
}

/// The three parts of a template, as their files are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    const ALL: [Part; 3] = [Part::Subject, Part::Text, Part::Html];

    fn extension(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "txt",
            Part::Html => "html",
        }
    }
}

/// One kind of message in one locale.
#[derive(Debug, Clone)]
struct Parts {
    subject: Cow<'static, str>,
    text: Cow<'static, str>,
    html: Cow<'static, str>,
}

impl Parts {
    fn part_mut(&mut self, part: Part) -> &mut Cow<'static, str> {
        match part {
            Part::Subject => &mut self.subject,
            Part::Text => &mut self.text,
            Part::Html => &mut self.html,
        }
    }
}

/// Canonical locale tag → kind → template.
type Locales = BTreeMap<String, BTreeMap<MessageKind, Parts>>;

/// A message ready for a sender.
pub struct Rendered {
    pub subject: String,
    pub text: SecretString,
    pub html: SecretString,
}

/// The templates in use: the built-in set with the operator's overrides.
#[derive(Clone)]
pub struct Templates {
    locales: Locales,
    /// Canonical, and one of `locales`.
    default_locale: String,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("locales", &self.locales.keys().collect::<Vec<_>>())
            .field("default_locale", &self.default_locale)
            .finish()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Templates {
    /// The built-in set (English and Brazilian Portuguese), English default.
    pub fn builtin() -> Self {
        let locales = builtin::LOCALES
            .iter()
            .map(|(tag, parts)| {
                let kinds = MessageKind::ALL.iter().map(|&k| (k, parts(k))).collect();
                (tag.to_string(), kinds)
            })
            .collect();
        Self {
            locales,
            default_locale: DEFAULT_LOCALE.to_string(),
        }
    }

    /// The built-in set with the overrides in `dir`, and `default_locale`
    /// as the default. Any unusable file, or a default locale the set does
    /// not have, is an error naming the setting and the file.
    pub fn load(dir: Option<&Path>, default_locale: &str) -> Result<Self, TemplateError> {
        let mut templates = Self::builtin();
        if let Some(dir) = dir {
            load::apply_dir(dir, &mut templates.locales)?;
        }
        let refuse = |message| TemplateError {
            setting: DEFAULT_LOCALE_VAR,
            message,
        };
        let wanted = locale::canonical(default_locale).ok_or_else(|| {
            refuse(format!(
                "expected a language tag such as en or pt-BR, got {default_locale:?}"
            ))
        })?;
        templates.default_locale = templates
            .locales
            .keys()
            .find(|have| have.eq_ignore_ascii_case(&wanted))
            .cloned()
            .ok_or_else(|| {
                let have: Vec<&str> = templates.locales().collect();
                refuse(format!(
                    "there are no templates for {wanted} (the languages are {}; \
                     add a directory to {TEMPLATES_DIR_VAR} for another)",
                    have.join(", ")
                ))
            })?;
        Ok(templates)
    }

    /// The locales this set has, canonical, in order.
    pub fn locales(&self) -> impl Iterator<Item = &str> + Clone {
        self.locales.keys().map(String::as_str)
    }

    /// `TESSERA_DEFAULT_LOCALE`, canonical.
    pub fn default_locale(&self) -> &str {
        &self.default_locale
    }

    /// The locale to write to someone in, one this set has: the user's own
    /// locale if the set has it or a near one (`pt` and `pt-PT` get `pt-BR`,
    /// `en-GB` gets `en`); else the best `Accept-Language` entry the set can
    /// serve, by q-value (a malformed header is ignored); else the default.
    pub fn negotiate(&self, user_locale: Option<&str>, accept_language: Option<&str>) -> String {
        let user = user_locale
            .and_then(locale::canonical)
            .and_then(|tag| locale::nearest(&tag, self.locales()));
        let accepted = || {
            accept_language
                .into_iter()
                .flat_map(locale::accept_language)
                .find_map(|tag| locale::nearest(&tag, self.locales()))
        };
        user.or_else(accepted)
            .unwrap_or(&self.default_locale)
            .to_string()
    }

    /// Renders `kind` in `locale` (or the nearest locale the set has; a
    /// kind a locale lacks comes from the default locale, then English)
    /// with the placeholder values in `values`. Never fails: a placeholder
    /// without a value is left empty (and logged by name).
    pub fn render(&self, kind: MessageKind, locale: &str, values: &[(&str, &str)]) -> Rendered {
        let near = locale::canonical(locale).and_then(|t| locale::nearest(&t, self.locales()));
        let fallback;
        let parts = match near
            .into_iter()
            .chain([self.default_locale.as_str(), DEFAULT_LOCALE])
            .find_map(|l| self.locales.get(l)?.get(&kind))
        {
            Some(parts) => parts,
            None => {
                fallback = builtin::fallback(kind);
                &fallback
            }
        };
        // A subject is one header line, whatever a value holds.
        let subject = fill(&parts.subject, values, false)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Rendered {
            subject,
            text: SecretString::new(fill(&parts.text, values, false)),
            html: SecretString::new(fill(&parts.html, values, true)),
        }
    }
}

/// Replaces each `{name}` with its value, in one pass (a value is never
/// scanned for placeholders), HTML-escaping values when `html`.
fn fill(template: &str, values: &[(&str, &str)], html: bool) -> String {
    let Ok(pieces) = placeholders::pieces(template) else {
        // Templates are checked at load; this is only a guard.
        tracing::warn!("a message template has an unclosed brace; sent as written");
        return template.to_string();
    };
    let mut out = String::with_capacity(template.len() + 64);
    for piece in pieces {
        match piece {
            Piece::Literal(s) => out.push_str(s),
            Piece::Placeholder(name) => match values.iter().find(|(n, _)| *n == name) {
                Some((_, value)) if html => escape_html(value, &mut out),
                Some((_, value)) => out.push_str(value),
                None => tracing::warn!(
                    placeholder = name,
                    "a message template placeholder has no value; left empty"
                ),
            },
        }
    }
    out
}

fn escape_html(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}
