//! Hot-path building blocks: generating, parsing (checksum + SHA-256) and
//! rejecting tokens. Run: `cargo bench -p tessera-core`.

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

criterion_group!(benches, token_format);
criterion_main!(benches);
