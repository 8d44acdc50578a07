//! Access-token signing keys: generated here, kept by the store as sealed
//! PKCS#8 bytes, and published as JWKs so others can verify what we sign.
//!
//! A key's id is its RFC 7638 JWK thumbprint (SHA-256, base64url): derived
//! from the public key alone, so it needs no randomness or uniqueness check,
//! differs between any two keys, and anyone holding the JWK can recompute it.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::Signer as _;
use rand::rngs::OsRng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{AccessClaims, Algorithm, JwtError, KeyError, ACCESS_TOKEN_TYP};

/// The public point of a key, by curve. Both coordinates of P-256 are kept
/// (not the compressed form) because that is what a JWK carries.
#[derive(Clone, PartialEq, Eq)]
enum Point {
    Ed25519([u8; 32]),
    P256 { x: [u8; 32], y: [u8; 32] },
}

/// A verification key: what the JWKS publishes and a verifier holds.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    kid: String,
    alg: Algorithm,
    point: Point,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The RFC 7638 thumbprint: SHA-256 over the required members in
    /// lexicographic order without whitespace, base64url. The id
    /// [`SigningKey::generate`] gives a key.
    pub fn thumbprint(&self) -> String {
        let canonical = match &self.point {
            Point::Ed25519(x) => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(x)
            ),
            Point::P256 { x, y } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(x),
                URL_SAFE_NO_PAD.encode(y)
            ),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The JWK (RFC 7517; OKP per RFC 8037, EC per RFC 7518), with `kid`,
    /// `alg` and `use: sig` so a client needs nothing else to pick the key.
    pub fn to_jwk(&self) -> Value {
        match &self.point {
            Point::Ed25519(x) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(x),
                "kid": self.kid,
                "alg": self.alg.as_str(),
                "use": "sig",
            }),
            Point::P256 { x, y } => json!({
                "kty": "EC",
                "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(x),
                "y": URL_SAFE_NO_PAD.encode(y),
                "kid": self.kid,
                "alg": self.alg.as_str(),
                "use": "sig",
            }),
        }
    }

    /// Reads a public JWK as [`PublicKey::to_jwk`] writes it. `kid` is
    /// required (tokens are matched by it); `alg` and `use`, when present,
    /// must agree with the curve and with signing. A JWK that carries a
    /// private part (`d`) is refused: it must never be published. The point
    /// must lie on its curve, so a bad JWK fails here, not at verification.
    pub fn from_jwk(jwk: &Value) -> Result<Self, JwtError> {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        let invalid = JwtError::Key(KeyError::InvalidJwk);
        let kid = field("kid").filter(|k| !k.is_empty()).ok_or(invalid)?;
        if jwk.get("d").is_some() || field("use").is_some_and(|u| u != "sig") {
            return Err(invalid);
        }
        let (alg, point) = match (field("kty"), field("crv")) {
            (Some("OKP"), Some("Ed25519")) => {
                let x = coordinate(field("x"))?;
                ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| invalid)?;
                (Algorithm::EdDSA, Point::Ed25519(x))
            }
            (Some("EC"), Some("P-256")) => {
                let (x, y) = (coordinate(field("x"))?, coordinate(field("y"))?);
                let point =
                    p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
                p256::PublicKey::from_sec1_bytes(point.as_bytes()).map_err(|_| invalid)?;
                (Algorithm::ES256, Point::P256 { x, y })
            }
            _ => return Err(invalid),
        };
        if field("alg").is_some_and(|a| a != alg.as_str()) {
            return Err(invalid);
        }
        Ok(Self {
            kid: kid.to_string(),
            alg,
            point,
        })
    }

    /// The key as the JOSE crate verifies with: the raw 32 bytes for
    /// Ed25519, the uncompressed SEC1 point for P-256 (both are what its
    /// `from_*_der` constructors expect, despite the name).
    pub(crate) fn decoding_key(&self) -> jsonwebtoken::DecodingKey {
        match &self.point {
            Point::Ed25519(x) => jsonwebtoken::DecodingKey::from_ed_der(x),
            Point::P256 { x, y } => {
                let point =
                    p256::EncodedPoint::from_affine_coordinates(&(*x).into(), &(*y).into(), false);
                jsonwebtoken::DecodingKey::from_ec_der(point.as_bytes())
            }
        }
    }
}

/// A base64url JWK coordinate of exactly 32 bytes.
fn coordinate(value: Option<&str>) -> Result<[u8; 32], JwtError> {
    let invalid = JwtError::Key(KeyError::InvalidJwk);
    let bytes = URL_SAFE_NO_PAD
        .decode(value.ok_or(invalid)?)
        .map_err(|_| invalid)?;
    bytes.try_into().map_err(|_| invalid)
}

/// The private half, parsed once: signing then costs one signature, and
/// both types wipe their scalar on drop.
enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

/// A private signing key. `Debug` shows only the id and algorithm.
///
/// Signing is done here with the curve crates rather than through
/// `jsonwebtoken::encode`, which re-parses the PKCS#8 document and derives
/// the public key again for every token (twice the cost of an Ed25519
/// signature) and keeps the document in an unwiped buffer. Compact JWS is
/// just `b64(header).b64(claims).b64(signature)`; verification, where the
/// parsing of hostile input lives, stays with the JOSE crate.
pub struct SigningKey {
    public: PublicKey,
    secret: Secret,
    /// `base64url(header) + "."`, built once: the header never changes.
    header_prefix: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.public.kid)
            .field("alg", &self.public.alg)
            .field("private", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// A new key from the OS's random source; its id is its thumbprint.
    pub fn generate(alg: Algorithm) -> Self {
        let secret = match alg {
            Algorithm::EdDSA => Secret::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng)),
            Algorithm::ES256 => Secret::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
        };
        let mut key = Self::build(String::new(), alg, secret);
        key.public.kid = key.public.thumbprint();
        key.header_prefix = header_prefix(&key.public);
        key
    }

    /// A key read back from [`SigningKey::private_bytes`] (after the store
    /// opened its sealed copy). The `kid` is the stored one, kept as is.
    pub fn from_private_bytes(kid: &str, alg: Algorithm, der: &[u8]) -> Result<Self, JwtError> {
        let invalid = |_| JwtError::Key(KeyError::InvalidPrivateKey);
        let secret = match alg {
            Algorithm::EdDSA => {
                Secret::Ed25519(ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(invalid)?)
            }
            Algorithm::ES256 => {
                Secret::P256(p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(invalid)?)
            }
        };
        Ok(Self::build(kid.to_string(), alg, secret))
    }

    fn build(kid: String, alg: Algorithm, secret: Secret) -> Self {
        let point = match &secret {
            Secret::Ed25519(k) => Point::Ed25519(k.verifying_key().to_bytes()),
            Secret::P256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                let coordinate = |c: Option<&p256::FieldBytes>| {
                    (*c.expect("an uncompressed point has both coordinates")).into()
                };
                Point::P256 {
                    x: coordinate(point.x()),
                    y: coordinate(point.y()),
                }
            }
        };
        let public = PublicKey { kid, alg, point };
        Self {
            header_prefix: header_prefix(&public),
            public,
            secret,
        }
    }

    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.public.alg
    }

    /// The PKCS#8 DER document (RFC 5958; what `openssl pkey` reads), to
    /// seal with `Keyring::seal` before it is stored. Wiped when dropped.
    pub fn private_bytes(&self) -> Zeroizing<Vec<u8>> {
        let der = match &self.secret {
            Secret::Ed25519(k) => k.to_pkcs8_der(),
            Secret::P256(k) => k.to_pkcs8_der(),
        }
        .expect("encoding a valid key as PKCS#8 in memory cannot fail");
        Zeroizing::new(der.as_bytes().to_vec())
    }

    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// A compact JWS: header `{"alg":..,"kid":..,"typ":"at+jwt"}`, the
    /// claims as JSON, and the signature: 64 bytes for both algorithms
    /// (R ‖ S for ES256, as JWS wants, not DER). Both are deterministic
    /// (RFC 8032; RFC 6979 for ECDSA), so no randomness is needed here.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, JwtError> {
        let payload = serde_json::to_vec(claims).map_err(|_| JwtError::Key(KeyError::Signing))?;
        let mut token = String::with_capacity(self.header_prefix.len() + payload.len() * 2 + 90);
        token.push_str(&self.header_prefix);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = match &self.secret {
            Secret::Ed25519(k) => k.sign(token.as_bytes()).to_bytes(),
            Secret::P256(k) => {
                // Fails only if RFC 6979 yields a zero scalar (never, in practice).
                let signature: p256::ecdsa::Signature = k
                    .try_sign(token.as_bytes())
                    .map_err(|_| JwtError::Key(KeyError::Signing))?;
                signature.to_bytes().into()
            }
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

/// `base64url({"alg":..,"kid":..,"typ":"at+jwt"}) + "."`.
fn header_prefix(public: &PublicKey) -> String {
    let header = json!({ "alg": public.alg.as_str(), "kid": public.kid, "typ": ACCESS_TOKEN_TYP });
    let mut prefix = URL_SAFE_NO_PAD.encode(header.to_string());
    prefix.push('.');
    prefix
}
