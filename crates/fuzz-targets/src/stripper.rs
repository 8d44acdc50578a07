//! The problem-detail stripper: it turns serde's error messages, which may
//! quote a secret sent in the wrong field, into details safe to show.
//!
//! Targets `tessera_server::http::extract::problem_detail_from_json_error`.

use tessera_server::http::extract::problem_detail_from_json_error as strip_problem_detail;

/// The longest detail the stripper returns, in characters.
const MAX_DETAIL_CHARS: usize = 300;

/// Input: a message as serde would write it, or anything else. The output
/// is bounded; it holds no quote or backtick; and in the shapes serde uses,
/// what is quoted does not change the output at all.
pub fn problem_detail(data: &[u8]) {
    let message = crate::text(data);
    let detail = strip_problem_detail(&message);
    assert!(detail.chars().count() <= MAX_DETAIL_CHARS, "{detail:?}");
    assert!(
        !detail.contains('"') && !detail.contains('`'),
        "a quote survived in {detail:?}"
    );
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
