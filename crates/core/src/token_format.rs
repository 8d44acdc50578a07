//! The API token wire format: `<prefix><30 base62 chars><6 base62 checksum chars>`.
//!
//! The body carries ~178 bits from the OS CSPRNG. The checksum (CRC32 of
//! everything before it, base62, zero-padded to 6 chars) lets us reject typos and
//! garbage without a database lookup, and gives secret scanners a pattern with
//! almost no false positives (GitHub's design). Only the SHA-256 of the whole
//! token is ever stored.

use rand::{rngs::OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::SecretString;

/// The default prefix. Changing it for an existing deployment would invalidate
/// every issued token, so it is a deployment-time choice, never a runtime one.
pub const DEFAULT_PREFIX: &str = "tsr_";
/// The prefix of refresh tokens: fixed, so scanners and introspection tell
/// them from API tokens at a glance.
pub const REFRESH_PREFIX: &str = "tsr_rt_";
/// The prefix of WebSocket tickets (short-lived and single-use).
pub const WS_TICKET_PREFIX: &str = "tsr_wst_";
const BODY_LEN: usize = 30;
/// Refresh tokens carry at least 256 bits: 44 base62 characters are 261.9.
const REFRESH_BODY_LEN: usize = 44;
/// The prefix of the OAuth2 client secrets Tessera generates (same body
/// length as refresh tokens: over 256 bits).
pub const CLIENT_SECRET_PREFIX: &str = "tsc_";
const CHECKSUM_LEN: usize = 6;
/// Longest input we even look at; anything longer is malformed by definition.
pub const MAX_TOKEN_LEN: usize = 128;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a presented string is not a token we could have issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedToken {
    #[error("token is too long")]
    TooLong,
    #[error("token does not start with the expected prefix")]
    WrongPrefix,
    #[error("token has the wrong length")]
    WrongLength,
    #[error("token contains characters outside base62")]
    BadCharacters,
    #[error("token checksum does not match")]
    BadChecksum,
}

/// SHA-256 of a raw token: the only form in which a token is stored or looked up.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(raw: &str) -> Self {
        Self(Sha256::digest(raw.as_bytes()).into())
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A hash is not secret, but a short form keeps logs readable.
        write!(f, "TokenHash({}…)", &self.to_hex()[..12])
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
    out
}

/// A freshly generated token: the raw value (shown once), its hash and display hint.
#[derive(Debug)]
pub struct GeneratedToken {
    pub raw: SecretString,
    pub hash: TokenHash,
    pub hint: String,
}

/// Generates and parses tokens for one configured prefix.
#[derive(Debug, Clone)]
pub struct TokenFormat {
    prefix: String,
    body_len: usize,
}

impl Default for TokenFormat {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_string(),
            body_len: BODY_LEN,
        }
    }
}

impl TokenFormat {
    /// A format with a custom prefix: 1–16 ASCII letters, digits or `_`.
    pub fn new(prefix: &str) -> Result<Self, String> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 16
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(Self {
                prefix: prefix.to_string(),
                body_len: BODY_LEN,
            })
        } else {
            Err("the token prefix must be 1-16 ASCII letters, digits or '_'".into())
        }
    }

    /// The refresh-token format: [`REFRESH_PREFIX`], 44 characters of body.
    pub fn refresh() -> Self {
        Self {
            prefix: REFRESH_PREFIX.to_string(),
            body_len: REFRESH_BODY_LEN,
        }
    }

    /// The WebSocket ticket format: [`WS_TICKET_PREFIX`] and the default
    /// 30-character body (about 178 bits), URL-safe as it stands.
    pub fn ws_ticket() -> Self {
        Self {
            prefix: WS_TICKET_PREFIX.to_string(),
            body_len: BODY_LEN,
        }
    }

    /// The client-secret format: [`CLIENT_SECRET_PREFIX`], 44 characters of
    /// body (over 256 bits), so a fast keyed hash is enough to store it.
    pub fn client_secret() -> Self {
        Self {
            prefix: CLIENT_SECRET_PREFIX.to_string(),
            body_len: REFRESH_BODY_LEN,
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn total_len(&self) -> usize {
        self.prefix.len() + self.body_len + CHECKSUM_LEN
    }

    /// A new token from the OS CSPRNG.
    pub fn generate(&self) -> GeneratedToken {
        let mut raw = String::with_capacity(self.total_len());
        raw.push_str(&self.prefix);
        // One read from the OS CSPRNG, then rejection sampling: bytes >= 248
        // (= 4 * 62) are skipped so every character is uniform over base62.
        let mut pool = [0u8; 64];
        let mut body = 0;
        while body < self.body_len {
            OsRng.fill_bytes(&mut pool);
            for &b in pool.iter().filter(|&&b| b < 248) {
                if body == self.body_len {
                    break;
                }
                raw.push(BASE62[usize::from(b % 62)] as char);
                body += 1;
            }
        }
        pool.zeroize();
        let checksum = checksum(raw.as_bytes());
        raw.push_str(&checksum);
        let hash = TokenHash::of(&raw);
        let hint = hint_for(&self.prefix, &raw);
        GeneratedToken {
            raw: SecretString::new(raw),
            hash,
            hint,
        }
    }

    /// Checks shape and checksum, then hashes. No allocation on the success path
    /// beyond the digest, so this stays in the tens of nanoseconds.
    pub fn parse(&self, presented: &str) -> Result<TokenHash, MalformedToken> {
        if presented.len() > MAX_TOKEN_LEN {
            return Err(MalformedToken::TooLong);
        }
        let Some(rest) = presented.strip_prefix(self.prefix.as_str()) else {
            return Err(MalformedToken::WrongPrefix);
        };
        if rest.len() != self.body_len + CHECKSUM_LEN {
            return Err(MalformedToken::WrongLength);
        }
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MalformedToken::BadCharacters);
        }
        let split = presented.len() - CHECKSUM_LEN;
        let expected = checksum_bytes(&presented.as_bytes()[..split]);
        if expected != presented.as_bytes()[split..] {
            return Err(MalformedToken::BadChecksum);
        }
        Ok(TokenHash::of(presented))
    }
}

/// The non-secret display hint: prefix plus the last four characters.
pub fn hint_for(prefix: &str, raw: &str) -> String {
    format!("{prefix}…{}", &raw[raw.len() - 4..])
}

fn checksum_bytes(data: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(data) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

fn checksum(data: &[u8]) -> String {
    String::from_utf8(checksum_bytes(data).to_vec()).expect("base62 is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_hash_consistently() {
        let f = TokenFormat::default();
        let t = f.generate();
        assert!(t.raw.expose().starts_with("tsr_"));
        assert_eq!(t.raw.expose().len(), 4 + 30 + 6);
        assert_eq!(f.parse(t.raw.expose()), Ok(t.hash));
        assert!(t.hint.starts_with("tsr_…"));
        assert!(t.raw.expose().ends_with(&t.hint["tsr_…".len()..]));
    }

    #[test]
    fn refresh_tokens_are_longer_and_not_api_tokens() {
        let f = TokenFormat::refresh();
        let t = f.generate();
        assert!(t.raw.expose().starts_with("tsr_rt_"));
        assert_eq!(t.raw.expose().len(), 7 + 44 + 6);
        assert_eq!(f.parse(t.raw.expose()), Ok(t.hash));
        assert!(TokenFormat::default().parse(t.raw.expose()).is_err());
    }

    #[test]
    fn two_tokens_differ() {
        let f = TokenFormat::default();
        assert_ne!(f.generate().raw, f.generate().raw);
    }

    #[test]
    fn any_single_character_change_is_rejected() {
        let f = TokenFormat::default();
        let t = f.generate();
        let raw = t.raw.expose().as_bytes().to_vec();
        for i in 4..raw.len() {
            let mut bad = raw.clone();
            bad[i] = if bad[i] == b'a' { b'b' } else { b'a' };
            let bad = String::from_utf8(bad).unwrap();
            assert!(f.parse(&bad).is_err(), "mutation at {i} accepted");
        }
    }

    #[test]
    fn malformed_inputs() {
        let f = TokenFormat::default();
        assert_eq!(f.parse(""), Err(MalformedToken::WrongPrefix));
        assert_eq!(f.parse("tsr_abc"), Err(MalformedToken::WrongLength));
        assert_eq!(f.parse(&"x".repeat(10_000)), Err(MalformedToken::TooLong));
        let t = f.generate();
        let with_dash = format!("{}-{}", &t.raw.expose()[..10], &t.raw.expose()[11..]);
        assert_eq!(f.parse(&with_dash), Err(MalformedToken::BadCharacters));
        let other = TokenFormat::new("acme_").unwrap();
        assert_eq!(
            other.parse(t.raw.expose()),
            Err(MalformedToken::WrongPrefix)
        );
    }

    #[test]
    fn prefix_validation() {
        assert!(TokenFormat::new("my_app_").is_ok());
        assert!(TokenFormat::new("").is_err());
        assert!(TokenFormat::new("bad prefix").is_err());
    }

    #[test]
    fn checksum_is_six_base62_chars() {
        assert_eq!(checksum(b"").len(), 6);
        assert_eq!(checksum(b"tsr_x").len(), 6);
    }
}
