//! Access-token JWTs on the request path: signing one at login or refresh,
//! verifying one on every API call, for Ed25519 (the default) and ES256.
//! Run: `cargo bench -p tessera-core --bench jwt`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tessera_core::jwt::{AccessClaims, Algorithm, SigningKey, Verifier};

fn claims(now: i64) -> AccessClaims {
    AccessClaims {
        iss: "https://auth.example.test".into(),
        sub: "user-42".into(),
        aud: Some("api".into()),
        exp: now + 900,
        iat: now,
        nbf: now,
        jti: "01J0000000000000000000000".into(),
        sid: "sess-1".into(),
        scope: "tokens:read tokens:write".into(),
        client_id: Some("web".into()),
        amr: vec!["pwd".into(), "otp".into()],
    }
}

fn jwt(c: &mut Criterion) {
    let now = 1_700_000_000;
    for alg in [Algorithm::EdDSA, Algorithm::ES256] {
        let key = SigningKey::generate(alg);
        let claims = claims(now);
        // A verifier with a second, unused key, as during a rotation.
        let other = SigningKey::generate(alg).public_key();
        let verifier = Verifier::new(
            vec![other, key.public_key()],
            "https://auth.example.test",
            Some("api".into()),
        );
        let token = key.sign(&claims).unwrap();
        c.bench_function(&format!("jwt/sign_{alg}"), |b| {
            b.iter(|| black_box(key.sign(black_box(&claims))))
        });
        c.bench_function(&format!("jwt/verify_{alg}"), |b| {
            b.iter(|| black_box(verifier.verify(black_box(&token), now)))
        });
    }
}

criterion_group!(benches, jwt);
criterion_main!(benches);
