//! The built-in templates, locale negotiation, rendering and the checks an
//! override directory must pass at start-up.

use std::path::Path;

use super::*;

const VALUES: &[(&str, &str)] = &[("issuer", "A&B"), ("code", "123456"), ("minutes", "10")];

fn values(kind: MessageKind) -> Vec<(&'static str, &'static str)> {
    kind.placeholders()
        .iter()
        .map(|&name| {
            let value = match name {
                "link" => "https://id.example.com/reset#t=s3cr3t&x=\"<y>\"",
                "time" => "2026-11-30 08:15 UTC",
                "minutes" => "30",
                "code" => "123456",
                _ => "Acme <Corp>",
            };
            (name, value)
        })
        .collect()
}

#[test]
fn auth_code_text_is_the_established_wording() {
    let r = Templates::builtin().render(MessageKind::AuthCode, "en", VALUES);
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
fn unknown_locales_fall_back_to_the_default() {
    let t = Templates::builtin();
    for locale in ["en-GB", "de-CH", "fr", "", "junk;;"] {
        let r = t.render(MessageKind::AuthCode, locale, VALUES);
        assert_eq!(r.subject, "Your A&B code", "{locale}");
    }
    let pt = Templates::load(None, "pt-br").unwrap();
    assert_eq!(pt.default_locale(), "pt-BR");
    let r = pt.render(MessageKind::AuthCode, "de", VALUES);
    assert_eq!(r.subject, "Seu código de acesso A&B");
}

#[test]
fn a_value_is_not_scanned_for_placeholders() {
    let values = [("issuer", "{code}"), ("code", "1"), ("minutes", "2")];
    let r = Templates::builtin().render(MessageKind::AuthCode, "en", &values);
    assert_eq!(r.subject, "Your {code} code");
}

#[test]
fn every_builtin_template_is_valid_and_renders_completely() {
    let t = Templates::builtin();
    assert_eq!(t.locales().collect::<Vec<_>>(), ["en", "pt-BR"]);
    for (locale, kinds) in &t.locales {
        for kind in MessageKind::ALL {
            let parts = &kinds[&kind];
            for part in Part::ALL {
                let mut p = parts.clone();
                let content = p.part_mut(part).to_string();
                load::validate(kind, part, &content)
                    .unwrap_or_else(|e| panic!("{locale}/{}: {e}", kind.as_str()));
            }
            let r = t.render(kind, locale, &values(kind));
            for (what, out) in [
                ("subject", r.subject.as_str()),
                ("text", r.text.expose()),
                ("html", r.html.expose()),
            ] {
                assert!(
                    !out.contains('{') && !out.contains('}'),
                    "{locale}/{} {what}: {out}",
                    kind.as_str()
                );
            }
            let html = r.html.expose();
            assert!(html.starts_with("<!DOCTYPE html>"), "{locale}");
            assert!(
                html.contains(&format!("<html lang=\"{locale}\">")),
                "{locale}"
            );
        }
    }
    // The two languages really differ.
    let reset = |l| {
        t.render(
            MessageKind::PasswordReset,
            l,
            &values(MessageKind::PasswordReset),
        )
    };
    assert_ne!(reset("en").subject, reset("pt-BR").subject);
}

#[test]
fn html_values_are_escaped_and_the_link_is_a_link_and_text() {
    let t = Templates::builtin();
    for locale in ["en", "pt-BR"] {
        for kind in [MessageKind::PasswordReset, MessageKind::EmailVerification] {
            let r = t.render(kind, locale, &values(kind));
            let raw = "https://id.example.com/reset#t=s3cr3t&x=\"<y>\"";
            let escaped = "https://id.example.com/reset#t=s3cr3t&amp;x=&quot;&lt;y&gt;&quot;";
            let html = r.html.expose();
            assert!(html.contains(&format!("<a href=\"{escaped}\"")), "{html}");
            assert!(html.contains(&format!(">{escaped}</a>")), "{html}");
            assert!(!html.contains(raw) && !html.contains("<Corp>"), "{html}");
            assert!(html.contains("Acme &lt;Corp&gt;"), "{html}");
            assert!(r.text.expose().contains(&format!("\n{raw}\n")), "text");
            assert!(r.subject.contains("Acme <Corp>"), "{}", r.subject);
        }
    }
}

#[test]
fn the_reset_and_changed_notices_say_what_to_do() {
    let t = Templates::builtin();
    let text = |kind, l| t.render(kind, l, &values(kind)).text.expose().to_string();
    let reset = text(MessageKind::PasswordReset, "en");
    assert!(reset.contains("only once") && reset.contains("ignore this message"));
    let reset = text(MessageKind::PasswordReset, "pt-BR");
    assert!(reset.contains("uma vez") && reset.contains("ignore esta mensagem"));
    let changed = text(MessageKind::PasswordChanged, "en");
    assert!(changed.contains("2026-11-30 08:15 UTC") && changed.contains("If you did not"));
    let changed = text(MessageKind::PasswordChanged, "pt-BR");
    assert!(changed.contains("Se não foi você"));
}

#[test]
fn rendering_never_panics() {
    let t = Templates::builtin();
    // A missing value is left empty; an unclosed brace is sent as written.
    let r = t.render(MessageKind::PasswordReset, "en", &[]);
    assert!(!r.text.expose().contains('\u{7b}'));
    // `\u{7b}` is an opening brace, spelt so the source stays balanced.
    assert_eq!(fill("a \u{7b}b", &[], false), "a \u{7b}b");
    assert_eq!(fill("{x}{{y}}", &[("x", "<")], true), "&lt;{y}");
}

#[test]
fn negotiation_prefers_the_user_then_accept_language_then_the_default() {
    let t = Templates::builtin();
    let n = |user, header| t.negotiate(user, header);
    // The user's own locale wins over the header.
    assert_eq!(n(Some("pt-BR"), Some("en")), "pt-BR");
    assert_eq!(n(Some("PT_br"), None), "pt-BR");
    assert_eq!(n(Some("pt"), Some("en")), "pt-BR");
    assert_eq!(n(Some("pt-PT"), Some("en")), "pt-BR");
    assert_eq!(n(Some("en-GB"), Some("pt-BR")), "en");
    // A user locale the set cannot serve gives way to the header.
    assert_eq!(n(Some("de"), Some("pt-BR")), "pt-BR");
    assert_eq!(n(Some("not a tag!"), Some("pt")), "pt-BR");
    // Accept-Language by q-value, skipping what the set lacks.
    assert_eq!(n(None, Some("en;q=0.4, pt-BR;q=0.9")), "pt-BR");
    assert_eq!(
        n(None, Some("de-DE, fr;q=0.9, pt-PT;q=0.8, en;q=0.7")),
        "pt-BR"
    );
    assert_eq!(n(None, Some("de, en-US;q=0.5")), "en");
    assert_eq!(n(None, Some("pt-BR;q=0, en;q=0.1")), "en");
    // Junk and nothing: the default.
    for junk in ["", "*", ";;;,,,", "pt-BR;q=x", "\u{0}\u{7f}", "q=1", "ü-ÜÜ"] {
        assert_eq!(n(None, Some(junk)), "en", "{junk:?}");
    }
    assert_eq!(n(None, None), "en");
    let pt = Templates::load(None, "pt-BR").unwrap();
    assert_eq!(pt.negotiate(None, Some("de")), "pt-BR");
}

/// Writes `files` (path under the directory, content) into a new directory.
fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

const ES_RESET: &[(&str, &[u8])] = &[
    (
        "es/password_reset.subject",
        b"Restablece tu contrase\xc3\xb1a de {issuer}\n",
    ),
    (
        "es/password_reset.txt",
        b"Abre {link} en {minutes} minutos.\n",
    ),
    (
        "es/password_reset.html",
        b"<p><a href=\"{link}\">{link}</a></p>\n",
    ),
];

#[test]
fn a_directory_overrides_parts_and_adds_languages() {
    let mut files = ES_RESET.to_vec();
    files.extend_from_slice(&[
        (
            "en/auth_code.subject",
            b"\xef\xbb\xbf{issuer} sign-in code {{beta}}\r\n".as_slice(),
        ),
        ("pt-br/password_changed.html", b"<p>{time}</p>"),
        (".hidden", b"ignored"),
        ("en/.auth_code.txt.swp", b"\xff ignored"),
    ]);
    let dir = dir_with(&files);
    let t = Templates::load(Some(dir.path()), "es").unwrap();
    assert_eq!(t.locales().collect::<Vec<_>>(), ["en", "es", "pt-BR"]);
    assert_eq!(t.default_locale(), "es");

    // Only the overridden part changed.
    let r = t.render(MessageKind::AuthCode, "en", VALUES);
    assert_eq!(r.subject, "A&B sign-in code {beta}");
    assert!(r.text.expose().starts_with("Your A&B code is 123456."));
    let changed = values(MessageKind::PasswordChanged);
    let r = t.render(MessageKind::PasswordChanged, "pt-BR", &changed);
    assert_eq!(r.html.expose(), "<p>2026-11-30 08:15 UTC</p>");
    assert!(r.subject.starts_with("A senha da sua conta"));

    // The new language, and for what it lacks the built-in English.
    let reset = values(MessageKind::PasswordReset);
    let r = t.render(MessageKind::PasswordReset, "es-MX", &reset);
    assert_eq!(r.subject, "Restablece tu contraseña de Acme <Corp>");
    let r = t.render(MessageKind::AuthCode, "es", VALUES);
    assert!(r.text.expose().starts_with("Your A&B code is"));
    assert_eq!(t.negotiate(None, Some("es-AR, en;q=0.5")), "es");
    assert_eq!(t.negotiate(None, Some("de")), "es");
}

/// The error loading `files` with `default_locale` gives: it must name the
/// setting and `names` (a file, usually) and say `why`.
fn refused(files: &[(&str, &[u8])], default_locale: &str, setting: &str, names: &str, why: &str) {
    let dir = dir_with(files);
    let err = Templates::load(Some(dir.path()), default_locale).unwrap_err();
    let shown = err.to_string();
    assert_eq!(err.setting, setting, "{shown}");
    assert!(shown.starts_with(&format!("{setting}: ")), "{shown}");
    if !names.is_empty() {
        let named = dir.path().join(names);
        assert!(shown.contains(&*named.to_string_lossy()), "{shown}");
    }
    assert!(shown.contains(why), "{shown}");
}

/// (a file, its content, the path the error names, why it is refused)
#[rustfmt::skip]
const BAD_FILES: &[(&str, &[u8], &str, &str)] = &[
    ("en/password_reset.text", b"{link}", "en/password_reset.text", "unknown file name"),
    ("en/reset.txt", b"{link}", "en/reset.txt", "unknown file name"),
    ("en/sub/auth_code.txt", b"{code}", "en/sub", "unknown file name"),
    ("README.md", b"hi", "README.md", "unknown file"),
    ("english/auth_code.txt", b"{code}", "english", "unknown file"),
    ("en/auth_code.txt", b"{code} \xff\xfe", "en/auth_code.txt", "not UTF-8"),
    ("en/auth_code.txt", b"{code} {minutes", "en/auth_code.txt", "unclosed '{' on line 1"),
    ("en/auth_code.html", b"<style>\np { color: red }\n</style>{code}", "en/auth_code.html", "line 2"),
    ("en/password_reset.txt", b"{link} {code}", "en/password_reset.txt", "placeholder {code}"),
    ("en/password_changed.txt", b"{link}", "en/password_changed.txt", "they can use {issuer}, {time}"),
    ("en/password_reset.txt", b"Reset it.", "en/password_reset.txt", "must contain {link}"),
    ("en/auth_code.subject", b"one\ntwo", "en/auth_code.subject", "one line"),
    ("en/auth_code.subject", b"\n", "en/auth_code.subject", "is empty"),
];

#[test]
fn each_bad_file_stops_start_up_naming_the_setting_and_the_file() {
    let dir = TEMPLATES_DIR_VAR;
    for (file, content, names, why) in BAD_FILES {
        refused(&[(file, content)], "en", dir, names, why);
    }
    refused(
        &ES_RESET[..2],
        "en",
        dir,
        "es/password_reset.html",
        "is missing",
    );
    let twice: &[(&str, &[u8])] = &[
        ("pt-BR/auth_code.txt", b"{code}"),
        ("pt-br/auth_code.txt", b"{code}"),
    ];
    refused(twice, "en", dir, "pt-br", "same language");
    let big = vec![b'a'; MAX_FILE_BYTES as usize + 1];
    refused(
        &[("en/auth_code.html", &big)],
        "en",
        dir,
        "en/auth_code.html",
        "larger than",
    );
}

#[cfg(unix)]
#[test]
fn an_unreadable_file_or_directory_stops_start_up() {
    let d = dir_with(&[]);
    std::fs::create_dir(d.path().join("en")).unwrap();
    let dangling = d.path().join("en/auth_code.txt");
    std::os::unix::fs::symlink(d.path().join("nowhere"), &dangling).unwrap();
    let err = Templates::load(Some(d.path()), "en")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(TEMPLATES_DIR_VAR), "{err}");
    assert!(
        err.contains(&*dangling.to_string_lossy()) && err.contains("cannot read"),
        "{err}"
    );

    let missing = d.path().join("absent");
    let err = Templates::load(Some(&missing), "en")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&*missing.to_string_lossy()) && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn the_default_locale_must_be_one_the_set_has() {
    let none: Option<&Path> = None;
    for (locale, why) in [("de", "no templates for de"), ("not a tag", "language tag")] {
        let err = Templates::load(none, locale).unwrap_err();
        assert_eq!(err.setting, DEFAULT_LOCALE_VAR);
        assert!(err.to_string().contains(why), "{err}");
    }
    refused(
        ES_RESET,
        "fr",
        DEFAULT_LOCALE_VAR,
        "",
        "the languages are en, es, pt-BR",
    );
    assert_eq!(Templates::load(none, "EN").unwrap().default_locale(), "en");
}
