//! TOTP (RFC 6238) over HOTP (RFC 4226): code generation and checking, the
//! base32 secrets and `otpauth://` URIs authenticator apps understand.
//!
//! Pure functions of (secret, time): storage of the secret (encrypted),
//! replay protection and attempt limits live in the store and the service.

use hmac::{Hmac, Mac};
use rand::{rngs::OsRng, RngCore};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// The time step every mainstream authenticator uses.
pub const PERIOD_SECS: i64 = 30;
/// Steps accepted either side of the current one (clock drift, slow typing).
pub const SKEW_STEPS: i64 = 1;

/// The HMAC behind the codes. SHA-1 is the default because it is the only
/// one every authenticator app supports; RFC 6238 allows all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Algorithm {
    #[default]
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Some(Self::Sha1),
            "SHA256" => Some(Self::Sha256),
            "SHA512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Secret length matching the hash output, as RFC 6238's vectors do.
    pub fn secret_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    fn mac(self, key: &[u8], msg: &[u8]) -> Vec<u8> {
        // `new_from_slice` accepts keys of any length for HMAC.
        macro_rules! hmac {
            ($h:ty) => {{
                let mut m = <Hmac<$h>>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(msg);
                m.finalize().into_bytes().to_vec()
            }};
        }
        match self {
            Self::Sha1 => hmac!(sha1::Sha1),
            Self::Sha256 => hmac!(sha2::Sha256),
            Self::Sha512 => hmac!(sha2::Sha512),
        }
    }
}

/// How a device's codes are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TotpParams {
    pub algorithm: Algorithm,
    /// 6 or 8.
    pub digits: u32,
    /// Seconds per step; 30.
    pub period: i64,
}

impl Default for TotpParams {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: PERIOD_SECS,
        }
    }
}

impl TotpParams {
    pub fn valid_digits(digits: u32) -> bool {
        digits == 6 || digits == 8
    }

    /// The step a unix time falls in.
    pub fn step_at(&self, unix_secs: i64) -> i64 {
        unix_secs.div_euclid(self.period)
    }

    /// The code for one step (HOTP with the step as counter).
    pub fn code_for_step(&self, secret: &[u8], step: i64) -> String {
        hotp(self.algorithm, secret, step as u64, self.digits)
    }

    pub fn code_at(&self, secret: &[u8], unix_secs: i64) -> String {
        self.code_for_step(secret, self.step_at(unix_secs))
    }

    /// The step whose code `code` is, within the accepted window around
    /// `unix_secs`, or `None`. Every candidate is compared in constant time
    /// and the whole window is always computed, so timing does not reveal
    /// which step (if any) matched.
    pub fn matching_step(&self, secret: &[u8], code: &str, unix_secs: i64) -> Option<i64> {
        if code.len() != self.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = self.step_at(unix_secs);
        let mut found = None;
        for step in (now - SKEW_STEPS)..=(now + SKEW_STEPS) {
            let candidate = self.code_for_step(secret, step);
            if bool::from(candidate.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
                found = Some(step);
            }
        }
        found
    }

    /// The last unix second at which a code for `step` is still accepted.
    pub fn accepted_until(&self, step: i64) -> i64 {
        (step + SKEW_STEPS + 1) * self.period - 1
    }
}

/// RFC 4226 HOTP with dynamic truncation.
pub fn hotp(algorithm: Algorithm, secret: &[u8], counter: u64, digits: u32) -> String {
    let mac = algorithm.mac(secret, &counter.to_be_bytes());
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let binary = (u32::from(mac[offset] & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    let modulus = 10u32.pow(digits);
    format!("{:0width$}", binary % modulus, width = digits as usize)
}

/// A fresh random secret for `algorithm`, from the OS CSPRNG.
pub fn generate_secret(algorithm: Algorithm) -> Vec<u8> {
    let mut secret = vec![0u8; algorithm.secret_len()];
    OsRng.fill_bytes(&mut secret);
    secret
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = buf.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            out.push(BASE32[((bits >> (35 - 5 * i)) & 0x1f) as usize] as char);
        }
    }
    out
}

/// Decodes base32 (case-insensitive, padding and spaces ignored).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut bits, mut n) = (0u64, 0u32);
    for c in text.bytes() {
        if c == b'=' || c == b' ' {
            continue;
        }
        let v = BASE32.iter().position(|b| *b == c.to_ascii_uppercase())? as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    Some(out)
}

/// The `otpauth://totp/...` URI of the Key URI Format that authenticator apps
/// scan. Contains the secret: it is shown once, at enrolment.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8], params: &TotpParams) -> String {
    let label = format!("{}:{}", percent_encode(issuer), percent_encode(account));
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
        base32_encode(secret),
        percent_encode(issuer),
        params.algorithm.as_str(),
        params.digits,
        params.period
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vectors_pass_for_all_algorithms() {
        let v = crate::test_vectors::load("rfc6238.json");
        let mut seen = std::collections::BTreeSet::new();
        let cases = v["vectors"].as_array().unwrap();
        assert!(cases.len() >= 18);
        for case in cases {
            let alg = Algorithm::parse(case["algorithm"].as_str().unwrap()).unwrap();
            let params = TotpParams {
                algorithm: alg,
                digits: case["digits"].as_u64().unwrap() as u32,
                period: case["period"].as_i64().unwrap(),
            };
            let secret = case["secret_ascii"].as_str().unwrap().as_bytes();
            let time = case["time"].as_i64().unwrap();
            let code = case["code"].as_str().unwrap();
            assert_eq!(params.code_at(secret, time), code, "{case}");
            assert_eq!(
                params.matching_step(secret, code, time),
                Some(params.step_at(time))
            );
            seen.insert(alg.as_str());
        }
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn window_is_one_step_either_side() {
        let p = TotpParams::default();
        let secret = b"12345678901234567890";
        let t = 1_700_000_000;
        let step = p.step_at(t);
        for (delta, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = p.code_for_step(secret, step + delta);
            assert_eq!(
                p.matching_step(secret, &code, t).is_some(),
                accepted,
                "{delta}"
            );
        }
        assert_eq!(p.matching_step(secret, "12345", t), None);
        assert_eq!(p.matching_step(secret, "12345a", t), None);
        assert_eq!(p.matching_step(secret, "１２３４５６", t), None);
        // A code matched early stays acceptable until its window closes.
        assert!(p.accepted_until(step) >= t + 30);
    }

    #[test]
    fn base32_round_trips() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw6ytboi").unwrap(), b"foobar");
        for n in 0..70 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base32_decode(&base32_encode(&data)).unwrap(), data);
        }
        assert!(base32_decode("MZ1!").is_none());
    }

    #[test]
    fn otpauth_uri_is_escaped() {
        let uri = otpauth_uri(
            "Acme Co",
            "alice@example.com",
            b"12345678901234567890",
            &TotpParams::default(),
        );
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20Co:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Acme%20Co&algorithm=SHA1&digits=6&period=30"
        );
    }
}
