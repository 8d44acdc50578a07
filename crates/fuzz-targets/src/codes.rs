//! Codes people type: invite codes and recovery codes (Crockford base32),
//! and the fields of a one-time auth code request (purpose, channel,
//! destination).

use tessera_core::{
    crockford::MAX_INPUT,
    invite::normalize_code,
    mfa::{
        auth_code::{validate_destination, validate_purpose, Channel},
        recovery,
    },
};

const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Input: a presented invite code.
pub fn invite_code(data: &[u8]) {
    check_code(&crate::text(data), 16, normalize_code);
}

/// Input: a presented recovery code. Its hash is a pure function of subject
/// and canonical code.
pub fn recovery_code(data: &[u8]) {
    let text = crate::text(data);
    if let Some(canonical) = check_code(&text, recovery::CODE_CHARS, recovery::normalize) {
        let hash = recovery::hash("subject", &canonical);
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(hash, recovery::hash("subject", &canonical));
        assert_ne!(hash, recovery::hash("other", &canonical));
    }
}

/// The canonical form is exactly `chars` alphabet characters, a fixed point,
/// and reached again from its lower-case and grouped spellings; case never
/// changes the verdict.
fn check_code(input: &str, chars: usize, normalize: fn(&str) -> Option<String>) -> Option<String> {
    let canonical = normalize(input);
    assert_eq!(normalize(&input.to_ascii_lowercase()), canonical);
    assert_eq!(normalize(&input.to_ascii_uppercase()), canonical);
    let c = canonical?;
    assert!(input.len() <= MAX_INPUT);
    assert_eq!(c.len(), chars);
    assert!(c.chars().all(|ch| ALPHABET.contains(ch)), "{c}");
    assert_eq!(normalize(&c).as_ref(), Some(&c));
    assert_eq!(normalize(&c.to_ascii_lowercase()).as_ref(), Some(&c));
    let grouped = c
        .as_bytes()
        .chunks(4)
        .map(|g| std::str::from_utf8(g).expect("ASCII"))
        .collect::<Vec<_>>()
        .join("-");
    assert_eq!(normalize(&grouped).as_ref(), Some(&c));
    Some(c)
}

/// Input: a purpose, channel name or destination, tried as each. Whatever
/// validates is canonical (validating it again changes nothing) and has the
/// documented shape.
pub fn auth_code(data: &[u8]) {
    let text = crate::text(data);
    if let Some(channel) = Channel::parse(&text) {
        assert_eq!(channel.as_str(), text);
    }
    if let Ok(purpose) = validate_purpose(&text) {
        assert_eq!(purpose, text);
        assert!((1..=64).contains(&purpose.len()));
    }
    for channel in [Channel::Email, Channel::Sms] {
        let Ok(canonical) = validate_destination(channel, &text) else {
            continue;
        };
        assert_eq!(
            validate_destination(channel, &canonical).ok().as_ref(),
            Some(&canonical)
        );
        assert!(canonical.is_ascii() && !canonical.contains(char::is_whitespace));
        match channel {
            Channel::Email => {
                let (local, domain) = canonical.split_once('@').expect("an @");
                assert!(!local.is_empty() && !domain.contains('@'));
                assert_eq!(domain, domain.to_ascii_lowercase());
                assert!(canonical.len() <= 254);
            }
            Channel::Sms => {
                let digits = canonical.strip_prefix('+').expect("a +");
                assert!((7..=15).contains(&digits.len()));
                assert!(digits.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }
}
