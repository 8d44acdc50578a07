//! In-process introspection, the path behind `POST /oauth2/introspect`
//! once the HTTP layer has parsed the form: the client's Basic credentials
//! checked (HMAC, one map lookup), and a valid access token described from
//! the caches (its verified signature and its session's state).
//! Run: `cargo bench -p tessera-server --bench introspect`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tessera_core::{
    audit::{Actor, RequestContext},
    client::Capability,
    SecretString,
};
use tessera_server::{
    config::{Config, Overrides, Sources},
    service::{
        clients::ClientCredentials, oauth::OAuthTokens, sessions::SessionSpec, tokens::VerifyCaller,
    },
    Services,
};

fn introspect(c: &mut Criterion) {
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
        "INTROSPECTION_CLIENTS" => Some("bench-rs:bench-rs-secret-0123456789".into()),
        // Long enough that the measured loop never reads the session again.
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
    let spec = SessionSpec {
        subject: "bench-subject".into(),
        user_id: None,
        client_id: None,
        scope: vec!["read".into()],
        amr: vec![],
        device_id: None,
    };
    let ctx = RequestContext::default();
    let issued = rt
        .block_on(services.sessions.open(spec, &Actor::Cli, &ctx))
        .unwrap();
    let token = issued.access_token.expose().to_string();
    let basic = Some(Ok((
        "bench-rs".to_string(),
        SecretString::new("bench-rs-secret-0123456789".into()),
    )));
    let credentials = ClientCredentials::new(None, basic, None, None);
    let oauth = OAuthTokens {
        sessions: &services.sessions,
        tokens: &services.tokens,
        metrics: &services.metrics,
    };
    let client = rt
        .block_on(
            services
                .clients
                .authenticate(&credentials, Capability::Introspect, &ctx),
        )
        .unwrap();
    // Warm the caches.
    let warm = rt.block_on(oauth.introspect(&client, &token, &VerifyCaller::console()));
    assert!(warm.unwrap().active);

    c.bench_function("introspect/client_basic", |b| {
        b.to_async(&rt).iter(|| async {
            let found = services
                .clients
                .authenticate(black_box(&credentials), Capability::Introspect, &ctx)
                .await;
            assert!(found.is_ok());
        })
    });
    c.bench_function("introspect/cached_access_token", |b| {
        b.to_async(&rt).iter(|| async {
            let answer = oauth
                .introspect(&client, black_box(&token), &VerifyCaller::console())
                .await
                .unwrap();
            assert!(answer.active);
        })
    });
}

criterion_group!(benches, introspect);
criterion_main!(benches);
