//! Access tokens for sessions as signed JWTs (RFC 9068 profile), so that
//! resource servers can check them offline against our JWKS instead of
//! calling back for every request.
//!
//! Pure domain code: keys are generated and handed out as bytes for the store
//! to seal ([`crate::crypto::Keyring`]), and "now" is always an argument.
//! The JWS work is done by `jsonwebtoken` on pure-Rust primitives
//! (`ed25519-dalek`, `p256`); the checks that decide whether a token is
//! accepted (header, key id, times, issuer, audience) are ours, so their
//! order and their errors are ours too.
//!
//! - [`key`]: signing keys and their public halves as JWKs.
//! - [`verify`]: the [`Verifier`] a resource server (or we) uses.
//! - [`keyset`]: which key signs and which keys are published, over time.

pub mod key;
pub mod keyset;
pub mod verify;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use key::{PublicKey, SigningKey};
pub use verify::{Verifier, DEFAULT_LEEWAY_SECS};

/// The header `typ` of our access tokens. RFC 9068 §2.1 asks for it so that a
/// JWT of another kind signed by the same key (an ID token, say) cannot be
/// replayed as an access token; PyJWT and most libraries ignore `typ`.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// A JWS signature algorithm we sign with. Only asymmetric, non-RSA ones:
/// EdDSA (Ed25519) by default, ES256 for clients whose libraries lack EdDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Algorithm {
    #[default]
    EdDSA,
    ES256,
}

impl Algorithm {
    /// The JOSE name (`alg` in headers and JWKs), also the config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
        }
    }

    pub(crate) fn to_jose(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }

    /// Ours, or `None` for every algorithm we never sign with (HS*, RS*, ...).
    pub(crate) fn from_jose(alg: jsonwebtoken::Algorithm) -> Option<Self> {
        match alg {
            jsonwebtoken::Algorithm::EdDSA => Some(Self::EdDSA),
            jsonwebtoken::Algorithm::ES256 => Some(Self::ES256),
            _ => None,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The configured name is not one we sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported JWT algorithm: expected EdDSA or ES256")]
pub struct UnknownAlgorithm;

impl std::str::FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Exact JOSE names only: `alg` values are case-sensitive (RFC 7515 §4.1.1),
    /// and a config that says `es256` should fail loudly rather than differ
    /// from what the JWKS says.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "EdDSA" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            _ => Err(UnknownAlgorithm),
        }
    }
}

/// Why a key could not be loaded or used. Never carries key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the private key bytes are not a PKCS#8 key of the stated algorithm")]
    InvalidPrivateKey,
    #[error("the JWK is not an Ed25519 (OKP) or P-256 (EC) public signing key")]
    InvalidJwk,
    #[error("signing failed")]
    Signing,
}

/// Why a token was refused (or a key refused). The messages never quote the
/// token or any part of it: they end up in logs and error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a compact JWS with our header and claim types (also: too long,
    /// an algorithm we never use, `alg: none`, a foreign `typ`, `crit`).
    #[error("the access token is malformed")]
    Malformed,
    /// The `kid` is missing or names no published key.
    #[error("the access token names an unknown signing key")]
    UnknownKey,
    /// The signature does not verify, or the header's `alg` is not the
    /// algorithm of the key its `kid` names (algorithm confusion).
    #[error("the access token's signature is invalid")]
    BadSignature,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token was issued by another issuer")]
    WrongIssuer,
    #[error("the access token is meant for another audience")]
    WrongAudience,
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The claims of an access token (RFC 9068 §2.2 plus `sid` and `amr`).
/// Times are Unix seconds. `scope` is space-separated, as in OAuth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// The session this token belongs to: revoking the session revokes it.
    pub sid: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Authentication methods (RFC 8176 values: "pwd", "otp", ...).
    #[serde(default)]
    pub amr: Vec<String>,
}

/// The JWKS document (`{"keys":[...]}`) for a set of published keys, served
/// at the well-known URL.
pub fn jwks(keys: &[PublicKey]) -> serde_json::Value {
    serde_json::json!({ "keys": keys.iter().map(PublicKey::to_jwk).collect::<Vec<_>>() })
}
