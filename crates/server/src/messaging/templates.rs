//! Message templates: the subject, plain-text and HTML bodies of each kind
//! of message we send, per locale, with English as the default. Kept as
//! data apart from the services, so a new message (a password reset, an
//! e-mail verification) or a new language is a table entry, not code.
//!
//! Placeholders are `{name}`, filled from the values the caller passes. A
//! rendered body may hold a live code, so it is a [`SecretString`]. Values
//! are HTML-escaped in the HTML body; the text forms take them verbatim.

use tessera_core::SecretString;

/// The kinds of message there are templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A one-time auth code: `{issuer}`, `{code}`, `{minutes}`.
    AuthCode,
}

/// The locale used when the asked-for one has no template.
pub const DEFAULT_LOCALE: &str = "en";

struct Template {
    locale: &'static str,
    kind: MessageKind,
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

const TEMPLATES: &[Template] = &[Template {
    locale: "en",
    kind: MessageKind::AuthCode,
    subject: "Your {issuer} code",
    text: "Your {issuer} code is {code}. It expires in {minutes} minutes.\n\
           If you did not ask for it, ignore this message.",
    html: "<p>Your {issuer} code is <strong>{code}</strong>. \
           It expires in {minutes} minutes.</p>\n\
           <p>If you did not ask for it, ignore this message.</p>",
}];

/// A message ready for a sender.
pub struct Rendered {
    pub subject: String,
    pub text: SecretString,
    pub html: SecretString,
}

/// Renders `kind` in `locale` (`de-CH` falls back to `de`, then to
/// [`DEFAULT_LOCALE`]) with the placeholder values in `values`.
pub fn render(kind: MessageKind, locale: Option<&str>, values: &[(&str, &str)]) -> Rendered {
    let template = find(kind, locale);
    Rendered {
        subject: fill(template.subject, values, false),
        text: SecretString::new(fill(template.text, values, false)),
        html: SecretString::new(fill(template.html, values, true)),
    }
}

fn find(kind: MessageKind, locale: Option<&str>) -> &'static Template {
    let language = locale.map(|l| l.split(['-', '_']).next().unwrap_or(l));
    [locale, language, Some(DEFAULT_LOCALE)]
        .into_iter()
        .flatten()
        .find_map(|wanted| {
            TEMPLATES
                .iter()
                .find(|t| t.kind == kind && t.locale.eq_ignore_ascii_case(wanted))
        })
        .expect("every message kind has a template in the default locale")
}

/// Replaces each `{name}` with its value, in one pass (a value is never
/// scanned for placeholders). An unknown name is a bug in our templates.
fn fill(template: &str, values: &[(&str, &str)], html: bool) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .expect("a template placeholder is closed");
        let name = &rest[start + 1..end];
        let value = values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no value for the template placeholder {name}"));
        if html {
            escape_html(value, &mut out);
        } else {
            out.push_str(value);
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
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

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: &[(&str, &str)] = &[("issuer", "A&B"), ("code", "123456"), ("minutes", "10")];

    #[test]
    fn auth_code_text_is_the_established_wording() {
        let r = render(MessageKind::AuthCode, None, VALUES);
        assert_eq!(r.subject, "Your A&B code");
        assert_eq!(
            r.text.expose(),
            "Your A&B code is 123456. It expires in 10 minutes.\n\
             If you did not ask for it, ignore this message."
        );
        assert!(r
            .html
            .expose()
            .contains("Your A&amp;B code is <strong>123456</strong>"));
    }

    #[test]
    fn unknown_locales_fall_back_to_english() {
        for locale in ["en-GB", "de-CH", "fr", ""] {
            let r = render(MessageKind::AuthCode, Some(locale), VALUES);
            assert_eq!(r.subject, "Your A&B code", "{locale}");
        }
    }

    #[test]
    fn a_value_is_not_scanned_for_placeholders() {
        let values = [("issuer", "{code}"), ("code", "1"), ("minutes", "2")];
        let r = render(MessageKind::AuthCode, None, &values);
        assert_eq!(r.subject, "Your {code} code");
    }
}
