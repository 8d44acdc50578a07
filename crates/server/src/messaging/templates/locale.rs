//! Language tags: their canonical spelling, the nearest one a template set
//! has, and the `Accept-Language` header, which comes from any client and is
//! parsed defensively (a malformed entry is skipped, never an error).

/// At most this many `Accept-Language` entries are looked at.
const MAX_ENTRIES: usize = 32;
/// Longer tags are not language tags we could have templates for.
const MAX_TAG_LEN: usize = 35;

/// The canonical form of a language tag (`pt_br` → `pt-BR`, `ZH-hant-tw` →
/// `zh-Hant-TW`), or `None` when `tag` is not one: a primary language of 2-3
/// letters (ISO 639), then subtags of 1-8 letters or digits, joined by `-` or `_`.
pub(super) fn canonical(tag: &str) -> Option<String> {
    let tag = tag.trim();
    if tag.is_empty() || tag.len() > MAX_TAG_LEN {
        return None;
    }
    let mut out = String::with_capacity(tag.len());
    for (i, sub) in tag.split(['-', '_']).enumerate() {
        let ok = if i == 0 {
            (2..=3).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphabetic())
        } else {
            (1..=8).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphanumeric())
        };
        if !ok {
            return None;
        }
        if i > 0 {
            out.push('-');
        }
        let alpha = sub.bytes().all(|b| b.is_ascii_alphabetic());
        let digits = sub.bytes().all(|b| b.is_ascii_digit());
        if i > 0 && sub.len() == 4 && alpha {
            // A script (`Hant`) is title case.
            out.push_str(&sub[..1].to_ascii_uppercase());
            out.push_str(&sub[1..].to_ascii_lowercase());
        } else if i > 0 && ((sub.len() == 2 && alpha) || (sub.len() == 3 && digits)) {
            // A region (`BR`, `419`) is upper case.
            out.push_str(&sub.to_ascii_uppercase());
        } else {
            out.push_str(&sub.to_ascii_lowercase());
        }
    }
    Some(out)
}

fn language(tag: &str) -> &str {
    tag.split('-').next().unwrap_or(tag)
}

/// The locale of `available` nearest to the canonical tag `wanted`: the
/// same tag; else `wanted` cut short subtag by subtag (`zh-Hant-TW`,
/// `zh-Hant`, `zh`); else another variant of the same language (`pt-PT`
/// gets `pt-BR`), the first in `available`'s order.
pub(super) fn nearest<'a>(
    wanted: &str,
    available: impl Iterator<Item = &'a str> + Clone,
) -> Option<&'a str> {
    let mut prefix = wanted;
    loop {
        if let Some(hit) = available.clone().find(|a| a.eq_ignore_ascii_case(prefix)) {
            return Some(hit);
        }
        match prefix.rfind('-') {
            Some(cut) => prefix = &prefix[..cut],
            None => break,
        }
    }
    let lang = language(wanted);
    available
        .clone()
        .find(|a| language(a).eq_ignore_ascii_case(lang))
}

/// The language tags of an `Accept-Language` header, canonical, best first:
/// by descending q-value, ties in header order. Entries with q=0, the `*`
/// wildcard (it names no language), and malformed entries are left out.
pub(super) fn accept_language(header: &str) -> Vec<String> {
    let mut ranked: Vec<(u16, String)> = header
        .split(',')
        .take(MAX_ENTRIES)
        .filter_map(|entry| {
            let mut params = entry.split(';');
            let tag = canonical(params.next()?)?;
            let mut q = 1000;
            for param in params {
                let (name, value) = param.split_once('=')?;
                if name.trim().eq_ignore_ascii_case("q") {
                    q = quality(value.trim())?;
                }
            }
            (q > 0).then_some((q, tag))
        })
        .collect();
    // Stable: equal q-values keep the order the client gave them.
    ranked.sort_by_key(|(q, _)| std::cmp::Reverse(*q));
    ranked.into_iter().map(|(_, tag)| tag).collect()
}

/// A q-value (RFC 9110: `0` to `1` with up to three decimals) in thousandths.
fn quality(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_canonical_or_refused() {
        for (given, want) in [
            ("pt_br", "pt-BR"),
            ("PT-br", "pt-BR"),
            ("en", "en"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("es-419", "es-419"),
            (" de-CH ", "de-CH"),
        ] {
            assert_eq!(canonical(given).as_deref(), Some(want), "{given}");
        }
        for bad in [
            "",
            "e",
            "*",
            "x-",
            "en--GB",
            "1en",
            "en-GB;",
            "pt-\nBR",
            "ç",
            "en-123456789",
            "english",
        ] {
            assert_eq!(canonical(bad), None, "{bad:?}");
        }
        assert_eq!(canonical(&"a".repeat(MAX_TAG_LEN + 1)), None);
    }

    #[test]
    fn nearest_locale() {
        let have = ["en", "pt-BR"];
        let near = |w: &str| nearest(w, have.iter().copied());
        assert_eq!(near("pt-BR"), Some("pt-BR"));
        assert_eq!(near("pt"), Some("pt-BR"));
        assert_eq!(near("pt-PT"), Some("pt-BR"));
        assert_eq!(near("en-GB"), Some("en"));
        assert_eq!(near("de"), None);
    }

    #[test]
    fn accept_language_ranks_by_q_and_skips_junk() {
        assert_eq!(
            accept_language("de;q=0.5, pt-BR;q=0.9, en, *;q=0.1, fr;q=0"),
            ["en", "pt-BR", "de"]
        );
        assert_eq!(accept_language("es, it"), ["es", "it"]);
        assert!(accept_language("pt;q=2, en;q=-1, de;q=abc, ;;;, ===").is_empty());
        assert_eq!(accept_language("EN-gb ; Q=0.7"), ["en-GB"]);
        let flood = "xx-yy,".repeat(10_000) + "pt";
        assert!(!accept_language(&flood).contains(&"pt".to_string()));
    }
}
