//! The one template syntax, `{name}` with `{{` and `}}` for literal braces,
//! scanned in one place so start-up validation and rendering cannot disagree
//! about what a template means.

/// A piece of a template: text to copy, or a placeholder to fill.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Piece<'a> {
    Literal(&'a str),
    Placeholder(&'a str),
}

/// A `{` that opens no placeholder, by 1-based line.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Unclosed {
    pub(super) line: usize,
}

/// The longest placeholder name looked for.
const MAX_NAME: usize = 32;

/// Splits `template` into pieces. `{{` and `}}` are literal braces; a lone
/// `}` is literal too. `{` must start `{name}`, `name` being 1 to
/// [`MAX_NAME`] ASCII letters, digits or `_`; anything else (CSS, prose) is
/// [`Unclosed`].
pub(super) fn pieces(template: &str) -> Result<Vec<Piece<'_>>, Unclosed> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        if at > 0 {
            out.push(Piece::Literal(&rest[..at]));
        }
        let after = &rest[at + 1..];
        if rest[at..].starts_with("{{") || rest[at..].starts_with("}}") {
            out.push(Piece::Literal(&rest[at..at + 1]));
            rest = &after[1..];
        } else if rest[at..].starts_with('}') {
            out.push(Piece::Literal("}"));
            rest = after;
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|&e| (1..=MAX_NAME).contains(&e) && after[e..].starts_with('}'))
                .ok_or_else(|| Unclosed {
                    line: template[..template.len() - rest.len() + at]
                        .matches('\n')
                        .count()
                        + 1,
                })?;
            out.push(Piece::Placeholder(&after[..end]));
            rest = &after[end + 1..];
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Literal(rest));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Piece::{Literal as L, Placeholder as P};

    #[test]
    fn placeholders_and_escaped_braces() {
        assert_eq!(
            pieces("a {x} b {{c}} }").unwrap(),
            [
                L("a "),
                P("x"),
                L(" b "),
                L("{"),
                L("c"),
                L("}"),
                L(" "),
                L("}")
            ]
        );
        assert_eq!(pieces("").unwrap(), []);
        assert_eq!(pieces("{a}{b}").unwrap(), [P("a"), P("b")]);
    }

    #[test]
    fn an_unclosed_brace_names_its_line() {
        assert_eq!(pieces("a\nb {x\n}").unwrap_err(), Unclosed { line: 2 });
        assert_eq!(pieces("x {").unwrap_err(), Unclosed { line: 1 });
        assert_eq!(pieces("{a{b}").unwrap_err(), Unclosed { line: 1 });
        assert_eq!(
            pieces("p { color: red }").unwrap_err(),
            Unclosed { line: 1 }
        );
        assert_eq!(pieces("{}").unwrap_err(), Unclosed { line: 1 });
        let long = format!("{{{}}}", "n".repeat(MAX_NAME + 1));
        assert_eq!(pieces(&long).unwrap_err(), Unclosed { line: 1 });
    }
}
