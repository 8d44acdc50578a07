//! The problem-detail stripper: it turns serde's error messages, which may
//! quote a secret sent in the wrong field, into details safe to show.
//!
//! Targets today's `redact_quoted` in `tessera_server::http::extract`
//! through its thin public wrapper `strip_problem_detail`.

use tessera_server::http::extract::strip_problem_detail;

/// The longest detail the stripper returns, in characters.
const MAX_DETAIL_CHARS: usize = 300;

/// Input: a message as serde would write it, or anything else. The output
/// is bounded; every double-quoted run in it is an ellipsis; and in the
/// shapes serde uses, what is quoted does not change the output at all.
pub fn problem_detail(data: &[u8]) {
    let message = crate::text(data);
    let detail = strip_problem_detail(&message);
    assert!(detail.chars().count() <= MAX_DETAIL_CHARS, "{detail:?}");
    for quoted in double_quoted_runs(&detail) {
        assert_eq!(quoted, "…", "quoted text survived in {detail:?}");
    }
    if !message.contains('"') {
        same_for_any_quoted(&message, |m| {
            format!("invalid type: string \"{m}\", expected a string")
        });
        same_for_any_quoted(&message, |m| {
            format!("invalid value: string \"{m}\", expected RFC 3339 at line 1 column 9")
        });
    }
    if !message.contains('`') {
        same_for_any_quoted(&message, |m| {
            format!("unknown field `{m}`, expected `token` or `scopes` at line 1 column 20")
        });
        same_for_any_quoted(&message, |m| {
            format!("unknown variant `{m}`, expected one of `svg`, `png`, `none`")
        });
    }
}

/// The detail for a serde-shaped message quoting `input` is the detail for
/// the same message quoting anything else: nothing of `input` shows.
fn same_for_any_quoted(input: &str, shape: impl Fn(&str) -> String) {
    let with_input = strip_problem_detail(&shape(input));
    let with_other = strip_problem_detail(&shape("x"));
    assert_eq!(with_input, with_other, "the detail depends on quoted input");
}

/// The texts between pairs of `"` in `detail`, pairing from the left; an
/// unclosed quote (the length cut) is not a run.
fn double_quoted_runs(detail: &str) -> Vec<&str> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, c) in detail.char_indices() {
        if c != '"' {
            continue;
        }
        match start.take() {
            Some(s) => runs.push(&detail[s..i]),
            None => start = Some(i + 1),
        }
    }
    runs
}
