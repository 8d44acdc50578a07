//! Tests of signing, verifying and publishing keys together: the wire format
//! other libraries read, and every way a hostile token must be refused.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::Duration;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::Signer as _;
use serde_json::{json, Value};

use super::keyset::{self, KeyRecord};
use super::*;
use crate::crypto::Keyring;

const ISS: &str = "https://auth.example.test";
const NOW: i64 = 1_700_000_000;

fn claims(now: i64) -> AccessClaims {
    AccessClaims {
        iss: ISS.into(),
        sub: "user-42".into(),
        aud: Some("api".into()),
        exp: now + 900,
        iat: now,
        nbf: now,
        jti: "01J0000000000000000000000".into(),
        sid: "sess-1".into(),
        scope: "tokens:read tokens:write".into(),
        client_id: None,
        amr: vec!["pwd".into(), "otp".into()],
    }
}

fn verifier(keys: &[&SigningKey]) -> Verifier {
    Verifier::new(
        keys.iter().map(|k| k.public_key()).collect(),
        ISS,
        Some("api".into()),
    )
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

fn part(token: &str, i: usize) -> Value {
    let seg = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
}

/// A token with any header and payload, signed (correctly) by an Ed25519 key.
fn forge_ed(key: &SigningKey, header: &Value, payload: &Value) -> String {
    let sk = ed25519_dalek::SigningKey::from_pkcs8_der(&key.private_bytes()).unwrap();
    let message = format!("{}.{}", b64_json(header), b64_json(payload));
    let sig = sk.sign(message.as_bytes()).to_bytes();
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn both_algorithms_sign_and_verify() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256] {
        let key = SigningKey::generate(alg);
        assert_eq!(key.algorithm(), alg);
        let token = key.sign(&claims(NOW)).unwrap();
        assert_eq!(verifier(&[&key]).verify(&token, NOW), Ok(claims(NOW)));
    }
}

/// What PyJWT (and any JOSE library) reads: three unpadded base64url parts,
/// our header, JSON claims without absent optionals, and a raw 64-byte
/// signature (R ‖ S for ES256, not DER) over `header.payload`, checked here
/// with the curve crates directly rather than through the JOSE crate.
#[test]
fn output_is_a_standard_compact_jws() {
    let key = SigningKey::generate(Algorithm::EdDSA);
    let token = key.sign(&claims(NOW)).unwrap();
    assert!(!token.contains('='));
    assert_eq!(
        part(&token, 0),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid()})
    );
    let payload = part(&token, 1);
    assert_eq!(payload["scope"], "tokens:read tokens:write");
    assert_eq!(payload["amr"], json!(["pwd", "otp"]));
    assert!(payload.get("client_id").is_none());
    let (message, sig) = token.rsplit_once('.').unwrap();
    let sig: [u8; 64] = URL_SAFE_NO_PAD.decode(sig).unwrap().try_into().unwrap();
    let Value::String(x) = &key.public_key().to_jwk()["x"] else {
        panic!()
    };
    let x: [u8; 32] = URL_SAFE_NO_PAD.decode(x).unwrap().try_into().unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
    vk.verify_strict(
        message.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&sig),
    )
    .unwrap();

    let key = SigningKey::generate(Algorithm::ES256);
    let token = key.sign(&claims(NOW)).unwrap();
    assert_eq!(part(&token, 0)["alg"], "ES256");
    let (message, sig) = token.rsplit_once('.').unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    let jwk = key.public_key().to_jwk();
    let coord = |c: &str| URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap();
    let sec1 = [vec![4], coord("x"), coord("y")].concat();
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    use p256::ecdsa::signature::Verifier as _;
    vk.verify(message.as_bytes(), &sig).unwrap();
}

#[test]
fn jwk_round_trip_and_shape() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256] {
        let public = SigningKey::generate(alg).public_key();
        let jwk = public.to_jwk();
        assert_eq!(jwk["kid"], public.kid());
        assert_eq!(jwk["alg"], alg.as_str());
        assert_eq!(jwk["use"], "sig");
        assert_eq!(PublicKey::from_jwk(&jwk).unwrap(), public);
        assert_eq!(public.kid(), public.thumbprint());
    }
    let jwk = SigningKey::generate(Algorithm::EdDSA).public_key().to_jwk();
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    let jwk = SigningKey::generate(Algorithm::ES256).public_key().to_jwk();
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    let set = jwks(&[PublicKey::from_jwk(&jwk).unwrap()]);
    assert_eq!(set, json!({ "keys": [jwk] }));
}

/// RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
#[test]
fn thumbprint_matches_rfc_8037() {
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "k",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    let key = PublicKey::from_jwk(&jwk).unwrap();
    assert_eq!(
        key.thumbprint(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
}

#[test]
fn bad_jwks_are_refused() {
    let good = SigningKey::generate(Algorithm::ES256).public_key().to_jwk();
    let bad = JwtError::Key(KeyError::InvalidJwk);
    let with = |k: &str, v: Value| {
        let mut j = good.clone();
        j[k] = v;
        PublicKey::from_jwk(&j)
    };
    assert_eq!(with("d", json!("AAAA")), Err(bad));
    assert_eq!(with("alg", json!("EdDSA")), Err(bad));
    assert_eq!(with("use", json!("enc")), Err(bad));
    assert_eq!(with("crv", json!("P-384")), Err(bad));
    assert_eq!(with("kid", json!("")), Err(bad));
    assert_eq!(with("x", json!("AAAA")), Err(bad));
    // A point that is not on the curve.
    assert_eq!(
        with("y", json!(URL_SAFE_NO_PAD.encode([1u8; 32]))),
        Err(bad)
    );
    assert_eq!(PublicKey::from_jwk(&json!("not an object")), Err(bad));
    assert_eq!(
        PublicKey::from_jwk(&json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"})),
        Err(bad)
    );
}

#[test]
fn private_bytes_survive_sealing_in_the_keyring() {
    let ring = Keyring::new(&"k".repeat(32), &[], "signing-keys").unwrap();
    for alg in [Algorithm::EdDSA, Algorithm::ES256] {
        let key = SigningKey::generate(alg);
        let sealed = ring.seal(&key.private_bytes(), "signing_keys.private");
        let opened = ring.open(&sealed, "signing_keys.private").unwrap();
        let back = SigningKey::from_private_bytes(key.kid(), alg, &opened).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let token = back.sign(&claims(NOW)).unwrap();
        assert!(verifier(&[&key]).verify(&token, NOW).is_ok());
        assert!(ring.open(&sealed, "webhooks.secret").is_err());
    }
}

#[test]
fn wrong_private_bytes_are_refused() {
    let ed = SigningKey::generate(Algorithm::EdDSA).private_bytes();
    let refused = Err(JwtError::Key(KeyError::InvalidPrivateKey));
    assert_eq!(
        SigningKey::from_private_bytes("k", Algorithm::ES256, &ed).map(|_| ()),
        refused
    );
    assert_eq!(
        SigningKey::from_private_bytes("k", Algorithm::EdDSA, b"junk").map(|_| ()),
        refused
    );
    assert_eq!(
        SigningKey::from_private_bytes("k", Algorithm::EdDSA, &[]).map(|_| ()),
        refused
    );
}

#[test]
fn debug_never_shows_key_material() {
    let key = SigningKey::generate(Algorithm::EdDSA);
    let shown = format!("{key:?}");
    assert!(shown.contains("[redacted]") && shown.contains(key.kid()));
    let der = URL_SAFE_NO_PAD.encode(&*key.private_bytes());
    assert!(!shown.contains(&der[der.len() - 20..]));
}

#[test]
fn algorithm_names() {
    assert_eq!("EdDSA".parse(), Ok(Algorithm::EdDSA));
    assert_eq!("ES256".parse(), Ok(Algorithm::ES256));
    assert_eq!("es256".parse::<Algorithm>(), Err(UnknownAlgorithm));
    assert_eq!("none".parse::<Algorithm>(), Err(UnknownAlgorithm));
    assert_eq!(serde_json::to_value(Algorithm::ES256).unwrap(), "ES256");
    assert_eq!(Algorithm::default(), Algorithm::EdDSA);
}

#[test]
fn times_issuer_and_audience_are_checked() {
    let key = SigningKey::generate(Algorithm::EdDSA);
    let v = verifier(&[&key]).with_leeway(0);
    let c = claims(NOW);
    let token = key.sign(&c).unwrap();
    assert!(v.verify(&token, c.exp - 1).is_ok());
    assert_eq!(v.verify(&token, c.exp), Err(JwtError::Expired));
    assert_eq!(v.verify(&token, c.nbf - 1), Err(JwtError::NotYetValid));
    let lenient = verifier(&[&key]);
    assert_eq!(lenient.leeway(), DEFAULT_LEEWAY_SECS);
    assert!(lenient
        .verify(&token, c.exp + DEFAULT_LEEWAY_SECS - 1)
        .is_ok());
    assert_eq!(
        lenient.verify(&token, c.exp + DEFAULT_LEEWAY_SECS),
        Err(JwtError::Expired)
    );
    assert!(lenient.verify(&token, c.nbf - DEFAULT_LEEWAY_SECS).is_ok());

    let other_iss = Verifier::new(vec![key.public_key()], "https://other", None);
    assert_eq!(other_iss.verify(&token, NOW), Err(JwtError::WrongIssuer));
    let other_aud = Verifier::new(vec![key.public_key()], ISS, Some("billing".into()));
    assert_eq!(other_aud.verify(&token, NOW), Err(JwtError::WrongAudience));
    let no_aud = key
        .sign(&AccessClaims {
            aud: None,
            ..claims(NOW)
        })
        .unwrap();
    assert_eq!(v.verify(&no_aud, NOW), Err(JwtError::WrongAudience));
    let any_aud = Verifier::new(vec![key.public_key()], ISS, None);
    assert!(any_aud.verify(&no_aud, NOW).is_ok() && any_aud.verify(&token, NOW).is_ok());
}

#[test]
fn hostile_tokens_are_refused_without_panic() {
    let key = SigningKey::generate(Algorithm::EdDSA);
    let v = verifier(&[&key]);
    let token = key.sign(&claims(NOW)).unwrap();
    for garbage in [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "a.b",
        "ey.ey.ey",
        "\u{0}\u{ff}",
        "é.é.é",
    ] {
        assert_eq!(
            v.verify(garbage, NOW),
            Err(JwtError::Malformed),
            "{garbage:?}"
        );
    }
    for end in 0..token.len() {
        assert!(v.verify(&token[..end], NOW).is_err(), "prefix of {end}");
    }
    let huge = format!("{token}{}", "A".repeat(verify::MAX_TOKEN_LEN));
    assert_eq!(v.verify(&huge, NOW), Err(JwtError::Malformed));
    let payload = part(&token, 1);
    let header = |alg: &str, kid: &str| json!({"alg": alg, "typ": "at+jwt", "kid": kid});

    let none = format!(
        "{}.{}.",
        b64_json(&header("none", key.kid())),
        b64_json(&payload)
    );
    assert_eq!(v.verify(&none, NOW), Err(JwtError::Malformed));
    let hs = forge_ed(&key, &header("HS256", key.kid()), &payload);
    assert_eq!(v.verify(&hs, NOW), Err(JwtError::Malformed));
    // The EdDSA key's kid with ES256 in the header: alg confusion.
    let es = forge_ed(&key, &header("ES256", key.kid()), &payload);
    assert_eq!(v.verify(&es, NOW), Err(JwtError::BadSignature));
    let unknown = forge_ed(&key, &header("EdDSA", "nope"), &payload);
    assert_eq!(v.verify(&unknown, NOW), Err(JwtError::UnknownKey));
    let no_kid = forge_ed(&key, &json!({"alg": "EdDSA", "typ": "at+jwt"}), &payload);
    assert_eq!(v.verify(&no_kid, NOW), Err(JwtError::UnknownKey));
    let mut id_token_header = header("EdDSA", key.kid());
    id_token_header["typ"] = json!("JWT");
    let id_token = forge_ed(&key, &id_token_header, &payload);
    assert_eq!(v.verify(&id_token, NOW), Err(JwtError::Malformed));
    let mut crit = header("EdDSA", key.kid());
    crit["crit"] = json!(["exp"]);
    assert_eq!(
        v.verify(&forge_ed(&key, &crit, &payload), NOW),
        Err(JwtError::Malformed)
    );
    let mut media_type = header("EdDSA", key.kid());
    media_type["typ"] = json!("application/AT+JWT");
    assert!(v
        .verify(&forge_ed(&key, &media_type, &payload), NOW)
        .is_ok());

    // Tampered payload (an extra scope) under the original signature.
    let (h, rest) = token.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let mut more = payload.clone();
    more["scope"] = json!("admin");
    let tampered = format!("{h}.{}.{sig}", b64_json(&more));
    assert_eq!(v.verify(&tampered, NOW), Err(JwtError::BadSignature));
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert_eq!(v.verify(&flipped, NOW), Err(JwtError::BadSignature));
    // Validly signed, but a claim of the wrong type.
    let mut wrong_type = payload;
    wrong_type["exp"] = json!("tomorrow");
    let typed = forge_ed(&key, &header("EdDSA", key.kid()), &wrong_type);
    assert_eq!(v.verify(&typed, NOW), Err(JwtError::Malformed));
}

#[test]
fn error_messages_never_quote_the_token() {
    let key = SigningKey::generate(Algorithm::EdDSA);
    let token = key.sign(&claims(NOW)).unwrap();
    let err = verifier(&[&key]).verify(&token, NOW + 10_000).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!token.split('.').any(|p| text.contains(p)));
}

/// The rotation story on the pure rules, with real keys: a token signed
/// just before the new key takes over still verifies against the published
/// set until it expires; tokens after the pre-publication carry the new kid.
#[test]
fn rotation_keeps_old_tokens_valid_until_they_expire() {
    let ttl = 900;
    let at = |s: i64| chrono::DateTime::from_timestamp(NOW + s, 0).unwrap();
    let old = SigningKey::generate(Algorithm::EdDSA);
    let new = SigningKey::generate(Algorithm::ES256);
    let keys = [&old, &new];
    let record = |k: &SigningKey, created: i64, signs_from| KeyRecord {
        kid: k.kid().into(),
        alg: k.algorithm(),
        created_at: at(created),
        signs_from,
        retired_at: None,
        publish_until: None,
    };
    let mut records = vec![record(&old, 0, at(0))];
    records.push(record(
        &new,
        100,
        keyset::rotate_plan(at(100), Duration::seconds(600)),
    ));
    let sign_at = |records: &[KeyRecord], s: i64| {
        let kid = &keyset::signing_key_at(records, at(s)).unwrap().kid;
        let key = keys.iter().find(|k| k.kid() == kid).unwrap();
        key.sign(&AccessClaims {
            exp: NOW + s + ttl,
            ..claims(NOW + s)
        })
        .unwrap()
    };
    let verify_at = |records: &[KeyRecord], token: &str, s: i64| {
        let published = keyset::published_at(records, at(s));
        let public = keys
            .iter()
            .filter(|k| published.iter().any(|r| r.kid == k.kid()))
            .map(|k| k.public_key())
            .collect();
        Verifier::new(public, ISS, Some("api".into())).verify(token, NOW + s)
    };

    let before = sign_at(&records, 699);
    assert_eq!(part(&before, 0)["kid"], old.kid());
    let after = sign_at(&records, 700);
    assert_eq!(part(&after, 0)["kid"], new.kid());
    keyset::retire(&mut records[0], at(700), Duration::seconds(ttl));

    let last_valid = 699 + ttl + DEFAULT_LEEWAY_SECS - 1;
    assert!(verify_at(&records, &before, last_valid).is_ok());
    assert!(verify_at(&records, &after, last_valid).is_ok());
    assert_eq!(
        verify_at(&records, &before, last_valid + 1),
        Err(JwtError::Expired)
    );
    // Once the old key is gone from the JWKS its tokens have all expired.
    let gone = 700 + ttl + DEFAULT_LEEWAY_SECS;
    assert_eq!(
        verify_at(&records, &before, gone),
        Err(JwtError::UnknownKey)
    );
    let fresh = sign_at(&records, gone);
    assert_eq!(part(&fresh, 0)["kid"], new.kid());
    assert!(verify_at(&records, &fresh, gone).is_ok());
}
