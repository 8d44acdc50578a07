//! Hot-path building blocks: generating, parsing (checksum + SHA-256) and
//! rejecting tokens; checking a TOTP code (three HMACs over the window) and
//! opening its sealed secret. Run: `cargo bench -p tessera-core`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tessera_core::token_format::{TokenFormat, TokenHash};

fn token_format(c: &mut Criterion) {
    let format = TokenFormat::default();
    let token = format.generate();
    let raw = token.raw.expose().to_string();
    let mut typo = raw.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();

    c.bench_function("token/generate", |b| {
        b.iter(|| black_box(format.generate()))
    });
    c.bench_function("token/parse_valid", |b| {
        b.iter(|| black_box(format.parse(black_box(&raw))))
    });
    c.bench_function("token/reject_bad_checksum", |b| {
        b.iter(|| black_box(format.parse(black_box(&typo))))
    });
    c.bench_function("token/sha256", |b| {
        b.iter(|| black_box(TokenHash::of(black_box(&raw))))
    });
}

fn totp(c: &mut Criterion) {
    use tessera_core::{
        crypto::Keyring,
        mfa::totp::{generate_secret, Algorithm, TotpParams},
    };
    let now = 1_700_000_000;
    for algorithm in [Algorithm::Sha1, Algorithm::Sha512] {
        let params = TotpParams {
            algorithm,
            ..TotpParams::default()
        };
        let secret = generate_secret(algorithm);
        let code = params.code_at(&secret, now + 30);
        c.bench_function(&format!("totp/check_window_{}", algorithm.as_str()), |b| {
            b.iter(|| black_box(params.matching_step(&secret, black_box(&code), now)))
        });
    }
    let ring = Keyring::new(&"k".repeat(32), &[], "totp-secret").unwrap();
    let sealed = ring.seal(&generate_secret(Algorithm::Sha1), "totp_devices.secret");
    c.bench_function("totp/open_sealed_secret", |b| {
        b.iter(|| black_box(ring.open(black_box(&sealed), "totp_devices.secret")))
    });
}

criterion_group!(benches, token_format, totp);
criterion_main!(benches);
