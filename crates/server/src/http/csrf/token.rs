//! CSRF tokens without storage: `<expiry>.<mac>`, the expiry in Unix
//! seconds and the mac an HMAC-SHA256 (under a key derived from the server
//! key) over the normalised origin the token was made for and that expiry.
//! Any replica checks a token any other made; nothing is stored and no
//! cookie is set, so a browser that blocks third-party cookies is served.
//! A token is no secret from its own page (the page reads it); what it
//! proves is that a page of an allowed origin asked for it through CORS.

use std::time::Duration;

use tessera_core::crypto::{constant_time_eq, KeyedHasher};

/// Longest token we look at: a 20-digit expiry, a dot, 64 hex digits.
const MAX_TOKEN_LEN: usize = 20 + 1 + 64;

/// A token made by `mint`: the token and its lifetime in seconds.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub expires_in: u64,
}

/// The mac of `origin` and `expiry`. The newline cannot occur in a
/// normalised origin, so no two (origin, expiry) pairs share an input.
fn mac(key: &KeyedHasher, origin: &str, expiry: u64) -> String {
    key.hash_hex(format!("{origin}\n{expiry}").as_bytes())
}

/// A token for `origin` (normalised), valid for `ttl` from `now` (Unix seconds).
pub fn mint(key: &KeyedHasher, origin: &str, ttl: Duration, now: u64) -> Minted {
    let expiry = now.saturating_add(ttl.as_secs());
    Minted {
        token: format!("{expiry}.{}", mac(key, origin, expiry)),
        expires_in: ttl.as_secs(),
    }
}

/// Whether `token` was made by [`mint`] under `key` for `origin` and has not
/// expired at `now`. The mac is compared in constant time.
pub fn verify(key: &KeyedHasher, origin: &str, token: &str, now: u64) -> bool {
    if token.len() > MAX_TOKEN_LEN {
        return false;
    }
    let Some((expiry, presented)) = token.split_once('.') else {
        return false;
    };
    // Digits only: `parse` would also take a leading `+`, two spellings of
    // one expiry.
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(expiry) = expiry.parse::<u64>() else {
        return false;
    };
    expiry > now && constant_time_eq(&mac(key, origin, expiry), presented)
}

/// Now, in Unix seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "https://app.example.com";
    const HOUR: Duration = Duration::from_secs(3600);

    fn key(material: &str) -> KeyedHasher {
        KeyedHasher::new(material, "csrf-token").unwrap()
    }

    #[test]
    fn a_token_holds_for_its_origin_until_it_expires() {
        let k = key("0123456789abcdef0123456789abcdef");
        let minted = mint(&k, ORIGIN, HOUR, 1_000);
        assert_eq!(minted.expires_in, 3600);
        assert!(minted.token.starts_with("4600."), "{}", minted.token);
        assert!(verify(&k, ORIGIN, &minted.token, 1_000));
        assert!(verify(&k, ORIGIN, &minted.token, 4_599));
        // Expired: at and after its expiry.
        assert!(!verify(&k, ORIGIN, &minted.token, 4_600));
        assert!(!verify(&k, ORIGIN, &minted.token, 10_000));
        // Another origin, another key.
        assert!(!verify(&k, "https://evil.example", &minted.token, 1_000));
        let other = key("fedcba9876543210fedcba9876543210");
        assert!(!verify(&other, ORIGIN, &minted.token, 1_000));
    }

    #[test]
    fn a_changed_or_malformed_token_fails() {
        let k = key("0123456789abcdef0123456789abcdef");
        let token = mint(&k, ORIGIN, HOUR, 1_000).token;
        let (expiry, mac) = token.split_once('.').unwrap();
        let later = format!("{}.{mac}", expiry.parse::<u64>().unwrap() + 3600);
        let mut flipped = token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        for bad in [
            String::new(),
            ".".into(),
            mac.to_string(),
            format!("{expiry}."),
            format!(".{mac}"),
            format!("+{token}"),
            format!("{token}0"),
            format!("{expiry}.{}", mac.to_uppercase()),
            later,
            flipped,
            format!("99999999999999999999999.{mac}"),
        ] {
            assert!(!verify(&k, ORIGIN, &bad, 1_000), "{bad:?} passed");
        }
    }
}
