//! The API token wire format: whatever a client presents as a token.

use tessera_core::token_format::{hint_for, MalformedToken, TokenFormat, TokenHash, MAX_TOKEN_LEN};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LEN: usize = 30;
const CHECKSUM_LEN: usize = 6;

/// Input: a presented token, optionally `prefix|token` to use a custom
/// prefix. Checks the parser's verdict against the format's definition, and
/// builds a token from the input with an independent checksum (the oracle)
/// that must parse, while every one-character change of it must not.
pub fn token_format(data: &[u8]) {
    let text = crate::text(data);
    let default = TokenFormat::default();
    check_verdict(&default, &text);
    let custom = text
        .split_once('|')
        .and_then(|(prefix, rest)| Some((TokenFormat::new(prefix).ok()?, rest)));
    if let Some((format, rest)) = &custom {
        check_verdict(format, rest);
    }
    let format = custom.map_or(default, |(f, _)| f);
    if !data.is_empty() {
        check_oracle(&format, data);
    }
}

/// `parse` accepts exactly the strings the format describes.
fn check_verdict(format: &TokenFormat, presented: &str) {
    let verdict = format.parse(presented);
    let prefix = format.prefix();
    let well_formed = presented.len() == prefix.len() + BODY_LEN + CHECKSUM_LEN
        && presented.starts_with(prefix)
        && presented[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric());
    match verdict {
        Ok(hash) => {
            assert!(well_formed, "accepted a malformed token");
            assert_eq!(hash, TokenHash::of(presented));
            assert_eq!(
                &presented[presented.len() - CHECKSUM_LEN..],
                oracle_checksum(&presented.as_bytes()[..presented.len() - CHECKSUM_LEN])
            );
            let hint = hint_for(prefix, presented);
            assert!(hint.starts_with(prefix) && presented.ends_with(&hint[hint.len() - 4..]));
        }
        Err(MalformedToken::TooLong) => assert!(presented.len() > MAX_TOKEN_LEN),
        Err(MalformedToken::BadChecksum) => assert!(well_formed),
        Err(_) => assert!(!well_formed, "rejected a well-formed token for its shape"),
    }
}

/// A token assembled from the input with our own checksum must parse, and
/// changing any one character after the prefix must be caught.
fn check_oracle(format: &TokenFormat, data: &[u8]) {
    let mut raw = format.prefix().to_string();
    raw.extend(
        data.iter()
            .cycle()
            .take(BODY_LEN)
            .map(|b| BASE62[usize::from(*b) % 62] as char),
    );
    let checksum = oracle_checksum(raw.as_bytes());
    raw.push_str(&checksum);
    assert_eq!(format.parse(&raw), Ok(TokenHash::of(&raw)));

    let position = format.prefix().len() + usize::from(data[0]) % (BODY_LEN + CHECKSUM_LEN);
    let mut bytes = raw.into_bytes();
    let old = bytes[position];
    let shift = 1 + usize::from(*data.last().unwrap_or(&0)) % 61;
    let index = BASE62.iter().position(|c| *c == old).expect("base62");
    bytes[position] = BASE62[(index + shift) % 62];
    let changed = String::from_utf8(bytes).expect("ASCII");
    assert_eq!(format.parse(&changed), Err(MalformedToken::BadChecksum));
}

/// CRC32 of `data` in six base62 digits, written from the format's
/// description rather than its code.
fn oracle_checksum(data: &[u8]) -> String {
    let mut n = u64::from(crc32fast::hash(data));
    let mut out = [0u8; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ASCII")
}
