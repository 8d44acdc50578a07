//! In-process verification, the path behind `POST /v1/tokens/verify` and
//! every authenticated request: a cached valid token, a malformed one, and
//! an unknown one (answered from the negative cache).
//! Run: `cargo bench -p tessera-server --bench verify`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tessera_core::audit::{Actor, RequestContext};
use tessera_server::{
    config::{Config, Overrides, Sources},
    service::tokens::{CreateToken, VerifyCaller},
    Services,
};

fn verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let data_dir = dir.path().display().to_string();
    let env = move |name: &str| match name {
        "DATABASE_URL" => Some(url.clone()),
        "TESSERA_DATA_DIR" => Some(data_dir.clone()),
        // Long enough that the measured loop never refreshes the cache.
        "TESSERA_VERIFY_CACHE_TTL" => Some("5m".into()),
        _ => None,
    };
    let config = Config::load(&Sources {
        file: None,
        env: &env,
        overrides: Overrides::default(),
    })
    .unwrap();
    let services = rt.block_on(Services::open(&config)).unwrap();
    let issued = rt
        .block_on(services.tokens.create(
            CreateToken {
                name: "bench".into(),
                ..Default::default()
            },
            &Actor::Cli,
            &RequestContext::default(),
        ))
        .unwrap();
    let secret = issued.secret.expose().to_string();
    let unknown = tessera_core::token_format::TokenFormat::default().generate();
    let unknown = unknown.raw.expose().to_string();
    let scopes = vec!["read".to_string()];
    // Warm the cache.
    rt.block_on(async {
        let _ = services
            .tokens
            .verify(&secret, &scopes, &VerifyCaller::console())
            .await;
        let _ = services
            .tokens
            .verify(&unknown, &[], &VerifyCaller::console())
            .await;
    });

    c.bench_function("verify/cached_valid", |b| {
        b.to_async(&rt).iter(|| async {
            let r = services
                .tokens
                .verify(black_box(&secret), &scopes, &VerifyCaller::console())
                .await
                .unwrap();
            assert!(r.is_ok());
        })
    });
    c.bench_function("verify/malformed", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                services
                    .tokens
                    .verify(black_box("tsr_not_a_token"), &[], &VerifyCaller::console())
                    .await
                    .unwrap(),
            )
        })
    });
    c.bench_function("verify/unknown_cached", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                services
                    .tokens
                    .verify(black_box(&unknown), &[], &VerifyCaller::console())
                    .await
                    .unwrap(),
            )
        })
    });
}

criterion_group!(benches, verify);
criterion_main!(benches);
