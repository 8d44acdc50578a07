//! Checking an access token: the one place that decides whether a bearer JWT
//! is accepted, so every caller refuses the same tokens for the same reasons.
//!
//! The order is cheapest and least trusting first: size, header (our `typ`,
//! an algorithm we use, no `crit`), key by `kid`, the header's `alg` against
//! the key's own (never the token's choice of algorithm), signature, then the
//! claims against the caller's clock. Keys embedded in a header (`jwk`,
//! `jku`, `x5u`, `x5c`) are ignored: only published keys verify.

use jsonwebtoken::errors::ErrorKind;

use super::{AccessClaims, JwtError, PublicKey, ACCESS_TOKEN_TYP};

/// Clock skew tolerated on `exp` and `nbf`, in seconds, unless the caller
/// sets another. Small on purpose: an access token lives minutes, so 5 s is
/// a small share of its life, and covers the skew of NTP-synced hosts (a
/// resource server a little behind us would otherwise refuse a fresh token
/// as not valid yet).
pub const DEFAULT_LEEWAY_SECS: i64 = 5;

/// Tokens longer than this are refused before any decoding. Ours are well
/// under 1 KiB; the cap bounds the work a hostile client can cause.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// A published key, ready to verify with.
struct Entry {
    key: PublicKey,
    decoding: jsonwebtoken::DecodingKey,
    /// Signature only, with exactly the key's algorithm: the claims are
    /// checked by us, against the caller's `now`, not the system clock.
    validation: jsonwebtoken::Validation,
}

/// Verifies access tokens against a set of published keys, one issuer and,
/// optionally, one audience.
pub struct Verifier {
    keys: Vec<Entry>,
    issuer: String,
    audience: Option<String>,
    leeway: i64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "kids",
                &self.keys.iter().map(|e| e.key.kid()).collect::<Vec<_>>(),
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl Verifier {
    /// With `audience: None` the `aud` claim is not checked (the issuer
    /// itself verifying its tokens); with `Some`, a token must carry exactly
    /// that audience. The leeway is [`DEFAULT_LEEWAY_SECS`]. Of two keys with
    /// one `kid`, the first is used.
    pub fn new(keys: Vec<PublicKey>, issuer: impl Into<String>, audience: Option<String>) -> Self {
        let keys = keys
            .into_iter()
            .map(|key| {
                let mut validation = jsonwebtoken::Validation::new(key.algorithm().to_jose());
                validation.required_spec_claims.clear();
                validation.validate_exp = false;
                validation.validate_nbf = false;
                validation.validate_aud = false;
                Entry {
                    decoding: key.decoding_key(),
                    key,
                    validation,
                }
            })
            .collect();
        Self {
            keys,
            issuer: issuer.into(),
            audience,
            leeway: DEFAULT_LEEWAY_SECS,
        }
    }

    /// Another clock-skew tolerance, in seconds (negative values count as 0).
    pub fn with_leeway(mut self, secs: i64) -> Self {
        self.leeway = secs.max(0);
        self
    }

    pub fn leeway(&self) -> i64 {
        self.leeway
    }

    /// The key ids this verifier knows, in order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|e| e.key.kid())
    }

    /// The claims of `token` if it is valid at `now_unix` (Unix seconds).
    /// Expired when `now_unix >= exp + leeway`; not valid yet when
    /// `now_unix + leeway < nbf`.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<AccessClaims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        check_header(&header)?;
        let alg = super::Algorithm::from_jose(header.alg).ok_or(JwtError::Malformed)?;
        let kid = header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
        let entry = self
            .keys
            .iter()
            .find(|e| e.key.kid() == kid)
            .ok_or(JwtError::UnknownKey)?;
        if entry.key.algorithm() != alg {
            return Err(JwtError::BadSignature);
        }
        let claims =
            jsonwebtoken::decode::<AccessClaims>(token, &entry.decoding, &entry.validation)
                .map_err(|e| match e.kind() {
                    ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                        JwtError::BadSignature
                    }
                    _ => JwtError::Malformed,
                })?
                .claims;
        self.check_claims(&claims, now_unix)?;
        Ok(claims)
    }

    /// The checks on claims alone (times, issuer, audience): what a cache of
    /// already verified signatures still has to judge on every use.
    pub fn check_claims(&self, claims: &AccessClaims, now: i64) -> Result<(), JwtError> {
        if now >= claims.exp.saturating_add(self.leeway) {
            return Err(JwtError::Expired);
        }
        if now.saturating_add(self.leeway) < claims.nbf {
            return Err(JwtError::NotYetValid);
        }
        if claims.iss != self.issuer {
            return Err(JwtError::WrongIssuer);
        }
        match &self.audience {
            Some(expected) if claims.aud.as_deref() != Some(expected.as_str()) => {
                Err(JwtError::WrongAudience)
            }
            _ => Ok(()),
        }
    }
}

/// Our header or nothing: `typ` must say access token (RFC 9068 §4; the
/// media type's `application/` prefix may be left out and case does not
/// matter, RFC 7515 §4.1.9), and a `crit` or `cty` we would not honour
/// (nested or extended JWS) makes it malformed rather than silently ignored.
fn check_header(header: &jsonwebtoken::Header) -> Result<(), JwtError> {
    let typ = header.typ.as_deref().unwrap_or_default();
    let typ = typ
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    if !typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || header.crit.is_some() || header.cty.is_some()
    {
        return Err(JwtError::Malformed);
    }
    Ok(())
}
